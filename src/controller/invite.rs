//! The PartnerAdminInvite controller: token, delivery, expiry.
//!
//! ```text
//!  (none)/Pending ──token+hash──► deliver ──ok──► Sent ──POST on the page──► Accepted
//!        │                          │ fail: Retrying (backoff, in memory)        │
//!        │                          └─ attempts used up ──► Failed               │
//!        └──── expiresAt passes (Pending or Sent) ──► Expired        deleted ───┘ rights revoked
//! ```
//!
//! The token lives only in this process's memory while a delivery is under way (and in the
//! e-mail, or the link Secret when no SMTP server is configured); the invite's status keeps its
//! hash. After a restart a `Pending` invite gets a fresh token: the old link, if it ever went
//! out, stops working, and the new one is delivered.
//!
//! Status writes are compare-and-swap (a PUT carrying the resourceVersion the decision was
//! based on), so a delivery that ends while the invitee accepts cannot overwrite `Accepted`,
//! and two clicks on Accept cannot both win.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::apply::{condition, with_condition};
use super::world::InviteObj;
use super::{Ctx, Error, Next};
use crate::api::conditions as c;
use crate::api::{InvitePhase, Partner, PartnerAdminInvite, PartnerAdminInviteStatus};
use crate::invite::{mail, token};
use crate::resources::{self, FIELD_MANAGER, MANAGED_BY_VALUE, labels};

pub const CONTROLLER: &str = "partneradmininvite";
/// `partnerkit.io/invite=<name>` on the link Secret.
pub const INVITE_LABEL: &str = "partnerkit.io/invite";

/// The Secret holding an invitation's link when no SMTP server is configured.
pub fn link_secret_name(invite: &str) -> String {
    format!("{invite}-link")
}

/// A delivery under way: the token (only here), the attempts made, when to try next, and —
/// once the mail went out but `Sent` is not yet recorded — when it was sent, so that a failed
/// status write is retried without a second mail and a second token.
struct Delivery {
    token: token::Token,
    attempts: u32,
    next_at: tokio::time::Instant,
    sent_at: Option<String>,
}

/// Deliveries under way, by invite uid, and the link Secrets already cleaned up.
#[derive(Default)]
pub struct Deliveries {
    under_way: Mutex<HashMap<String, Delivery>>,
    cleaned: Mutex<HashSet<String>>,
}

impl Deliveries {
    fn under_way(&self) -> std::sync::MutexGuard<'_, HashMap<String, Delivery>> {
        self.under_way.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn cleaned(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.cleaned.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn forget(&self, uid: &str) {
        self.under_way().remove(uid);
    }
}

/// When an invite stops being valid: creation + ttl. `None` before the API server set
/// `creationTimestamp` (never, for a stored object).
pub fn expires_at(invite: &PartnerAdminInvite) -> Option<jiff::Timestamp> {
    let created = invite.metadata.creation_timestamp.as_ref()?.0;
    let ttl = crate::config::parse_duration(&invite.spec.ttl).unwrap_or(Duration::ZERO);
    let ttl = jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX);
    Some(created.checked_add(ttl).unwrap_or(jiff::Timestamp::MAX))
}

/// The e-mail is already an admin of the partner: through `spec.admins`, or another Accepted
/// invite. E-mails compare case-insensitively (mail systems do).
pub fn already_admin(
    email: &str,
    partner: Option<&Partner>,
    other_accepted: &[String],
) -> Option<(&'static str, String)> {
    let same = |e: &str| e.eq_ignore_ascii_case(email);
    if partner.is_some_and(|p| p.spec.admins.iter().any(|a| same(&a.email))) {
        return Some((
            c::IN_PARTNER_SPEC,
            format!(
                "{email} is already an admin: it is in the Partner's spec.admins; this invite is a grant of its own that outlives removal from there"
            ),
        ));
    }
    if other_accepted.iter().any(|e| same(e)) {
        return Some((
            c::ACCEPTED_INVITE,
            format!("{email} is already an admin through another accepted invite"),
        ));
    }
    None
}

/// `desired` with its Delivered condition set (keeping `lastTransitionTime` from `previous`
/// unless it flipped).
fn set_delivered(
    desired: &mut PartnerAdminInviteStatus,
    previous: &[Condition],
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) {
    let cond = condition(previous, c::DELIVERED, ok, reason, message, generation);
    desired.conditions = with_condition(&desired.conditions, cond);
}

