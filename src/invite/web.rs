//! The acceptance page, served on `listen.web` under the path of `invites.acceptUrl`:
//!
//! - `GET  <path>/<namespace>/<name>?token=…` shows the partner (with its branding when it is
//!   entitled to it), the invited e-mail and the expiry, and an Accept button;
//! - `POST <path>/<namespace>/<name>` (form field `token`) accepts.
//!
//! Every refusal is a plain page with a 4xx status: 400 malformed link, 404 unknown invite or
//! wrong token (the two are not told apart), 410 used, expired or failed invitation, 403 a
//! cross-site POST, 429 too many failed attempts. Guessing is hopeless (256-bit tokens, hashes
//! compared in constant time) and slow besides: failures are rate-limited per client address
//! and overall. Responses forbid framing, caching and referrers (the URL carries the token).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{escape_html, token};
use crate::api::{InvitePhase, Partner, PartnerAdminInvite};
use crate::controller::Ctx;

/// Failed attempts a client may make at once, and how fast that allowance refills.
pub const CLIENT_BURST: f64 = 10.0;
pub const CLIENT_REFILL_PER_SEC: f64 = 1.0 / 6.0;
/// Failed attempts of all clients together (a distributed guess).
pub const GLOBAL_BURST: f64 = 100.0;
pub const GLOBAL_REFILL_PER_SEC: f64 = 1.0;
/// Clients remembered at most; beyond, the fullest buckets are forgotten first.
const MAX_CLIENTS: usize = 100_000;

/// Token buckets of failed attempts: per client address and overall.
pub struct RateLimiter {
    inner: Mutex<Buckets>,
}

struct Buckets {
    clients: HashMap<IpAddr, (f64, Instant)>,
    global: (f64, Instant),
}

fn refill(bucket: &mut (f64, Instant), burst: f64, rate: f64, now: Instant) {
    let elapsed = now.saturating_duration_since(bucket.1).as_secs_f64();
    bucket.0 = (bucket.0 + elapsed * rate).min(burst);
    bucket.1 = now;
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            inner: Mutex::new(Buckets {
                clients: HashMap::new(),
                global: (GLOBAL_BURST, Instant::now()),
            }),
        }
    }
}

impl RateLimiter {
    /// `None` when `ip` may try; else how many seconds until it may.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        refill(&mut b.global, GLOBAL_BURST, GLOBAL_REFILL_PER_SEC, now);
        let global = b.global.0;
        let client = match b.clients.get_mut(&ip) {
            Some(c) => {
                refill(c, CLIENT_BURST, CLIENT_REFILL_PER_SEC, now);
                c.0
            }
            None => CLIENT_BURST,
        };
        let wait = |level: f64, rate: f64| ((1.0 - level) / rate).ceil().max(1.0) as u64;
        match (client < 1.0, global < 1.0) {
            (false, false) => None,
            (true, false) => Some(wait(client, CLIENT_REFILL_PER_SEC)),
            (false, true) => Some(wait(global, GLOBAL_REFILL_PER_SEC)),
            (true, true) => {
                Some(wait(client, CLIENT_REFILL_PER_SEC).max(wait(global, GLOBAL_REFILL_PER_SEC)))
            }
        }
    }

    /// Count a failed attempt of `ip`.
    pub fn fail(&self, ip: IpAddr, now: Instant) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        refill(&mut b.global, GLOBAL_BURST, GLOBAL_REFILL_PER_SEC, now);
        b.global.0 = (b.global.0 - 1.0).max(0.0);
        if b.clients.len() >= MAX_CLIENTS && !b.clients.contains_key(&ip) {
            // Forget the clients whose allowance has refilled: they are as good as new.
            b.clients.retain(|_, c| {
                refill(c, CLIENT_BURST, CLIENT_REFILL_PER_SEC, now);
                c.0 < CLIENT_BURST
            });
        }
        let c = b.clients.entry(ip).or_insert((CLIENT_BURST, now));
        refill(c, CLIENT_BURST, CLIENT_REFILL_PER_SEC, now);
        c.0 = (c.0 - 1.0).max(0.0);
    }
}

/// What the handlers share.
pub struct Web {
    pub ctx: Arc<Ctx>,
    pub limiter: RateLimiter,
    /// The path of `invites.acceptUrl` (`/invites`), without a trailing slash.
    pub base_path: String,
    /// The origin of `invites.acceptUrl` (`https://portal.example`), for the cross-site check.
    pub origin: Option<String>,
}

