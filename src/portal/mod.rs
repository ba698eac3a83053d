//! The web Partner Portal, served under `/portal` on `listen.web` beside the invitation page,
//! by every replica alike (it reads the watch caches every replica keeps, and writes as the
//! signed-in person). Configured under `portal:`; off without it.
//!
//! - Sign-in ([`auth`]): `oidc` (OpenID Connect code flow with PKCE, [`oidc`]), `demo` (pick a
//!   user; loopback only) or `proxy` (an authenticating proxy's `X-Forwarded-Email` /
//!   `X-Forwarded-Groups`, believed from `trustedProxies` only).
//! - Sessions ([`session`]): one encrypted, HttpOnly, SameSite=Lax cookie with its expiry and
//!   the CSRF token of every form; every POST must carry the token and must not come from
//!   another site (`Sec-Fetch-Site` / `Origin`, as on the invitation page).
//! - Acting as the user ([`as_user`]): each API request carries `Impersonate-User`; RBAC and
//!   admission decide, and a refusal shows the API server's message.
//! - Pages ([`companies`], [`invites`]): Companies, Create Company, Edit, Invite Partner Admin, Template ([`template`]), Settings ([`settings`]), and for platform admins Partners ([`partners`]) and Partner Assignment ([`assignment`]); a tenant admin's own company ([`tenant_view`]).
//!
//! HTML is rendered on the server (minijinja templates with auto-escaping, embedded in the
//! binary) and works without JavaScript; one small script (served from the binary) proposes
//! the Company ID from the name as it is typed. The Content-Security-Policy allows nothing
//! from anywhere but the portal itself.

pub mod as_user;
pub mod assignment;
pub mod auth;
pub mod companies;
pub mod invites;
pub mod oidc;
pub mod partners;
pub mod session;
pub mod settings;
pub mod template;
pub mod tenant_view;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Key, PrivateCookieJar};
use serde::Serialize;

use crate::config::{Portal as PortalConfig, PortalAuth};
use crate::controller::Ctx;
use session::Session;

/// Where the portal lives on `listen.web`.
pub const BASE: &str = "/portal";

/// What every handler shares.
pub struct Portal {
    pub ctx: Arc<Ctx>,
    pub cfg: PortalConfig,
    pub auth: PortalAuth,
    /// `auth: oidc`: the provider.
    pub oidc: Option<oidc::Provider>,
    key: Key,
    templates: minijinja::Environment<'static>,
}

/// The router state (a local type, so that the cookie jar can find the key in it).
#[derive(Clone)]
pub struct St(pub Arc<Portal>);

impl FromRef<St> for Key {
    fn from_ref(st: &St) -> Key {
        st.0.key.clone()
    }
}

impl std::ops::Deref for St {
    type Target = Portal;
    fn deref(&self) -> &Portal {
        &self.0
    }
}

fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, src) in [
        ("base.html", include_str!("templates/base.html")),
        ("message.html", include_str!("templates/message.html")),
        ("sign_in.html", include_str!("templates/sign_in.html")),
        ("home.html", include_str!("templates/home.html")),
        ("companies.html", include_str!("templates/companies.html")),
        (
            "company_form.html",
            include_str!("templates/company_form.html"),
        ),
        ("invites.html", include_str!("templates/invites.html")),
        ("settings.html", include_str!("templates/settings.html")),
        ("partners.html", include_str!("templates/partners.html")),
        ("assignment.html", include_str!("templates/assignment.html")),
        ("company.html", include_str!("templates/company.html")),
        (
            "partner_form.html",
            include_str!("templates/partner_form.html"),
        ),
    ] {
        env.add_template(name, src)
            .unwrap_or_else(|e| panic!("portal template {name}: {e}"));
    }
    env
}