pub async fn reconcile(obj: Arc<InviteObj>, ctx: Arc<Ctx>) -> Result<Next, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let api: Api<PartnerAdminInvite> = Api::namespaced(ctx.client.clone(), &ns);
    let invite = match &obj.0 {
        Ok(i) => i,
        Err(invalid) => return ctx.report_invalid(api, invalid).await,
    };
    let uid = invite.metadata.uid.clone().unwrap_or_default();
    if invite.metadata.deletion_timestamp.is_some() {
        ctx.deliveries.forget(&uid);
        return Ok(Next::AwaitChange);
    }
    let cfg = &ctx.config;
    let now = jiff::Timestamp::now();
    let Some(expires) = expires_at(invite) else {
        return Ok(Next::AwaitChange);
    };
    let current = invite.status.clone().unwrap_or_default();
    let generation = invite.metadata.generation;
    let partner_name = resources::partner_of_namespace(cfg, &ns);
    let partner_obj = partner_name.as_deref().and_then(|p| ctx.world.partner(p));
    let partner = partner_obj.as_ref().and_then(|p| p.0.as_ref().ok());

    // What holds whatever the phase: expiresAt, observedGeneration, AlreadyAdmin.
    let mut desired = current.clone();
    desired.expires_at = Some(expires.to_string());
    desired.observed_generation = generation;
    let others = ctx.world.accepted_invites_except(&ns, Some(&name));
    desired.conditions = match already_admin(&invite.spec.email, partner, &others) {
        Some((reason, message)) => with_condition(
            &current.conditions,
            condition(
                &current.conditions,
                c::ALREADY_ADMIN,
                true,
                reason,
                message,
                generation,
            ),
        ),
        None => current
            .conditions
            .iter()
            .filter(|x| x.type_ != c::ALREADY_ADMIN)
            .cloned()
            .collect(),
    };

    let phase = current.phase.unwrap_or(InvitePhase::Pending);
    let until_expiry = Duration::try_from(expires.duration_since(now)).unwrap_or(Duration::ZERO);
    match phase {
        InvitePhase::Accepted | InvitePhase::Expired | InvitePhase::Failed => {
            ctx.deliveries.forget(&uid);
            if phase != InvitePhase::Failed {
                remove_link_secret(&ctx, &ns, &name, &uid).await?;
            }
            put_status(&api, invite, &current, desired).await?;
            Ok(Next::AwaitChange)
        }
        _ if until_expiry.is_zero() => {
            ctx.deliveries.forget(&uid);
            desired.phase = Some(InvitePhase::Expired);
            let note = format!(
                "the invitation of {} was not accepted before {expires}; delete and re-create the invite to invite again",
                invite.spec.email
            );
            put_status(&api, invite, &current, desired).await?;
            ctx.event(invite, EventType::Normal, c::EXPIRED, note).await;
            remove_link_secret(&ctx, &ns, &name, &uid).await?;
            Ok(Next::AwaitChange)
        }
        InvitePhase::Sent => {
            put_status(&api, invite, &current, desired).await?;
            Ok(Next::RequeueAfter(until_expiry))
        }
        InvitePhase::Pending => {
            let Some(partner) = partner else {
                desired.phase = Some(InvitePhase::Pending);
                set_delivered(
                    &mut desired,
                    &current.conditions,
                    false,
                    c::PARTNER_NOT_FOUND,
                    format!(
                        "{ns} is not the namespace of an existing Partner: nothing is sent until it is"
                    ),
                    generation,
                );
                put_status(&api, invite, &current, desired).await?;
                return Ok(Next::RequeueAfter(until_expiry));
            };
            let Some(accept_url) = cfg.invites.accept_url.clone() else {
                desired.phase = Some(InvitePhase::Pending);
                set_delivered(&mut desired, &current.conditions, false, c::NOT_CONFIGURED, "the operator has no invites.acceptUrl configured: there is no page to accept on".into(), generation);
                put_status(&api, invite, &current, desired).await?;
                return Ok(Next::RequeueAfter(until_expiry));
            };
            deliver(
                &ctx,
                &api,
                invite,
                partner,
                desired,
                &accept_url,
                expires,
                until_expiry,
            )
            .await
        }
    }
}

