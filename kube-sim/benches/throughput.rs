//! kube-sim throughput and memory benchmark (`make bench`, or
//! `cargo bench -p kube-sim --bench throughput`).
//!
//! The server is the release binary (`target/release/kube-sim`, which cargo builds for this
//! bench), run as a child process so that its memory (/proc/<pid>/status VmRSS, VmHWM) and
//! CPU time are its own. It measures:
//!   0. which client is cheapest: kube-rs `Api::create`, kube-rs `Client::send` with
//!      pre-serialized bodies, or a minimal keep-alive HTTP/1.1 client (on a separate server);
//!   a. ConfigMap creates per second from 16 and 64 concurrent clients;
//!   b. a full list of every ConfigMap, and the same list paged with limit=500;
//!   c. a watch from the list's resourceVersion receiving every event while as many
//!      ConfigMaps again are created;
//!   d. server RSS per stored object vs the stored JSON per object (GET /kube-sim/stats).
//!
//! Benchmarks are not tests: nothing here asserts on timing.
//! Knobs: BENCH_SCALE (default 1; e.g. 0.1 for a quick run), BENCH_CLIENT_THREADS (default 2),
//! KUBE_SIM_BIN (default: the binary cargo built for this bench).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, Config};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const NAMESPACES: usize = 10;
const CLK_TCK: f64 = 100.0;

fn main() {
    // `cargo bench` passes `--bench`; other arguments (filters) are ignored.
    let threads: usize = std::env::var("BENCH_CLIENT_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(threads)) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(100)
}

fn server_binary() -> PathBuf {
    match std::env::var_os("KUBE_SIM_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_kube-sim")),
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

// ------------------------------------------------------------------------------------------
// The server process
// ------------------------------------------------------------------------------------------

struct Server {
    child: tokio::process::Child,
    pid: u32,
    addr: String,
    client: Client,
    dir: PathBuf,
}

impl Server {
    async fn start(tag: &str) -> Res<Server> {
        let bin = server_binary();
        if !bin.exists() {
            return Err(format!(
                "{} is missing: run `cargo build --release -p kube-sim`",
                bin.display()
            )
            .into());
        }
        let dir = std::env::temp_dir().join(format!("kube-sim-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let mut child = tokio::process::Command::new(&bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--no-namespace-defaults")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("kube-sim exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !kubeconfig.exists() {
            if let Some(status) = child.try_wait()? {
                return Err(format!("kube-sim exited: {status}").into());
            }
            if Instant::now() > deadline {
                return Err("kube-sim did not write its kubeconfig within 20s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let config = Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let addr = config
            .cluster_url
            .authority()
            .ok_or("kubeconfig server has no host")?
            .to_string();
        let client = Client::try_from(config)?;
        Ok(Server {
            child,
            pid,
            addr,
            client,
            dir,
        })
    }

    /// (VmRSS, VmHWM) in bytes.
    fn memory(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map(|kib| kib * 1024)
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!("/proc/{}/stat", self.pid))
    }

    async fn stats(&self) -> Res<Stats> {
        let mut c = Conn::open(&self.addr).await?;
        let (code, body) = c.request("GET", "/kube-sim/stats", None, b"").await?;
        if code != 200 {
            return Err(format!("GET /kube-sim/stats: HTTP {code}").into());
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(Stats {
            objects: v["objects"].as_u64().unwrap_or(0),
            json_bytes: v["jsonBytes"].as_u64().unwrap_or(0),
            rv: v["resourceVersion"].as_u64().unwrap_or(0),
        })
    }

    async fn create_namespaces(&self) -> Res<()> {
        let mut c = Conn::open(&self.addr).await?;
        for i in 0..NAMESPACES {
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"bench-{i}"}}}}"#
            );
            let (code, resp) = c
                .request(
                    "POST",
                    "/api/v1/namespaces",
                    Some("application/json"),
                    body.as_bytes(),
                )
                .await?;
            if code != 201 {
                return Err(format!(
                    "creating namespace bench-{i}: HTTP {code}: {}",
                    String::from_utf8_lossy(&resp)
                )
                .into());
            }
        }
        Ok(())
    }

    /// SIGTERM (kube-sim shuts down gracefully), SIGKILL if it is still there after 10s.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cpu_seconds_of(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / CLK_TCK
}

fn client_cpu_seconds() -> f64 {
    cpu_seconds_of("/proc/self/stat")
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    objects: u64,
    json_bytes: u64,
    rv: u64,
}

