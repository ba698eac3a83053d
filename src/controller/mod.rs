//! The controllers: Partner and Tenant, event-driven over shared reflector stores.
//!
//! ```text
//!  watches ──► reflectors (world.rs: stores + indexes) ──► routing ──► queues ──► appliers
//!                                                             │          ▲            │
//!                           fan-outs (a partner's tenants, all) └─► lane ─┘            │
//!                           (fanout.rs: a batch at a time, as reconciles finish)      │
//!   reconcile = dereference (stores) → validate+build (resources::*, pure) → apply (SSA, only
//!               if different) → delete orphans (by label) → status (only if different)
//! ```
//!
//! Entry points: [`run`] (what `partnerkit run` and tests call) and [`run_with`] (the same with a
//! [`Telemetry`] the caller keeps, to read metrics and readiness).
//!
//! The configuration is read once: a change to it takes a restart (the chart rolls the
//! Deployment when its ConfigMap changes).

pub mod apply;
pub mod children;
pub mod fanout;
pub mod invite;
pub mod leader;
pub mod lean;
pub mod partner;
pub mod tenant;
pub mod world;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::wait::Condition as _;
use kube::runtime::{applier, conditions, wait::await_condition};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::Instrument;

use crate::config::Config;
use crate::telemetry::ReconcileResult;
pub use crate::telemetry::Telemetry;
use world::World;

/// The reason of `Ready=False` on an object partnerkit cannot read (it fails to deserialize).
pub const INVALID_SPEC: &str = "InvalidSpec";
/// The reason of `Ready=True`.
pub const RECONCILED: &str = "Reconciled";

/// Errors of the controllers. Each names itself for metrics and logs ([`Error::metric_label`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} {kind} {name}: {source}")]
    Api {
        verb: &'static str,
        kind: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error("stale copy of {0}; retrying with the current one")]
    Stale(String),
    #[error("namespace {0} was created by someone else meanwhile")]
    NamespaceTaken(String),
    #[error("serialization: {0}")]
    Json(#[from] serde_json::Error),
    #[error("waiting for CRD {crd} to be Established: {message}")]
    CrdWait { crd: String, message: String },
    #[error("reflectors stopped before their first list")]
    NotSynced,
    #[error("acceptance token: {0}")]
    Token(String),
    #[error("the acceptance page on {address}: {source}")]
    Web {
        address: String,
        source: std::io::Error,
    },
    #[error("leader election: {0}")]
    Leader(String),
}

impl Error {
    pub(crate) fn api(verb: &'static str, kind: String, name: &str, source: kube::Error) -> Error {
        Error::Api {
            verb,
            kind,
            name: name.to_string(),
            source: Box::new(source),
        }
    }
    /// A short, stable name for the error.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::Stale(_) => "stale",
            Error::NamespaceTaken(_) => "namespace_taken",
            Error::Json(_) => "serialization",
            Error::CrdWait { .. } => "crd_wait",
            Error::NotSynced => "not_synced",
            Error::Token(_) => "token",
            Error::Web { .. } => "web",
            Error::Leader(_) => "leader_election",
        }
    }
}

/// The longest Event note the API server takes (events.k8s.io/v1 `note`: 1 kB).
pub const MAX_EVENT_NOTE: usize = 1024;

/// `note`, cut to [`MAX_EVENT_NOTE`] bytes on a character boundary, ending in "…" when cut: a
/// refusal naming 150 BizApps still gets its Warning Event (the full text is in the condition).
fn event_note(note: String) -> String {
    if note.len() <= MAX_EVENT_NOTE {
        return note;
    }
    let mut end = MAX_EVENT_NOTE - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing until something it watches changes.
    AwaitChange,
    /// Look again after this long (e.g. waiting for a namespace to finish terminating).
    RequeueAfter(Duration),
}

/// What every reconcile gets.
pub struct Ctx {
    pub client: Client,
    pub config: Arc<Config>,
    pub world: Arc<World>,
    pub recorder: Recorder,
    pub telemetry: Arc<Telemetry>,
    /// What was last reported for objects that fail to deserialize (uid -> generation/message),
    /// so that the report is written once, not on every pass.
    invalid_reported: Mutex<HashMap<String, (Option<i64>, String)>>,
    /// What partnerkit last wrote (see [`apply::Memo`]).
    pub memo: apply::Memo,
    /// Invitation deliveries under way (their tokens live only here).
    pub deliveries: invite::Deliveries,
}

