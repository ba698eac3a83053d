//! Leader election on a `coordination.k8s.io/v1` Lease in the operator's namespace, through
//! `kube-lease-manager` (kube 5, server-side apply for the lock, release when its channel
//! closes). Every replica watches and keeps its caches warm; the holder reconciles.
//!
//! - a replica that restarts with the same identity (`POD_NAME`) holds the Lease again at once;
//! - a leader that stops renewing is replaced once the Lease expired (`leaseDuration`, plus up
//!   to a second's random wait against collisions);
//! - a leader that shuts down releases the Lease, so a standby takes over at once;
//! - a leader that loses the Lease (it could not renew in time) stops: [`Leadership::lost`]
//!   resolves and the operator exits, as client-go's leader election does, to start over as a
//!   standby.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use tokio::sync::watch;

use super::Error;
use crate::config::Config;

/// This replica's identity in the Lease: the configured one, else `POD_NAME`, else
/// `<hostname>-<pid>`.
pub fn identity(config: &Config) -> String {
    if let Some(id) = &config.leader_election.identity {
        return id.clone();
    }
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "partnerkit".into());
    format!("{host}-{}", std::process::id())
}

/// The Lease's namespace: the operator's (`POD_NAMESPACE`), else the client's default.
pub fn namespace(config: &Config, client: &Client) -> String {
    match &config.operator_account {
        Some((ns, _)) => ns.clone(),
        None => std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| client.default_namespace().trim().to_string()),
    }
}

/// Whether this replica leads: always, without election; else as the Lease says.
pub struct Leadership {
    rx: watch::Receiver<bool>,
    /// Without election: the sender that keeps `rx` at true.
    _always: Option<watch::Sender<bool>>,
    task: Option<
        tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    >,
    /// `namespace/name` of the Lease, and this replica's identity (for logs and the metric).
    pub lease: String,
    pub identity: String,
}

impl Leadership {
    /// Start campaigning (or, with election off, lead at once).
    pub async fn start(client: &Client, config: &Config) -> Result<Leadership, Error> {
        let le = &config.leader_election;
        let identity = identity(config);
        let namespace = namespace(config, client);
        let lease = format!("{namespace}/{}", le.lease_name);
        if !le.enabled {
            let (tx, rx) = watch::channel(true);
            return Ok(Leadership {
                rx,
                _always: Some(tx),
                task: None,
                lease,
                identity,
            });
        }
        let params = LeaseParams::new(
            identity.clone(),
            le.duration_seconds(),
            le.renew_before_seconds(),
        )
        .with_field_manager(format!("partnerkit-leader/{identity}"));
        let manager = LeaseManagerBuilder::new(client.clone(), &le.lease_name)
            .with_namespace(&namespace)
            .with_parameters(params)
            .build()
            .await
            .map_err(|e| Error::Leader(format!("lease {lease}: {e}")))?;
        let (rx, task) = manager.watch().await;
        tracing::info!(%lease, %identity, "campaigning for leadership");
        Ok(Leadership {
            rx,
            _always: None,
            task: Some(task),
            lease,
            identity,
        })
    }

    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once this replica leads.
    pub async fn acquired(&mut self) -> Result<(), Error> {
        let acquired = self.rx.wait_for(|leading| *leading).await.is_ok();
        if acquired { Ok(()) } else { Err(self.gone()) }
    }

    /// Resolves when this replica stops leading (never, without election).
    pub async fn lost(&mut self) -> Error {
        let lost = self.rx.wait_for(|leading| !*leading).await.is_ok();
        if lost {
            Error::Leader(format!(
                "lost the lease {} (not renewed in time); exiting so that this replica starts over as a standby",
                self.lease
            ))
        } else {
            self.gone()
        }
    }

    fn gone(&self) -> Error {
        Error::Leader(format!("the election for lease {} stopped", self.lease))
    }

    /// Stop campaigning and release the Lease if this replica holds it (so that a standby
    /// takes over at once); waits for the release, at most a few seconds.
    pub async fn release(self) {
        let Leadership {
            rx, task, lease, ..
        } = self;
        drop(rx);
        if let Some(task) = task {
            match tokio::time::timeout(std::time::Duration::from_secs(5), task).await {
                Ok(Ok(Ok(_))) => tracing::info!(%lease, "released the lease"),
                Ok(Ok(Err(e))) => tracing::warn!(%lease, error = %e, "releasing the lease failed"),
                Ok(Err(e)) => tracing::warn!(%lease, error = %e, "the election task failed"),
                Err(_) => tracing::warn!(%lease, "releasing the lease timed out"),
            }
        }
    }
}