/// The path and origin of an acceptance URL: `https://portal.example/x/invites` ->
/// (`/x/invites`, `https://portal.example`).
pub fn split_accept_url(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return ("/invites".into(), None);
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    (
        path.to_string(),
        Some(format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            authority.to_ascii_lowercase()
        )),
    )
}

/// The router of the acceptance page.
pub fn router(ctx: Arc<Ctx>) -> Router {
    let (base_path, origin) = split_accept_url(
        ctx.config
            .invites
            .accept_url
            .as_deref()
            .unwrap_or("http://localhost/invites"),
    );
    let route = format!("{base_path}/{{namespace}}/{{name}}");
    let web = Arc::new(Web {
        ctx,
        limiter: RateLimiter::default(),
        base_path,
        origin,
    });
    Router::new()
        .route(&route, get(show).post(accept))
        .fallback(|| async {
            page(
                StatusCode::NOT_FOUND,
                None,
                "Not found",
                "<p>There is nothing here. Invitation links look like <code>…/invites/partner-name/invite-name?token=…</code>.</p>".into(),
            )
        })
        .with_state(web)
}

/// Bind `addr` and serve the acceptance page (and the portal, when configured: see
/// [`crate::portal`]) until `shutdown`; returns the bound address.
pub async fn serve(
    ctx: Arc<Ctx>,
    addr: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("binding the web endpoint to {addr}: {e}"))
    })?;
    let bound = listener.local_addr()?;
    tracing::info!(endpoint = "web", address = %bound, "listening (invitation acceptance page)");
    // The portal (when `portal:` is configured) shares the server: one listener, one stack.
    let portal = crate::portal::router(ctx.clone())
        .await
        .map_err(|e| std::io::Error::other(format!("the portal: {e}")))?;
    let app = match portal {
        Some(p) => router(ctx).merge(p),
        None => router(ctx),
    }
    .into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(endpoint = "web", error = %e, "HTTP server failed");
        }
    });
    Ok((bound, task))
}

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
}

/// The client's address: the configured proxy header's last entry, else the peer.
fn client_ip(web: &Web, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    web.ctx
        .config
        .invites
        .client_ip_header
        .as_deref()
        .and_then(|h| headers.get_all(h).iter().next_back())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer.ip())
}

/// Why a request is turned away, each with its page.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Unknown,
    Used,
    Expired(String),
    Failed,
    CrossSite,
    TooMany(u64),
    Internal,
}

impl Refusal {
    fn counts_as_failure(&self) -> bool {
        matches!(self, Refusal::Malformed | Refusal::Unknown)
    }

    fn into_response(self, branding: Option<&Branded>) -> Response {
        let (code, title, body) = match &self {
            Refusal::Malformed => (
                StatusCode::BAD_REQUEST,
                "This link is incomplete",
                "<p>The invitation link is incomplete or damaged. Open it again from the invitation e-mail, or copy the whole link, up to its very end.</p>".to_string(),
            ),
            Refusal::Unknown => (
                StatusCode::NOT_FOUND,
                "This invitation link is not valid",
                "<p>It may have been withdrawn, replaced by a newer invitation e-mail, or mistyped. Ask the person who invited you for a new invitation.</p>".to_string(),
            ),
            Refusal::Used => (
                StatusCode::GONE,
                "This invitation was already accepted",
                "<p>An invitation works once, and this one has been used. If that was you, you are already an administrator: sign in with your e-mail address.</p>".to_string(),
            ),
            Refusal::Expired(at) => (
                StatusCode::GONE,
                "This invitation has expired",
                format!(
                    "<p>It was valid until {}. Ask the person who invited you to send a new one.</p>",
                    escape_html(at)
                ),
            ),
            Refusal::Failed => (
                StatusCode::GONE,
                "This invitation is no longer valid",
                "<p>Its delivery failed and it was given up. Ask the person who invited you to send a new one.</p>".to_string(),
            ),
            Refusal::CrossSite => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "<p>This request came from another site. Open the invitation link directly and accept there.</p>".to_string(),
            ),
            Refusal::TooMany(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!(
                    "<p>Too many invalid invitation links were tried from your address. Try again in {secs} seconds.</p>"
                ),
            ),
            Refusal::Internal => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "<p>The invitation service cannot reach the cluster right now. Try again in a minute.</p>".to_string(),
            ),
        };
        let mut r = page(code, branding, title, body);
        if let Refusal::TooMany(secs) = self
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// The partner as its invitee sees it.
pub struct Branded {
    pub partner: String,
    pub display_name: String,
    pub branding: std::collections::BTreeMap<String, String>,
}

