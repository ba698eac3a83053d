//! The operator at scale (`make bench`, or `cargo bench --bench operator`): 10 partners with
//! 1,000 tenants each against kube-sim.
//!
//! Both programs are the release binaries, run as child processes so that their memory
//! (/proc/<pid>/status VmHWM) and CPU time are their own: `target/release/kube-sim` (built by
//! `make build`) and `partnerkit run` — under `make bench*` the binary as it ships
//! (`target/dist/partnerkit`, the `dist` profile: release with whole-program LTO), else the
//! one cargo builds for this bench. It measures:
//!   1. convergence: from the first create (Partners, then their templates, then 10,000
//!      Tenants from concurrent clients) until every Tenant is Ready for its current generation
//!      (seen through one watch, not by polling), and until the operator stops writing;
//!   2. the API requests the operator issued (kube-sim's counters: writes by field manager,
//!      verb and resource; reads cannot be told apart by client and are shown for all clients);
//!   3. idle: a 30 s window after convergence, in which the operator should write nothing;
//!   4. live inheritance: one partner's template changes a profile value; the time until all
//!      1,000 of its tenants' `partnerkit-profile-wifi` ConfigMaps show it, the writes that
//!      caused, and the objects of the other 9 partners that changed (should be none);
//!   5. peak memory (VmHWM) of the operator and of kube-sim;
//!   6. the portal: its Companies page of partner p00 (first, middle and last page, and a
//!      search), as p00's admin through the authenticating-proxy headers, median and p95.
//!
//! Benchmarks are not tests: nothing here asserts on timing.
//! Knobs: BENCH_PARTNERS (default 10), BENCH_TENANTS (per partner, default 1000),
//! BENCH_CLIENTS (concurrent creating clients, default 32), BENCH_IDLE_SECONDS (default 30),
//! BENCH_NS_DEFAULTS=0 (kube-sim without the per-namespace `default` ServiceAccount and
//! `kube-root-ca.crt` ConfigMap a real cluster has; default on), KUBE_SIM_BIN, PARTNERKIT_BIN,
//! BENCH_KEEP_LOG=1 (keep the operator's log and print its path), BENCH_RUST_LOG (log
//! directives added to the operator's, e.g. `partnerkit::controller::apply=debug`), BENCH_LATENCY_MS and
//! BENCH_MAX_IN_FLIGHT (kube-sim's --latency-ms and --max-in-flight: the latency scenario),
//! BENCH_FLOOR_CONCURRENCY (the write floor's requests in flight, default 64, or
//! BENCH_MAX_IN_FLIGHT when that is set).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::runtime::watcher;
use kube::{Client, Config, ResourceExt};
use partnerkit::api::{Partner, Tenant};
use serde_json::{Value, json};

/// The tests' HTTP client: the portal's pages with exact headers.
#[path = "../tests/support/http.rs"]
mod portal_http;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const CLK_TCK: f64 = 100.0;
const BENCH_MANAGER: &str = "bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run()) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------------------------------
// Child processes
// ------------------------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kube_sim_binary() -> PathBuf {
    match std::env::var_os("KUBE_SIM_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            target.join("release").join("kube-sim")
        }
    }
}

fn partnerkit_binary() -> PathBuf {
    match std::env::var_os("PARTNERKIT_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_partnerkit")),
    }
}

/// (VmRSS, VmHWM) in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / CLK_TCK
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

struct Child {
    child: tokio::process::Child,
    pid: u32,
}

impl Child {
    /// SIGTERM, SIGKILL if still there after 10 s.
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
    }
}

async fn wait_for_file(
    child: &mut tokio::process::Child,
    path: &std::path::Path,
    what: &str,
    needle: Option<&str>,
) -> Res<String> {
    // 30 s, and more for a restart over many objects (its caches sync first): 5 min.
    let limit = if what.contains("restart") { 300 } else { 30 };
    let deadline = Instant::now() + Duration::from_secs(limit);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && needle.is_none_or(|n| text.contains(n))
        {
            return Ok(text);
        }
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            return Err(format!("{what} exited: {status}\n{text}").into());
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: not ready within {limit} s").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------------------------------
// kube-sim's control endpoints and the operator's metrics (plain HTTP, one request each)
// ------------------------------------------------------------------------------------------

fn http(addr: &str, method: &str, path: &str) -> Res<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP head")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    let raw = &buf[split + 4..];
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = raw;
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("bad chunk")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..eol])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        out
    } else {
        raw.to_vec()
    };
    Ok((code, body))
}

