//! Who is asking: `auth: oidc` (the OpenID Connect code flow, [`super::oidc`]), `auth: demo`
//! (a sign-in page to pick a user: loopback only, for `make demo`) or `auth: proxy` (an authenticating proxy names the user in `userHeader` and the groups in
//! `groupsHeader`; believed only on connections from `trustedProxies`).

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::PrivateCookieJar;
use serde::{Deserialize, Serialize};

use super::session::{self, Session};
use super::{BASE, Chrome, Peer, St, check_post, see_other};
use crate::config::PortalAuth;

/// The session of a request, or the response that stands instead of the page: a redirect to
/// sign-in (demo, no or an expired session), or a refusal (proxy: untrusted peer, no user).
/// The jar carries a new or renewed session cookie when one was made.
pub fn signed_in(
    st: &St,
    headers: &HeaderMap,
    peer: &Peer,
    jar: PrivateCookieJar,
) -> Result<(Session, PrivateCookieJar), Box<Response>> {
    let current = session::read(&jar);
    match st.auth {
        PortalAuth::Proxy => {
            let (user, email, groups) = from_proxy(st, headers, peer)?;
            match current {
                Some(s) if !s.expired() && s.user.as_deref() == Some(user.as_str()) => {
                    // The groups follow the proxy's current word.
                    let s = Session { groups, ..s };
                    Ok((s, jar))
                }
                _ => {
                    let s = Session::new(Some(user), email, groups, st.cfg.session_ttl());
                    let jar = session::store(jar, &s, forwarded_tls(st, headers, peer));
                    Ok((s, jar))
                }
            }
        }
        _ => match current {
            Some(s) if s.user.is_some() && !s.expired() => Ok((s, jar)),
            Some(s) if s.user.is_some() => Err(Box::new(see_other(
                session::clear(jar),
                &format!("{BASE}/sign-in?expired=1"),
            ))),
            _ => Err(Box::new(see_other(jar, &format!("{BASE}/sign-in")))),
        },
    }
}