fn branded(web: &Web, namespace: &str) -> Option<Branded> {
    let cfg = &web.ctx.config;
    let name = crate::resources::partner_of_namespace(cfg, namespace)?;
    let obj = web.ctx.world.partner(&name)?;
    let p: &Partner = obj.0.as_ref().ok()?;
    Some(Branded {
        partner: name,
        display_name: p.spec.display_name.clone(),
        branding: crate::resources::customer_branding(p, cfg),
    })
}

/// The invite named in the URL whose token hash matches `token`: from the store (unless
/// `fresh`), else from the API (the store may lag: a token issued a moment ago; and an
/// acceptance must decide on the current object).
async fn find(
    web: &Web,
    namespace: &str,
    name: &str,
    token: Option<&str>,
    fresh: bool,
) -> Result<PartnerAdminInvite, Refusal> {
    let token = token.ok_or(Refusal::Malformed)?;
    if !crate::config::is_dns_label(namespace)
        || !crate::config::is_dns_subdomain(name)
        || !token::well_formed(token)
    {
        return Err(Refusal::Malformed);
    }
    let matches = |i: &PartnerAdminInvite| {
        i.status
            .as_ref()
            .and_then(|s| s.token_hash.as_deref())
            .is_some_and(|h| token::verify(token, h))
    };
    let cached = web
        .ctx
        .world
        .invites
        .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
        .and_then(|o| o.0.as_ref().ok().cloned())
        .filter(|_| !fresh);
    if let Some(i) = cached.filter(|i| matches(i)) {
        return Ok(i);
    }
    let api: kube::Api<PartnerAdminInvite> =
        kube::Api::namespaced(web.ctx.client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(i)) if matches(&i) => Ok(i),
        Ok(_) => Err(Refusal::Unknown),
        Err(e) => {
            tracing::warn!(error = %e, "reading an invite for the acceptance page");
            Err(Refusal::Internal)
        }
    }
}

/// Whether a matching invite can still be accepted.
pub fn acceptable(i: &PartnerAdminInvite, now: jiff::Timestamp) -> Result<(), Refusal> {
    let status = i.status.clone().unwrap_or_default();
    let expires = crate::controller::invite::expires_at(i);
    match status.phase {
        Some(InvitePhase::Accepted) => Err(Refusal::Used),
        Some(InvitePhase::Failed) => Err(Refusal::Failed),
        Some(InvitePhase::Expired) => Err(Refusal::Expired(
            expires.map(|e| e.to_string()).unwrap_or_default(),
        )),
        _ => match expires {
            Some(e) if now < e => Ok(()),
            e => Err(Refusal::Expired(
                e.map(|e| e.to_string()).unwrap_or_default(),
            )),
        },
    }
}

/// A POST that a browser marks as coming from another site (`Sec-Fetch-Site`), or whose
/// `Origin` is neither the acceptance URL's nor this host's.
pub fn cross_site(headers: &HeaderMap, origin: Option<&str>) -> bool {
    let text = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    // Browsers that send Fetch metadata say it outright. (Their `Origin` may be "null" here:
    // the page's `Referrer-Policy: no-referrer` makes form posts send an opaque origin.)
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(from) = text("origin") else {
        return false; // not a browser's cross-site form post; the token is the credential
    };
    let from = from.to_ascii_lowercase();
    let host = text("host").map(str::to_ascii_lowercase);
    let same_host = host
        .as_deref()
        .is_some_and(|h| from == format!("http://{h}") || from == format!("https://{h}"));
    !(origin == Some(from.as_str()) || same_host)
}