impl Ctx {
    /// A Warning Event on `obj` (only call on a change of state: the Recorder writes each call).
    pub async fn warn<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, note: String) {
        self.event(obj, EventType::Warning, reason, note).await
    }

    /// An Event on `obj` (only call on a change of state: the Recorder writes each call).
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        self.publish(&obj.object_ref(&()), type_, reason, note)
            .await
    }

    async fn publish(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = KubeEvent {
            type_,
            reason: reason.into(),
            note: Some(event_note(note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, reference).await {
            tracing::warn!(error = %e, "publishing an Event failed");
        }
    }

    /// An object that does not deserialize: a Warning Event and `Ready=False, reason=InvalidSpec`
    /// once per generation, then wait for a change.
    async fn report_invalid<K>(&self, api: Api<K>, invalid: &InvalidObject) -> Result<Next, Error>
    where
        K: Resource<DynamicType = ()> + serde::de::DeserializeOwned + Clone + std::fmt::Debug,
    {
        let meta = &invalid.metadata;
        let uid = meta.uid.clone().unwrap_or_default();
        let seen = (meta.generation, invalid.error.clone());
        if self
            .invalid_reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
            == Some(&seen)
        {
            return Ok(Next::AwaitChange);
        }
        let name = meta.name.clone().unwrap_or_default();
        tracing::warn!(error = %invalid.error, "object does not match its schema");
        let message = format!("cannot read this object: {}", invalid.error);
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(K::api_version(&()).into()),
            kind: Some(K::kind(&()).into()),
            name: Some(name.clone()),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            ..Default::default()
        };
        self.publish(
            &reference,
            EventType::Warning,
            INVALID_SPEC,
            message.clone(),
        )
        .await;
        let cond = apply::ready_condition(&[], false, INVALID_SPEC, message, meta.generation);
        let status =
            serde_json::json!({"observedGeneration": meta.generation, "conditions": [cond]});
        apply::apply_status(&self.memo, &api, meta, &status).await?;
        self.invalid_reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid, seen);
        Ok(Next::AwaitChange)
    }
}

/// Wait until the partnerkit CRDs are Established, logging what it waits for.
pub async fn wait_for_crds(client: &Client) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in crate::crdgen::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let established = api
            .get_opt(&name)
            .await
            .ok()
            .flatten()
            .is_some_and(|c| conditions::is_crd_established().matches_object(Some(&c)));
        if !established {
            tracing::info!(crd = %name, "waiting for CRD to be Established (apply `partnerkit manifests` or the chart)");
        }
        await_condition(api.clone(), &name, conditions::is_crd_established())
            .await
            .map_err(|e| Error::CrdWait {
                crd: name.clone(),
                message: e.to_string(),
            })?;
        tracing::debug!(crd = %name, "CRD established");
    }
    Ok(())
}

/// Tenant reconciles that may run at once. Each writes its children side by side, so this
/// many keep the client's in-flight limit (`apiServer.maxRequestsInFlight`, 200) busy when the
/// API server is far away; a reconcile's own CPU cost is a few hundred microseconds. Each one
/// in flight holds its future, its requests and a connection's buffers: at 1 x 10,000 tenants,
/// 128 peaked at 76.5 MiB and 64 at 71.3 MiB, converging as fast (15.4 and 15.9 s, template
/// change 5.94 and 5.96 s); 32 reached 64.8 MiB but converged in 17.8 s and the template change
/// took 6.57 s.
const TENANT_CONCURRENCY: u16 = 64;

/// Run the controllers until `shutdown` resolves, then finish the reconciles under way.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    run_with(client, config, Telemetry::new(), shutdown).await
}

