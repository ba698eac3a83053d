//! Observability: logs (tracing), Prometheus metrics in controller-runtime's names, and the
//! health (`/healthz`, `/readyz`) and metrics (`/metrics`) HTTP endpoints.
//!
//! The metrics are a small hand-written text exposition rather than `prometheus-client`: three
//! families with fixed labels need about a hundred lines, no extra dependency, and the output
//! is the plain Prometheus text format (0.0.4) every scraper reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Histogram buckets of `controller_runtime_reconcile_time_seconds`, as controller-runtime has them.
pub const RECONCILE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// The outcome of one reconcile, the `result` label of `controller_runtime_reconcile_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReconcileResult {
    Success,
    Error,
    RequeueAfter,
}

impl ReconcileResult {
    pub fn label(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::RequeueAfter => "requeue_after",
        }
    }
}

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Families {
    total: BTreeMap<(String, ReconcileResult), u64>,
    errors: BTreeMap<String, u64>,
    time: BTreeMap<String, Histogram>,
    /// (lease, identity) -> whether this replica leads.
    leader: Option<(String, String, bool)>,
}

/// Reconcile metrics of every controller.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

impl Metrics {
    /// Declare a controller so that its series exist (at zero) before its first reconcile.
    pub fn register(&self, controller: &str) {
        let mut f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        for r in [
            ReconcileResult::Success,
            ReconcileResult::Error,
            ReconcileResult::RequeueAfter,
        ] {
            f.total.entry((controller.to_string(), r)).or_default();
        }
        f.errors.entry(controller.to_string()).or_default();
        f.time
            .entry(controller.to_string())
            .or_insert_with(|| Histogram {
                counts: vec![0; RECONCILE_BUCKETS.len()],
                ..Default::default()
            });
    }

    /// Record one reconcile of `controller` that took `elapsed`.
    pub fn observe(&self, controller: &str, result: ReconcileResult, elapsed: Duration) {
        let mut f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        *f.total.entry((controller.to_string(), result)).or_default() += 1;
        if result == ReconcileResult::Error {
            *f.errors.entry(controller.to_string()).or_default() += 1;
        }
        let h = f
            .time
            .entry(controller.to_string())
            .or_insert_with(|| Histogram {
                counts: vec![0; RECONCILE_BUCKETS.len()],
                ..Default::default()
            });
        let secs = elapsed.as_secs_f64();
        for (i, b) in RECONCILE_BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// `controller_runtime_reconcile_total{controller, result}`.
    pub fn reconcile_total(&self, controller: &str, result: ReconcileResult) -> u64 {
        let f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        f.total
            .get(&(controller.to_string(), result))
            .copied()
            .unwrap_or(0)
    }

    /// `controller_runtime_reconcile_errors_total{controller}`.
    pub fn reconcile_errors(&self, controller: &str) -> u64 {
        let f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        f.errors.get(controller).copied().unwrap_or(0)
    }

    /// `leader_election_master_status{name, identity}`: 1 while this replica leads.
    pub fn set_leader(&self, lease: &str, identity: &str, leading: bool) {
        let mut f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        f.leader = Some((lease.to_string(), identity.to_string(), leading));
    }

    /// Whether this replica leads (false before the election started).
    pub fn is_leader(&self) -> bool {
        let f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        f.leader.as_ref().is_some_and(|l| l.2)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        if let Some((lease, identity, leading)) = &f.leader {
            out.push_str("# HELP leader_election_master_status Whether this replica holds the leader-election Lease (1) or stands by (0)\n");
            out.push_str("# TYPE leader_election_master_status gauge\n");
            let _ = writeln!(
                out,
                "leader_election_master_status{{name=\"{lease}\",identity=\"{identity}\"}} {}",
                u8::from(*leading)
            );
        }
        out.push_str("# HELP controller_runtime_reconcile_total Total number of reconciliations per controller\n");
        out.push_str("# TYPE controller_runtime_reconcile_total counter\n");
        for ((c, r), v) in &f.total {
            let _ = writeln!(
                out,
                "controller_runtime_reconcile_total{{controller=\"{c}\",result=\"{}\"}} {v}",
                r.label()
            );
        }
        out.push_str("# HELP controller_runtime_reconcile_errors_total Total number of reconciliation errors per controller\n");
        out.push_str("# TYPE controller_runtime_reconcile_errors_total counter\n");
        for (c, v) in &f.errors {
            let _ = writeln!(
                out,
                "controller_runtime_reconcile_errors_total{{controller=\"{c}\"}} {v}"
            );
        }
        out.push_str("# HELP controller_runtime_reconcile_time_seconds Length of time per reconciliation per controller\n");
        out.push_str("# TYPE controller_runtime_reconcile_time_seconds histogram\n");
        for (c, h) in &f.time {
            for (i, b) in RECONCILE_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "controller_runtime_reconcile_time_seconds_bucket{{controller=\"{c}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "controller_runtime_reconcile_time_seconds_bucket{{controller=\"{c}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "controller_runtime_reconcile_time_seconds_sum{{controller=\"{c}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "controller_runtime_reconcile_time_seconds_count{{controller=\"{c}\"}} {}",
                h.count
            );
        }
        out
    }
}

/// What the controllers report and the HTTP endpoints serve: metrics and readiness.
#[derive(Default)]
pub struct Telemetry {
    pub metrics: Metrics,
    ready: AtomicBool,
    web: Mutex<Option<SocketAddr>>,
}

impl Telemetry {
    pub fn new() -> Arc<Telemetry> {
        Arc::new(Telemetry::default())
    }
    /// Ready: every reflector has listed its kind once and the pages are served (a standby
    /// replica is ready: it serves the acceptance page and takes over at once when elected).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    /// `leader_election_master_status` of this replica.
    pub fn set_leader(&self, lease: &str, identity: &str, leading: bool) {
        self.metrics.set_leader(lease, identity, leading);
    }
    pub fn is_leader(&self) -> bool {
        self.metrics.is_leader()
    }
    /// Where the acceptance page listens (known once the controllers run).
    pub fn set_web_address(&self, addr: SocketAddr) {
        *self.web.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
    }
    pub fn web_address(&self) -> Option<SocketAddr> {
        *self.web.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The health router: `/healthz` (alive) and `/readyz` (caches synced).
pub fn health_router(t: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let t = t.clone();
                async move {
                    if t.is_ready() {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
                    }
                }
            }),
        )
}

/// The metrics router: `/metrics`.
pub fn metrics_router(t: Arc<Telemetry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let t = t.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    t.metrics.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// Bind `addr` (port 0 picks a free port) and serve `router` until `shutdown` resolves.
/// Returns the bound address and the server task.
pub async fn serve(
    what: &'static str,
    addr: &str,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("binding the {what} endpoint to {addr}: {e}"),
        )
    })?;
    let bound = listener.local_addr()?;
    tracing::info!(endpoint = what, address = %bound, "listening");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(endpoint = what, error = %e, "HTTP server failed");
        }
    });
    Ok((bound, task))
}

/// Logs: `RUST_LOG` filter (default `info`), human-readable or JSON.
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init();
    } else {
        let _ = builder.try_init();
    }
}