/// The portal's router, or None when `portal:` is not configured. Reads the session key
/// (`portal.sessionSecret`) from the operator's namespace.
pub async fn router(ctx: Arc<Ctx>) -> Result<Option<Router>, String> {
    let Some(cfg) = ctx.config.portal.clone() else {
        return Ok(None);
    };
    let Some(auth) = cfg.auth() else {
        return Err(format!("portal.auth: {:?} is not supported", cfg.auth));
    };
    let namespace = ctx
        .config
        .operator_account
        .as_ref()
        .map(|(ns, _)| ns.clone())
        .unwrap_or_else(|| ctx.client.default_namespace().to_string());
    let key = session::load_key(&ctx.client, &namespace, cfg.session_secret.as_deref()).await?;
    if cfg.session_secret.is_none() && auth != PortalAuth::Demo {
        tracing::warn!(
            "portal.sessionSecret is not set: sessions and form tokens are valid on this replica, until it restarts; set it when running more than one replica"
        );
    }
    let oidc = match (auth, cfg.oidc.as_ref()) {
        (PortalAuth::Oidc, Some(o)) => {
            let secret = session::load_client_secret(
                &ctx.client,
                &namespace,
                o.client_secret_secret.as_deref(),
            )
            .await?;
            Some(oidc::Provider::new(o.clone(), secret)?)
        }
        (PortalAuth::Oidc, None) => {
            return Err("portal.oidc: required when portal.auth is oidc".into());
        }
        _ => None,
    };
    tracing::info!(auth = %cfg.auth, path = BASE, "serving the portal");
    let st = St(Arc::new(Portal {
        ctx,
        auth,
        oidc,
        cfg,
        key,
        templates: templates(),
    }));
    let r = Router::new()
        .route(BASE, get(|| async { Redirect::to(&format!("{BASE}/")) }))
        .route(&format!("{BASE}/"), get(companies::home))
        .route(
            &format!("{BASE}/sign-in"),
            get(auth::sign_in_page).post(auth::sign_in),
        )
        .route(oidc::CALLBACK_PATH, get(oidc::callback))
        .route(
            &format!("{BASE}/sign-out"),
            axum::routing::post(auth::sign_out),
        )
        .route(&format!("{BASE}/static/portal.css"), get(css))
        .route(&format!("{BASE}/static/portal.js"), get(js))
        .route(
            &format!("{BASE}/partners/{{partner}}/companies"),
            get(companies::list).post(companies::create),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/companies/new"),
            get(companies::new_form),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/companies/{{id}}"),
            get(companies::edit_form).post(companies::save),
        )
        .route(
            &format!("{BASE}/company/{{partner}}/{{id}}"),
            get(tenant_view::show),
        )
        .route(
            &format!("{BASE}/partner-assignment"),
            get(assignment::form).post(assignment::move_company),
        )
        .route(
            &format!("{BASE}/partners"),
            get(partners::list).post(partners::create),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/edit"),
            get(partners::edit_form).post(partners::save),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/settings"),
            get(settings::form).post(settings::save),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/brand.css"),
            get(settings::brand_css),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/template"),
            get(template::form).post(template::save),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/invites"),
            get(invites::list).post(invites::create),
        )
        .route(
            &format!("{BASE}/partners/{{partner}}/invites/{{name}}/revoke"),
            axum::routing::post(invites::revoke),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(st);
    Ok(Some(r))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/portal.css"))
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/portal.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// The same headers on every portal response: nothing from elsewhere, no framing, no caching
/// of pages (they show one person's data), no referrer beyond this origin.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    r
}

/// What every page's layout needs.
#[derive(Serialize, Default)]
pub struct Chrome {
    pub title: String,
    /// The signed-in e-mail, if any.
    pub user: Option<String>,
    pub csrf: String,
    /// The partner the page is about: (name, display name).
    pub partner: Option<(String, String)>,
    /// The partner whose brand (`brand.css`) the page wears when it is not about that partner
    /// itself: a tenant admin's company wears its partner's.
    pub brand: Option<String>,
    /// Refresh the page after this many seconds (a list with pending companies).
    pub refresh: Option<u32>,
    /// Whether the sign-out button leads to the proxy's sign-out as well.
    pub proxy: bool,
}

/// What a signed-in page shows of its partner's brand besides the colour (`brand.css`): the
/// partner's name, logo and support channel, as its companies get them (the partner's own when
/// it is entitled to branding, else the platform's defaults).
#[derive(Serialize, Default)]
pub struct Brand {
    pub name: String,
    pub logo_url: String,
    pub support_email: String,
    pub support_url: String,
}

impl Portal {
    /// The brand of the partner a signed-in page is about, or wears (a tenant admin's company).
    fn brand(&self, chrome: &Chrome) -> Option<Brand> {
        chrome.user.as_ref()?;
        let name = chrome
            .partner
            .as_ref()
            .map(|(n, _)| n)
            .or(chrome.brand.as_ref())?;
        let partner = self.ctx.world.partner(name)?;
        let partner = partner.0.as_ref().ok()?;
        let b = crate::resources::customer_branding(partner, &self.ctx.config);
        let get = |k: &str| b.get(k).cloned().unwrap_or_default();
        Some(Brand {
            name: get("partnerDisplayName"),
            logo_url: get("logoUrl"),
            support_email: get("supportEmail"),
            support_url: get("supportUrl"),
        })
    }

    /// Render `template` with `chrome` and `page` (the page's own values under `page`).
    pub fn render(
        &self,
        code: StatusCode,
        template: &str,
        chrome: &Chrome,
        page: impl Serialize,
    ) -> Response {
        let brand = self.brand(chrome);
        let html = self.templates.get_template(template).and_then(|t| {
            t.render(minijinja::context! {
                base => minijinja::Value::from_safe_string(BASE.to_string()),
                chrome => value(chrome),
                brand => value(&brand),
                page => value(&page),
            })
        });
        match html {
            Ok(html) => {
                let mut r = (code, html).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
            Err(e) => {
                tracing::error!(template, error = %e, "portal: rendering a page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be rendered.",
                )
                    .into_response()
            }
        }
    }

    /// A page with a title and a message (refusals, errors).
    pub fn message(
        &self,
        code: StatusCode,
        chrome: Chrome,
        title: &str,
        text: &str,
        detail: Option<&str>,
    ) -> Response {
        let chrome = Chrome {
            title: title.to_string(),
            ..chrome
        };
        self.render(
            code,
            "message.html",
            &chrome,
            minijinja::context! { text => text, detail => detail },
        )
    }

    /// A page's chrome for a signed-in session.
    pub fn chrome(&self, s: &Session, title: &str) -> Chrome {
        Chrome {
            title: title.to_string(),
            user: s.user.as_ref().map(|_| s.email.clone()),
            csrf: s.csrf.clone(),
            proxy: self.auth == PortalAuth::Proxy,
            ..Chrome::default()
        }
    }

    /// The identity API requests of session `s` carry.
    pub fn identity(&self, s: &Session) -> as_user::Identity {
        as_user::Identity::new(
            s.user.as_deref().unwrap_or_default(),
            &s.groups,
            &self.cfg.impersonate_groups,
        )
    }

    /// The operator's client acting as `who`.
    pub fn as_user<'a>(&'a self, who: &'a as_user::Identity) -> as_user::AsUser<'a> {
        as_user::AsUser {
            client: &self.ctx.client,
            who,
        }
    }
}

/// Refuse a POST from another site or without this session's CSRF token.
pub fn check_post(
    portal: &Portal,
    headers: &HeaderMap,
    s: &Session,
    token: Option<&str>,
) -> Result<(), Box<Response>> {
    if crate::invite::web::cross_site(headers, None) {
        tracing::info!("portal: cross-site POST refused");
        return Err(Box::new(portal.message(
            StatusCode::FORBIDDEN,
            Chrome::default(),
            "Request refused",
            "This request came from another site. Open the portal directly and try again there.",
            None,
        )));
    }
    if !token.is_some_and(|t| s.csrf_ok(t)) {
        tracing::info!("portal: POST without a valid form token refused");
        return Err(Box::new(portal.message(
            StatusCode::FORBIDDEN,
            Chrome::default(),
            "Request refused",
            "This form was not sent from this session of the portal, or the session has ended. Reload the page and try again.",
            None,
        )));
    }
    Ok(())
}

/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// `peer`: the connection's address (the proxy's, behind one).
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;

/// Waits until the operator's watch cache shows what the user's write just did (`seen`), for at
/// most two seconds, so that the page the user is sent to next shows it: the pages are read from
/// the cache, which follows the API server a watch event behind (kube-sim's `watchLagMs` makes
/// that lag as long as a test wants).
pub async fn until_cached(mut seen: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while !seen() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// [`until_cached`] for an update: until the cached copy (`cached`) is no longer at `before`,
/// the resourceVersion the user's write replaced (resourceVersions are compared for equality
/// only: they are opaque).
pub async fn until_cached_past<K: kube::Resource>(
    cached: impl Fn() -> Option<std::sync::Arc<K>>,
    before: Option<String>,
) {
    until_cached(|| cached().is_some_and(|c| c.meta().resource_version != before)).await
}

/// What an edit form carries to tell, at Save, whether someone changed the object since the
/// form was made: its `metadata.generation`, which only a change of the spec moves. (Not the
/// resourceVersion: the operator's status writes move that too, and a company turning Ready
/// while its admin edits it must not refuse the admin's Save.)
pub fn form_version(meta: &kube::api::ObjectMeta) -> String {
    meta.generation.map(|g| g.to_string()).unwrap_or_default()
}

/// The object as the API server has it now (`current`, read just before the write) against
/// the form's [`form_version`]: Ok, or the 409 the API server gives a stale write.
pub fn still_as_in_form(
    current: &kube::api::ObjectMeta,
    form: &str,
) -> Result<(), as_user::Refused> {
    if form.is_empty() || form_version(current) == form {
        return Ok(());
    }
    Err(as_user::Refused {
        code: 409,
        reason: "Conflict".into(),
        message: format!(
            "{} was changed (generation {form}, now {})",
            current.name.as_deref().unwrap_or_default(),
            form_version(current)
        ),
        fields: Vec::new(),
    })
}

/// Writes the user's change of `obj`'s spec (`put`, with `obj`'s resourceVersion) while the
/// spec is still the one the form was made from (`form`, its [`form_version`]). A 409 whose
/// cause was not the spec — the operator wrote the status, someone a label, between the read
/// and this write — reads the object again (`get`), takes its metadata and writes again (at
/// most three times): only a change of the spec refuses the user's Save.
pub async fn save_spec<K, G, GF, P, PF>(
    mut obj: K,
    form: &str,
    get: G,
    put: P,
) -> Result<K, as_user::Refused>
where
    K: kube::Resource + Clone,
    G: Fn() -> GF,
    GF: std::future::Future<Output = Result<K, as_user::Refused>>,
    P: Fn(K) -> PF,
    PF: std::future::Future<Output = Result<K, as_user::Refused>>,
{
    let mut attempt = 0;
    loop {
        still_as_in_form(obj.meta(), form)?;
        match put(obj.clone()).await {
            Err(r) if r.code == 409 && attempt < 3 => {
                attempt += 1;
                let now = get().await?;
                *obj.meta_mut() = now.meta().clone();
                obj.meta_mut().managed_fields = None;
            }
            done => return done,
        }
    }
}

/// A 303 to `path` with the cookie jar's changes.
pub fn see_other(jar: PrivateCookieJar, path: &str) -> Response {
    (jar, Redirect::to(path)).into_response()
}

/// Any serializable value as a template value.
pub fn value<T: Serialize>(v: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template renders with a full chrome and an empty page (a syntax error or a
    /// missing template fails here, not in front of a user).
    #[test]
    fn templates_render() {
        let env = templates();
        let chrome = Chrome {
            title: "T".into(),
            user: Some("a@b.example".into()),
            csrf: "c".into(),
            partner: Some(("p".into(), "P".into())),
            brand: Some("p".into()),
            refresh: Some(5),
            proxy: false,
        };
        for name in [
            "message.html",
            "sign_in.html",
            "home.html",
            "companies.html",
            "company_form.html",
            "invites.html",
            "settings.html",
            "partners.html",
            "assignment.html",
            "company.html",
            "partner_form.html",
        ] {
            let out = env.get_template(name).and_then(|t| {
                t.render(minijinja::context! {
                    base => minijinja::Value::from_safe_string(BASE.to_string()),
                    chrome => value(&chrome),
                    page => minijinja::context! { rows => Vec::<String>::new(), apps => Vec::<String>::new(), errors => minijinja::context!{}, form => minijinja::context!{ errors => minijinja::context!{} }, partners => Vec::<String>::new(), records => Vec::<String>::new(), premium => Vec::<String>::new() },
                })
            });
            let out = out.unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(out.contains("<h1>T</h1>"), "{name}");
        }
    }

    fn conflict() -> as_user::Refused {
        as_user::Refused {
            code: 409,
            reason: "Conflict".into(),
            message: "the object has been modified".into(),
            fields: Vec::new(),
        }
    }

    fn cm(generation: i64, rv: &str) -> k8s_openapi::api::core::v1::ConfigMap {
        let mut o = k8s_openapi::api::core::v1::ConfigMap::default();
        o.metadata.name = Some("globex".into());
        o.metadata.generation = Some(generation);
        o.metadata.resource_version = Some(rv.into());
        o
    }

    /// A 409 caused by a status write (same generation) is retried with the new version; one
    /// caused by a changed spec (new generation) is the user's "someone changed it".
    #[tokio::test]
    async fn a_save_is_retried_over_status_writes_and_refused_over_spec_changes() {
        use std::sync::Mutex;
        let sent = Mutex::new(Vec::new());
        let put = |o: k8s_openapi::api::core::v1::ConfigMap| {
            let rv = o.metadata.resource_version.clone().unwrap_or_default();
            sent.lock().unwrap().push(rv.clone());
            async move { if rv == "10" { Err(conflict()) } else { Ok(o) } }
        };
        let saved = save_spec(cm(2, "10"), "2", || async { Ok(cm(2, "11")) }, put).await;
        assert_eq!(
            saved.map(|o| o.metadata.resource_version),
            Ok(Some("11".into()))
        );
        assert_eq!(*sent.lock().unwrap(), ["10", "11"]);

        sent.lock().unwrap().clear();
        let refused = save_spec(cm(2, "10"), "2", || async { Ok(cm(3, "12")) }, put).await;
        let refused = refused.expect_err("a changed spec");
        assert_eq!(refused.code, 409);
        assert!(
            refused.message.contains("generation 2, now 3"),
            "{}",
            refused.message
        );
        assert_eq!(
            *sent.lock().unwrap(),
            ["10"],
            "never written over the new spec"
        );

        // A form older than what was read: refused before any write.
        sent.lock().unwrap().clear();
        assert!(
            save_spec(cm(3, "12"), "2", || async { Ok(cm(3, "12")) }, put)
                .await
                .is_err()
        );
        assert!(sent.lock().unwrap().is_empty());
    }
}