/// [`run`] reporting into `telemetry` (metrics; ready once every reflector has listed).
pub async fn run_with(
    client: Client,
    config: Config,
    telemetry: Arc<Telemetry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let shutdown = shutdown.shared();
    tokio::select! {
        r = wait_for_crds(&client) => r?,
        _ = shutdown.clone() => return Ok(()),
    }
    let config = Arc::new(config);
    let (world, writers) = world::world();
    let (ptx, prx) = futures::channel::mpsc::unbounded();
    let (ttx, trx) = futures::channel::mpsc::unbounded();
    let (itx, irx) = futures::channel::mpsc::unbounded();
    // Reconcile requests flow only while this replica leads: a standby keeps its caches warm
    // and queues nothing (at 100,000 tenants a standby's queue would only grow).
    let queues = world::Queues {
        partners: ptx,
        tenants: ttx,
        invites: itx,
        active: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        lane: Arc::default(),
    };
    let mut reflectors = world::spawn_reflectors(
        &client,
        config.clone(),
        world.clone(),
        writers,
        queues.clone(),
    );

    tracing::info!("waiting for caches to sync");
    tokio::select! {
        ok = world.synced() => if !ok { return Err(Error::NotSynced) },
        _ = shutdown.clone() => { reflectors.shutdown().await; return Ok(()) }
    }
    tracing::info!("caches synced; controllers running");
    telemetry.metrics.register(partner::CONTROLLER);
    telemetry.metrics.register(tenant::CONTROLLER);
    telemetry.metrics.register(invite::CONTROLLER);

    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config,
        world: world.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "partnerkit".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        telemetry: telemetry.clone(),
        invalid_reported: Mutex::default(),
        memo: apply::Memo::new(world.echoes.clone()),
        deliveries: invite::Deliveries::default(),
    });
    if ctx.config.invites.accept_url.is_none() {
        tracing::warn!(
            "invites.acceptUrl is not configured: PartnerAdminInvites stay Pending (NotConfigured)"
        );
    }
    let (web_addr, web) = match crate::invite::web::serve(
        ctx.clone(),
        &ctx.config.listen.web,
        shutdown.clone(),
    )
    .await
    {
        Ok(v) => v,
        Err(source) => {
            reflectors.shutdown().await;
            return Err(Error::Web {
                address: ctx.config.listen.web.clone(),
                source,
            });
        }
    };
    telemetry.set_web_address(web_addr);
    // Ready: caches synced and the pages served — a standby is as ready as the leader.
    telemetry.set_ready(true);

    let mut leadership = match leader::Leadership::start(&client, &ctx.config).await {
        Ok(l) => l,
        Err(e) => {
            reflectors.shutdown().await;
            return Err(e);
        }
    };
    telemetry.set_leader(&leadership.lease, &leadership.identity, false);
    tokio::select! {
        r = leadership.acquired() => if let Err(e) = r {
            reflectors.shutdown().await;
            return Err(e);
        },
        _ = shutdown.clone() => {
            tracing::info!("shutting down as a standby");
            leadership.release().await;
            let _ = web.await;
            telemetry.set_ready(false);
            reflectors.shutdown().await;
            return Ok(());
        }
    }
    tracing::info!(lease = %leadership.lease, identity = %leadership.identity, "leading: controllers running");
    telemetry.set_leader(&leadership.lease, &leadership.identity, true);
    queues.activate(&world);
    // Tenants: up to TENANT_CONCURRENCY reconciles at once, so that a template change fanned out to thousands
    // of tenants (each a few sequential writes) keeps the API server busy rather than waiting
    // on round trips; Partners and invites are few.
    let cfg = ControllerConfig::default().concurrency(8);
    let tenant_cfg = ControllerConfig::default().concurrency(TENANT_CONCURRENCY);

    let partners = applier(
        |obj, ctx: Arc<Ctx>| {
            let span = tracing::info_span!("reconcile", controller = partner::CONTROLLER, "object.name" = %obj.name_any());
            Box::pin(spawned(measured(partner::CONTROLLER, ctx.clone(), partner::reconcile(obj, ctx)).instrument(span)))
        },
        |_, e: &Error, _| error_policy(e),
        ctx.clone(),
        world.partners.clone(),
        throttled(prx, PARTNER_WINDOW)
            .map(Ok::<_, std::convert::Infallible>)
            .take_until(shutdown.clone()),
        cfg.clone(),
    )
    .for_each(|r| async move { log_applier(partner::CONTROLLER, r.map(|_| ())) });
    let lane = queues.lane.clone();
    let tenants = applier(
        move |obj, ctx: Arc<Ctx>| {
            let span = tracing::info_span!("reconcile", controller = tenant::CONTROLLER, "object.name" = %obj.name_any(), "object.namespace" = %obj.namespace().unwrap_or_default());
            let lane = lane.clone();
            Box::pin(async move {
                let r = spawned(measured(tenant::CONTROLLER, ctx.clone(), tenant::reconcile(obj, ctx)).instrument(span)).await;
                lane.finished();
                r
            })
        },
        |_, e: &Error, _| error_policy(e),
        ctx.clone(),
        world.tenants.clone(),
        trx.map(Ok::<_, std::convert::Infallible>).take_until(shutdown.clone()),
        tenant_cfg,
    )
    .for_each(|r| async move { log_applier(tenant::CONTROLLER, r.map(|_| ())) });
    let invites = applier(
        |obj, ctx: Arc<Ctx>| {
            let span = tracing::info_span!("reconcile", controller = invite::CONTROLLER, "object.name" = %obj.name_any(), "object.namespace" = %obj.namespace().unwrap_or_default());
            Box::pin(spawned(measured(invite::CONTROLLER, ctx.clone(), invite::reconcile(obj, ctx)).instrument(span)))
        },
        |_, e: &Error, _| error_policy(e),
        ctx.clone(),
        world.invites.clone(),
        irx.map(Ok::<_, std::convert::Infallible>).take_until(shutdown.clone()),
        ControllerConfig::default().concurrency(4),
    )
    .for_each(|r| async move { log_applier(invite::CONTROLLER, r.map(|_| ())) });
    let result = tokio::select! {
        _ = async { futures::join!(partners, tenants, invites) } => Ok(()),
        e = leadership.lost() => Err(e),
    };
    telemetry.set_leader(&leadership.lease, &leadership.identity, false);
    match &result {
        Ok(()) => tracing::info!("controllers stopped"),
        Err(e) => tracing::error!(error = %e, "controllers stopped"),
    }
    // Release the Lease only after the controllers stopped writing, so that the next leader
    // starts on a quiet cluster.
    leadership.release().await;
    if result.is_ok() {
        let _ = web.await;
    }
    telemetry.set_ready(false);
    reflectors.shutdown().await;
    result
}

