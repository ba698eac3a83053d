//! Invite Partner Admin: the partner's invitations (pending, sent, accepted, expired, failed)
//! from the watch cache, after the API server said the user may list them; a new invitation
//! and a revocation are the user's own requests. The partner is the one in the URL: a partner
//! admin reaches only their own (the API server refuses the others), a platform admin any.
//! A platform admin (whom the API server lets list Partners) also gets a chooser of every
//! partner on the form; a partner admin's partner is fixed, and a request that names another
//! anyway is the API server's to refuse (the invite is created in that partner's namespace as
//! the user).

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::PrivateCookieJar;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use serde::{Deserialize, Serialize};

use super::auth::signed_in;
use super::companies::{display_name, partner_ns, propose_id};
use super::session::Session;
use super::{BASE, Peer, St, check_post, see_other};
use crate::api::{PartnerAdminInvite, PartnerAdminInviteSpec, conditions};

/// One invitation as the page lists it.
#[derive(Serialize)]
struct Row {
    name: String,
    email: String,
    /// Pending (not sent yet), Sent, Accepted, Expired or Failed.
    phase: String,
    /// Why it is not delivered yet, when it is not (the Delivered condition's message).
    note: String,
    sent_at: String,
    expires_at: String,
    accepted_at: String,
    accepted: bool,
}

fn row(i: &crate::controller::world::InviteObj) -> Row {
    let name = i.name_any();
    let Ok(invite) = i.0.as_ref() else {
        return Row {
            name: name.clone(),
            email: String::new(),
            phase: crate::controller::INVALID_SPEC.into(),
            note: String::new(),
            sent_at: String::new(),
            expires_at: String::new(),
            accepted_at: String::new(),
            accepted: false,
        };
    };
    let status = invite.status.clone().unwrap_or_default();
    let phase = status.phase.map_or("Pending", |p| p.as_str());
    let note = status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::DELIVERED && c.status == "False")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    Row {
        name,
        email: invite.spec.email.clone(),
        phase: phase.to_string(),
        note,
        sent_at: status.sent_at.unwrap_or_default(),
        expires_at: status.expires_at.unwrap_or_default(),
        accepted_at: status.accepted_at.unwrap_or_default(),
        accepted: phase == "Accepted",
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    invited: Option<String>,
    revoked: Option<String>,
}

/// The page: the invitations, and the form (with what was sent and the error beside it).
#[allow(clippy::too_many_arguments)]
async fn page(
    st: &St,
    s: &Session,
    partner: &str,
    ns: &str,
    email: &str,
    ttl: &str,
    error: Option<String>,
    flash: PageQuery,
    code: StatusCode,
) -> Response {
    let who = st.identity(s);
    if let Err(r) = st.as_user(&who).may_list::<PartnerAdminInvite>(ns).await {
        let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FORBIDDEN);
        return st.message(
            code,
            st.chrome(s, "Invite Partner Admin"),
            "Invite Partner Admin",
            "The cluster refused this request:",
            Some(&r.message),
        );
    }
    let mut invites = st.ctx.world.invites_in(ns);
    // Newest first; those of one second (the timestamp's precision) by name, not in the
    // cache's order, which differs from one refresh of the page to the next.
    invites.sort_by_cached_key(|i| (std::cmp::Reverse(i.creation_timestamp()), i.name_any()));
    let rows: Vec<Row> = invites.iter().map(|i| row(i)).collect();
    // Every partner, for those the API server lets list Partners (platform admins).
    let choices: Option<Vec<(String, String)>> = st
        .as_user(&who)
        .may_list_cluster::<crate::api::Partner>()
        .await
        .is_ok()
        .then(|| {
            let mut all: Vec<(String, String)> = st
                .ctx
                .world
                .partners
                .state()
                .iter()
                .filter_map(|p| {
                    let name = p.name_any();
                    let d = p.0.as_ref().ok()?.spec.display_name.clone();
                    Some((name, d))
                })
                .collect();
            all.sort();
            all
        });
    let mut chrome = st.chrome(s, "Invite Partner Admin");
    chrome.partner = Some((partner.to_string(), display_name(st, partner)));
    if rows.iter().any(|r| r.phase == "Pending") {
        chrome.refresh = Some(5);
    }
    st.render(
        code,
        "invites.html",
        &chrome,
        minijinja::context! {
            rows => super::value(&rows),
            choices => choices,
            email => email,
            ttl => ttl,
            error => error,
            invited => flash.invited,
            revoked => flash.revoked,
        },
    )
}

/// `GET /portal/partners/{partner}/invites`.
pub async fn list(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(ns) = partner_ns(&st, &partner) else {
        return (
            jar,
            super::companies::not_found(&st, &s, "There is no such partner."),
        )
            .into_response();
    };
    let r = page(&st, &s, &partner, &ns, "", "72h", None, q, StatusCode::OK).await;
    (jar, r).into_response()
}

