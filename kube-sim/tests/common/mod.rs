//! The fidelity harness: every test gets a cluster — an in-process kube-sim, or the real
//! cluster of `KUBECONFIG` when `FIDELITY_REAL=1` (`make test-real`) — a namespace of its
//! own, and the real `kubectl` (`$KUBECTL`, default `kubectl`) pointed at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::AsyncWriteExt;

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

pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
    /// A namespace for this test, created at start.
    pub ns: String,
    /// Appended to cluster-scoped names so tests on a shared real cluster do not collide.
    pub suffix: String,
    pub sim: Option<kube_sim::SimHandle>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn real() -> bool {
    std::env::var("FIDELITY_REAL").is_ok_and(|v| v == "1")
}

pub fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

fn scratch_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!(
        "kube-sim-fidelity-{}-{n}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

impl Cluster {
    /// A cluster for a test that holds on a real API server too.
    pub async fn start() -> Cluster {
        Self::start_with(kube_sim::SimConfig::default()).await
    }

    /// With simulator settings (ignored against a real cluster).
    pub async fn start_with(config: kube_sim::SimConfig) -> Cluster {
        let dir = scratch_dir();
        let suffix = format!("{:06x}", fastrand::u32(..0xffffff));
        let (kubeconfig, sim) = if real() {
            let path = std::env::var("KUBECONFIG").expect("FIDELITY_REAL=1 needs KUBECONFIG");
            (PathBuf::from(path), None)
        } else {
            let path = dir.join("kubeconfig");
            let handle = kube_sim::start(kube_sim::SimConfig {
                kubeconfig: Some(path.clone()),
                ..config
            })
            .await
            .expect("start kube-sim");
            (path, Some(handle))
        };
        let ns = format!("fid-{suffix}");
        let c = Cluster {
            kubeconfig,
            dir,
            ns,
            suffix,
            sim,
        };
        let manifest = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{}\"}}}}",
            c.ns
        );
        let o = c.kubectl_stdin(&["create", "-f", "-"], &manifest).await;
        assert!(o.ok(), "creating the test namespace failed: {}", o.stderr);
        c
    }

    /// A simulator-only cluster: for what only kube-sim has (metrics, faults, token files).
    pub async fn sim_only(config: kube_sim::SimConfig) -> Cluster {
        assert!(!real(), "sim-only tests are excluded from `make test-real`");
        Self::start_with(config).await
    }

    pub fn sim(&self) -> &kube_sim::SimHandle {
        self.sim.as_ref().expect("this test needs kube-sim")
    }

    /// `base` made unique for cluster-scoped objects.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.suffix)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Write a file into this test's scratch dir, returning its path as a string.
    pub fn write(&self, file: &str, text: &str) -> String {
        let p = self.path(file);
        std::fs::write(&p, text).expect("write scratch file");
        p.to_string_lossy().into_owned()
    }

    pub async fn kubectl_with(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let cache = self.dir.join("kubectl-cache");
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(args)
            .arg("--cache-dir")
            .arg(&cache)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        if let Some(text) = stdin {
            let mut si = child.stdin.take().expect("stdin");
            si.write_all(text.as_bytes()).await.expect("write stdin");
            drop(si);
        }
        let out =
            tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
                .await
                .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in 60s"))
                .expect("kubectl output");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_with(&kubectl_bin(), args, None).await
    }

    pub async fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.kubectl_with(&kubectl_bin(), args, Some(stdin)).await
    }

    /// Run kubectl, panic with its stderr unless it succeeds; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args).await;
        assert!(
            o.ok(),
            "kubectl {args:?} failed ({}):\n{}{}",
            o.code,
            o.stderr,
            o.stdout
        );
        o.stdout
    }

    /// Run kubectl, panic unless it fails; returns stderr.
    pub async fn kubectl_err(&self, args: &[&str]) -> String {
        let o = self.kubectl(args).await;
        assert!(
            !o.ok(),
            "kubectl {args:?} should have failed but printed:\n{}",
            o.stdout
        );
        o.stderr
    }

    /// `kubectl apply -f -` of a manifest.
    pub async fn apply(&self, manifest: &str) -> Out {
        self.kubectl_stdin(&["apply", "-f", "-"], manifest).await
    }

    /// A kube-rs client for this cluster.
    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("client config");
        kube::Client::try_from(cfg).expect("client")
    }

    /// Poll `f` until it returns Some, for at most `secs` seconds.
    pub async fn eventually<T, F, Fut>(&self, secs: u64, what: &str, f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        eventually(secs, what, f).await
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.sim.is_none() {
            // Best effort on a real cluster: remove this test's namespace.
            let _ = std::process::Command::new(kubectl_bin())
                .args([
                    "delete",
                    "namespace",
                    &self.ns,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .env("KUBECONFIG", &self.kubeconfig)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Poll `f` every 50 ms until it returns Some; panics after `secs` seconds naming `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Parse JSON output of kubectl.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

/// The `Status` of a failed kube-rs call (panics if the call did not fail with an API error).
pub fn api_err<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Any serializable value as JSON.
pub fn val<T: serde::Serialize>(o: &T) -> serde_json::Value {
    serde_json::to_value(o).expect("serialize")
}