/// One step of a delivery: a fresh token if none is under way, then one attempt (or, within a
/// backoff, nothing until the next one is due).
#[allow(clippy::too_many_arguments)]
async fn deliver(
    ctx: &Ctx,
    api: &Api<PartnerAdminInvite>,
    invite: &PartnerAdminInvite,
    partner: &Partner,
    mut desired: PartnerAdminInviteStatus,
    accept_url: &str,
    expires: jiff::Timestamp,
    until_expiry: Duration,
) -> Result<Next, Error> {
    let ns = invite.namespace().unwrap_or_default();
    let name = invite.name_any();
    let uid = invite.metadata.uid.clone().unwrap_or_default();
    let generation = invite.metadata.generation;
    let email = invite.spec.email.clone();

    // A token: the one under way, or a fresh one whose hash is stored before anything goes out.
    let base;
    let under_way = {
        let map = ctx.deliveries.under_way();
        map.get(&uid)
            .map(|d| (d.next_at, d.sent_at.is_some(), d.token.hash()))
    };
    match under_way {
        Some((next_at, sent, hash)) => {
            let now = tokio::time::Instant::now();
            if !sent && now < next_at {
                return Ok(Next::RequeueAfter((next_at - now).min(until_expiry)));
            }
            // Decide on the object as the API server has it now, not on a store that may lag
            // behind our own writes: still Pending, with the hash of the token under way.
            let fresh = api
                .get_opt(&name)
                .await
                .map_err(|e| Error::api("get", "PartnerAdminInvite".into(), &name, e))?;
            let ours = fresh.as_ref().is_some_and(|f| {
                let st = f.status.clone().unwrap_or_default();
                f.metadata.uid.as_deref() == Some(uid.as_str())
                    && matches!(st.phase, None | Some(InvitePhase::Pending))
                    && st.token_hash.as_deref() == Some(hash.as_str())
            });
            match fresh {
                Some(fresh) if ours => base = fresh,
                _ => {
                    ctx.deliveries.forget(&uid);
                    return Ok(Next::AwaitChange); // its watch event brings the next pass
                }
            }
        }
        None => {
            // The store may not have caught up with a write of ours (Sent, say): decide on the
            // object as the API server has it now. Invitations are rare; this GET is cheap.
            let Some(fresh) = api
                .get_opt(&name)
                .await
                .map_err(|e| Error::api("get", "PartnerAdminInvite".into(), &name, e))?
            else {
                return Ok(Next::AwaitChange);
            };
            let fresh_phase = fresh.status.as_ref().and_then(|s| s.phase);
            if fresh.metadata.uid.as_deref() != Some(uid.as_str())
                || !matches!(fresh_phase, None | Some(InvitePhase::Pending))
            {
                return Ok(Next::AwaitChange); // its watch event brings the next pass
            }
            let token = token::Token::generate().map_err(|e| Error::Token(e.to_string()))?;
            let current = fresh.status.clone().unwrap_or_default();
            let mut pending = desired.clone();
            pending.phase = Some(InvitePhase::Pending);
            pending.token_hash = Some(token.hash());
            pending.sent_at = None;
            set_delivered(
                &mut pending,
                &current.conditions,
                false,
                c::SENDING,
                format!("delivering the invitation to {email}"),
                generation,
            );
            base = put_status(api, &fresh, &current, pending)
                .await?
                .unwrap_or(fresh);
            ctx.deliveries.under_way().insert(
                uid.clone(),
                Delivery {
                    token,
                    attempts: 0,
                    next_at: tokio::time::Instant::now(),
                    sent_at: None,
                },
            );
        }
    }
    let base_status = base.status.clone().unwrap_or_default();
    desired.token_hash = base_status.token_hash.clone();
    desired.phase = Some(InvitePhase::Pending);

    // The link, built from the token under way (held only for this attempt).
    let (link, already_sent) = {
        let map = ctx.deliveries.under_way();
        match map.get(&uid) {
            Some(d) => (
                token::link(accept_url, &ns, &name, &d.token),
                d.sent_at.clone(),
            ),
            None => return Ok(Next::RequeueAfter(Duration::from_millis(100))),
        }
    };
    let branding = resources::customer_branding(partner, &ctx.config);
    let expires_text = expires.to_string();

    let Some(smtp) = ctx.config.invites.smtp.clone() else {
        // No SMTP server: the link goes into a Secret for a partner admin to forward.
        write_link_secret(ctx, invite, &link, &expires_text).await?;
        ctx.deliveries.forget(&uid);
        let secret = link_secret_name(&name);
        desired.phase = Some(InvitePhase::Sent);
        desired.sent_at = Some(jiff::Timestamp::now().to_string());
        let message = format!(
            "no SMTP server is configured: the acceptance link is in Secret {secret} (key url); forward it to {email}"
        );
        set_delivered(
            &mut desired,
            &base_status.conditions,
            true,
            c::LINK_IN_SECRET,
            message.clone(),
            generation,
        );
        put_status(api, &base, &base_status, desired).await?;
        ctx.event(invite, EventType::Normal, c::LINK_IN_SECRET, message)
            .await;
        return Ok(Next::RequeueAfter(until_expiry));
    };

    let invitation = mail::Invitation {
        partner: &partner.name_any(),
        partner_display_name: &partner.spec.display_name,
        email: &email,
        link: &link,
        expires_at: &expires_text,
        branding: &branding,
    };
    let outcome = match &already_sent {
        // The mail went out on an earlier pass; only `Sent` is left to record.
        Some(_) => Ok(()),
        None => match invitation.message(&smtp.from) {
            Ok(message) => match smtp_credentials(ctx, &smtp).await {
                Ok(credentials) => mail::send(&smtp, credentials, message).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(()) => {
            let sent_at = match already_sent {
                Some(at) => at,
                None => {
                    tracing::info!(invite = %name, namespace = %ns, "invitation sent");
                    let at = jiff::Timestamp::now().to_string();
                    if let Some(d) = ctx.deliveries.under_way().get_mut(&uid) {
                        d.sent_at = Some(at.clone());
                    }
                    at
                }
            };
            desired.phase = Some(InvitePhase::Sent);
            desired.sent_at = Some(sent_at);
            let message = format!("e-mailed to {email} through {}:{}", smtp.host, smtp.port);
            set_delivered(
                &mut desired,
                &base_status.conditions,
                true,
                c::SENT,
                message.clone(),
                generation,
            );
            put_status(api, &base, &base_status, desired).await?;
            ctx.deliveries.forget(&uid);
            ctx.event(invite, EventType::Normal, c::SENT, message).await;
            Ok(Next::RequeueAfter(until_expiry))
        }
        Err(e) => {
            let attempts = {
                let mut map = ctx.deliveries.under_way();
                match map.get_mut(&uid) {
                    Some(d) => {
                        d.attempts += 1;
                        d.next_at = tokio::time::Instant::now() + smtp.backoff(d.attempts);
                        d.attempts
                    }
                    None => smtp.attempts,
                }
            };
            if attempts >= smtp.attempts {
                ctx.deliveries.forget(&uid);
                let message = format!(
                    "delivery to {email} failed {attempts} times; the last error: {e}. Fix the SMTP settings, then delete and re-create the invite"
                );
                tracing::warn!(invite = %name, namespace = %ns, error = %e, attempts, "invitation delivery failed");
                desired.phase = Some(InvitePhase::Failed);
                set_delivered(
                    &mut desired,
                    &base_status.conditions,
                    false,
                    c::SMTP_ERROR,
                    message.clone(),
                    generation,
                );
                put_status(api, &base, &base_status, desired).await?;
                ctx.event(invite, EventType::Warning, "DeliveryFailed", message)
                    .await;
                Ok(Next::AwaitChange)
            } else {
                let wait = smtp.backoff(attempts);
                let message = format!(
                    "attempt {attempts} of {} to deliver to {email} failed: {e}; next attempt in {}",
                    smtp.attempts,
                    humantime(wait)
                );
                tracing::warn!(invite = %name, namespace = %ns, error = %e, attempts, "invitation delivery attempt failed; retrying");
                set_delivered(
                    &mut desired,
                    &base_status.conditions,
                    false,
                    c::RETRYING,
                    message,
                    generation,
                );
                put_status(api, &base, &base_status, desired).await?;
                Ok(Next::RequeueAfter(wait.min(until_expiry)))
            }
        }
    }
}

/// `1m30s`, `500ms`: a wait as people read it.
fn humantime(d: Duration) -> String {
    jiff::SignedDuration::try_from(d)
        .map(|s| format!("{s:#}"))
        .unwrap_or_else(|_| format!("{}s", d.as_secs()))
}

/// `username`/`password` of `invites.smtp.credentialsSecret` in the operator's namespace, read
/// at each attempt (a rotated password is picked up without a restart).
async fn smtp_credentials(
    ctx: &Ctx,
    smtp: &crate::config::Smtp,
) -> Result<Option<(String, String)>, mail::MailError> {
    let Some(secret) = &smtp.credentials_secret else {
        return Ok(None);
    };
    // The operator's namespace: POD_NAMESPACE (with its ServiceAccount), else the client's.
    let ns = match &ctx.config.operator_account {
        Some((ns, _)) => ns.clone(),
        None => ctx.client.default_namespace().to_string(),
    };
    let fail = |reason: String| mail::MailError::Smtp {
        host: smtp.host.clone(),
        port: smtp.port,
        reason: format!("credentials Secret {ns}/{secret}: {reason}"),
    };
    let s = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get(secret)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let data = s.data.unwrap_or_default();
    let field = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .ok_or_else(|| fail(format!("has no key {k:?}")))
    };
    Ok(Some((field("username")?, field("password")?)))
}

/// Server-side apply of `<invite>-link`: the link, the e-mail and the expiry, owned by the
/// invite (deleted with it).
async fn write_link_secret(
    ctx: &Ctx,
    invite: &PartnerAdminInvite,
    link: &str,
    expires: &str,
) -> Result<(), Error> {
    let ns = invite.namespace().unwrap_or_default();
    let name = link_secret_name(&invite.name_any());
    // The invite's name as a label only where it fits one (63 characters; invite names may
    // have 200): the Secret is found by its name and owner reference, the label is for people.
    let mut l = BTreeMap::from([(labels::MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string())]);
    if crate::config::is_label_value(&invite.name_any()) {
        l.insert(INVITE_LABEL.to_string(), invite.name_any());
    }
    if let Some(p) = resources::partner_of_namespace(&ctx.config, &ns) {
        l.insert(labels::PARTNER.to_string(), p);
    }
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: Some(l),
            owner_references: invite.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            ("url".to_string(), ByteString(link.as_bytes().to_vec())),
            (
                "email".to_string(),
                ByteString(invite.spec.email.as_bytes().to_vec()),
            ),
            (
                "expiresAt".to_string(),
                ByteString(expires.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(|e| Error::api("apply", "Secret".into(), &name, e))?;
    Ok(())
}

/// Delete `<invite>-link` once the link is of no more use (accepted or expired); looked up
/// once per invite and process (with SMTP there never is one).
async fn remove_link_secret(ctx: &Ctx, ns: &str, invite: &str, uid: &str) -> Result<(), Error> {
    if ctx.deliveries.cleaned().contains(uid) {
        return Ok(());
    }
    let name = link_secret_name(invite);
    let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
    // Look first: a converged operator (after a restart, say) must not write, not even a
    // DELETE that finds nothing.
    let exists = api
        .get_metadata_opt(&name)
        .await
        .map_err(|e| Error::api("get", "Secret".into(), &name, e))?
        .is_some();
    if exists {
        super::apply::delete(&api, &name).await?;
    }
    ctx.deliveries.cleaned().insert(uid.to_string());
    Ok(())
}

/// Write `desired` if it differs from `current` (the status of `base`), as a compare-and-swap
/// on `base`'s resourceVersion. When the object moved on only because the store lagged behind
/// a write of ours (same phase and token hash), retry once on the fresh copy; when its phase
/// or token changed (accepted meanwhile), give up: the next pass decides on the new state.
/// Returns the written object, or `None` when nothing needed writing.
pub(crate) async fn put_status(
    api: &Api<PartnerAdminInvite>,
    base: &PartnerAdminInvite,
    current: &PartnerAdminInviteStatus,
    desired: PartnerAdminInviteStatus,
) -> Result<Option<PartnerAdminInvite>, Error> {
    if &desired == current {
        return Ok(None);
    }
    let name = base.name_any();
    let mut obj = base.clone();
    obj.metadata.managed_fields = None;
    obj.status = Some(desired.clone());
    match api
        .replace_status(&name, &PostParams::default(), &obj)
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let fresh = api
                .get(&name)
                .await
                .map_err(|e| Error::api("get", "PartnerAdminInvite".into(), &name, e))?;
            let fs = fresh.status.clone().unwrap_or_default();
            if fresh.metadata.uid != base.metadata.uid
                || fs.phase != current.phase
                || fs.token_hash != current.token_hash
            {
                return Err(Error::Stale(format!("PartnerAdminInvite {name}")));
            }
            let mut obj = fresh;
            obj.metadata.managed_fields = None;
            obj.status = Some(desired);
            api.replace_status(&name, &PostParams::default(), &obj)
                .await
                .map(Some)
                .map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => {
                        Error::Stale(format!("PartnerAdminInvite {name}"))
                    }
                    e => Error::api("write status of", "PartnerAdminInvite".into(), &name, e),
                })
        }
        Err(e) => Err(Error::api(
            "write status of",
            "PartnerAdminInvite".into(),
            &name,
            e,
        )),
    }
}