fn sim_json(addr: &str, method: &str, path: &str) -> Res<Value> {
    let (code, body) = http(addr, method, path)?;
    if code != 200 {
        return Err(format!(
            "{method} {path}: HTTP {code}: {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// kube-sim's request counters: (verb, resource[/subresource], fieldManager) -> count.
#[derive(Clone, Default)]
struct Counts(BTreeMap<(String, String, String), u64>);

impl Counts {
    fn fetch(addr: &str) -> Res<Counts> {
        let v = sim_json(addr, "GET", "/kube-sim/metrics")?;
        let mut out = BTreeMap::new();
        for r in v["requests"].as_array().into_iter().flatten() {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            let resource = if s("subresource").is_empty() {
                s("resource")
            } else {
                format!("{}/{}", s("resource"), s("subresource"))
            };
            *out.entry((s("verb"), resource, s("fieldManager")))
                .or_default() += r["count"].as_u64().unwrap_or(0);
        }
        Ok(Counts(out))
    }
    fn minus(&self, before: &Counts) -> Counts {
        Counts(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect(),
        )
    }
    fn is_write(verb: &str) -> bool {
        matches!(
            verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
    /// Writes not made by the bench itself (the operator's, whatever field manager it used),
    /// leaving out the renewals of its leader-election Lease (one every 10 s).
    fn operator_writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|((verb, _, fm), _)| {
                Self::is_write(verb) && fm != BENCH_MANAGER && !fm.starts_with("partnerkit-leader/")
            })
            .map(|(_, v)| v)
            .sum()
    }
    fn writes_by(&self, manager: &str) -> u64 {
        self.0
            .iter()
            .filter(|((verb, _, fm), _)| Self::is_write(verb) && fm == manager)
            .map(|(_, v)| v)
            .sum()
    }
    fn reads(&self) -> u64 {
        self.0
            .iter()
            .filter(|((verb, _, _), _)| !Self::is_write(verb))
            .map(|(_, v)| v)
            .sum()
    }
    /// "create namespaces 10000, patch configmaps 30000, …" for the operator's writes.
    fn operator_breakdown(&self) -> String {
        let mut parts: Vec<String> = self
            .0
            .iter()
            .filter(|((verb, _, fm), _)| Self::is_write(verb) && fm != BENCH_MANAGER)
            .map(|((verb, res, fm), n)| {
                if fm == "partnerkit" {
                    format!("{verb} {res} {n}")
                } else {
                    format!("{verb} {res} [{fm}] {n}")
                }
            })
            .collect();
        if parts.is_empty() {
            parts.push("none".into());
        }
        parts.join(", ")
    }
    fn reads_breakdown(&self) -> String {
        let mut by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for ((verb, res, _), n) in &self.0 {
            if !Self::is_write(verb) {
                *by.entry((verb.as_str(), res.as_str())).or_default() += n;
            }
        }
        if by.is_empty() {
            return "none".into();
        }
        by.iter()
            .map(|((v, r), n)| format!("{v} {r} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The operator's reconciles, from its /metrics: (total, errors).
fn reconciles(metrics_addr: &str) -> (u64, u64) {
    let Ok((200, body)) = http(metrics_addr, "GET", "/metrics") else {
        return (0, 0);
    };
    let text = String::from_utf8_lossy(&body);
    let (mut total, mut errors) = (0u64, 0u64);
    for line in text.lines() {
        let value = || {
            line.rsplit_once(' ')
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64
        };
        if line.starts_with("controller_runtime_reconcile_total{") {
            total += value();
        } else if line.starts_with("controller_runtime_reconcile_errors_total{") {
            errors += value();
        }
    }
    (total, errors)
}

// ------------------------------------------------------------------------------------------
// The objects
// ------------------------------------------------------------------------------------------

/// The operator's log filter: what the benchmark reads from the log (the web address, the
/// telemetry), then BENCH_RUST_LOG's directives, if any (say
/// `partnerkit::controller::apply=debug` for every write, with BENCH_KEEP_LOG=1).
fn operator_log_filter() -> String {
    let base = "warn,partnerkit::telemetry=info,partnerkit::invite::web=info,partnerkit::controller=info,partnerkit::controller::tenant=warn,partnerkit::controller::partner=warn";
    match std::env::var("BENCH_RUST_LOG") {
        Ok(extra) if !extra.is_empty() => format!("{base},{extra}"),
        _ => base.to_string(),
    }
}

/// `partnerkit run` with this configuration and kubeconfig, logging to `log_path`; returns
/// once its controllers run, with the address of its metrics.
async fn start_operator(
    config_path: &std::path::Path,
    kubeconfig: &std::path::Path,
    log_path: &std::path::Path,
    what: &str,
) -> Res<(Child, String)> {
    let log = std::fs::File::create(log_path)?;
    let mut op_child = tokio::process::Command::new(partnerkit_binary())
        .arg("run")
        .arg("--config")
        .arg(config_path)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", operator_log_filter())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let pid = op_child.id().ok_or("the operator exited at once")?;
    let text = wait_for_file(&mut op_child, log_path, what, Some("controllers running")).await?;
    let metrics_addr = text
        .lines()
        .find(|l| l.contains("listening") && l.contains("metrics"))
        .and_then(|l| l.split("address=").nth(1))
        .map(|a| {
            a.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default();
    Ok((
        Child {
            child: op_child,
            pid,
        },
        metrics_addr,
    ))
}

/// One portal page's timings.
struct PageTiming {
    what: &'static str,
    median_ms: f64,
    p95_ms: f64,
    rows: usize,
    total: usize,
    bytes: usize,
}

/// The Companies page of partner p00 as its admin (`admin@p00.example`, through the
/// authenticating-proxy headers the configuration trusts from loopback): the first, a middle
/// and the last page, and a search that matches one company. Each 25 times, one after another,
/// after 3 unmeasured requests.
async fn portal_timings(log_path: &std::path::Path, per_partner: usize) -> Res<Vec<PageTiming>> {
    let log = std::fs::read_to_string(log_path)?;
    let web = log
        .lines()
        .find(|l| l.contains("invitation acceptance page"))
        .and_then(|l| l.split("address=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .ok_or("the operator's log names no web address")?
        .to_string();
    let pages = per_partner.div_ceil(50).max(1);
    let one = tenant_name(0, per_partner / 2);
    let cases: [(&'static str, String); 4] = [
        ("page 1", "".into()),
        ("a middle page", format!("?page={}", pages.div_ceil(2))),
        ("the last page", format!("?page={pages}")),
        ("a search matching one", format!("?q={one}")),
    ];
    let mut out = Vec::new();
    for (what, query) in cases {
        let url = format!("http://{web}/portal/partners/p00/companies{query}");
        let headers = [("X-Forwarded-Email", "admin@p00.example")];
        let mut times = Vec::new();
        let mut last = None;
        for i in 0..28 {
            let t0 = Instant::now();
            let r = portal_http::request("GET", &url, &headers, None).await?;
            let took = t0.elapsed().as_secs_f64() * 1000.0;
            if r.status != 200 {
                return Err(format!("GET {url}: {} {}", r.status, r.body).into());
            }
            if i >= 3 {
                times.push(took);
            }
            last = Some(r.body);
        }
        times.sort_by(f64::total_cmp);
        let body = last.unwrap_or_default();
        out.push(PageTiming {
            what,
            median_ms: times[times.len() / 2],
            p95_ms: times[times.len() * 95 / 100],
            rows: body.matches("<tr").count().saturating_sub(1),
            total: per_partner,
            bytes: body.len(),
        });
    }
    Ok(out)
}

/// How long a full list of what the operator watches takes this client (pages of 500, as the
/// operator's watches list): Partners, Tenants, invites, assignments, Namespaces, and the
/// managed ConfigMaps, RoleBindings, ClusterRoles and ClusterRoleBindings.
async fn full_list(client: &Client) -> Res<Duration> {
    let t = Instant::now();
    let managed = ListParams::default()
        .labels("app.kubernetes.io/managed-by=partnerkit")
        .limit(500);
    let all = ListParams::default().limit(500);
    let kinds: [(&str, &str, &str, bool); 9] = [
        ("partnerkit.io", "v1alpha1", "Partner", false),
        ("partnerkit.io", "v1alpha1", "Tenant", false),
        ("partnerkit.io", "v1alpha1", "PartnerAdminInvite", false),
        ("partnerkit.io", "v1alpha1", "PartnerAssignment", false),
        ("", "v1", "Namespace", false),
        ("", "v1", "ConfigMap", true),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", true),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole", true),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            true,
        ),
    ];
    for (g, v, k, only_managed) in kinds {
        let (ar, _) = pinned_kind(client, &GroupVersionKind::gvk(g, v, k)).await?;
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let mut lp = if only_managed {
            managed.clone()
        } else {
            all.clone()
        };
        loop {
            let page = api.list(&lp).await?;
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
    }
    Ok(t.elapsed())
}

/// The write floor's requests in flight: BENCH_FLOOR_CONCURRENCY, else kube-sim's
/// --max-in-flight in the latency scenario (the bound assumes that many), else 64.
fn floor_concurrency() -> usize {
    match env_usize("BENCH_MAX_IN_FLIGHT", 0) {
        0 => env_usize("BENCH_FLOOR_CONCURRENCY", 64),
        n => env_usize("BENCH_FLOOR_CONCURRENCY", n),
    }
}

/// The write floor: the same number and kinds of writes the operator issued, sent by a bare
/// kube-rs client at full concurrency (`BENCH_FLOOR_CONCURRENCY`, default 64) to the same
/// kube-sim, on objects of the same shapes (namespaces first, then everything else). Returns
/// the elapsed time and how many writes it sent.
async fn write_floor(
    client: &Client,
    counts: &Counts,
    tenants: &[(String, String)],
) -> Res<(Duration, u64)> {
    let concurrency = floor_concurrency();
    let by = |verb: &str, res: &str| -> usize {
        counts
            .0
            .iter()
            .filter(|((v, r, fm), _)| {
                v == verb
                    && r == res
                    && fm != BENCH_MANAGER
                    && !fm.starts_with("partnerkit-leader/")
            })
            .map(|(_, n)| *n as usize)
            .sum()
    };
    let pp = PostParams {
        field_manager: Some("floor".into()),
        ..Default::default()
    };
    let apply = PatchParams::apply("floor").force();
    let merge = PatchParams {
        field_manager: Some("floor".into()),
        ..Default::default()
    };
    let n_ns = by("create", "namespaces").max(1);
    let ns_of = |j: usize| format!("floor-{}", j % n_ns);
    let t0 = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let run = |jobs: Vec<futures::future::BoxFuture<'static, Result<(), kube::Error>>>| {
        let sent = sent.clone();
        async move {
            let results: Vec<_> = futures::stream::iter(jobs)
                .buffer_unordered(concurrency)
                .collect()
                .await;
            sent.fetch_add(results.len(), Ordering::SeqCst);
            results.into_iter().find_map(Result::err)
        }
    };
    // 1. Namespaces.
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut jobs: Vec<futures::future::BoxFuture<'static, Result<(), kube::Error>>> = Vec::new();
    for j in 0..by("create", "namespaces") {
        let (api, pp) = (api.clone(), pp.clone());
        let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
            "metadata": {"name": ns_of(j), "labels": {"app.kubernetes.io/managed-by": "floor", "partnerkit.io/partner": "floor", "partnerkit.io/tenant": format!("t{j}")}}
        }))?;
        jobs.push(Box::pin(
            async move { api.create(&pp, &ns).await.map(|_| ()) },
        ));
    }
    if let Some(e) = run(jobs).await {
        return Err(format!("floor: creating namespaces: {e}").into());
    }
    // 2. Everything else, at once.
    let mut jobs: Vec<futures::future::BoxFuture<'static, Result<(), kube::Error>>> = Vec::new();
    for j in 0..by("patch", "namespaces") {
        let (api, merge) = (api.clone(), merge.clone());
        let name = ns_of(j);
        jobs.push(Box::pin(async move {
            api.patch(
                &name,
                &merge,
                &Patch::Merge(
                    json!({"metadata": {"labels": {"bizapps.partnerkit.io/crm": "enabled"}}}),
                ),
            )
            .await
            .map(|_| ())
        }));
    }
    for j in 0..by("patch", "configmaps") {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns_of(j));
        let apply = apply.clone();
        let name = format!("floor-{}", j / n_ns);
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "floor", "partnerkit.io/partner": "floor"}},
            "data": {"crm": "true", "analytics": "false", "ssid": "corp", "security": "wpa2", "primaryColor": "#123456"}});
        jobs.push(Box::pin(async move {
            api.patch(&name, &apply, &Patch::Apply(body))
                .await
                .map(|_| ())
        }));
    }
    for j in 0..by("patch", "rolebindings") {
        let api: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
            Api::namespaced(client.clone(), &ns_of(j));
        let apply = apply.clone();
        let name = format!("floor-{}", j / n_ns);
        let body = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "floor"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": format!("admin{j}@floor.example")}]});
        jobs.push(Box::pin(async move {
            api.patch(&name, &apply, &Patch::Apply(body))
                .await
                .map(|_| ())
        }));
    }
    let tenant_api = |ns: &str| -> Api<Tenant> { Api::namespaced(client.clone(), ns) };
    for j in 0..by("patch", "tenants") {
        let (ns, name) = tenants[j % tenants.len()].clone();
        let (api, merge) = (tenant_api(&ns), merge.clone());
        jobs.push(Box::pin(async move {
            api.patch(
                &name,
                &merge,
                &Patch::Merge(json!({"metadata": {"annotations": {"floor": j.to_string()}}})),
            )
            .await
            .map(|_| ())
        }));
    }
    for j in 0..by("patch", "tenants/status") {
        let (ns, name) = tenants[j % tenants.len()].clone();
        let (api, apply) = (tenant_api(&ns), apply.clone());
        let body = json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Floor", "status": "True", "reason": "Floor", "message": format!("write {j}"), "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        jobs.push(Box::pin(async move {
            api.patch_status(&name, &apply, &Patch::Apply(body))
                .await
                .map(|_| ())
        }));
    }
    // Interleave the kinds, as the operator's writes are.
    fastrand_shuffle(&mut jobs);
    if let Some(e) = run(jobs).await {
        return Err(format!("floor: {e}").into());
    }
    Ok((t0.elapsed(), sent.load(Ordering::SeqCst) as u64))
}

/// A deterministic shuffle (xorshift), so that runs compare.
fn fastrand_shuffle<T>(v: &mut [T]) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

fn partner_name(p: usize) -> String {
    format!("p{p:02}")
}
fn partner_ns(p: usize) -> String {
    format!("partner-{}", partner_name(p))
}
fn tenant_name(p: usize, i: usize) -> String {
    format!("p{p:02}-t{i:04}")
}

/// Even partners are licensing partners entitled to crm only, with their own branding; odd
/// ones are entitled to every premium app and get the platform branding. p01 has a quota.
fn partner_json(p: usize, tenants: usize) -> Value {
    let name = partner_name(p);
    let mut spec = json!({
        "displayName": format!("Partner {p}"),
        "admins": [{"email": format!("admin@{name}.example")}, {"email": format!("ops@{name}.example")}],
        "entitlements": {"branding": p.is_multiple_of(2)},
    });
    if p.is_multiple_of(2) {
        spec["entitlements"]["bizApps"] = json!(["crm"]);
        spec["branding"] = json!({"logoUrl": format!("https://{name}.example/logo.png"), "primaryColor": "#0055ff", "support": {"email": format!("help@{name}.example")}});
    }
    if p == 1 {
        spec["entitlements"]["maxTenants"] = json!(tenants + 100);
    }
    json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "Partner", "metadata": {"name": name}, "spec": spec})
}

/// The template, as examples/02-acme-template.yaml: crm on, a wifi profile.
fn template_json(p: usize, security: &str) -> Value {
    json!({
        "apiVersion": "partnerkit.io/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "template", "namespace": partner_ns(p), "labels": {"partnerkit.io/template": "true"}},
        "spec": {
            "displayName": format!("Partner {p} (Template)"),
            "bizApps": {"crm": true},
            "profiles": {"wifi": {"ssid": format!("{}-guest", partner_name(p)), "security": security}},
        }
    })
}

/// Most tenants inherit everything; some override apps, profiles, admins (as in examples/).
fn tenant_json(p: usize, i: usize) -> Value {
    let name = tenant_name(p, i);
    let mut spec = json!({"displayName": format!("Company {p}-{i}")});
    match i % 10 {
        3 => spec["bizApps"] = json!({"calendar": false}),
        5 => spec["profiles"] = json!({"wifi": {"ssid": name.clone()}}),
        7 => {
            spec["profiles"] =
                json!({"vpn": {"gateway": format!("vpn.{name}.example"), "protocol": "wireguard"}})
        }
        8 if p % 2 == 1 => spec["bizApps"] = json!({"analytics": true}),
        _ => {}
    }
    if i.is_multiple_of(50) {
        spec["admins"] = json!([{"email": format!("it@{name}.example")}]);
    }
    if i % 100 == 9 {
        spec["deletionPolicy"] = json!("Delete");
    }
    json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "Tenant", "metadata": {"name": name, "namespace": partner_ns(p)}, "spec": spec})
}

