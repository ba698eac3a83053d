//! The simulator's shared state, configuration, and start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};

use crate::authz::{AdmissionPolicies, RbacSnapshot, UserInfo};
use crate::faults::{Faults, Metrics};
use crate::kinds::{GroupResource, Registry};
use crate::store::Store;

/// A static bearer token (the API server's `--token-auth-file` CSV: token,user,uid,"group1,group2").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub token: String,
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Parse a token file: one `token,user,uid[,"g1,g2"]` per line; `#` comments.
pub fn parse_token_file(text: &str) -> Result<Vec<TokenEntry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
            return Err(format!(
                "token file line {}: want token,user,uid[,\"group1,group2\"]",
                i + 1
            ));
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        out.push(TokenEntry {
            token: fields[0].clone(),
            user: fields[1].clone(),
            uid: fields[2].clone(),
            groups,
        });
    }
    Ok(out)
}

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// Written once listening: a kubeconfig whose current context is the admin.
    pub kubeconfig: Option<PathBuf>,
    pub tokens: Vec<TokenEntry>,
    /// Events kept for watch resumption and consistent paging (older: 410 Gone).
    pub watch_history: usize,
    pub bookmark_interval: Duration,
    /// Emulate the namespace controllers that give every new namespace a `default`
    /// ServiceAccount and the `kube-root-ca.crt` ConfigMap.
    pub namespace_defaults: bool,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            tokens: Vec::new(),
            watch_history: 100_000,
            bookmark_interval: Duration::from_secs(10),
            namespace_defaults: true,
            faults: Faults::default(),
        }
    }
}

/// The administrator: what a request without credentials is.
pub fn admin() -> UserInfo {
    UserInfo {
        name: "kube-sim-admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        extra: Default::default(),
    }
}

pub struct Sim {
    pub config: SimConfig,
    pub store: RwLock<Store>,
    pub registry: RwLock<Registry>,
    /// The current resourceVersion, for waking watchers.
    pub changed: watch::Sender<u64>,
    /// Bumped to end every open watch.
    pub drop_watches: watch::Sender<u64>,
    rbac: Mutex<Option<Arc<RbacSnapshot>>>,
    /// A ClusterRole or ClusterRoleBinding changed: rebuild the cluster-scoped part.
    rbac_dirty: AtomicBool,
    /// Namespaces whose Roles or RoleBindings changed: rebuild just those.
    rbac_dirty_ns: Mutex<std::collections::HashSet<Arc<str>>>,
    policies: Mutex<Option<Arc<AdmissionPolicies>>>,
    policies_dirty: AtomicBool,
    pub metrics: Metrics,
    pub faults: RwLock<Faults>,
    pub in_flight: RwLock<Arc<Semaphore>>,
    /// Objects the garbage collector and namespace controller look at next.
    pub gc_wake: Arc<tokio::sync::Notify>,
}

const RBAC: &str = "rbac.authorization.k8s.io";
const ADMISSION: &str = "admissionregistration.k8s.io";

impl Sim {
    pub fn new(config: SimConfig) -> Arc<Sim> {
        let faults = config.faults.clone();
        let permits = if faults.max_in_flight == 0 {
            Semaphore::MAX_PERMITS
        } else {
            faults.max_in_flight
        };
        let sim = Arc::new(Sim {
            store: RwLock::new(Store::new(config.watch_history)),
            registry: RwLock::new(Registry::builtin()),
            changed: watch::channel(0).0,
            drop_watches: watch::channel(0).0,
            rbac: Mutex::new(None),
            rbac_dirty: AtomicBool::new(true),
            rbac_dirty_ns: Mutex::new(Default::default()),
            policies: Mutex::new(None),
            policies_dirty: AtomicBool::new(true),
            metrics: Metrics::default(),
            faults: RwLock::new(faults),
            in_flight: RwLock::new(Arc::new(Semaphore::new(permits))),
            gc_wake: Arc::new(tokio::sync::Notify::new()),
            config,
        });
        crate::bootstrap::seed(&sim);
        sim
    }

    /// Called after every committed change.
    pub fn after_commit(&self, gr: &GroupResource, ns: &Arc<str>) {
        if gr.group.as_ref() == RBAC {
            if ns.is_empty() {
                self.rbac_dirty.store(true, Ordering::SeqCst);
            } else {
                self.rbac_dirty_ns
                    .lock()
                    .expect("rbac dirty lock")
                    .insert(ns.clone());
            }
        }
        if gr.group.as_ref() == ADMISSION {
            self.policies_dirty.store(true, Ordering::SeqCst);
        }
        let rv = self.store.read().map(|s| s.current_rv()).unwrap_or(0);
        self.changed.send_replace(rv);
        self.gc_wake.notify_one();
    }