/// The proxy's word on who this is: (user name, e-mail, groups).
fn from_proxy(
    st: &St,
    headers: &HeaderMap,
    peer: &Peer,
) -> Result<(String, String, Vec<String>), Box<Response>> {
    let Some(proxy) = st.cfg.proxy.as_ref() else {
        return Err(refuse(st, "The portal's proxy sign-in is not configured."));
    };
    let ip = peer.0.ip();
    if !proxy.trusts(ip) {
        tracing::info!(client = %ip, "portal: request not from a trusted proxy refused");
        return Err(refuse(
            st,
            &format!(
                "This portal is reached through its sign-in proxy only. This request came from {ip}, which is not one of the trusted proxies (portal.proxy.trustedProxies)."
            ),
        ));
    }
    let email = headers
        .get(proxy.user_header.as_str())
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(email) = email else {
        return Err(refuse(
            st,
            &format!(
                "The sign-in proxy did not say who you are (no {} header). Sign in through the proxy again.",
                proxy.user_header
            ),
        ));
    };
    let user = crate::resources::user(&st.ctx.config, email);
    if user.starts_with("system:") {
        return Err(refuse(st, "The portal does not act as system: users."));
    }
    let groups = headers
        .get_all(proxy.groups_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect();
    Ok((user, email.to_string(), groups))
}

/// Whether the browser reached the portal over TLS: a trusted proxy's `X-Forwarded-Proto`.
fn forwarded_tls(st: &St, headers: &HeaderMap, peer: &Peer) -> bool {
    st.cfg.proxy.as_ref().is_some_and(|p| p.trusts(peer.0.ip()))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn refuse(st: &St, text: &str) -> Box<Response> {
    Box::new(st.message(
        StatusCode::FORBIDDEN,
        Chrome::default(),
        "Not signed in",
        text,
        None,
    ))
}

#[derive(Deserialize)]
pub struct SignInQuery {
    expired: Option<String>,
}

/// One user the demo sign-in page offers.
#[derive(Serialize)]
struct DemoUser {
    email: String,
    role: String,
}

/// The users to pick from: every partner's admins (from the watch cache), with their partner.
fn demo_users(st: &St) -> Vec<DemoUser> {
    let mut users: Vec<DemoUser> = Vec::new();
    for p in st.ctx.world.partners.state() {
        let Ok(partner) = p.0.as_ref() else { continue };
        let mut emails: Vec<String> = partner
            .spec
            .admins
            .iter()
            .map(|a| a.email.clone())
            .collect();
        if let Some(status) = &partner.status {
            emails.extend(status.admins.iter().cloned());
        }
        emails.sort();
        emails.dedup();
        for email in emails {
            users.push(DemoUser {
                email,
                role: format!("admin of {}", partner.spec.display_name),
            });
        }
    }
    users.sort_by(|a, b| a.role.cmp(&b.role).then(a.email.cmp(&b.email)));
    users
}

/// `GET /portal/sign-in`: demo mode's user picker (proxy mode: straight to the portal).
pub async fn sign_in_page(
    State(st): State<St>,
    jar: PrivateCookieJar,
    Query(q): Query<SignInQuery>,
) -> Response {
    if st.auth == PortalAuth::Oidc {
        return super::oidc::start(&st, jar).await;
    }
    if st.auth != PortalAuth::Demo {
        return see_other(jar, &format!("{BASE}/"));
    }
    // A session without a user carries the sign-in form's CSRF token.
    let (s, jar) = match session::read(&jar) {
        Some(s) if !s.expired() && s.user.is_none() => (s, jar),
        _ => {
            let s = Session::new(None, String::new(), vec![], st.cfg.session_ttl());
            let jar = session::store(jar, &s, false);
            (s, jar)
        }
    };
    let chrome = Chrome {
        title: "Sign in".into(),
        csrf: s.csrf.clone(),
        ..Chrome::default()
    };
    let page = minijinja::context! {
        users => super::value(demo_users(&st)),
        expired => q.expired.is_some(),
    };
    (
        jar,
        st.render(StatusCode::OK, "sign_in.html", &chrome, page),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    csrf: Option<String>,
    email: Option<String>,
    groups: Option<String>,
}

/// `POST /portal/sign-in` (demo): become the chosen user. A new session (and CSRF token).
pub async fn sign_in(
    State(st): State<St>,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Form(f): Form<SignInForm>,
) -> Response {
    if st.auth != PortalAuth::Demo {
        return see_other(jar, &format!("{BASE}/"));
    }
    let pre = session::read(&jar)
        .filter(|s| !s.expired())
        .unwrap_or_else(|| Session {
            csrf: String::new(),
            ..Session::new(None, String::new(), vec![], st.cfg.session_ttl())
        });
    if let Err(r) = check_post(&st, &headers, &pre, f.csrf.as_deref()) {
        return *r;
    }
    let email = f.email.as_deref().map(str::trim).unwrap_or_default();
    if !crate::config::is_email(email) {
        let chrome = Chrome {
            title: "Sign in".into(),
            csrf: pre.csrf.clone(),
            ..Chrome::default()
        };
        let page = minijinja::context! {
            users => super::value(demo_users(&st)),
            error => format!("{email:?} is not an e-mail address."),
            email => email,
        };
        return st.render(StatusCode::BAD_REQUEST, "sign_in.html", &chrome, page);
    }
    let groups = f
        .groups
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect();
    let user = crate::resources::user(&st.ctx.config, email);
    let s = Session::new(Some(user), email.to_string(), groups, st.cfg.session_ttl());
    tracing::info!(user = %email, "portal: demo sign-in");
    see_other(session::store(jar, &s, false), &format!("{BASE}/"))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /portal/sign-out`: the session cookie goes; behind a proxy, sign out there too.
pub async fn sign_out(
    State(st): State<St>,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Form(f): Form<CsrfForm>,
) -> Response {
    let Some(s) = session::read(&jar) else {
        return see_other(jar, &format!("{BASE}/"));
    };
    if let Err(r) = check_post(&st, &headers, &s, f.csrf.as_deref()) {
        return *r;
    }
    let jar = session::clear(jar);
    let text = match st.auth {
        PortalAuth::Demo => return see_other(jar, &format!("{BASE}/sign-in")),
        PortalAuth::Oidc => {
            tracing::info!(
                user = s.user.as_deref().unwrap_or_default(),
                "portal: sign-out"
            );
            "Your portal session has ended. Your identity provider may still remember you: sign out there as well on a shared computer."
        }
        PortalAuth::Proxy => {
            "Your portal session has ended. You are still signed in at your organisation's sign-in proxy: sign out there as well on a shared computer."
        }
    };
    // `message` titles the page.
    let page = st.message(
        StatusCode::OK,
        Chrome::default(),
        "Signed out of the portal",
        text,
        None,
    );
    (jar, page).into_response()
}

use axum::response::IntoResponse as _;