/// Server-side apply of every document of `partnerkit manifests`.
async fn install_manifests(client: &Client) -> Res<usize> {
    let yaml = partnerkit::manifests::all_yaml()?;
    let mut n = 0;
    for doc in yaml
        .split("\n---")
        .map(str::trim)
        .filter(|d| !d.is_empty() && *d != "---")
    {
        let v: Value = serde_saphyr::from_str(doc.trim_start_matches("---"))?;
        let api_version = v["apiVersion"].as_str().ok_or("apiVersion")?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, v["kind"].as_str().ok_or("kind")?);
        let (ar, caps) = pinned_kind(client, &gvk).await?;
        let api: Api<DynamicObject> = match (caps.scope, v["metadata"]["namespace"].as_str()) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            (kube::discovery::Scope::Namespaced, None) => {
                Api::default_namespaced_with(client.clone(), &ar)
            }
            (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
        };
        let name = v["metadata"]["name"].as_str().ok_or("name")?;
        api.patch(
            name,
            &PatchParams::apply("bench-setup").force(),
            &Patch::Apply(&v),
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

fn ready_for_generation(t: &Tenant) -> bool {
    let Some(s) = &t.status else { return false };
    s.observed_generation == t.metadata.generation
        && s.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.observed_generation == t.metadata.generation
        })
}