/// At most one partner reconcile per partner per this window, however many tenant, namespace
/// and child events ask for one (see [`throttled`]).
pub const PARTNER_WINDOW: Duration = Duration::from_millis(250);

/// Reconcile requests with at most one per object per `window`: the first passes at once,
/// later ones within the window are coalesced into one at its end. A partner reconcile reads
/// every tenant of the partner (count, workspaces), and every tenant's creation, workspace and
/// namespace events ask for one: unthrottled, 1,000 new tenants cost ~2,000 partner passes of
/// 1,000 tenants each (quadratic); throttled, four per second while they keep coming.
fn throttled<K>(
    mut rx: futures::channel::mpsc::UnboundedReceiver<kube::runtime::reflector::ObjectRef<K>>,
    window: Duration,
) -> futures::channel::mpsc::UnboundedReceiver<kube::runtime::reflector::ObjectRef<K>>
where
    K: Resource + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
{
    let (tx, out) = futures::channel::mpsc::unbounded();
    tokio::spawn(async move {
        let mut sent: HashMap<kube::runtime::reflector::ObjectRef<K>, tokio::time::Instant> =
            HashMap::new();
        let mut pending: std::collections::HashSet<kube::runtime::reflector::ObjectRef<K>> =
            std::collections::HashSet::new();
        let mut tick = tokio::time::interval(window / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = rx.next() => {
                    let Some(obj) = next else { break };
                    let now = tokio::time::Instant::now();
                    if sent.get(&obj).is_none_or(|t| now.duration_since(*t) >= window) {
                        sent.insert(obj.clone(), now);
                        if tx.unbounded_send(obj).is_err() {
                            return;
                        }
                    } else {
                        pending.insert(obj);
                    }
                }
                _ = tick.tick() => {
                    let now = tokio::time::Instant::now();
                    let due: Vec<_> = pending
                        .iter()
                        .filter(|o| sent.get(*o).is_none_or(|t| now.duration_since(*t) >= window))
                        .cloned()
                        .collect();
                    for obj in due {
                        pending.remove(&obj);
                        sent.insert(obj.clone(), now);
                        if tx.unbounded_send(obj).is_err() {
                            return;
                        }
                    }
                    sent.retain(|_, t| now.duration_since(*t) < window);
                }
            }
        }
        for obj in pending {
            let _ = tx.unbounded_send(obj);
        }
    });
    out
}