#[derive(Deserialize)]
pub struct InviteForm {
    csrf: Option<String>,
    email: Option<String>,
    ttl: Option<String>,
    /// The partner to invite to (a platform admin's chooser); the page's partner when absent.
    partner: Option<String>,
}

/// A name for a new invitation: `invite-<e-mail's local part>-<6 random hex digits>`.
fn invite_name(email: &str) -> String {
    let local = propose_id(email.split('@').next().unwrap_or_default());
    let local: String = local.chars().take(30).collect();
    let local = local.trim_end_matches('-');
    let mut b = [0u8; 3];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    let suffix: String = b.iter().map(|x| format!("{x:02x}")).collect();
    if local.is_empty() {
        format!("invite-{suffix}")
    } else {
        format!("invite-{local}-{suffix}")
    }
}

/// `POST /portal/partners/{partner}/invites`: a new invitation, as the user.
pub async fn create(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path(partner): Path<String>,
    Form(f): Form<InviteForm>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if let Err(r) = check_post(&st, &headers, &s, f.csrf.as_deref()) {
        return *r;
    }
    let Some(ns) = partner_ns(&st, &partner) else {
        return (
            jar,
            super::companies::not_found(&st, &s, "There is no such partner."),
        )
            .into_response();
    };
    // The partner the invitation is for: the chooser's, else the page's. The API server
    // decides whether the user may create it there.
    let target = f
        .partner
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(&partner)
        .to_string();
    let email = f.email.as_deref().unwrap_or_default().trim().to_string();
    let ttl = f
        .ttl
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("72h")
        .to_string();
    let none = || PageQuery {
        invited: None,
        revoked: None,
    };
    let target_ns = partner_ns(&st, &target);
    let invalid = if target_ns.is_none() {
        Some(format!("{target:?} is not a partner ID."))
    } else if !crate::config::is_email(&email) {
        Some(format!("{email:?} is not an e-mail address."))
    } else if crate::config::parse_duration(&ttl).is_none_or(|d| d.is_zero()) {
        Some(format!("{ttl:?} is not a duration such as 72h or 30m."))
    } else {
        None
    };
    if invalid.is_some() {
        let r = page(
            &st,
            &s,
            &partner,
            &ns,
            &email,
            &ttl,
            invalid,
            none(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        return (jar, r).into_response();
    }
    let mut invite = PartnerAdminInvite::new(
        &invite_name(&email),
        PartnerAdminInviteSpec {
            email: email.clone(),
            ttl: ttl.clone(),
        },
    );
    let target_ns = target_ns.unwrap_or_else(|| ns.clone());
    invite.metadata.namespace = Some(target_ns.clone());
    let who = st.identity(&s);
    match st.as_user(&who).create(&target_ns, &invite).await {
        Ok(_) => {
            tracing::info!(user = %s.email, invitee = %email, namespace = %target_ns, "portal: partner admin invited");
            let key = ObjectRef::new(&invite.name_any()).within(&target_ns);
            super::until_cached(|| st.ctx.world.invites.get(&key).is_some()).await;
            see_other(
                jar,
                &format!(
                    "{BASE}/partners/{target}/invites?invited={}",
                    invite.name_any()
                ),
            )
        }
        Err(r) => {
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let resp = page(
                &st,
                &s,
                &partner,
                &ns,
                &email,
                &ttl,
                Some(r.message),
                none(),
                code,
            )
            .await;
            (jar, resp).into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: Option<String>,
}

/// `POST /portal/partners/{partner}/invites/{name}/revoke`: delete the invitation, as the
/// user (an accepted one takes its admin rights with it).
pub async fn revoke(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path((partner, name)): Path<(String, String)>,
    Form(f): Form<RevokeForm>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if let Err(r) = check_post(&st, &headers, &s, f.csrf.as_deref()) {
        return *r;
    }
    let Some(ns) = partner_ns(&st, &partner) else {
        return (
            jar,
            super::companies::not_found(&st, &s, "There is no such partner."),
        )
            .into_response();
    };
    if !crate::config::is_dns_subdomain(&name) {
        return (
            jar,
            super::companies::not_found(&st, &s, "There is no such invitation."),
        )
            .into_response();
    }
    let who = st.identity(&s);
    match st
        .as_user(&who)
        .delete::<PartnerAdminInvite>(&ns, &name)
        .await
    {
        Ok(()) => {
            tracing::info!(user = %s.email, invite = %name, namespace = %ns, "portal: invitation revoked");
            let key = ObjectRef::new(&name).within(&ns);
            super::until_cached(|| st.ctx.world.invites.get(&key).is_none()).await;
            see_other(
                jar,
                &format!("{BASE}/partners/{partner}/invites?revoked={name}"),
            )
        }
        Err(r) => {
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FORBIDDEN);
            let resp = page(
                &st,
                &s,
                &partner,
                &ns,
                "",
                "72h",
                Some(r.message),
                PageQuery {
                    invited: None,
                    revoked: None,
                },
                code,
            )
            .await;
            (jar, resp).into_response()
        }
    }
}