async fn show(
    State(web): State<Arc<Web>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    query: Result<Query<TokenParam>, QueryRejection>,
) -> Response {
    let ip = client_ip(&web, &headers, peer);
    let token = query.ok().and_then(|q| q.0.token);
    let result = guarded(&web, ip, &namespace, &name, token.as_deref(), false).await;
    let branding = branded(&web, &namespace);
    let invite = match result {
        Ok(i) => i,
        Err(r) => return r.into_response(branding.as_ref()),
    };
    let (display, partner) = branding
        .as_ref()
        .map(|b| (b.display_name.clone(), b.partner.clone()))
        .unwrap_or_else(|| (namespace.clone(), namespace.clone()));
    let expires = crate::controller::invite::expires_at(&invite)
        .map(|e| e.to_string())
        .unwrap_or_default();
    let token = token.unwrap_or_default();
    let body = format!(
        "<p><b>{email}</b>, you are invited to become an administrator of <b>{display}</b> \
         ({partner}): you will be able to create and manage its customer tenants and invite \
         further administrators.</p>\
         <p>This invitation works once and expires at <span id=\"expires\">{expires}</span>.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <button id=\"accept\" type=\"submit\">Accept invitation</button></form>\
         <p class=\"muted\">Not you, or not expected? Close this page: nothing happens unless you accept.</p>",
        email = escape_html(&invite.spec.email),
        display = escape_html(&display),
        partner = escape_html(&partner),
        expires = escape_html(&expires),
        action = escape_html(&format!("{}/{namespace}/{name}", web.base_path)),
        token = escape_html(&token),
    );
    page(
        StatusCode::OK,
        branding.as_ref(),
        &format!("Invitation to administer {display}"),
        body,
    )
}

async fn accept(
    State(web): State<Arc<Web>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    form: Result<Form<TokenParam>, FormRejection>,
) -> Response {
    let ip = client_ip(&web, &headers, peer);
    let branding = branded(&web, &namespace);
    if cross_site(&headers, web.origin.as_deref()) {
        tracing::info!(client = %ip, "cross-site POST on the acceptance page refused");
        return Refusal::CrossSite.into_response(branding.as_ref());
    }
    let token = form.ok().and_then(|f| f.0.token);
    // Decide on the invite as the API server has it now; when another write comes first (the
    // controller's, a second click), decide again on the new state.
    let mut attempts = 0;
    let invite = loop {
        let invite = match guarded(&web, ip, &namespace, &name, token.as_deref(), true).await {
            Ok(i) => i,
            Err(r) => return r.into_response(branding.as_ref()),
        };
        match crate::controller::invite::accept(&web.ctx, &invite).await {
            Ok(_) => break invite,
            Err(kube::Error::Api(s)) if s.code == 409 && attempts < 3 => attempts += 1,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an invite");
                return Refusal::Internal.into_response(branding.as_ref());
            }
        }
    };
    let display = branding
        .as_ref()
        .map(|b| b.display_name.clone())
        .unwrap_or(namespace);
    let body = format!(
        "<p id=\"accepted\">Welcome, <b>{email}</b>: you are now an administrator of <b>{display}</b>.</p>\
         <p>Sign in to the platform with this e-mail address to manage {display}'s tenants. Your \
         rights take effect within seconds.</p>",
        email = escape_html(&invite.spec.email),
        display = escape_html(&display),
    );
    page(
        StatusCode::OK,
        branding.as_ref(),
        "Invitation accepted",
        body,
    )
}

/// Rate limit, find, check: the invite the request may act on, or why not. Failures that look
/// like guessing (malformed, unknown, wrong token) count against the client.
async fn guarded(
    web: &Web,
    ip: IpAddr,
    namespace: &str,
    name: &str,
    token: Option<&str>,
    fresh: bool,
) -> Result<PartnerAdminInvite, Refusal> {
    if let Some(secs) = web.limiter.check(ip, Instant::now()) {
        return Err(Refusal::TooMany(secs));
    }
    let found = find(web, namespace, name, token, fresh).await;
    if let Err(r) = &found
        && r.counts_as_failure()
    {
        web.limiter.fail(ip, Instant::now());
        tracing::info!(client = %ip, refusal = ?r, invite = %name, %namespace, "acceptance page: refused");
    }
    let invite = found?;
    acceptable(&invite, jiff::Timestamp::now())?;
    Ok(invite)
}