fn log_applier<E: std::fmt::Display>(controller: &str, r: Result<(), E>) {
    if let Err(e) = r {
        // Reconcile failures are logged (and counted) where they happen; this is the rest,
        // e.g. a request for an object already gone from the store.
        tracing::debug!(controller, error = %e, "applier");
    }
}

/// How soon a pass that found its copy stale looks again (the watch is usually that close).
pub(crate) const STALE_RETRY: Duration = Duration::from_millis(500);

/// Transient errors: retry with a delay (a stale copy soon, the API later).
fn error_policy(e: &Error) -> Action {
    match e {
        Error::Stale(_) | Error::NamespaceTaken(_) => Action::requeue(STALE_RETRY),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

/// Run a reconcile on a task of its own: the applier polls every reconcile it runs from its
/// one task, so without this all reconciles share one thread (one core at 10,000 tenants).
/// The task is aborted when the applier drops the reconcile (the controllers were dropped
/// without a graceful shutdown): no reconcile outlives its controller.
async fn spawned<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(tokio::spawn(fut));
    match (&mut task.0).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("reconcile task cancelled: {e}"),
    }
}

/// Time a reconcile and count it in controller-runtime's metrics.
async fn measured(
    controller: &'static str,
    ctx: Arc<Ctx>,
    fut: impl Future<Output = Result<Next, Error>>,
) -> Result<Action, Error> {
    let start = Instant::now();
    let r = fut.await;
    let (result, out) = match r {
        Ok(Next::AwaitChange) => (ReconcileResult::Success, Ok(Action::await_change())),
        Ok(Next::RequeueAfter(d)) => (ReconcileResult::RequeueAfter, Ok(Action::requeue(d))),
        Err(e) => {
            match &e {
                Error::Stale(_) => tracing::debug!(error = %e, "reconcile retried"),
                _ => tracing::warn!(error = %e, kind = e.metric_label(), "reconcile failed"),
            }
            (ReconcileResult::Error, Err(e))
        }
    };
    ctx.telemetry
        .metrics
        .observe(controller, result, start.elapsed());
    out
}

/// A namespace's metadata straight from the API (only after a create found it existing).
pub(crate) async fn get_namespace_meta(
    client: &Client,
    name: &str,
) -> Result<Option<children::Ns>, Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let got = api
        .get_metadata_opt(name)
        .await
        .map_err(|e| Error::api("get", "Namespace".into(), name, e))?;
    Ok(got.map(|m| children::Ns::of(&m.metadata)))
}

/// A client whose API server answers 500 to every request, and how many requests it got: for
/// unit tests of what a pass sends.
#[cfg(test)]
pub(crate) fn counting_client() -> (Client, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let service = tower::service_fn(move |_: hyper::Request<kube::client::Body>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            let body = http_body_util::Full::new(hyper::body::Bytes::from_static(b"{}"));
            Ok::<_, std::convert::Infallible>(
                hyper::Response::builder().status(500).body(body).unwrap(),
            )
        }
    });
    (Client::new(service, "default"), requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_notes_fit_the_api_servers_limit() {
        assert_eq!(event_note("short".into()), "short");
        let exact = "x".repeat(MAX_EVENT_NOTE);
        assert_eq!(event_note(exact.clone()), exact);
        let long = "é".repeat(MAX_EVENT_NOTE);
        let cut = event_note(long);
        assert!(cut.len() <= MAX_EVENT_NOTE, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
    }
}