/// Readiness of every Tenant as one watch sees it.
#[derive(Default)]
struct Readiness {
    ready: HashMap<(String, String), bool>,
    ready_count: usize,
}

impl Readiness {
    fn set(&mut self, key: (String, String), ready: bool) {
        match self.ready.insert(key, ready) {
            Some(true) if !ready => self.ready_count -= 1,
            Some(false) | None if ready => self.ready_count += 1,
            _ => {}
        }
    }
    fn remove(&mut self, key: &(String, String)) {
        if self.ready.remove(key) == Some(true) {
            self.ready_count -= 1;
        }
    }
}

fn spawn_tenant_watch(client: Client, state: Arc<Mutex<Readiness>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Tenant> = Api::all(client);
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(ev) = stream.next().await {
            let Ok(ev) = ev else { continue };
            let mut s = state.lock().unwrap();
            match ev {
                watcher::Event::Apply(t) | watcher::Event::InitApply(t) => {
                    let key = (t.namespace().unwrap_or_default(), t.name_any());
                    s.set(key, ready_for_generation(&t));
                }
                watcher::Event::Delete(t) => {
                    s.remove(&(t.namespace().unwrap_or_default(), t.name_any()))
                }
                _ => {}
            }
        }
    })
}

/// How many of a partner's `partnerkit-profile-wifi` ConfigMaps show `security=<value>`.
fn spawn_profile_watch(
    client: Client,
    partner: String,
    value: String,
    count: Arc<AtomicUsize>,
    first: Arc<Mutex<Option<Instant>>>,
    listed: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::all(client);
        let wc = watcher::Config::default()
            .labels(&format!("partnerkit.io/partner={partner}"))
            .fields("metadata.name=partnerkit-profile-wifi");
        let mut seen: HashMap<String, bool> = HashMap::new();
        let mut stream = std::pin::pin!(watcher(api, wc));
        while let Some(ev) = stream.next().await {
            let Ok(ev) = ev else { continue };
            match ev {
                watcher::Event::Apply(cm) | watcher::Event::InitApply(cm) => {
                    let has = cm.data.as_ref().and_then(|d| d.get("security")) == Some(&value);
                    seen.insert(cm.namespace().unwrap_or_default(), has);
                }
                watcher::Event::Delete(cm) => {
                    seen.remove(&cm.namespace().unwrap_or_default());
                }
                watcher::Event::InitDone => listed.store(true, Ordering::SeqCst),
                watcher::Event::Init => {}
            }
            let n = seen.values().filter(|v| **v).count();
            if n > 0 {
                first.lock().unwrap().get_or_insert_with(Instant::now);
            }
            count.store(n, Ordering::SeqCst);
        }
    })
}

