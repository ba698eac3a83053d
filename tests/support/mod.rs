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
