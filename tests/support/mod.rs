//! An in-process partnerkit for integration tests: a kube-sim, the manifests installed through
//! kube-rs, and the controllers running on [`partnerkit::controller::run_with`].
//!
//! ```ignore
//! let op = Operator::start(CONFIG).await;      // kube-sim + manifests + controllers
//! op.apply(PARTNER_YAML).await;                  // server-side apply, field manager "test"
//! op.eventually(10, "ready", || async { ... }).await;
//! op.writes_since_reset()                        // kube-sim's write counter
//! op.stop().await;
//! ```
#![allow(dead_code)]
pub mod browser;
pub mod http;
pub mod mail;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::{Api, Client};
use partnerkit::config::Config;
use partnerkit::telemetry::Telemetry;
use serde_json::Value;

/// A small catalog with premium and non-premium apps, listening on free ports.
pub const CONFIG: &str = r##"
catalog:
  - {name: mail, displayName: Mail, premium: false}
  - {name: chat, displayName: Chat, premium: false}
  - {name: crm, displayName: CRM, premium: true}
  - {name: analytics, displayName: Analytics, premium: true}
defaultBranding:
  logoUrl: https://platform.example/logo.png
  primaryColor: "#333333"
  support: {url: https://help.platform.example}
listen: {metrics: "127.0.0.1:0", health: "127.0.0.1:0", web: "127.0.0.1:0"}
"##;

pub struct Operator {
    pub sim: Option<kube_sim::SimHandle>,
    pub client: Client,
    pub config: Config,
    pub telemetry: Arc<Telemetry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), partnerkit::controller::Error>>>,
}

/// A kube-rs client for a kube-sim.
pub async fn client_for(sim: &kube_sim::SimHandle) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    Client::try_from(cfg).expect("client")
}

/// Server-side apply of every document of a multi-document YAML text.
pub async fn apply_yaml(client: &Client, yaml: &str, manager: &str) {
    for doc in yaml
        .split("\n---")
        .map(str::trim)
        .filter(|d| !d.is_empty() && *d != "---")
    {
        let v: Value =
            serde_saphyr::from_str(doc.trim_start_matches("---")).expect("YAML document");
        apply_value(client, &v, manager).await;
    }
}

/// Server-side apply of one object (any kind the server knows).
pub async fn apply_value(client: &Client, v: &Value, manager: &str) {
    let (group, version) = match v["apiVersion"]
        .as_str()
        .expect("apiVersion")
        .split_once('/')
    {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), v["apiVersion"].as_str().unwrap().to_string()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, v["kind"].as_str().expect("kind"));
    let (ar, caps) = pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovery of {gvk:?}: {e}"));
    let name = v["metadata"]["name"].as_str().expect("name");
    let api: Api<DynamicObject> = match (caps.scope, v["metadata"]["namespace"].as_str()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        (kube::discovery::Scope::Namespaced, None) => {
            Api::default_namespaced_with(client.clone(), &ar)
        }
        (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
    };
    api.patch(name, &PatchParams::apply(manager).force(), &Patch::Apply(v))
        .await
        .unwrap_or_else(|e| panic!("applying {} {name}: {e}", gvk.kind));
}

impl Operator {
    /// kube-sim, `partnerkit manifests`, and the controllers with `config` (YAML).
    pub async fn start(config: &str) -> Operator {
        let sim = kube_sim::start(kube_sim::SimConfig::default())
            .await
            .expect("kube-sim");
        let client = client_for(&sim).await;
        apply_yaml(
            &client,
            &partnerkit::manifests::all_yaml().expect("manifests"),
            "test-setup",
        )
        .await;
        let mut op = Operator::on(client, config).await;
        op.sim = Some(sim);
        op
    }