/// Accept: what the acceptance page does once the token checked out. Compare-and-swap on the
/// invite as read, so a second click (or a concurrent expiry) loses cleanly.
pub(crate) async fn accept(
    ctx: &Ctx,
    invite: &PartnerAdminInvite,
) -> Result<PartnerAdminInvite, kube::Error> {
    let ns = invite.namespace().unwrap_or_default();
    let api: Api<PartnerAdminInvite> = Api::namespaced(ctx.client.clone(), &ns);
    let current = invite.status.clone().unwrap_or_default();
    let mut status = current;
    status.phase = Some(InvitePhase::Accepted);
    status.accepted_at = Some(jiff::Timestamp::now().to_string());
    let mut obj = invite.clone();
    obj.metadata.managed_fields = None;
    obj.status = Some(status);
    let accepted = api
        .replace_status(&invite.name_any(), &PostParams::default(), &obj)
        .await?;
    ctx.event(
        invite,
        EventType::Normal,
        c::ACCEPTED,
        format!(
            "{} accepted the invitation and is now a partner admin",
            invite.spec.email
        ),
    )
    .await;
    tracing::info!(invite = %invite.name_any(), namespace = %ns, "invitation accepted");
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AdminRef, PartnerAdminInviteSpec, PartnerSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn invite(ttl: &str, created: &str) -> PartnerAdminInvite {
        let mut i = PartnerAdminInvite::new(
            "invite-bob",
            PartnerAdminInviteSpec {
                email: "bob@acme.example".into(),
                ttl: ttl.into(),
            },
        );
        i.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
        i
    }

    #[test]
    fn expiry_is_creation_plus_ttl() {
        let i = invite("1h30m", "2026-11-22T10:00:00Z");
        assert_eq!(expires_at(&i).unwrap().to_string(), "2026-11-22T11:30:00Z");
        let i = invite("72h", "2026-11-22T10:00:00Z");
        assert_eq!(expires_at(&i).unwrap().to_string(), "2026-11-25T10:00:00Z");
        // Far beyond what the schema allows (8784h) still yields a time, never a panic.
        let i = invite("99999999999h", "2026-11-22T10:00:00Z");
        assert!(expires_at(&i).is_some());
        let mut i = invite("1h", "2026-11-22T10:00:00Z");
        i.metadata.creation_timestamp = None;
        assert!(expires_at(&i).is_none());
    }

    #[test]
    fn already_admin_through_the_spec_or_another_invite() {
        let mut p = Partner::new(
            "acme",
            PartnerSpec {
                display_name: "Acme".into(),
                admins: vec![AdminRef {
                    email: "Alice@Acme.example".into(),
                }],
                entitlements: Default::default(),
                branding: None,
            },
        );
        assert_eq!(
            already_admin("alice@acme.example", Some(&p), &[]).map(|x| x.0),
            Some(c::IN_PARTNER_SPEC)
        );
        assert_eq!(
            already_admin("bob@acme.example", Some(&p), &["bob@acme.example".into()]).map(|x| x.0),
            Some(c::ACCEPTED_INVITE)
        );
        assert_eq!(already_admin("bob@acme.example", Some(&p), &[]), None);
        p.spec.admins.clear();
        assert_eq!(already_admin("alice@acme.example", Some(&p), &[]), None);
        assert_eq!(already_admin("alice@acme.example", None, &[]), None);
    }

    #[test]
    fn waits_read_like_durations() {
        assert_eq!(humantime(Duration::from_secs(90)), "1m 30s");
        assert_eq!(humantime(Duration::from_millis(500)), "500ms");
    }
}
