//! Leader election on a `coordination.k8s.io/v1` Lease in the operator's namespace, through
//! `kube-lease-manager` (kube 5, server-side apply for the lock, release when its channel
//! closes). Every replica watches and keeps its caches warm; the holder reconciles.
//!
//! - a replica that restarts with the same identity (`POD_NAME`) holds the Lease again at once;
//! - a leader that stops renewing is replaced once the Lease expired (`leaseDuration`, plus up
//!   to a second's random wait against collisions);
//! - a leader that shuts down releases the Lease, and a standby, which watches the Lease, takes
//!   over at once (not when the released Lease would have expired);
//! - a leader that loses the Lease (it could not renew in time) stops: [`Leadership::lost`]
//!   resolves and the operator exits, as client-go's leader election does, to start over as a
//!   standby.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseParams};
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
    task: Option<tokio::task::JoinHandle<kube_lease_manager::Result<()>>>,
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
        let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
        let build = {
            let (client, name) = (client.clone(), le.lease_name.clone());
            move || {
                LeaseManager::new(
                    client.clone(),
                    name.clone(),
                    namespace.clone(),
                    params.clone(),
                    LeaseCreateMode::default(),
                )
            }
        };
        // The first build checks (and creates) the Lease: a refusal here is a clear start-up error.
        let manager = build()
            .await
            .map_err(|e| Error::Leader(format!("lease {lease}: {e}")))?;
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(campaign(manager, build, leases, le.lease_name.clone(), tx));
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
                Ok(Ok(Ok(()))) => tracing::info!(%lease, "released the lease"),
                Ok(Ok(Err(e))) => tracing::warn!(%lease, error = %e, "releasing the lease failed"),
                Ok(Err(e)) => tracing::warn!(%lease, error = %e, "the election task failed"),
                Err(_) => tracing::warn!(%lease, "releasing the lease timed out"),
            }
        }
    }
}

/// Whether a watch event shows the Lease free: released by its holder (no holder identity) or
/// deleted.
fn released(event: &watcher::Event<Lease>) -> bool {
    match event {
        watcher::Event::Apply(l) | watcher::Event::InitApply(l) => l
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .is_none_or(str::is_empty),
        watcher::Event::Delete(_) => true,
        watcher::Event::Init | watcher::Event::InitDone => false,
    }
}

/// The election loop. `LeaseManager::changed` locks a free Lease, renews a held one and, as a
/// standby, sleeps until the holder's Lease expires — it does not notice a release before then.
/// So a standby also watches the Lease, and when its holder releases it (a leader's SIGTERM)
/// starts over with a fresh manager, which reads the free Lease and locks it at once.
///
/// Ends, releasing the Lease if held, when the [`Leadership`] is dropped or released; ends
/// with `false` sent when this replica loses the Lease.
async fn campaign<B, F>(
    mut manager: LeaseManager,
    build: B,
    leases: Api<Lease>,
    name: String,
    tx: watch::Sender<bool>,
) -> kube_lease_manager::Result<()>
where
    B: Fn() -> F,
    F: Future<Output = kube_lease_manager::Result<LeaseManager>>,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(leases, config).default_backoff());
    let mut backoff = Duration::from_millis(200);
    // Standby: until this replica holds the Lease.
    loop {
        let outcome = {
            let changed = manager.changed();
            let mut changed = std::pin::pin!(changed);
            loop {
                tokio::select! {
                    biased;
                    _ = tx.closed() => return Ok(()),
                    r = &mut changed => break Some(r),
                    Some(event) = events.next() => {
                        if event.as_ref().is_ok_and(released) {
                            break None;
                        }
                    }
                }
            }
        };
        match outcome {
            Some(Ok(true)) => break,
            Some(Ok(false)) => backoff = Duration::from_millis(200),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "leader election: retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            None => {
                tracing::debug!(lease = %name, "the lease was released: campaigning at once");
                match build().await {
                    Ok(fresh) => manager = fresh,
                    Err(e) => tracing::warn!(error = %e, "leader election: retrying"),
                }
            }
        }
    }
    // Leader: renew until released or lost.
    if tx.send(true).is_err() {
        return manager.release().await;
    }
    loop {
        tokio::select! {
            biased;
            _ = tx.closed() => return manager.release().await,
            r = manager.changed() => match r {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tx.send(false);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: renewing the lease failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    fn lease(holder: Option<&str>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_standby_wakes_when_the_lease_is_released_or_deleted_only() {
        assert!(!released(&watcher::Event::Apply(lease(Some("pod-a")))));
        assert!(!released(&watcher::Event::InitApply(lease(Some("pod-a")))));
        assert!(released(&watcher::Event::Apply(lease(None))));
        assert!(released(&watcher::Event::Apply(lease(Some("")))));
        assert!(released(&watcher::Event::Apply(Lease::default())));
        assert!(released(&watcher::Event::Delete(lease(Some("pod-a")))));
        assert!(!released(&watcher::Event::<Lease>::InitDone));
    }
}
