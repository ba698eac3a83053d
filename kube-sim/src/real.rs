//! A real Kubernetes control plane for tests: `scripts/real-cluster` (etcd, kube-apiserver and
//! kube-controller-manager built from the Kubernetes Go modules, on free loopback ports) started
//! and stopped from Rust with the same contract as [`crate::start`]:
//!
//! ```ignore
//! let cluster = kube_sim::real::RealCluster::start().await?;   // waits until it is ready
//! cluster.kubeconfig_path();                                    // an admin kubeconfig
//! cluster.stop().await?;                                        // SIGTERM: everything removed
//! ```
//!
//! The programs come from `target/kube-bins/current` (`make real-bins`), or `$KUBE_BINS`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crate::{Error, Result};

/// A running `scripts/real-cluster`.
pub struct RealCluster {
    child: Option<tokio::process::Child>,
    dir: PathBuf,
    kubeconfig: PathBuf,
    kubeconfig_yaml: String,
}

/// The repository's `scripts/real-cluster` (or `$REAL_CLUSTER`).
pub fn script() -> PathBuf {
    std::env::var_os("REAL_CLUSTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/real-cluster"))
}

/// How long a start may take: certificates, etcd, kube-apiserver's post-start hooks and the
/// controllers' first ServiceAccount take 5–20 s on a 2-core machine.
const READY_WITHIN: Duration = Duration::from_secs(180);

impl RealCluster {
    /// Start a control plane and wait until it serves (the script writes the kubeconfig last).
    pub async fn start() -> Result<RealCluster> {
        let dir = std::env::temp_dir().join(format!(
            "real-cluster-test-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(dir.join("tmp"))?;
        let kubeconfig = dir.join("kubeconfig");
        let child = tokio::process::Command::new(script())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--log-dir")
            .arg(dir.join("logs"))
            // Its data directory goes under ours, so a test can see that it is removed.
            .env("TMPDIR", dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("real-cluster.log"))?)
            .spawn()
            .map_err(|e| Error::Config(format!("cannot run {}: {e}", script().display())))?;
        let mut cluster = RealCluster {
            child: Some(child),
            dir,
            kubeconfig,
            kubeconfig_yaml: String::new(),
        };
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Ok(text) = std::fs::read_to_string(&cluster.kubeconfig)
                && !text.is_empty()
            {
                cluster.kubeconfig_yaml = text;
                return Ok(cluster);
            }
            let exited = match cluster.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                return Err(Error::Config(format!(
                    "scripts/real-cluster exited ({status}) before it was ready:\n{}",
                    cluster.log()
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Config(format!(
                    "scripts/real-cluster not ready after {}s:\n{}",
                    READY_WITHIN.as_secs(),
                    cluster.log()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The admin kubeconfig (client certificate in `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// The API server's URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self.kubeconfig_yaml
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap_or_default()
            .to_string()
    }

    /// The process id of the launcher (its children are etcd, kube-apiserver and
    /// kube-controller-manager).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Where the launcher keeps its data while it runs (removed when it stops).
    pub fn data_parent(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// The launcher's own messages (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("real-cluster.log")).unwrap_or_default()
    }

    /// SIGTERM, and wait for the launcher to stop everything and remove its data.
    pub async fn stop(mut self) -> Result<Stopped> {
        let mut child = self.child.take().expect("running");
        if let Some(pid) = child.id() {
            sigterm(pid);
        }
        let status = match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(Error::Config(
                    "scripts/real-cluster did not stop within 60s of SIGTERM".into(),
                ));
            }
        };
        let left_behind = std::fs::read_dir(self.data_parent())?
            .flatten()
            .map(|e| e.path())
            .collect();
        Ok(Stopped {
            status,
            left_behind,
        })
    }
}

/// How the launcher ended.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    /// What it left in its data directory's parent (nothing, if it cleaned up).
    pub left_behind: Vec<PathBuf>,
}

fn sigterm(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        // A test that panicked: stop the launcher the clean way so that nothing outlives it.
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                sigterm(pid);
                for _ in 0..300 {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
