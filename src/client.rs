//! The operator's client of the API server: kube's default stack (kubeconfig or in-cluster,
//! rustls), which retries 429, 503 and 504 answers with backoff after their `Retry-After`
//! (kube's server-aware `RetryPolicy`), plus one layer a controller at scale needs: **at most
//! `apiServer.maxRequestsInFlight` requests at once** (a `tower` concurrency limit).
//! Reconciles run many at once and a tenant's children are written side by side; the rest wait
//! their turn here instead of overrunning the API server's own limit
//! (`--max-mutating-requests-inflight`, 200 by default) and being refused. A watch holds its
//! slot only until its response starts; a request being retried keeps its slot while it waits.

use kube::client::ClientBuilder;
use tower::limit::ConcurrencyLimitLayer;

use crate::config::ApiServer;

/// A client from `config` with the in-flight limit of `api`.
pub fn build(config: kube::Config, api: &ApiServer) -> Result<kube::Client, kube::Error> {
    let limit = api.max_requests_in_flight.max(1) as usize;
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&ConcurrencyLimitLayer::new(limit))
        .build())
}

/// [`build`] from the kubeconfig (`KUBECONFIG`, `~/.kube/config`) or the in-cluster account.
pub async fn connect(api: &ApiServer) -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    build(config, api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    /// A server that counts the requests it holds at once, and answers every request's first
    /// attempt 429 with `Retry-After: 0` (the second attempt of a request carries its
    /// `?attempt` marker back through the counter of first attempts seen).
    #[derive(Default)]
    struct Server {
        now: AtomicUsize,
        peak: AtomicUsize,
        refused: AtomicUsize,
        served: AtomicUsize,
        seen: std::sync::Mutex<std::collections::HashSet<String>>,
    }

    async fn handle(
        axum::extract::State(s): axum::extract::State<Arc<Server>>,
        uri: axum::http::Uri,
    ) -> axum::response::Response {
        let now = s.now.fetch_add(1, Ordering::SeqCst) + 1;
        s.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.now.fetch_sub(1, Ordering::SeqCst);
        let first = s.seen.lock().unwrap().insert(uri.path().to_string());
        if first {
            s.refused.fetch_add(1, Ordering::SeqCst);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", "0")],
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}"#,
            )
                .into_response();
        }
        s.served.fetch_add(1, Ordering::SeqCst);
        (StatusCode::OK, r#"{"ok":true}"#).into_response()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_max_requests_in_flight_and_429s_are_retried() {
        let server = Arc::new(Server::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = build(
            config,
            &ApiServer {
                max_requests_in_flight: 3,
            },
        )
        .unwrap();
        let requests = (0..24).map(|i| {
            let client = client.clone();
            async move {
                let req = axum::http::Request::get(format!("/api/v1/x{i}"))
                    .body(Vec::new())
                    .unwrap();
                client.request_text(req).await
            }
        });
        let results = futures::future::join_all(requests).await;
        assert!(
            results.iter().all(Result::is_ok),
            "every request succeeded after its 429: {results:?}"
        );
        assert_eq!(
            server.refused.load(Ordering::SeqCst),
            24,
            "each was refused once"
        );
        assert_eq!(server.served.load(Ordering::SeqCst), 24);
        let peak = server.peak.load(Ordering::SeqCst);
        assert!(
            (2..=3).contains(&peak),
            "requests in flight at the server at once: {peak}, want at most 3 (and concurrency)"
        );
    }
}
