//! HTTP: authentication, impersonation, authorization, measurement and faults around
//! every request, then dispatch to discovery, OpenAPI, the kube-sim control endpoints or
//! the resource handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use crate::api;
use crate::authz::{Attributes, Decision, UserInfo, forbidden_message};
use crate::faults::{Faults, RequestKey, is_write};
use crate::request::{Query, RequestInfo, request_info};
use crate::sim::{Sim, admin};
use crate::status::ApiError;

/// A response body and its metadata, before it becomes HTTP.
pub struct Reply {
    pub code: u16,
    pub body: Body,
    pub content_type: String,
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn json(code: u16, body: impl Into<Bytes>) -> Reply {
        Reply {
            code,
            body: Body::from(body.into()),
            content_type: "application/json".into(),
            warnings: Vec::new(),
        }
    }
    pub fn value(code: u16, v: &serde_json::Value) -> Reply {
        Reply::json(code, serde_json::to_vec(v).unwrap_or_default())
    }
    pub fn with_type(mut self, ct: &str) -> Reply {
        self.content_type = ct.to_string();
        self
    }
}

pub fn router(sim: Arc<Sim>) -> axum::Router {
    axum::Router::new().fallback(move |req: Request<Body>| {
        let sim = sim.clone();
        async move { handle(sim, req).await }
    })
}

fn error_response(e: &ApiError) -> Response {
    let mut r = Response::new(Body::from(
        serde_json::to_vec(&e.to_status()).unwrap_or_default(),
    ));
    *r.status_mut() = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

fn to_response(reply: Reply) -> Response {
    let mut r = Response::new(reply.body);
    *r.status_mut() = StatusCode::from_u16(reply.code).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&reply.content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    for w in reply.warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

pub async fn handle(sim: Arc<Sim>, req: Request<Body>) -> Response {
    match handle_inner(sim, req).await {
        Ok(reply) => to_response(reply),
        Err(e) => error_response(&e),
    }
}

/// The field manager a write is recorded under: `fieldManager`, else the user agent's program name.
pub fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager") {
        return m.to_string();
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").to_string()
}

async fn handle_inner(sim: Arc<Sim>, req: Request<Body>) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query()).map_err(ApiError::bad_request)?;
    let method = parts.method.as_str().to_string();
    let info = request_info(&method, &path, &query);
    let headers = parts.headers;

    let user = authenticate(&sim, &headers)?;
    let is_admin = user.groups.iter().any(|g| g == "system:masters");

    if path.starts_with("/kube-sim/") {
        if !is_admin {
            return Err(ApiError::forbidden(format!(
                "forbidden: User \"{}\" cannot {} path \"{path}\"",
                user.name,
                method.to_ascii_lowercase()
            )));
        }
        let body = read_body(body).await?;
        return control(&sim, &method, &path, &body);
    }

    let faults = sim.faults.read().map(|f| f.clone()).unwrap_or_default();
    let long_running = info.verb == "watch";
    let _permit = if long_running {
        None
    } else {
        let sem = sim.in_flight.read().expect("lock").clone();
        match sem.try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => return Err(ApiError::too_many_requests(1)),
        }
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if info.resource_request {
        sim.metrics.count(RequestKey {
            verb: info.verb.clone(),
            group: info.group.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            field_manager: if is_write(&info.verb) {
                field_manager(&query, &headers)
            } else {
                String::new()
            },
        });
    } else {
        sim.metrics.count(RequestKey {
            verb: info.verb.clone(),
            group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            field_manager: path.clone(),
        });
    }
    if is_write(&info.verb) && info.resource_request && write_fault(&faults) {
        return Err(if faults.write_error_code == 429 {
            ApiError::too_many_requests(faults.retry_after_seconds.max(1))
        } else {
            ApiError::internal("kube-sim injected a write failure")
        });
    }

    if !is_admin {
        let attrs = attributes(&user, &info);
        if let Decision::Deny { reason } = sim.rbac().authorize(&attrs) {
            return Err(ApiError {
                details: info.resource_request.then(|| {
                    let mut d = serde_json::json!({"kind": info.resource});
                    if !info.name.is_empty() {
                        d["name"] = serde_json::json!(info.name);
                    }
                    if !info.group.is_empty() {
                        d["group"] = serde_json::json!(info.group);
                    }
                    d
                }),
                ..ApiError::forbidden(forbidden_message(&attrs, &reason))
            });
        }
    }

    if !info.resource_request {
        return crate::discovery::non_resource(&sim, &path, &headers);
    }
    let body = read_body(body).await?;
    api::serve(&sim, &user, &info, &query, &headers, body).await
}

fn write_fault(f: &Faults) -> bool {
    f.write_error_rate > 0.0 && fastrand::f64() < f.write_error_rate
}