    /// The controllers on an existing cluster (manifests already installed).
    pub async fn on(client: Client, config: &str) -> Operator {
        let config = Config::from_yaml(config, "test config").expect("config");
        let telemetry = Telemetry::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(partnerkit::controller::run_with(
            client.clone(),
            config.clone(),
            telemetry.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        let op = Operator {
            sim: None,
            client,
            config,
            telemetry,
            stop: Some(tx),
            task: Some(task),
        };
        op.eventually(20, "the controllers to be ready", || async {
            op.telemetry.is_ready().then_some(())
        })
        .await;
        op
    }

    pub fn sim(&self) -> &kube_sim::SimHandle {
        self.sim.as_ref().expect("this test needs kube-sim")
    }

    /// Apply YAML as a user would (field manager "test").
    pub async fn apply(&self, yaml: &str) {
        apply_yaml(&self.client, yaml, "test").await
    }

    /// Poll `f` every 50 ms until it returns Some, for at most `secs` seconds.
    pub async fn eventually<T, F, Fut>(&self, secs: u64, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An object as JSON, or None.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let (ar, _) = pinned_kind(&self.client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .expect("discovery");
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        api.get_opt(name)
            .await
            .expect("get")
            .map(|o| serde_json::to_value(o).expect("json"))
    }

    /// The Ready condition's (status, reason) of a partnerkit object.
    pub async fn ready(
        &self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<(String, String)> {
        let o = self.get("partnerkit.io/v1alpha1", kind, ns, name).await?;
        let c = o["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        Some((
            c["status"].as_str()?.to_string(),
            c["reason"].as_str()?.to_string(),
        ))
    }

    /// Wait until the object's status describes its current generation and Ready has `reason`.
    pub async fn wait_reason(&self, kind: &str, ns: Option<&str>, name: &str, reason: &str) {
        self.eventually(10, &format!("{kind} {name} to be {reason}"), || async {
            let o = self.get("partnerkit.io/v1alpha1", kind, ns, name).await?;
            let current = o["status"]["observedGeneration"] == o["metadata"]["generation"];
            let (_, r) = self.ready(kind, ns, name).await?;
            (current && r == reason).then_some(())
        })
        .await
    }

    /// Zero kube-sim's request counters.
    pub fn reset_requests(&self) {
        self.sim().sim.metrics.reset();
    }

    /// kube-sim's request counters: `{"total", "writes", "byVerb", "requests": [...]}`.
    pub fn requests(&self) -> Value {
        self.sim().sim.metrics.snapshot()
    }

    /// Graceful shutdown of the controllers (and kube-sim).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("controllers stop within 10s")
                .expect("controller task")
                .expect("controllers ran without error");
        }
        if let Some(sim) = self.sim.take() {
            sim.stop().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rules suite's harness (tests/rules_*.rs): a cluster driven with the real `kubectl`.
// ---------------------------------------------------------------------------------------------

/// `PARTNERKIT_E2E_REAL=1` (with `KUBECONFIG`): run against that cluster instead of kube-sim.
pub fn real() -> bool {
    std::env::var("PARTNERKIT_E2E_REAL").is_ok_and(|v| v == "1")
}

/// On a real cluster, the identity the operator runs as: `PARTNERKIT_E2E_OPERATOR_KUBECONFIG`
/// (a kubeconfig with a token of the chart's ServiceAccount; `scripts/test-real.sh` installs
/// the chart with the real helm and makes it with `kubectl create token`) and
/// `PARTNERKIT_E2E_OPERATOR_ACCOUNT` (`<namespace>/<name>` of that ServiceAccount). Then every
/// rules scenario runs with exactly the chart's rights, as in a cluster. None: the admin's.
pub fn operator_identity() -> Option<(std::path::PathBuf, (String, String))> {
    if !real() {
        return None;
    }
    let kubeconfig = std::env::var_os("PARTNERKIT_E2E_OPERATOR_KUBECONFIG")?;
    let account = std::env::var("PARTNERKIT_E2E_OPERATOR_ACCOUNT")
        .expect("PARTNERKIT_E2E_OPERATOR_ACCOUNT=<namespace>/<name> goes with PARTNERKIT_E2E_OPERATOR_KUBECONFIG");
    let (ns, name) = account
        .split_once('/')
        .expect("PARTNERKIT_E2E_OPERATOR_ACCOUNT is <namespace>/<name>");
    Some((kubeconfig.into(), (ns.to_string(), name.to_string())))
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from(path: &std::path::Path) -> Client {
    let kc = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", path.display()));
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    Client::try_from(cfg).expect("client")
}

/// The writes (method and path) an operator's client sent, Lease renewals left out.
pub type Writes = Arc<std::sync::Mutex<Vec<String>>>;

/// A client as `partnerkit run` builds it ([`partnerkit::client::build`]: kube's stack and the
/// in-flight limit) from a kubeconfig, which also notes every write it sends.
pub async fn operator_client_from(path: &std::path::Path, config: &Config) -> (Client, Writes) {
    let kc = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", path.display()));
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    let writes = Writes::default();
    let noted = writes.clone();
    let note =
        tower::util::MapRequestLayer::new(move |req: axum::http::Request<kube::client::Body>| {
            let path = req.uri().path();
            if req.method() != axum::http::Method::GET && !path.contains("/leases") {
                let line = format!("{} {path}", req.method());
                noted.lock().unwrap().push(line);
            }
            req
        });
    // partnerkit::client::build, with the note taken before the limit.
    let client = kube::client::ClientBuilder::try_from(cfg)
        .expect("client")
        .with_layer(&tower::limit::ConcurrencyLimitLayer::new(
            config.api_server.max_requests_in_flight as usize,
        ))
        .with_layer(&note)
        .build();
    (client, writes)
}

/// What a `kubectl` run printed.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

struct Running {
    /// What the operator's client wrote (not for [`Env::start_operator_as`]).
    writes: Writes,
    telemetry: Arc<Telemetry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), partnerkit::controller::Error>>,
}

/// One test's cluster: an in-process kube-sim (or the real cluster of `KUBECONFIG` when
/// [`real`]), `partnerkit manifests` installed, the operator running in-process on it, and the
/// real `kubectl` pointed at it. Every name a test creates goes through [`Env::n`], so tests on
/// a shared real cluster do not collide; [`Env::finish`] removes them there.
pub struct Env {
    pub dir: std::path::PathBuf,
    pub kubeconfig: std::path::PathBuf,
    pub client: Client,
    pub config: Config,
    pub config_yaml: String,
    /// Appended to every name this test creates.
    pub sfx: String,
    pub sim: Option<kube_sim::SimHandle>,
    op: Option<Running>,
}

static SCRATCH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

impl Env {
    /// kube-sim (or the real cluster), the manifests, and the operator with [`CONFIG`].
    pub async fn start() -> Env {
        Self::start_with(kube_sim::SimConfig::default(), CONFIG, true).await
    }

    /// A simulator-only test (kube-sim metrics, faults or tokens): not for a real cluster.
    pub async fn sim_only(sim: kube_sim::SimConfig, operator: bool) -> Env {
        assert!(
            !real(),
            "this test needs kube-sim; it is excluded from the real-cluster run"
        );
        Self::start_with(sim, CONFIG, operator).await
    }

    pub async fn start_with(sim: kube_sim::SimConfig, config: &str, operator: bool) -> Env {
        // RUST_LOG=partnerkit=debug shows the in-process operator's log beside a failure.
        if std::env::var_os("RUST_LOG").is_some() {
            partnerkit::telemetry::init_logging(false);
        }
        let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let sfx = random_suffix();
        let dir =
            std::env::temp_dir().join(format!("partnerkit-rules-{}-{n}-{sfx}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let (kubeconfig, sim) = if real() {
            let path = std::env::var("KUBECONFIG").expect("PARTNERKIT_E2E_REAL=1 needs KUBECONFIG");
            (std::path::PathBuf::from(path), None)
        } else {
            let path = dir.join("kubeconfig");
            let mut sim = sim;
            // PARTNERKIT_SIM_WATCH_LAG_MS=N runs every test with watch events N ms late, as on a
            // busy kube-apiserver (`make test-lag`): a test or a page that trusts a watch cache
            // to already hold what the API server just answered fails there every time.
            if let Ok(ms) = std::env::var("PARTNERKIT_SIM_WATCH_LAG_MS") {
                sim.faults.watch_lag_ms = ms
                    .parse()
                    .expect("PARTNERKIT_SIM_WATCH_LAG_MS: milliseconds");
            }
            let handle = kube_sim::start(kube_sim::SimConfig {
                kubeconfig: Some(path.clone()),
                ..sim
            })
            .await
            .expect("kube-sim");
            (path, Some(handle))
        };
        let client = client_from(&kubeconfig).await;
        apply_yaml(
            &client,
            &partnerkit::manifests::all_yaml().expect("manifests"),
            "test-setup",
        )
        .await;
        let mut parsed = Config::from_yaml(config, "test config").expect("config");
        // A Lease of this test's own, and one identity for every operator this test starts
        // (a restarted operator leads again at once, as a restarted pod does): tests on a
        // shared real cluster never wait for each other's Leases.
        parsed.leader_election.lease_name = format!("partnerkit-{sfx}");
        parsed.leader_election.identity = Some(format!("test-{sfx}"));
        let mut env = Env {
            dir,
            kubeconfig,
            client,
            config: parsed,
            config_yaml: config.to_string(),
            sfx,
            sim,
            op: None,
        };
        if operator {
            env.start_operator().await;
        }
        env
    }

    pub fn sim(&self) -> &kube_sim::SimHandle {
        self.sim.as_ref().expect("this test needs kube-sim")
    }

    // --- names ---------------------------------------------------------------------------

    /// `base` made unique for this test.
    pub fn n(&self, base: &str) -> String {
        format!("{base}-{}", self.sfx)
    }
    /// The namespace of a partner (its full name).
    pub fn pns(&self, partner: &str) -> String {
        partnerkit::resources::names::partner_namespace(&self.config, partner)
    }
    /// The workspace namespace of a tenant (its full name).
    pub fn ws(&self, tenant: &str) -> String {
        partnerkit::resources::names::workspace(&self.config, tenant)
    }
    /// An admin's e-mail: `<who>@<partner>.example`.
    pub fn email(&self, who: &str, org: &str) -> String {
        format!("{who}@{org}.example")
    }

    // --- the operator --------------------------------------------------------------------

    /// Start the operator in-process (waits until its caches are synced). On a real cluster
    /// with [`operator_identity`], as the chart's ServiceAccount; otherwise as `self.client`.
    pub async fn start_operator(&mut self) {
        assert!(self.op.is_none(), "the operator is already running");
        let (client, config) = match operator_identity() {
            Some((kubeconfig, account)) => {
                let mut config = self.config.clone();
                config.operator_account = Some(account);
                (operator_client_from(&kubeconfig, &config).await, config)
            }
            // The operator's own client, as `partnerkit run` builds it (in-flight limit, retries).
            None => (
                operator_client_from(&self.kubeconfig, &self.config).await,
                self.config.clone(),
            ),
        };
        let ((client, writes), config) = (client, config);
        self.start_operator_with(client, config, writes).await
    }

    async fn start_operator_with(&mut self, client: Client, config: Config, writes: Writes) {
        let telemetry = Telemetry::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(partnerkit::controller::run_with(
            client,
            config,
            telemetry.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        self.op = Some(Running {
            writes,
            telemetry: telemetry.clone(),
            stop: Some(tx),
            task,
        });
        self.eventually(20, "the operator to be ready", || async {
            telemetry.is_ready().then_some(())
        })
        .await;
    }

    /// The operator's own namespace (where it reads the SMTP credentials Secret): the chart's
    /// on a real cluster with [`operator_identity`], else the admin client's default.
    pub fn operator_namespace(&self) -> String {
        match operator_identity() {
            Some((_, (ns, _))) => ns,
            None => self.client.default_namespace().to_string(),
        }
    }

    /// The same, as another client (e.g. a ServiceAccount's).
    pub async fn start_operator_as(&mut self, client: Client) {
        assert!(self.op.is_none(), "the operator is already running");
        let config = self.config.clone();
        self.start_operator_with(client, config, Writes::default())
            .await
    }

    /// The writes the running operator sent since it started (method and path; Lease renewals
    /// left out), on kube-sim and on the real control plane alike.
    pub fn operator_writes(&self) -> Vec<String> {
        let op = self.op.as_ref().expect("operator running");
        op.writes.lock().unwrap().clone()
    }

    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.op
            .as_ref()
            .expect("operator running")
            .telemetry
            .clone()
    }

    /// Graceful stop: the shutdown signal, then wait for the operator to end without error.
    pub async fn stop_operator(&mut self) {
        let Some(mut op) = self.op.take() else { return };
        if let Some(tx) = op.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), op.task)
            .await
            .expect("the operator stops within 10s")
            .expect("operator task")
            .expect("the operator ran without error");
    }

    /// A crash: the operator's task is aborted wherever it is (requests under way included).
    pub async fn kill_operator(&mut self) {
        let Some(op) = self.op.take() else { return };
        op.task.abort();
        let _ = op.task.await;
    }

    pub async fn restart_operator(&mut self) {
        self.stop_operator().await;
        self.start_operator().await;
    }

    // --- kubectl -------------------------------------------------------------------------

    async fn run_kubectl(&self, args: &[&str], stdin: Option<&str>) -> Out {
        use tokio::io::AsyncWriteExt;
        let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.args(args)
            .arg("--cache-dir")
            .arg(self.dir.join("kubectl-cache"))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.dir)
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        if let Some(text) = stdin {
            let mut si = child.stdin.take().expect("stdin");
            si.write_all(text.as_bytes()).await.expect("write stdin");
            drop(si);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in 60s"))
            .expect("kubectl output");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kubectl ARGS` as the cluster admin.
    pub async fn kubectl(&self, args: &[&str]) -> Out {
        self.run_kubectl(args, None).await
    }

    /// `kubectl ARGS --as USER` (a partner or tenant admin).
    pub async fn kubectl_as(&self, user: &str, args: &[&str]) -> Out {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--as", user]);
        self.run_kubectl(&a, None).await
    }

    /// Panics unless kubectl succeeds; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args).await;
        assert!(o.ok(), "kubectl {args:?} failed:\n{}{}", o.stderr, o.stdout);
        o.stdout
    }

    /// `kubectl apply -f -` of a manifest as the cluster admin; panics unless it succeeds.
    pub async fn apply(&self, manifest: &str) {
        let o = self
            .run_kubectl(&["apply", "-f", "-"], Some(manifest))
            .await;
        assert!(o.ok(), "kubectl apply failed:\n{}\n{manifest}", o.stderr);
    }

    /// `kubectl apply -f - --as USER`.
    pub async fn apply_as(&self, user: &str, manifest: &str) -> Out {
        self.run_kubectl(&["apply", "-f", "-", "--as", user], Some(manifest))
            .await
    }

    /// `kubectl create -f - [--as USER]`.
    pub async fn create_as(&self, user: Option<&str>, manifest: &str) -> Out {
        let mut a = vec!["create", "-f", "-"];
        if let Some(u) = user {
            a.extend(["--as", u]);
        }
        self.run_kubectl(&a, Some(manifest)).await
    }

    /// `kubectl delete KIND NAME [-n NS] --wait=false`; panics unless it succeeds.
    pub async fn delete(&self, kind: &str, ns: Option<&str>, name: &str) {
        let mut a = vec!["delete", kind, name, "--wait=false"];
        if let Some(ns) = ns {
            a.extend(["-n", ns]);
        }
        self.kubectl_ok(&a).await;
    }

    // --- reading -------------------------------------------------------------------------

    async fn dyn_api(&self, api_version: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let (ar, _) = pinned_kind(&self.client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .expect("discovery");
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// An object as JSON, or None.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.dyn_api(api_version, kind, ns)
            .await
            .get_opt(name)
            .await
            .expect("get")
            .map(|o| serde_json::to_value(o).expect("json"))
    }

    /// Objects of a kind (in a namespace), as JSON, optionally by label selector.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        selector: Option<&str>,
    ) -> Vec<Value> {
        let mut lp = kube::api::ListParams::default();
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        self.dyn_api(api_version, kind, ns)
            .await
            .list(&lp)
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).expect("json"))
            .collect()
    }

    pub async fn partner(&self, name: &str) -> Option<Value> {
        self.get("partnerkit.io/v1alpha1", "Partner", None, name)
            .await
    }
    pub async fn tenant(&self, ns: &str, name: &str) -> Option<Value> {
        self.get("partnerkit.io/v1alpha1", "Tenant", Some(ns), name)
            .await
    }
    pub async fn namespace(&self, name: &str) -> Option<Value> {
        self.get("v1", "Namespace", None, name).await
    }
    pub async fn config_map(&self, ns: &str, name: &str) -> Option<Value> {
        self.get("v1", "ConfigMap", Some(ns), name).await
    }
    pub async fn role_binding(&self, ns: &str, name: &str) -> Option<Value> {
        self.get(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            Some(ns),
            name,
        )
        .await
    }
    pub async fn cluster_role(&self, name: &str) -> Option<Value> {
        self.get("rbac.authorization.k8s.io/v1", "ClusterRole", None, name)
            .await
    }
    pub async fn cluster_role_binding(&self, name: &str) -> Option<Value> {
        self.get(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            name,
        )
        .await
    }

    /// Poll `f` every 50 ms until it returns Some, for at most `secs` seconds.
    pub async fn eventually<T, F, Fut>(&self, secs: u64, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The Ready condition of a partnerkit object, once its status describes its current
    /// generation and Ready has `reason`; returns the object.
    pub async fn wait_reason(
        &self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        reason: &str,
    ) -> Value {
        self.wait_reason_within(10, kind, ns, name, reason).await
    }

    /// [`Env::wait_reason`] for at most `secs` seconds.
    pub async fn wait_reason_within(
        &self,
        secs: u64,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        reason: &str,
    ) -> Value {
        let mut last = Value::Null;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(o) = self.get("partnerkit.io/v1alpha1", kind, ns, name).await {
                let current = o["status"]["observedGeneration"] == o["metadata"]["generation"];
                if current && ready(&o).is_some_and(|c| c["reason"] == reason) {
                    return o;
                }
                last = o;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {kind} {name} to be {reason}; last seen:\n{:#}",
                last["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait for `Ready=True, reason=Reconciled`.
    pub async fn wait_ready(&self, kind: &str, ns: Option<&str>, name: &str) -> Value {
        self.wait_ready_within(10, kind, ns, name).await
    }

    /// [`Env::wait_ready`] for at most `secs` seconds.
    pub async fn wait_ready_within(
        &self,
        secs: u64,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Value {
        let o = self
            .wait_reason_within(secs, kind, ns, name, "Reconciled")
            .await;
        assert_eq!(ready(&o).expect("Ready")["status"], "True");
        o
    }

    /// Wait until the object is gone.
    pub async fn wait_gone(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) {
        self.eventually(15, &format!("{kind} {name} to be gone"), || async {
            self.get(api_version, kind, ns, name)
                .await
                .is_none()
                .then_some(())
        })
        .await
    }

    /// kube-sim's request counters (`{"total","writes","byVerb","requests":[…]}`).
    pub fn requests(&self) -> Value {
        self.sim().sim.metrics.snapshot()
    }
    pub fn reset_requests(&self) {
        self.sim().sim.metrics.reset()
    }

    /// Stop the operator; on a real cluster first delete what this test created (while the
    /// operator still runs, so finalizers are honoured).
    pub async fn finish(mut self) {
        if real() {
            self.clean_up_real().await;
        }
        self.stop_operator().await;
        if let Some(sim) = self.sim.take() {
            sim.stop().await;
        }
    }

    async fn clean_up_real(&self) {
        let sfx = format!("-{}", self.sfx);
        let mine = |o: &Value| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&sfx))
                || o["metadata"]["namespace"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&sfx))
        };
        for t in self
            .list("partnerkit.io/v1alpha1", "Tenant", None, None)
            .await
        {
            if mine(&t) && t["metadata"]["name"] != "template" {
                let ns = t["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = t["metadata"]["name"].as_str().unwrap_or_default();
                let _ = self
                    .kubectl(&["delete", "tenant", name, "-n", ns, "--wait=false"])
                    .await;
            }
        }
        for p in self
            .list("partnerkit.io/v1alpha1", "Partner", None, None)
            .await
        {
            if mine(&p) {
                let name = p["metadata"]["name"].as_str().unwrap_or_default();
                let _ = self
                    .kubectl(&["delete", "partner", name, "--wait=false"])
                    .await;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let left = self
                .list("partnerkit.io/v1alpha1", "Partner", None, None)
                .await;
            if !left.iter().any(mine) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for ns in self.list("v1", "Namespace", None, None).await {
            if mine(&ns) {
                let name = ns["metadata"]["name"].as_str().unwrap_or_default();
                let _ = self
                    .kubectl(&["delete", "namespace", name, "--wait=false"])
                    .await;
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(op) = self.op.take() {
            op.task.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Ready condition of an object, if any.
pub fn ready(o: &Value) -> Option<&Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// An object's labels (empty map if none).
pub fn labels_of(o: &Value) -> std::collections::BTreeMap<String, String> {
    o["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A string map from `(key, value)` pairs.
pub fn smap<const N: usize>(
    pairs: [(&str, &str); N],
) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The RBAC subjects of a binding as user names.
pub fn subjects(o: &Value) -> Vec<String> {
    o["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    assert_eq!(s["kind"], "User", "subject kind");
                    s["name"].as_str().unwrap_or_default().to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Partners writes by field manager `partnerkit` in a kube-sim counter snapshot:
/// `(verb, resource, subresource) -> count`.
pub fn partnerkit_writes(
    snapshot: &Value,
) -> std::collections::BTreeMap<(String, String, String), u64> {
    let mut out = std::collections::BTreeMap::new();
    for r in snapshot["requests"].as_array().into_iter().flatten() {
        let verb = r["verb"].as_str().unwrap_or_default();
        if r["fieldManager"] == "partnerkit" && kube_sim::faults::is_write(verb) {
            *out.entry((
                verb.to_string(),
                r["resource"].as_str().unwrap_or_default().to_string(),
                r["subresource"].as_str().unwrap_or_default().to_string(),
            ))
            .or_default() += r["count"].as_u64().unwrap_or(0);
        }
    }
    out
}

/// Writes in a kube-sim counter snapshot, split into (leader-election Lease writes, every
/// other write): renewing the Lease is the one write a converged operator keeps making.
pub fn lease_and_other_writes(snapshot: &Value) -> (u64, u64) {
    let (mut lease, mut other) = (0, 0);
    for r in snapshot["requests"].as_array().into_iter().flatten() {
        if !kube_sim::faults::is_write(r["verb"].as_str().unwrap_or_default()) {
            continue;
        }
        let n = r["count"].as_u64().unwrap_or(0);
        if r["group"] == "coordination.k8s.io" && r["resource"] == "leases" {
            assert!(
                r["fieldManager"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("partnerkit-leader/")),
                "a Lease written by someone else: {r}"
            );
            lease += n;
        } else {
            other += n;
        }
    }
    (lease, other)
}

/// A Partner manifest: `admins` by e-mail, `spec` merged over displayName/admins.
pub fn partner_json(name: &str, display: &str, admins: &[&str], spec: Value) -> Value {
    let mut s = serde_json::json!({
        "displayName": display,
        "admins": admins.iter().map(|a| serde_json::json!({"email": a})).collect::<Vec<_>>(),
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    serde_json::json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "Partner", "metadata": {"name": name}, "spec": s})
}

/// A Tenant manifest.
pub fn tenant_json(ns: &str, name: &str, spec: Value) -> Value {
    serde_json::json!({"apiVersion": "partnerkit.io/v1alpha1", "kind": "Tenant", "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// A ConfigMap manifest (user data).
pub fn config_map_json(ns: &str, name: &str, data: Value) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data})
}

impl Env {
    /// `kubectl apply` of a JSON manifest as the cluster admin.
    pub async fn apply_json(&self, v: &Value) {
        self.apply(&v.to_string()).await
    }

    /// A partner with `admins`, applied and Ready; returns its namespace.
    pub async fn partner_ready(&self, name: &str, admins: &[&str], spec: Value) -> String {
        self.apply_json(&partner_json(name, &format!("{name} Inc"), admins, spec))
            .await;
        self.wait_ready("Partner", None, name).await;
        let ns = self.pns(name);
        self.eventually(10, "the template tenant", || async {
            self.tenant(&ns, "template").await
        })
        .await;
        ns
    }

    /// A tenant applied and Ready; returns the Tenant.
    pub async fn tenant_ready(&self, ns: &str, name: &str, spec: Value) -> Value {
        self.apply_json(&tenant_json(ns, name, spec)).await;
        self.wait_ready("Tenant", Some(ns), name).await
    }

    /// Warning Events (events.k8s.io/v1) about an object, as `(reason, note)`.
    pub async fn warnings_about(&self, ns: &str, kind: &str, name: &str) -> Vec<(String, String)> {
        self.list("events.k8s.io/v1", "Event", Some(ns), None)
            .await
            .into_iter()
            .filter(|e| {
                e["type"] == "Warning"
                    && e["regarding"]["kind"] == kind
                    && e["regarding"]["name"] == name
            })
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// An object's labels without the one the API server puts on every namespace
/// (`kubernetes.io/metadata.name`).
pub fn our_labels(o: &Value) -> std::collections::BTreeMap<String, String> {
    let mut l = labels_of(o);
    l.remove("kubernetes.io/metadata.name");
    l
}