    fn values(&self, group: &str, resource: &str) -> Vec<serde_json::Value> {
        let gr = GroupResource {
            group: group.into(),
            resource: resource.into(),
        };
        let store = self.store.read().expect("store lock");
        store
            .range(&gr, None, None)
            .map(|(_, o)| o.value())
            .collect()
    }

    fn values_in(&self, group: &str, resource: &str, ns: &str) -> Vec<serde_json::Value> {
        let gr = GroupResource {
            group: group.into(),
            resource: resource.into(),
        };
        let store = self.store.read().expect("store lock");
        store
            .range(&gr, Some(ns), None)
            .map(|(_, o)| o.value())
            .collect()
    }

    /// RBAC as of now: built once, then kept up to date lazily — the namespaces whose Roles or
    /// RoleBindings changed are rebuilt one by one, the cluster-scoped part when a ClusterRole
    /// or ClusterRoleBinding changed.
    pub fn rbac(&self) -> Arc<RbacSnapshot> {
        let mut cur = self.rbac.lock().expect("rbac lock");
        let dirty_ns: Vec<Arc<str>> = self
            .rbac_dirty_ns
            .lock()
            .expect("rbac dirty lock")
            .drain()
            .collect();
        let cluster_dirty = self.rbac_dirty.swap(false, Ordering::SeqCst);
        match cur.as_ref() {
            None => {
                *cur = Some(Arc::new(RbacSnapshot::new(
                    &self.values(RBAC, "roles"),
                    &self.values(RBAC, "clusterroles"),
                    &self.values(RBAC, "rolebindings"),
                    &self.values(RBAC, "clusterrolebindings"),
                )));
            }
            Some(snap) => {
                let namespaced = snap.namespaced();
                for ns in dirty_ns {
                    let fresh = crate::authz::NsRbac::new(
                        &self.values_in(RBAC, "roles", &ns),
                        &self.values_in(RBAC, "rolebindings", &ns),
                    );
                    let mut map = namespaced.write().expect("rbac namespaces");
                    match fresh {
                        Some(n) => {
                            map.insert(ns.to_string(), Arc::new(n));
                        }
                        None => {
                            map.remove(ns.as_ref());
                        }
                    }
                }
                if cluster_dirty {
                    *cur = Some(Arc::new(RbacSnapshot::with_namespaced(
                        &self.values(RBAC, "clusterroles"),
                        &self.values(RBAC, "clusterrolebindings"),
                        namespaced,
                    )));
                }
            }
        }
        cur.clone().expect("rbac snapshot")
    }

    /// ValidatingAdmissionPolicies as of now.
    pub fn policies(&self) -> Arc<AdmissionPolicies> {
        let mut cur = self.policies.lock().expect("policies lock");
        if self.policies_dirty.swap(false, Ordering::SeqCst) || cur.is_none() {
            let p = AdmissionPolicies::new(
                &self.values(ADMISSION, "validatingadmissionpolicies"),
                &self.values(ADMISSION, "validatingadmissionpolicybindings"),
            );
            *cur = Some(Arc::new(p));
        }
        cur.clone().expect("policies")
    }

    pub fn set_faults(&self, f: Faults) {
        let permits = if f.max_in_flight == 0 {
            Semaphore::MAX_PERMITS
        } else {
            f.max_in_flight
        };
        *self.in_flight.write().expect("lock") = Arc::new(Semaphore::new(permits));
        *self.faults.write().expect("lock") = f;
    }
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for the admin.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// Stop serving and wait for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.sim.drop_watches.send_modify(|v| *v += 1);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.sim.drop_watches.send_modify(|v| *v += 1);
    }
}

pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: admin\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: admin\n  user: {{}}\npreferences: {{}}\n"
    )
}

/// Start serving on `config.listen`; writes the kubeconfig when listening.
pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let sim = Sim::new(config);
    if let Some(path) = &sim.config.kubeconfig {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, kubeconfig_yaml(&format!("http://{addr}")))?;
        std::fs::rename(&tmp, path)?;
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    crate::gc::spawn(sim.clone());
    crate::faults::spawn_watch_dropper(sim.clone());
    let app = crate::server::router(sim.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimHandle {
        addr,
        sim,
        shutdown: Some(tx),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_parses_groups() {
        let t = parse_token_file("# comment\nabc,alice@x,1,\"dev,ops\"\ndef,bob,2\n").unwrap();
        assert_eq!(t[0].groups, vec!["dev", "ops"]);
        assert!(t[1].groups.is_empty());
        assert!(
            parse_token_file("onlytoken")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