// ------------------------------------------------------------------------------------------
// A minimal keep-alive HTTP/1.1 client: no TLS, no auth, no response decoding.
// ------------------------------------------------------------------------------------------

struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    host: String,
    out: Vec<u8>,
    line: String,
}

enum Framing {
    Length(usize),
    Chunked,
}

impl Conn {
    async fn open(addr: &str) -> io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        Ok(Conn {
            r: BufReader::with_capacity(64 * 1024, r),
            w,
            host: addr.to_string(),
            out: Vec::with_capacity(1024),
            line: String::new(),
        })
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<()> {
        self.out.clear();
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kube-sim-bench/1.0\r\nAccept: application/json\r\n",
            self.host
        );
        if let Some(ct) = content_type {
            let _ = write!(head, "Content-Type: {ct}\r\n");
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
        self.out.extend_from_slice(head.as_bytes());
        self.out.extend_from_slice(body);
        self.w.write_all(&self.out).await
    }

    async fn read_line(&mut self) -> io::Result<&str> {
        self.line.clear();
        if self.r.read_line(&mut self.line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(self.line.trim_end())
    }

    async fn read_head(&mut self) -> io::Result<(u16, Framing)> {
        let status = self.read_line().await?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status:?}")))?;
        let mut framing = Framing::Length(0);
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                framing = Framing::Length(
                    value
                        .parse()
                        .map_err(|_| io::Error::other("bad content-length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                framing = Framing::Chunked;
            }
        }
        Ok((code, framing))
    }

    /// The next chunk of a chunked body into `buf` (replacing it); false at the end.
    async fn next_chunk(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        let size_line = self.read_line().await?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            while !self.read_line().await?.is_empty() {}
            return Ok(false);
        }
        buf.clear();
        buf.resize(size, 0);
        self.r.read_exact(buf).await?;
        let mut crlf = [0u8; 2];
        self.r.read_exact(&mut crlf).await?;
        Ok(true)
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        self.send(method, path, content_type, body).await?;
        let (code, framing) = self.read_head().await?;
        let body = match framing {
            Framing::Length(n) => {
                let mut b = vec![0u8; n];
                self.r.read_exact(&mut b).await?;
                b
            }
            Framing::Chunked => {
                let mut all = Vec::new();
                let mut chunk = Vec::new();
                while self.next_chunk(&mut chunk).await? {
                    all.extend_from_slice(&chunk);
                }
                all
            }
        };
        Ok((code, body))
    }
}

// ------------------------------------------------------------------------------------------
// Creates
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// kube-rs `Api::<ConfigMap>::create`: typed, serialized and deserialized by the client.
    KubeTyped,
    /// kube-rs `Client::send` with a pre-built JSON body; the response is read, not decoded.
    KubeRaw,
    /// One keep-alive HTTP/1.1 connection per task, hand-written requests.
    RawHttp,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::KubeTyped => "kube-rs Api::create (typed)",
            Mode::KubeRaw => "kube-rs Client::send (raw bytes)",
            Mode::RawHttp => "raw HTTP/1.1 keep-alive",
        }
    }
}

fn cm_body(prefix: &str, i: usize) -> (String, String) {
    let ns = format!("bench-{}", i % NAMESPACES);
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{prefix}-{i:07}","labels":{{"app":"bench","shard":"s{}"}}}},"data":{{"index":"{i}","payload":"0123456789abcdef0123456789abcdef"}}}}"#,
        i % 16
    );
    (ns, body)
}

fn cm_typed(prefix: &str, i: usize) -> (String, ConfigMap) {
    let ns = format!("bench-{}", i % NAMESPACES);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{i:07}")),
            labels: Some(BTreeMap::from([
                ("app".to_string(), "bench".to_string()),
                ("shard".to_string(), format!("s{}", i % 16)),
            ])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("index".to_string(), i.to_string()),
            (
                "payload".to_string(),
                "0123456789abcdef0123456789abcdef".to_string(),
            ),
        ])),
        ..Default::default()
    };
    (ns, cm)
}

struct CreateResult {
    n: usize,
    elapsed: Duration,
    errors: usize,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    server_cpu: f64,
    client_cpu: f64,
}