/// Poll kube-sim's counters until the operator has written nothing for `quiet`; returns when
/// its last write was seen (approximately: polled every 100 ms), or None at `limit`.
async fn wait_quiet(
    addr: &str,
    since: Instant,
    quiet: Duration,
    limit: Duration,
) -> Res<Option<Duration>> {
    let mut last = Counts::fetch(addr)?.operator_writes();
    let mut last_change = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Counts::fetch(addr)?.operator_writes();
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        if last_change.elapsed() >= quiet {
            return Ok(Some(last_change - since));
        }
        if since.elapsed() > limit {
            return Ok(None);
        }
    }
}

/// Objects (of partnerkit's kinds and children) whose resourceVersion is newer than `rv`,
/// by partner (from the partnerkit.io/partner label, the partner namespace, or the name).
async fn changed_since(
    client: &Client,
    rv: u64,
) -> Res<BTreeMap<String, BTreeMap<&'static str, usize>>> {
    fn newer(o: &DynamicObject, rv: u64) -> bool {
        o.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v > rv)
    }
    let mut out: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let kinds: [(&str, &str, &str, &'static str); 7] = [
        ("partnerkit.io", "v1alpha1", "Partner", "Partner"),
        ("partnerkit.io", "v1alpha1", "Tenant", "Tenant"),
        ("", "v1", "Namespace", "Namespace"),
        ("", "v1", "ConfigMap", "ConfigMap"),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "RoleBinding",
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "ClusterRole",
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
        ),
    ];
    for (g, v, k, label) in kinds {
        let (ar, _) = pinned_kind(client, &GroupVersionKind::gvk(g, v, k)).await?;
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for o in api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|o| newer(o, rv))
        {
            let partner = o
                .labels()
                .get("partnerkit.io/partner")
                .cloned()
                .or_else(|| {
                    o.namespace()
                        .and_then(|ns| ns.strip_prefix("partner-").map(str::to_string))
                })
                .or_else(|| (k == "Partner").then(|| o.name_any()))
                .unwrap_or_else(|| "(none)".into());
            *out.entry(partner).or_default().entry(label).or_default() += 1;
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

async fn run() -> Res<()> {
    let run_start = Instant::now();
    let partners = env_usize("BENCH_PARTNERS", 10);
    let per_partner = env_usize("BENCH_TENANTS", 1000);
    let clients = env_usize("BENCH_CLIENTS", 32);
    let idle_secs = env_usize("BENCH_IDLE_SECONDS", 30) as u64;
    let ns_defaults = std::env::var("BENCH_NS_DEFAULTS")
        .map(|v| v != "0")
        .unwrap_or(true);
    let total = partners * per_partner;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "partnerkit operator benchmark: {partners} partners x {per_partner} tenants = {total} tenants, {clients} creating clients, {cpus} CPUs"
    );
    println!(
        "  kube-sim: {} (namespace defaults {})",
        kube_sim_binary().display(),
        if ns_defaults { "on" } else { "off" }
    );
    println!("  operator: {} run", partnerkit_binary().display());

    let dir = std::env::temp_dir().join(format!("partnerkit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // kube-sim.
    let sim_bin = kube_sim_binary();
    if !sim_bin.exists() {
        return Err(format!(
            "{} is missing: run `make build` (or `cargo build --release -p kube-sim`)",
            sim_bin.display()
        )
        .into());
    }
    let kubeconfig = dir.join("kubeconfig");
    let mut cmd = tokio::process::Command::new(&sim_bin);
    cmd.arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--kubeconfig")
        .arg(&kubeconfig);
    if !ns_defaults {
        cmd.arg("--no-namespace-defaults");
    }
    // The latency scenario: every request delayed, mutations limited in flight.
    let latency_ms = env_usize("BENCH_LATENCY_MS", 0);
    let max_in_flight = env_usize("BENCH_MAX_IN_FLIGHT", 0);
    if latency_ms > 0 {
        cmd.arg("--latency-ms").arg(latency_ms.to_string());
    }
    if max_in_flight > 0 {
        cmd.arg("--max-in-flight").arg(max_in_flight.to_string());
    }
    let mut sim_child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let sim_pid = sim_child.id().ok_or("kube-sim exited at once")?;
    wait_for_file(&mut sim_child, &kubeconfig, "kube-sim", None).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sim = Child {
        child: sim_child,
        pid: sim_pid,
    };
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let kconfig = Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let addr = kconfig
        .cluster_url
        .authority()
        .ok_or("kubeconfig server has no host")?
        .to_string();
    let client = Client::try_from(kconfig)?;
    let n = install_manifests(&client).await?;
    println!("  installed `partnerkit manifests` ({n} objects)");

    // The operator, with the examples' configuration on free ports.
    let example = std::fs::read_to_string(workspace_root().join("examples/00-config.yaml"))?;
    let config_text = example
        .replace("\"0.0.0.0:8080\"", "\"127.0.0.1:0\"")
        .replace("\"0.0.0.0:8081\"", "\"127.0.0.1:0\"")
        .replace("\"0.0.0.0:8443\"", "\"127.0.0.1:0\"")
        // The portal behind an authenticating proxy: the benchmark is the proxy.
        .replace(
            "trustedProxies: [\"10.0.0.0/8\"]",
            "trustedProxies: [\"127.0.0.1/32\"]",
        );
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config_text)?;
    let log_path = dir.join("operator.log");
    let (op, metrics_addr) =
        start_operator(&config_path, &kubeconfig, &log_path, "the operator").await?;
    let op_pid = op.pid;
    let (_, op_hwm_start) = memory(op_pid);
    println!(
        "  operator ready (metrics on {metrics_addr}; RSS {:.1} MiB)",
        mib(op_hwm_start)
    );

    // 1. Convergence.
    let readiness = Arc::new(Mutex::new(Readiness::default()));
    let watch_task = spawn_tenant_watch(client.clone(), readiness.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim_json(&addr, "POST", "/kube-sim/metrics/reset")?;
    let (sim_cpu0, op_cpu0) = (cpu_seconds(sim_pid), cpu_seconds(op_pid));
    let (rec0, _) = reconciles(&metrics_addr);
    let t0 = Instant::now();
    let pp = PostParams {
        field_manager: Some(BENCH_MANAGER.into()),
        ..Default::default()
    };
    let partner_api: Api<Partner> = Api::all(client.clone());
    for p in 0..partners {
        partner_api
            .create(&pp, &serde_json::from_value(partner_json(p, per_partner))?)
            .await?;
    }
    // Templates: applied by the partner admins once partnerkit has made the partner namespace.
    for p in 0..partners {
        let api: Api<Tenant> = Api::namespaced(client.clone(), &partner_ns(p));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match api
                .patch(
                    "template",
                    &PatchParams::apply(BENCH_MANAGER).force(),
                    &Patch::Apply(&template_json(p, "wpa2")),
                )
                .await
            {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 404 && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => {
                    return Err(format!("applying the template of {}: {e}", partner_name(p)).into());
                }
            }
        }
    }
    let t_templates = t0.elapsed();
    // Tenants, from concurrent clients, partners interleaved.
    let next = Arc::new(AtomicUsize::new(0));
    let create_start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, client, pp) = (next.clone(), client.clone(), pp.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    break;
                }
                let (p, i) = (k % partners, k / partners);
                let api: Api<Tenant> = Api::namespaced(client.clone(), &partner_ns(p));
                let t: Tenant = serde_json::from_value(tenant_json(p, i)).expect("tenant");
                if let Err(e) = api.create(&pp, &t).await {
                    errors.push(format!("{}: {e}", tenant_name(p, i)));
                }
            }
            errors
        }));
    }
    let mut create_errors = Vec::new();
    for t in tasks {
        create_errors.extend(t.await?);
    }
    let create_time = create_start.elapsed();
    println!(
        "  created {partners} partners, {partners} templates ({:.2}s) and {total} tenants in {:.2}s ({:.0}/s){}",
        t_templates.as_secs_f64(),
        create_time.as_secs_f64(),
        total as f64 / create_time.as_secs_f64(),
        if create_errors.is_empty() {
            String::new()
        } else {
            format!(
                "; {} ERRORS, first: {}",
                create_errors.len(),
                create_errors[0]
            )
        }
    );
    let want = total + partners; // and the templates
    let mut last_print = Instant::now();
    // 240 s per 10,000 tenants.
    let converge_limit = Duration::from_secs(240 * (total as u64).div_ceil(10_000));
    let converged = loop {
        let ready = readiness.lock().unwrap().ready_count;
        if ready >= want {
            break Some(t0.elapsed());
        }
        if t0.elapsed() > converge_limit {
            break None;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            let c = Counts::fetch(&addr)?;
            println!(
                "    {:>5.1}s: {ready}/{want} Ready; operator writes so far {}",
                t0.elapsed().as_secs_f64(),
                c.operator_writes()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    match converged {
        Some(t) => println!(
            "  every tenant Ready {:.2}s after the first create",
            t.as_secs_f64()
        ),
        None => println!(
            "  NOT CONVERGED within {}s: {}/{want} Ready",
            converge_limit.as_secs(),
            readiness.lock().unwrap().ready_count
        ),
    }
    let quiet = wait_quiet(&addr, t0, Duration::from_secs(3), Duration::from_secs(300)).await?;
    if let Some(q) = quiet {
        println!(
            "  the operator's last write {:.2}s after the first create",
            q.as_secs_f64()
        );
    }
    let converge_counts = Counts::fetch(&addr)?;
    let (sim_cpu1, op_cpu1) = (cpu_seconds(sim_pid), cpu_seconds(op_pid));
    let (rec1, rec_err1) = reconciles(&metrics_addr);
    let objects = sim_json(&addr, "GET", "/kube-sim/stats")?["objects"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "  operator writes: {} ({:.2} per tenant): {}",
        converge_counts.operator_writes(),
        converge_counts.operator_writes() as f64 / total as f64,
        converge_counts.operator_breakdown()
    );
    println!(
        "  reads (all clients): {}",
        converge_counts.reads_breakdown()
    );
    println!(
        "  reconciles: {} ({} errors); CPU: operator {:.1}s, kube-sim {:.1}s; kube-sim holds {objects} objects",
        rec1 - rec0,
        rec_err1,
        op_cpu1 - op_cpu0,
        sim_cpu1 - sim_cpu0
    );
    let (op_rss_conv, op_hwm_conv) = memory(op_pid);
    let (sim_rss_conv, sim_hwm_conv) = memory(sim_pid);

    // 3. Idle.
    let idle_before = Counts::fetch(&addr)?;
    let op_cpu_idle0 = cpu_seconds(op_pid);
    let (rec_idle0, _) = reconciles(&metrics_addr);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle = Counts::fetch(&addr)?.minus(&idle_before);
    let (rec_idle1, _) = reconciles(&metrics_addr);
    let op_cpu_idle = cpu_seconds(op_pid) - op_cpu_idle0;
    println!(
        "  idle {idle_secs}s: operator writes {} ({}); reads (all clients) {}; reconciles {}; operator CPU {:.2}s",
        idle.operator_writes(),
        idle.operator_breakdown(),
        idle.reads(),
        rec_idle1 - rec_idle0,
        op_cpu_idle
    );

    // 3b. The portal's Companies page of the largest partner, as its admin.
    let portal = portal_timings(&log_path, per_partner).await?;
    for t in &portal {
        println!(
            "  portal {}: median {:.1} ms, p95 {:.1} ms ({} of {} companies shown, {} KiB)",
            t.what,
            t.median_ms,
            t.p95_ms,
            t.rows,
            t.total,
            t.bytes / 1024
        );
    }

    // 4. Live inheritance: partner p03's template changes wifi.security.
    let edited = 3.min(partners - 1);
    let edited_name = partner_name(edited);
    let changed = Arc::new(AtomicUsize::new(0));
    let first_changed: Arc<Mutex<Option<Instant>>> = Arc::default();
    let listed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let profile_watch = spawn_profile_watch(
        client.clone(),
        edited_name.clone(),
        "wpa3".into(),
        changed.clone(),
        first_changed.clone(),
        listed.clone(),
    );
    // The watch's initial list first (it counts the ConfigMaps already showing wpa3: none);
    // over hundreds of thousands of ConfigMaps that takes seconds.
    while !listed.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rv_edit = sim_json(&addr, "GET", "/kube-sim/stats")?["resourceVersion"]
        .as_u64()
        .unwrap_or(0);
    let edit_before = Counts::fetch(&addr)?;
    let te = Instant::now();
    let api: Api<Tenant> = Api::namespaced(client.clone(), &partner_ns(edited));
    api.patch(
        "template",
        &PatchParams::apply(BENCH_MANAGER).force(),
        &Patch::Apply(&template_json(edited, "wpa3")),
    )
    .await?;
    // Every tenant of that partner inherits `security` (none overrides it).
    let inherit_time = loop {
        if changed.load(Ordering::SeqCst) >= per_partner {
            break Some(te.elapsed());
        }
        if te.elapsed() > Duration::from_secs(120) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    match inherit_time {
        Some(t) => println!(
            "  template of {edited_name} edited: all {per_partner} profile ConfigMaps updated after {:.2}s",
            t.as_secs_f64()
        ),
        None => println!(
            "  template of {edited_name} edited: only {}/{per_partner} profile ConfigMaps updated after 120s",
            changed.load(Ordering::SeqCst)
        ),
    }
    let first_update = first_changed.lock().unwrap().map(|f| f.duration_since(te));
    let inherit_quiet =
        wait_quiet(&addr, te, Duration::from_secs(2), Duration::from_secs(120)).await?;
    let edit = Counts::fetch(&addr)?.minus(&edit_before);
    profile_watch.abort();
    let by_partner = changed_since(&client, rv_edit).await?;
    let others: usize = by_partner
        .iter()
        .filter(|(p, _)| **p != edited_name)
        .map(|(_, m)| m.values().sum::<usize>())
        .sum();
    println!(
        "  writes it caused: operator {} ({}); last one {:.2}s after the edit",
        edit.operator_writes(),
        edit.operator_breakdown(),
        inherit_quiet.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN)
    );
    for (p, kinds) in &by_partner {
        println!(
            "    objects changed, {p}: {}",
            kinds
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "    objects changed of the other {} partners: {others}",
        partners - 1
    );

    // 5. Memory.
    let (op_rss, op_hwm) = memory(op_pid);
    let (sim_rss, sim_hwm) = memory(sim_pid);
    watch_task.abort();
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let warnings = log_text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count();
    op.stop().await;

    // 6. Restart over the converged tenants: until every Partner and Tenant was reconciled once,
    // against a full list of what the operator watches; it should write nothing.
    let list_time = full_list(&client).await?;
    let restart_before = Counts::fetch(&addr)?;
    let tr = Instant::now();
    let (op2, metrics2) = start_operator(
        &config_path,
        &kubeconfig,
        &dir.join("restart.log"),
        "the restarted operator",
    )
    .await?;
    let want_reconciles = (total + 2 * partners) as u64;
    let restarted = loop {
        if reconciles(&metrics2).0 >= want_reconciles {
            break Some(tr.elapsed());
        }
        if tr.elapsed() > converge_limit {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart_writes = Counts::fetch(&addr)?.minus(&restart_before);
    op2.stop().await;
    println!(
        "  restart: every Partner and Tenant reconciled {} after the start; a full list of what it watches takes {:.2}s; operator writes {} ({})",
        restarted
            .map(|d| format!("{:.2}s", d.as_secs_f64()))
            .unwrap_or_else(|| "NEVER".into()),
        list_time.as_secs_f64(),
        restart_writes.operator_writes(),
        restart_writes.operator_breakdown()
    );

    // 7. The write floor, on the same kube-sim with the operator stopped.
    let tenants: Vec<(String, String)> = (0..partners)
        .flat_map(|p| (0..per_partner).map(move |i| (partner_ns(p), tenant_name(p, i))))
        .collect();
    let (floor_time, floor_writes) = write_floor(&client, &converge_counts, &tenants).await?;
    println!(
        "  write floor: {floor_writes} writes of the operator's kinds from a bare client in {:.2}s ({:.0}/s)",
        floor_time.as_secs_f64(),
        floor_writes as f64 / floor_time.as_secs_f64()
    );
    sim.stop().await;
    if std::env::var("BENCH_KEEP_LOG").is_ok_and(|v| v == "1") {
        println!("  operator log kept: {}", log_path.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    // Summary.
    let ops = converge_counts.operator_writes();
    println!(
        "\n## partnerkit operator benchmark ({partners} partners x {per_partner} tenants; {cpus} CPUs; kube-sim {} namespace defaults; operator {})\n",
        if ns_defaults { "with" } else { "without" },
        partnerkit_binary().display()
    );
    println!("| Measurement | Result |");
    println!("|---|---|");
    println!(
        "| Creates: {partners} Partners + templates, then {total} Tenants ({clients} concurrent clients) | {:.1} s ({:.0} tenants/s) |",
        create_time.as_secs_f64() + t_templates.as_secs_f64(),
        total as f64 / create_time.as_secs_f64()
    );
    match converged {
        Some(t) => println!(
            "| **Time to converge**: first create → every Tenant Ready (observedGeneration current) | **{:.1} s** |",
            t.as_secs_f64()
        ),
        None => println!(
            "| **Time to converge** | NOT converged within {} s |",
            converge_limit.as_secs()
        ),
    }
    if let Some(q) = quiet {
        println!(
            "| First create → the operator's last write | {:.1} s |",
            q.as_secs_f64()
        );
    }
    println!(
        "| **API writes by the operator** until converged | **{ops}** ({:.2} per tenant) |",
        ops as f64 / total as f64
    );
    println!(
        "| … by verb and resource | {} |",
        converge_counts.operator_breakdown()
    );
    println!(
        "| Writes by the benchmark (creates, templates) | {} |",
        converge_counts.writes_by(BENCH_MANAGER)
    );
    println!(
        "| Reads, all clients (operator watches and discovery, benchmark watch) | {} |",
        converge_counts.reads_breakdown()
    );
    println!(
        "| Reconciles (errors) until converged | {} ({rec_err1}) |",
        rec1 - rec0
    );
    println!(
        "| CPU until converged: operator / kube-sim | {:.1} s / {:.1} s |",
        op_cpu1 - op_cpu0,
        sim_cpu1 - sim_cpu0
    );
    println!(
        "| **Idle**: operator writes in the {idle_secs} s after convergence | **{}** (reconciles {}, operator CPU {:.2} s) |",
        idle.operator_writes(),
        rec_idle1 - rec_idle0,
        op_cpu_idle
    );
    match inherit_time {
        Some(t) => println!(
            "| **Live inheritance**: one template's profile value → all {per_partner} tenants' ConfigMaps | **{:.2} s** |",
            t.as_secs_f64()
        ),
        None => println!(
            "| **Live inheritance** | incomplete after 120 s: {}/{per_partner} |",
            changed.load(Ordering::SeqCst)
        ),
    }
    println!(
        "| … the first tenant's ConfigMap updated after | {} |",
        first_update
            .map(|f| format!("{} ms", f.as_millis()))
            .unwrap_or_else(|| "—".into())
    );
    println!(
        "| … operator writes it caused | {} ({}) |",
        edit.operator_writes(),
        edit.operator_breakdown()
    );
    println!(
        "| … objects changed of the other {} partners | {others} |",
        partners - 1
    );
    println!(
        "| **Peak memory (VmHWM)**: operator | **{:.1} MiB** (RSS {:.1} MiB at convergence, {:.1} MiB at the end) |",
        mib(op_hwm.max(op_hwm_conv)),
        mib(op_rss_conv),
        mib(op_rss)
    );
    println!(
        "| Peak memory (VmHWM): kube-sim, {objects} objects | {:.1} MiB (RSS {:.1} MiB at convergence, {:.1} MiB at the end) |",
        mib(sim_hwm.max(sim_hwm_conv)),
        mib(sim_rss_conv),
        mib(sim_rss)
    );
    println!(
        "| **Write floor**: the same {floor_writes} writes from a bare kube-rs client ({} in flight) | **{:.1} s** (converge / floor = {}) |",
        floor_concurrency(),
        floor_time.as_secs_f64(),
        converged
            .map(|c| format!("{:.2}", c.as_secs_f64() / floor_time.as_secs_f64()))
            .unwrap_or_else(|| "—".into())
    );
    println!(
        "| **Restart** over the converged tenants: start → every Partner and Tenant reconciled | **{}** (a full list of what it watches: {:.1} s; ratio {}); operator writes **{}** |",
        restarted
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .unwrap_or_else(|| "never".into()),
        list_time.as_secs_f64(),
        restarted
            .map(|d| format!("{:.2}", d.as_secs_f64() / list_time.as_secs_f64()))
            .unwrap_or_else(|| "—".into()),
        restart_writes.operator_writes()
    );
    if latency_ms > 0 && max_in_flight > 0 {
        let bound = ops as f64 * latency_ms as f64 / 1000.0 / max_in_flight as f64;
        println!(
            "| **Latency**: {latency_ms} ms per request, {max_in_flight} in flight: converge against writes × latency / in-flight = {bound:.1} s | {} (the write floor above, under the same latency, is {:.2}× that bound) |",
            converged
                .map(|c| format!("**{:.2}×**", c.as_secs_f64() / bound))
                .unwrap_or_else(|| "—".into()),
            floor_time.as_secs_f64() / bound
        );
    }
    for t in &portal {
        println!(
            "| Portal: Companies of p00 ({} companies), {} | median {:.1} ms, p95 {:.1} ms |",
            t.total, t.what, t.median_ms, t.p95_ms
        );
    }
    println!("| Operator log lines at WARN/ERROR | {warnings} |");
    let report = json!({
        "tenants": total,
        "partners": partners,
        "tenants_per_partner": per_partner,
        "cpus": cpus,
        "converge_seconds": converged.map(|c| c.as_secs_f64()),
        "floor_seconds": floor_time.as_secs_f64(),
        "floor_writes": floor_writes,
        "operator_cpu_seconds": op_cpu1 - op_cpu0,
        "kube_sim_cpu_seconds": sim_cpu1 - sim_cpu0,
        "operator_peak_rss_bytes": op_hwm.max(op_hwm_conv),
        "kube_sim_peak_rss_bytes": sim_hwm.max(sim_hwm_conv),
        "operator_writes": ops,
        "writes_per_tenant": ops as f64 / total as f64,
        "reconciles": rec1 - rec0,
        "reconcile_errors": rec_err1,
        "idle_writes": idle.operator_writes(),
        "idle_seconds": idle_secs,
        "template_propagation_seconds": inherit_time.map(|t| t.as_secs_f64()),
        "template_propagation_writes": edit.operator_writes(),
        "template_first_update_seconds": first_update.map(|f| f.as_secs_f64()),
        "other_partners_objects_changed": others,
        "kube_sim_objects": objects,
        "latency_ms": latency_ms,
        "latency_bound_seconds": (latency_ms > 0 && max_in_flight > 0)
            .then(|| ops as f64 * latency_ms as f64 / 1000.0 / max_in_flight as f64),
        "max_in_flight": max_in_flight,
        "restart_seconds": restarted.map(|d| d.as_secs_f64()),
        "full_list_seconds": list_time.as_secs_f64(),
        "restart_writes": restart_writes.operator_writes(),
        "portal_companies": portal.iter().map(|t| json!({
            "page": t.what, "median_ms": t.median_ms, "p95_ms": t.p95_ms,
            "rows": t.rows, "companies": t.total, "bytes": t.bytes,
        })).collect::<Vec<_>>(),
    });
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join(format!("operator-{total}.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("\n(figures written to {})", out.display());
    println!(
        "\n(total bench time {:.1}s)",
        run_start.elapsed().as_secs_f64()
    );
    Ok(())
}