pub fn attributes(user: &UserInfo, info: &RequestInfo) -> Attributes {
    Attributes {
        user: user.clone(),
        verb: info.verb.clone(),
        namespace: info.namespace.clone(),
        api_group: info.group.clone(),
        api_version: info.version.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        name: info.name.clone(),
        resource_request: info.resource_request,
        path: info.path.clone(),
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .map_err(|e| {
            ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("the request body could not be read: {e}"),
            )
        })
}

/// Bearer tokens from the token file, impersonation headers (authorized as `impersonate`), else the admin.
fn authenticate(sim: &Sim, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let mut user = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => {
            let token = auth
                .strip_prefix("Bearer ")
                .ok_or_else(ApiError::unauthorized)?
                .trim();
            let entry = sim
                .config
                .tokens
                .iter()
                .find(|t| t.token == token)
                .ok_or_else(ApiError::unauthorized)?;
            let mut groups = entry.groups.clone();
            groups.push("system:authenticated".into());
            UserInfo {
                name: entry.user.clone(),
                uid: entry.uid.clone(),
                groups,
                extra: Default::default(),
            }
        }
        None => admin(),
    };
    let imp_user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let imp_groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let imp_uid = headers
        .get("impersonate-uid")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if imp_user.is_none() {
        if !imp_groups.is_empty() || imp_uid.is_some() {
            return Err(ApiError::new(
                500,
                "InternalError",
                "Internal error occurred: requested [{Group  ...}] without impersonating a user"
                    .to_string(),
            ));
        }
        return Ok(user);
    }
    let target = imp_user.unwrap_or_default();
    let is_admin = user.groups.iter().any(|g| g == "system:masters");
    let check = |resource: &str, group: &str, name: &str| -> Result<(), ApiError> {
        if is_admin {
            return Ok(());
        }
        let attrs = Attributes {
            user: user.clone(),
            verb: "impersonate".into(),
            api_group: group.into(),
            resource: resource.into(),
            name: name.into(),
            resource_request: true,
            ..Default::default()
        };
        match sim.rbac().authorize(&attrs) {
            Decision::Allow => Ok(()),
            Decision::Deny { reason } => {
                Err(ApiError::forbidden(forbidden_message(&attrs, &reason)))
            }
        }
    };
    if let Some(sa) = target.strip_prefix("system:serviceaccount:") {
        let (ns, name) = sa.split_once(':').unwrap_or(("", sa));
        check("serviceaccounts", "", name).map_err(|e| ApiError {
            message: e.message.replace(
                "at the cluster scope",
                &format!("in the namespace \"{ns}\""),
            ),
            ..e
        })?;
    } else {
        check("users", "", &target)?;
    }
    for g in &imp_groups {
        check("groups", "", g)?;
    }
    if let Some(u) = &imp_uid {
        check("uids", "authentication.k8s.io", u)?;
    }
    let mut groups = imp_groups;
    if target != "system:anonymous"
        && !groups
            .iter()
            .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
    {
        groups.push("system:authenticated".into());
    }
    if let Some(sa) = target.strip_prefix("system:serviceaccount:") {
        let ns = sa.split(':').next().unwrap_or_default();
        for g in [
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{ns}"),
        ] {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    user = UserInfo {
        name: target,
        uid: imp_uid.unwrap_or_default(),
        groups,
        extra: Default::default(),
    };
    Ok(user)
}

/// `/kube-sim/metrics` (GET), `/kube-sim/metrics/reset` (POST), `/kube-sim/faults` (GET, PUT),
/// `/kube-sim/watches/drop` (POST), `/kube-sim/stats` (GET).
fn control(sim: &Sim, method: &str, path: &str, body: &[u8]) -> Result<Reply, ApiError> {
    match (method, path) {
        ("GET", "/kube-sim/metrics") => Ok(Reply::value(200, &sim.metrics.snapshot())),
        ("POST", "/kube-sim/metrics/reset") => {
            sim.metrics.reset();
            Ok(Reply::value(200, &sim.metrics.snapshot()))
        }
        ("GET", "/kube-sim/faults") => Ok(Reply::value(
            200,
            &serde_json::to_value(&*sim.faults.read().expect("lock")).unwrap_or_default(),
        )),
        ("PUT", "/kube-sim/faults") => {
            let f: Faults = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("faults: {e}")))?;
            f.validate().map_err(ApiError::bad_request)?;
            sim.set_faults(f.clone());
            Ok(Reply::value(
                200,
                &serde_json::to_value(&f).unwrap_or_default(),
            ))
        }
        ("POST", "/kube-sim/watches/drop") => {
            sim.drop_watches.send_modify(|v| *v += 1);
            Ok(Reply::value(200, &serde_json::json!({"dropped": true})))
        }
        ("GET", "/kube-sim/stats") => {
            let store = sim.store.read().expect("lock");
            Ok(Reply::value(
                200,
                &serde_json::json!({"objects": store.object_count(), "jsonBytes": store.json_bytes(), "resourceVersion": store.current_rv()}),
            ))
        }
        _ => Err(ApiError::no_route()),
    }
}