impl CreateResult {
    fn per_sec(&self) -> f64 {
        self.n as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    /// CPU used per wall-clock second, in cores.
    fn cores(&self, cpu: f64) -> f64 {
        cpu / self.elapsed.as_secs_f64()
    }
    /// CPU time per create, in microseconds.
    fn us_per(&self, cpu: f64) -> f64 {
        cpu * 1e6 / self.n.max(1) as f64
    }
}

async fn create_many(
    server: &Server,
    mode: Mode,
    clients: usize,
    total: usize,
    prefix: &str,
) -> Res<CreateResult> {
    let next = Arc::new(AtomicUsize::new(0));
    // Connections first, so that connecting is not timed.
    let mut conns = Vec::new();
    if mode == Mode::RawHttp {
        for _ in 0..clients {
            conns.push(Some(Conn::open(&server.addr).await?));
        }
    } else {
        conns.resize_with(clients, || None);
    }
    let (cpu_s0, cpu_c0) = (server.cpu_seconds(), client_cpu_seconds());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for conn in conns {
        let next = next.clone();
        let client = server.client.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut lat = Vec::with_capacity(total / clients + 1);
            let mut errors = 0usize;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let outcome: Result<(), String> = match mode {
                    Mode::RawHttp => {
                        let (ns, body) = cm_body(&prefix, i);
                        let c = conn.as_mut().expect("connection");
                        match c
                            .request(
                                "POST",
                                &format!("/api/v1/namespaces/{ns}/configmaps"),
                                Some("application/json"),
                                body.as_bytes(),
                            )
                            .await
                        {
                            Ok((201, _)) => Ok(()),
                            Ok((code, b)) => {
                                Err(format!("HTTP {code}: {}", String::from_utf8_lossy(&b)))
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Mode::KubeRaw => {
                        let (ns, body) = cm_body(&prefix, i);
                        let req =
                            kube::core::Request::new(format!("/api/v1/namespaces/{ns}/configmaps"))
                                .create(&PostParams::default(), body.into_bytes())
                                .map_err(|e| e.to_string());
                        match req {
                            Ok(req) => match client.send(req.map(kube::client::Body::from)).await {
                                Ok(resp) => {
                                    let code = resp.status().as_u16();
                                    match resp.into_body().collect_bytes().await {
                                        Ok(_) if code == 201 => Ok(()),
                                        Ok(b) => Err(format!(
                                            "HTTP {code}: {}",
                                            String::from_utf8_lossy(&b)
                                        )),
                                        Err(e) => Err(e.to_string()),
                                    }
                                }
                                Err(e) => Err(e.to_string()),
                            },
                            Err(e) => Err(e),
                        }
                    }
                    Mode::KubeTyped => {
                        let (ns, cm) = cm_typed(&prefix, i);
                        Api::<ConfigMap>::namespaced(client.clone(), &ns)
                            .create(&PostParams::default(), &cm)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                };
                lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if let Err(e) = outcome {
                    errors += 1;
                    first_error.get_or_insert(e);
                    if mode == Mode::RawHttp {
                        // The connection may be unusable now.
                        break;
                    }
                }
            }
            (lat, errors, first_error)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (lat, e, fe) = t.await?;
        latencies.extend(lat);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    let elapsed = start.elapsed();
    let (cpu_s1, cpu_c1) = (server.cpu_seconds(), client_cpu_seconds());
    latencies.sort_unstable();
    Ok(CreateResult {
        n: latencies.len() - errors,
        elapsed,
        errors,
        first_error,
        latencies_us: latencies,
        server_cpu: cpu_s1 - cpu_s0,
        client_cpu: cpu_c1 - cpu_c0,
    })
}

fn print_create(what: &str, r: &CreateResult) {
    println!(
        "  {what}: {} creates in {:.2}s = {:.0}/s; latency p50 {:.2}ms p99 {:.2}ms; CPU: server {:.2} cores ({:.0}us/create), client {:.2} cores ({:.0}us/create){}",
        r.n,
        r.elapsed.as_secs_f64(),
        r.per_sec(),
        r.pct(0.50),
        r.pct(0.99),
        r.cores(r.server_cpu),
        r.us_per(r.server_cpu),
        r.cores(r.client_cpu),
        r.us_per(r.client_cpu),
        if r.errors > 0 {
            format!(
                "; {} ERRORS, first: {}",
                r.errors,
                r.first_error.as_deref().unwrap_or("")
            )
        } else {
            String::new()
        }
    );
}

// ------------------------------------------------------------------------------------------
// Lists and watches
// ------------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct ListHead {
    metadata: ListMeta,
    items: Vec<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
    #[serde(rename = "continue")]
    cont: Option<String>,
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

struct ListResult {
    items: usize,
    bytes: usize,
    elapsed: Duration,
    pages: usize,
    rv: String,
}

async fn full_list(server: &Server) -> Res<ListResult> {
    let mut c = Conn::open(&server.addr).await?;
    let start = Instant::now();
    let (code, body) = c.request("GET", "/api/v1/configmaps", None, b"").await?;
    let elapsed = start.elapsed();
    if code != 200 {
        return Err(format!("list: HTTP {code}").into());
    }
    let head: ListHead = serde_json::from_slice(&body)?;
    Ok(ListResult {
        items: head.items.len(),
        bytes: body.len(),
        elapsed,
        pages: 1,
        rv: head.metadata.resource_version,
    })
}

async fn paged_list(server: &Server, limit: usize) -> Res<ListResult> {
    let mut c = Conn::open(&server.addr).await?;
    let start = Instant::now();
    let mut cont: Option<String> = None;
    let (mut items, mut bytes, mut pages) = (0, 0, 0);
    let mut rv = String::new();
    loop {
        let path = match &cont {
            Some(t) => format!(
                "/api/v1/configmaps?limit={limit}&continue={}",
                url_encode(t)
            ),
            None => format!("/api/v1/configmaps?limit={limit}"),
        };
        let (code, body) = c.request("GET", &path, None, b"").await?;
        if code != 200 {
            return Err(format!(
                "paged list: HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        let head: ListHead = serde_json::from_slice(&body)?;
        pages += 1;
        items += head.items.len();
        bytes += body.len();
        if rv.is_empty() {
            rv = head.metadata.resource_version;
        }
        match head.metadata.cont.filter(|c| !c.is_empty()) {
            Some(t) => cont = Some(t),
            None => break,
        }
    }
    Ok(ListResult {
        items,
        bytes,
        elapsed: start.elapsed(),
        pages,
        rv,
    })
}

struct WatchResult {
    events: usize,
    bytes: usize,
    /// When the last wanted event arrived.
    done: Option<Instant>,
    error: Option<String>,
}

/// Start a watch of every ConfigMap from `rv`; the task ends after `want` events.
async fn start_watch(
    server: &Server,
    rv: &str,
    want: usize,
) -> Res<tokio::task::JoinHandle<WatchResult>> {
    let mut c = Conn::open(&server.addr).await?;
    c.send(
        "GET",
        &format!("/api/v1/configmaps?watch=true&resourceVersion={rv}"),
        None,
        b"",
    )
    .await?;
    let (code, framing) = c.read_head().await?;
    if code != 200 || !matches!(framing, Framing::Chunked) {
        return Err(format!("watch: HTTP {code}").into());
    }
    Ok(tokio::spawn(async move {
        let mut r = WatchResult {
            events: 0,
            bytes: 0,
            done: None,
            error: None,
        };
        let mut chunk = Vec::with_capacity(4096);
        let mut at_line_start = true;
        loop {
            match c.next_chunk(&mut chunk).await {
                Ok(true) => {}
                Ok(false) => {
                    r.error = Some("the server ended the watch".into());
                    break;
                }
                Err(e) => {
                    r.error = Some(e.to_string());
                    break;
                }
            }
            r.bytes += chunk.len();
            if at_line_start && chunk.starts_with(b"{\"type\":\"ERROR\"") {
                r.error = Some(String::from_utf8_lossy(&chunk).into_owned());
                break;
            }
            r.events += chunk.iter().filter(|b| **b == b'\n').count();
            at_line_start = chunk.last() == Some(&b'\n');
            if r.events >= want {
                r.done = Some(Instant::now());
                break;
            }
        }
        r
    }))
}

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

/// The 1-minute load average.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}

async fn run(client_threads: usize) -> Res<()> {
    let run_start = Instant::now();
    let cmp_n = scaled(10_000);
    let load_n = scaled(50_000);
    let watch_n = scaled(100_000);
    println!("kube-sim throughput benchmark");
    let load0 = loadavg();
    if load0 > 0.5 {
        println!(
            "  note: load average {load0:.2} before starting: other processes compete for the CPUs, expect lower, noisier numbers"
        );
    }
    println!(
        "  server: {} (child process), client: {client_threads} tokio worker threads, {} CPUs",
        server_binary().display(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // 0. Client comparison, on its own server so the main numbers start from a clean one.
    println!(
        "\n0. Which client is cheapest? ({cmp_n} ConfigMap creates each, 64 concurrent, fresh server)"
    );
    let mut client_rows = Vec::new();
    {
        let server = Server::start("clients").await?;
        server.create_namespaces().await?;
        for (k, mode) in [Mode::KubeTyped, Mode::KubeRaw, Mode::RawHttp]
            .into_iter()
            .enumerate()
        {
            let r = create_many(&server, mode, 64, cmp_n, &format!("c{k}")).await?;
            print_create(mode.label(), &r);
            client_rows.push((mode, r));
        }
        server.stop().await;
    }
    // The cheapest client (least client CPU per create) leaves the most CPU to the server;
    // throughput alone is too noisy on a shared 2-core machine to choose by.
    let best = client_rows
        .iter()
        .min_by(|a, b| {
            a.1.us_per(a.1.client_cpu)
                .total_cmp(&b.1.us_per(b.1.client_cpu))
        })
        .map(|(m, _)| *m)
        .unwrap_or(Mode::RawHttp);
    println!(
        "  -> the rest of the run uses the cheapest client: {}",
        best.label()
    );

    // a. Creates, 16 then 64 clients; d. memory around them.
    let server = Server::start("main").await?;
    server.create_namespaces().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss0, _) = server.memory();
    let s0 = server.stats().await?;
    println!(
        "\na. ConfigMap creates ({load_n} per run across {NAMESPACES} namespaces, {})",
        best.label()
    );
    let c16 = create_many(&server, best, 16, load_n, "a16").await?;
    print_create("16 clients", &c16);
    let c64 = create_many(&server, best, 64, load_n, "a64").await?;
    print_create("64 clients", &c64);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss1, hwm1) = server.memory();
    let s1 = server.stats().await?;
    let objs = (s1.objects - s0.objects).max(1) as f64;
    let rss_per_obj = rss1.saturating_sub(rss0) as f64 / objs;
    let json_per_obj = (s1.json_bytes - s0.json_bytes) as f64 / objs;
    println!(
        "\nd. Memory after {} objects: RSS {:.1} MiB (was {:.1} MiB before loading; peak {:.1} MiB)",
        s1.objects,
        mib(rss1 as f64),
        mib(rss0 as f64),
        mib(hwm1 as f64)
    );
    println!(
        "  bytes/object RSS vs JSON: {rss_per_obj:.0} vs {json_per_obj:.0} ({:.2}x)",
        rss_per_obj / json_per_obj.max(1.0)
    );

    // b. Lists.
    println!("\nb. Lists of every ConfigMap");
    let full = full_list(&server).await?;
    println!(
        "  full list: {} items, {:.1} MiB in {:.3}s ({:.0} items/s, {:.0} MiB/s)",
        full.items,
        mib(full.bytes as f64),
        full.elapsed.as_secs_f64(),
        full.items as f64 / full.elapsed.as_secs_f64(),
        mib(full.bytes as f64) / full.elapsed.as_secs_f64()
    );
    let paged = paged_list(&server, 500).await?;
    println!(
        "  paged list (limit 500): {} items in {} pages, {:.1} MiB in {:.3}s ({:.0} items/s, {:.2}ms/page)",
        paged.items,
        paged.pages,
        mib(paged.bytes as f64),
        paged.elapsed.as_secs_f64(),
        paged.items as f64 / paged.elapsed.as_secs_f64(),
        paged.elapsed.as_secs_f64() * 1000.0 / paged.pages as f64
    );
    let (_, hwm_list) = server.memory();
    let _ = paged.rv;

    // c. A watch from the list's resourceVersion while as many objects again are created.
    println!(
        "\nc. Watch from the list's resourceVersion {} while {watch_n} ConfigMaps are created by 64 clients",
        full.rv
    );
    let watch = start_watch(&server, &full.rv, watch_n).await?;
    let t0 = Instant::now();
    let cw = create_many(&server, best, 64, watch_n, "w").await?;
    let creates_done = Instant::now();
    print_create("creates while watched", &cw);
    let w = match tokio::time::timeout(Duration::from_secs(120), watch).await {
        Ok(r) => r?,
        Err(_) => WatchResult {
            events: 0,
            bytes: 0,
            done: None,
            error: Some("timed out after 120s".into()),
        },
    };
    let watch_time = w.done.map(|d| d - t0);
    match watch_time {
        Some(t) => println!(
            "  watch: {} events ({:.1} MiB) in {:.2}s from the first create = {:.0} events/s; last event {:.0}ms after the last create returned",
            w.events,
            mib(w.bytes as f64),
            t.as_secs_f64(),
            w.events as f64 / t.as_secs_f64(),
            w.done
                .map(|d| d.saturating_duration_since(creates_done).as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        ),
        None => println!(
            "  watch: only {} of {watch_n} events: {}",
            w.events,
            w.error.as_deref().unwrap_or("?")
        ),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss2, hwm2) = server.memory();
    let s2 = server.stats().await?;
    let objs2 = (s2.objects - s0.objects).max(1) as f64;
    let rss_per_obj2 = rss2.saturating_sub(rss0) as f64 / objs2;
    let json_per_obj2 = (s2.json_bytes - s0.json_bytes) as f64 / objs2;
    println!(
        "  memory after {} objects: RSS {:.1} MiB, peak {:.1} MiB; bytes/object RSS vs JSON: {rss_per_obj2:.0} vs {json_per_obj2:.0}",
        s2.objects,
        mib(rss2 as f64),
        mib(hwm2 as f64)
    );
    let _ = s2.rv;
    server.stop().await;

    // Summary.
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "\n## kube-sim benchmark ({cpus} CPUs; server = release binary; client in the same machine, {})\n",
        best.label()
    );
    println!("| Measurement | Result |");
    println!("|---|---|");
    for (mode, r) in &client_rows {
        println!(
            "| Client cost: {} (64 clients, {} creates) | {:.0} creates/s; client CPU {:.0} µs/create, server {:.0} µs/create |",
            mode.label(),
            r.n,
            r.per_sec(),
            r.us_per(r.client_cpu),
            r.us_per(r.server_cpu)
        );
    }
    for (label, r) in [("16", &c16), ("64", &c64)] {
        println!(
            "| ConfigMap creates/s, {label} clients ({} creates) | **{:.0}/s** (p50 {:.2} ms, p99 {:.2} ms; server CPU {:.0} µs/create) |",
            r.n,
            r.per_sec(),
            r.pct(0.5),
            r.pct(0.99),
            r.us_per(r.server_cpu)
        );
    }
    println!(
        "| Full list, {} ConfigMaps | {:.3} s, {:.1} MiB |",
        full.items,
        full.elapsed.as_secs_f64(),
        mib(full.bytes as f64)
    );
    println!(
        "| Paged list, limit 500 ({} pages) | {:.3} s, {:.1} MiB ({:.2} ms/page) |",
        paged.pages,
        paged.elapsed.as_secs_f64(),
        mib(paged.bytes as f64),
        paged.elapsed.as_secs_f64() * 1000.0 / paged.pages.max(1) as f64
    );
    match watch_time {
        Some(t) => println!(
            "| Watch from list RV: {} events during {} creates (64 clients, {:.0} creates/s) | {:.2} s first create → last event ({:.0} events/s) |",
            w.events,
            cw.n,
            cw.per_sec(),
            t.as_secs_f64(),
            w.events as f64 / t.as_secs_f64()
        ),
        None => println!(
            "| Watch from list RV | incomplete: {} of {watch_n} events |",
            w.events
        ),
    }
    println!(
        "| Memory, bytes/object RSS vs JSON ({} objects) | {rss_per_obj:.0} vs {json_per_obj:.0} ({:.2}x) |",
        s1.objects - s0.objects,
        rss_per_obj / json_per_obj.max(1.0)
    );
    println!(
        "| Memory, bytes/object RSS vs JSON ({} objects) | {rss_per_obj2:.0} vs {json_per_obj2:.0} ({:.2}x) |",
        s2.objects - s0.objects,
        rss_per_obj2 / json_per_obj2.max(1.0)
    );
    println!(
        "| Server RSS: empty / {} objects / {} objects (peak) | {:.1} / {:.1} / {:.1} MiB ({:.1} MiB) |",
        s1.objects,
        s2.objects,
        mib(rss0 as f64),
        mib(rss1 as f64),
        mib(rss2 as f64),
        mib(hwm2.max(hwm_list) as f64)
    );
    println!(
        "\n(total bench time {:.1}s; load average before {load0:.2}, after {:.2})",
        run_start.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(())
}
