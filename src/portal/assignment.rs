//! Partner Assignment (platform admins): move a company to another partner — the act of the
//! user guide's "Move a company to another partner", done as the signed-in platform admin:
//! a PartnerAssignment (the record, and the operator's permission to hand the retained
//! workspace over), then the Tenant deleted from its partner (its workspace retained) and
//! created, with the same spec, in the other. Every step is the user's own API request.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::PrivateCookieJar;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::auth::signed_in;
use super::session::Session;
use super::{BASE, Peer, St, check_post, see_other};
use crate::api::{DeletionPolicy, Partner, PartnerAssignment, PartnerAssignmentSpec, Tenant};
use crate::resources::names;

#[derive(Serialize, Default)]
struct MoveForm {
    tenant: String,
    from: String,
    to: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct Record {
    name: String,
    tenant: String,
    from: String,
    to: String,
    created: String,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    moved: Option<String>,
}

async fn page(
    st: &St,
    s: &Session,
    form: MoveForm,
    moved: Option<String>,
    code: StatusCode,
) -> Response {
    let who = st.identity(s);
    if let Err(r) = st
        .as_user(&who)
        .may_list_cluster::<PartnerAssignment>()
        .await
    {
        let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FORBIDDEN);
        return st.message(
            code,
            st.chrome(s, "Partner Assignment"),
            "Partner Assignment",
            "The cluster refused this request:",
            Some(&r.message),
        );
    }
    let mut partners: Vec<(String, String)> = st
        .ctx
        .world
        .partners
        .state()
        .iter()
        .map(|p| {
            let display =
                p.0.as_ref()
                    .map(|p: &Partner| p.spec.display_name.clone())
                    .unwrap_or_else(|_| p.name_any());
            (p.name_any(), display)
        })
        .collect();
    partners.sort();
    let mut records: Vec<Record> = st
        .ctx
        .world
        .assignments
        .state()
        .iter()
        .filter_map(|a| {
            let spec = &a.0.as_ref().ok()?.spec;
            Some(Record {
                name: a.name_any(),
                tenant: spec.tenant.clone(),
                from: spec.from.clone(),
                to: spec.to.clone(),
                created: a
                    .creation_timestamp()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    records.sort_by(|a, b| b.created.cmp(&a.created));
    st.render(
        code,
        "assignment.html",
        &st.chrome(s, "Partner Assignment"),
        minijinja::context! {
            partners => super::value(&partners),
            records => super::value(&records),
            form => super::value(&form),
            moved => moved,
        },
    )
}

/// `GET /portal/partner-assignment`.
pub async fn form(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Query(q): Query<DoneQuery>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let r = page(&st, &s, MoveForm::default(), q.moved, StatusCode::OK).await;
    (jar, r).into_response()
}

#[derive(Deserialize)]
pub struct MoveFields {
    csrf: Option<String>,
    tenant: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `POST /portal/partner-assignment`: move the company.
pub async fn move_company(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Form(f): Form<MoveFields>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if let Err(r) = check_post(&st, &headers, &s, f.csrf.as_deref()) {
        return *r;
    }
    let trimmed = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_string();
    let form = MoveForm {
        tenant: trimmed(&f.tenant),
        from: trimmed(&f.from),
        to: trimmed(&f.to),
        error: None,
    };
    let fail = |mut form: MoveForm, code: StatusCode, text: String| {
        form.error = Some(text);
        (form, code)
    };
    let valid = |n: &str| crate::config::is_dns_label(n) && n.len() <= crate::api::MAX_NAME;
    let (form, code) = 'done: {
        if !valid(&form.tenant) || !valid(&form.from) || !valid(&form.to) {
            break 'done fail(
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Enter the company's ID and choose both partners.".into(),
            );
        }
        if form.from == form.to {
            break 'done fail(
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose another partner to move the company to.".into(),
            );
        }
        let (from_ns, to_ns) = (
            names::partner_namespace(&st.ctx.config, &form.from),
            names::partner_namespace(&st.ctx.config, &form.to),
        );
        let who = st.identity(&s);
        let api = st.as_user(&who);
        // 1. The company as it is now (as the user): its spec goes with it.
        let source = match api.get_tenant(&from_ns, &form.tenant).await {
            Ok(t) => t,
            Err(r) => {
                let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::NOT_FOUND);
                break 'done fail(form, code, r.message);
            }
        };
        if source.spec.deletion_policy == DeletionPolicy::Delete {
            break 'done fail(
                form,
                StatusCode::CONFLICT,
                "This company's deletionPolicy is Delete: its workspace would be deleted with it, not moved. Set it to Retain first (Edit with kubectl).".into(),
            );
        }
        // 2. The assignment: the record, and the operator's permission to hand the workspace over.
        let assignment = PartnerAssignment::new(
            &format!("{}-to-{}", form.tenant, form.to),
            PartnerAssignmentSpec {
                tenant: form.tenant.clone(),
                from: form.from.clone(),
                to: form.to.clone(),
            },
        );
        match api.create_cluster(&assignment).await {
            Ok(_) => {}
            // The same move recorded before (the name says tenant and target): go on.
            Err(r) if r.code == 409 => {}
            Err(r) => {
                let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FORBIDDEN);
                break 'done fail(form, code, r.message);
            }
        }
        // 3. The Tenant leaves its partner; its workspace is retained for the other.
        if let Err(r) = api.delete::<Tenant>(&from_ns, &form.tenant).await {
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FORBIDDEN);
            break 'done fail(form, code, r.message);
        }
        // The old Tenant goes once the operator has labelled its workspace orphaned (its
        // finalizer): wait for that (up to 15 s), so the new one does not start out as a
        // NameConflict with it.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline {
            match api.get_tenant(&from_ns, &form.tenant).await {
                Err(r) if r.code == 404 => break,
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        // 4. The same company in the other partner (it adopts the workspace once the old
        //    Tenant is gone).
        let mut target = Tenant::new(&form.tenant, source.spec.clone());
        target.metadata.namespace = Some(to_ns.clone());
        if let Err(r) = api.create(&to_ns, &target).await {
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            break 'done fail(
                form,
                code,
                format!(
                    "The company left {} and its workspace is kept, but creating it in {} failed: {} — create it there with Create Company (ID {}); the assignment stays.",
                    source.namespace().unwrap_or_default(),
                    to_ns,
                    r.message,
                    source.name_any()
                ),
            );
        }
        tracing::info!(user = %s.email, tenant = %form.tenant, from = %form.from, to = %form.to, "portal: company moved");
        super::until_cached(|| st.ctx.world.tenant(&to_ns, &form.tenant).is_some()).await;
        return see_other(
            jar,
            &format!("{BASE}/partner-assignment?moved={}", form.tenant),
        );
    };
    let r = page(&st, &s, form, None, code).await;
    (jar, r).into_response()
}