/// A complete HTML page with the security headers.
pub fn page(code: StatusCode, branding: Option<&Branded>, title: &str, body: String) -> Response {
    let color = branding
        .and_then(|b| b.branding.get("primaryColor"))
        .filter(|c| crate::config::is_color(c))
        .map(String::as_str)
        .unwrap_or("#333333");
    // The partner's name follows the logo, so the image is decorative (empty alt).
    let logo = branding
        .and_then(|b| b.branding.get("logoUrl"))
        .filter(|u| crate::config::is_https_url(u))
        .map(|u| format!("<img class=\"logo\" src=\"{}\" alt=\"\">", escape_html(u)))
        .unwrap_or_default();
    let support = branding
        .and_then(|b| {
            b.branding
                .get("supportEmail")
                .map(|e| format!("Questions? Write to {}.", escape_html(e)))
                .or_else(|| {
                    b.branding
                        .get("supportUrl")
                        .map(|u| format!("Questions? See {}.", escape_html(u)))
                })
        })
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:0;background:#f5f5f5;color:#222}}\
         header{{background:{color};color:#fff;padding:16px 24px;display:flex;align-items:center;gap:16px}}\
         header .logo{{max-height:40px}} main{{max-width:640px;margin:32px auto;background:#fff;padding:24px 32px;border-radius:8px}}\
         button{{background:{color};color:#fff;border:0;padding:12px 24px;font-size:16px;border-radius:4px;cursor:pointer}}\
         .muted,footer{{color:#666;font-size:14px}} footer{{text-align:center}}\
         </style></head><body><header>{logo}<span>{partner}</span></header>\
         <main><h1>{title}</h1>{body}</main><footer>{support}</footer></body></html>",
        title = escape_html(title),
        partner = branding
            .map(|b| escape_html(&b.display_name))
            .unwrap_or_default(),
    );
    let mut r = (code, html).into_response();
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn accept_urls_split_into_path_and_origin() {
        assert_eq!(
            split_accept_url("https://Portal.Example/invites"),
            ("/invites".into(), Some("https://portal.example".into()))
        );
        assert_eq!(
            split_accept_url("http://127.0.0.1:8443/a/b/"),
            ("/a/b".into(), Some("http://127.0.0.1:8443".into()))
        );
        assert_eq!(
            split_accept_url("https://portal.example"),
            ("".into(), Some("https://portal.example".into()))
        );
    }

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let l = RateLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..CLIENT_BURST as usize {
            assert_eq!(l.check(ip, t0), None);
            l.fail(ip, t0);
        }
        let wait = l.check(ip, t0).expect("limited after the burst");
        assert!((1..=6).contains(&wait), "{wait}");
        // Others are not affected.
        assert_eq!(l.check(other, t0), None);
        // One failure's worth refills in 6 s.
        assert_eq!(l.check(ip, t0 + Duration::from_secs(6)), None);
    }

    #[test]
    fn many_clients_together_hit_the_global_limit() {
        let l = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..GLOBAL_BURST as u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.fail(ip, t0);
        }
        let fresh: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(l.check(fresh, t0).is_some(), "a new client is limited too");
        assert_eq!(l.check(fresh, t0 + Duration::from_secs(2)), None);
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            m
        };
        let origin = Some("https://portal.example");
        assert!(!cross_site(&h(&[]), origin), "no browser headers: allowed");
        assert!(!cross_site(
            &h(&[("sec-fetch-site", "same-origin")]),
            origin
        ));
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")]), origin));
        assert!(cross_site(&h(&[("sec-fetch-site", "same-site")]), origin));
        assert!(!cross_site(
            &h(&[("origin", "https://portal.example")]),
            origin
        ));
        assert!(cross_site(
            &h(&[("origin", "https://evil.example")]),
            origin
        ));
        assert!(cross_site(&h(&[("origin", "null")]), origin));
        // What Chromium sends for the page's own form under Referrer-Policy: no-referrer.
        assert!(!cross_site(
            &h(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            origin
        ));
        assert!(cross_site(
            &h(&[
                ("origin", "https://portal.example"),
                ("sec-fetch-site", "cross-site")
            ]),
            origin
        ));
        assert!(!cross_site(
            &h(&[
                ("origin", "http://127.0.0.1:8443"),
                ("host", "127.0.0.1:8443")
            ]),
            origin
        ));
    }

    #[test]
    fn pages_escape_and_carry_security_headers() {
        let b = Branded {
            partner: "acme".into(),
            display_name: "<Acme>".into(),
            branding: [("primaryColor".to_string(), "#112233".to_string())].into(),
        };
        let r = page(StatusCode::OK, Some(&b), "T", "<p>x</p>".into());
        let h = r.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(
            h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }

    #[test]
    fn refusals_have_their_status_codes() {
        for (r, code) in [
            (Refusal::Malformed, 400),
            (Refusal::Unknown, 404),
            (Refusal::Used, 410),
            (Refusal::Expired("t".into()), 410),
            (Refusal::Failed, 410),
            (Refusal::CrossSite, 403),
            (Refusal::TooMany(3), 429),
            (Refusal::Internal, 503),
        ] {
            let too_many = matches!(r, Refusal::TooMany(_));
            let resp = r.into_response(None);
            assert_eq!(resp.status().as_u16(), code);
            if too_many {
                assert_eq!(resp.headers()[header::RETRY_AFTER], "3");
            }
        }
    }
}
