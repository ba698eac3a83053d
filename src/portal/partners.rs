//! Partners (platform admins): every partner with its admins, entitlements, companies and
//! status, from the watch cache after the API server said the user may list Partners; and
//! signing up a new partner, as the user (only platform admins may create Partners).

use std::collections::BTreeMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::PrivateCookieJar;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::auth::signed_in;
use super::companies::{not_found, refused_page};
use super::session::Session;
use super::{BASE, Peer, St, check_post, see_other};
use crate::api::{AdminRef, Entitlements, Partner, PartnerSpec, conditions};

#[derive(Serialize)]
struct Row {
    name: String,
    display_name: String,
    admins: Vec<String>,
    branding: bool,
    premium: String,
    max_tenants: String,
    tenants: u32,
    status: String,
    message: String,
    ready: bool,
}

fn row(p: &crate::controller::world::PartnerObj) -> Row {
    let name = p.name_any();
    let Ok(partner) = p.0.as_ref() else {
        return Row {
            name: name.clone(),
            display_name: name,
            admins: vec![],
            branding: false,
            premium: String::new(),
            max_tenants: String::new(),
            tenants: 0,
            status: crate::controller::INVALID_SPEC.into(),
            message: String::new(),
            ready: false,
        };
    };
    let status = partner.status.clone().unwrap_or_default();
    let current = status.observed_generation.is_some()
        && status.observed_generation == partner.metadata.generation;
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::READY);
    let (label, message, ok) = match ready {
        Some(c) if current && c.status == "True" => ("Ready".to_string(), String::new(), true),
        Some(c) if current => (c.reason.clone(), c.message.clone(), false),
        _ => ("Pending".to_string(), String::new(), false),
    };
    let admins = if status.admins.is_empty() {
        partner
            .spec
            .admins
            .iter()
            .map(|a| a.email.clone())
            .collect()
    } else {
        status.admins.clone()
    };
    let e = &partner.spec.entitlements;
    Row {
        name,
        display_name: partner.spec.display_name.clone(),
        admins,
        branding: e.branding,
        premium: e
            .biz_apps
            .as_ref()
            .map_or("every premium app".to_string(), |l| {
                if l.is_empty() {
                    "none".to_string()
                } else {
                    l.join(", ")
                }
            }),
        max_tenants: e.max_tenants.map(|m| m.to_string()).unwrap_or_default(),
        tenants: status.tenants,
        status: label,
        message,
        ready: ok,
    }
}

/// What the sign-up form shows and was sent.
#[derive(Serialize, Default)]
struct SignUp {
    /// Edit: the version the form was made from.
    version: String,
    id: String,
    display_name: String,
    admins: String,
    branding: bool,
    /// Premium catalog apps: (name, label, entitled).
    premium: Vec<(String, String, bool)>,
    max_tenants: String,
    errors: BTreeMap<String, String>,
}

fn premium_choices(st: &St, chosen: Option<&[String]>) -> Vec<(String, String, bool)> {
    st.ctx
        .config
        .catalog
        .iter()
        .filter(|a| a.premium)
        .map(|a| {
            let label = if a.display_name.is_empty() {
                a.name.clone()
            } else {
                a.display_name.clone()
            };
            let on = chosen.is_none_or(|c| c.iter().any(|x| x == &a.name));
            (a.name.clone(), label, on)
        })
        .collect()
}

#[derive(Deserialize)]
pub struct ListQuery {
    created: Option<String>,
}

async fn page(
    st: &St,
    s: &Session,
    form: SignUp,
    created: Option<String>,
    code: StatusCode,
) -> Response {
    let who = st.identity(s);
    if let Err(r) = st.as_user(&who).may_list_cluster::<Partner>().await {
        let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::FORBIDDEN);
        return st.message(
            code,
            st.chrome(s, "Partners"),
            "Partners",
            "The cluster refused this request:",
            Some(&r.message),
        );
    }
    let mut partners = st.ctx.world.partners.state();
    partners.sort_by_key(|p| p.name_any());
    let rows: Vec<Row> = partners.iter().map(|p| row(p)).collect();
    let chrome = st.chrome(s, "Partners");
    st.render(
        code,
        "partners.html",
        &chrome,
        minijinja::context! {
            rows => super::value(&rows),
            form => super::value(&form),
            created => created,
        },
    )
}

/// `GET /portal/partners`.
pub async fn list(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Query(q): Query<ListQuery>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let form = SignUp {
        premium: premium_choices(&st, None),
        ..SignUp::default()
    };
    let r = page(&st, &s, form, q.created, StatusCode::OK).await;
    (jar, r).into_response()
}

/// `POST /portal/partners`: sign up a partner, as the user.
pub async fn create(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    if let Err(r) = check_post(&st, &headers, &s, Some(get("csrf").as_str())) {
        return *r;
    }
    let mut form = SignUp {
        id: get("id"),
        ..SignUp::default()
    };
    if !crate::config::is_dns_label(&form.id) || form.id.len() > crate::api::MAX_NAME {
        form.errors.insert(
            "id".into(),
            "Lower-case letters, digits and '-', at most 50 characters: it names the partner's namespace.".into(),
        );
    }
    let Some((admins, entitlements)) = read_form(&st, &fields, &mut form) else {
        let r = page(&st, &s, form, None, StatusCode::UNPROCESSABLE_ENTITY).await;
        return (jar, r).into_response();
    };
    let partner = Partner::new(
        &form.id,
        PartnerSpec {
            display_name: form.display_name.clone(),
            admins,
            entitlements,
            branding: None,
        },
    );
    let who = st.identity(&s);
    match st.as_user(&who).create_cluster(&partner).await {
        Ok(_) => {
            tracing::info!(user = %s.email, partner = %form.id, "portal: partner signed up");
            super::until_cached(|| st.ctx.world.partner(&form.id).is_some()).await;
            see_other(jar, &format!("{BASE}/partners?created={}", form.id))
        }
        Err(r) => {
            let field = if r.code == 409 { "id" } else { "form" };
            form.errors.insert(field.into(), r.message.clone());
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let resp = page(&st, &s, form, None, code).await;
            (jar, resp).into_response()
        }
    }
}

/// The form's fields: (display name, admins, entitlements) or messages beside the fields.
fn read_form(
    st: &St,
    fields: &[(String, String)],
    form: &mut SignUp,
) -> Option<(Vec<AdminRef>, Entitlements)> {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let chosen: Vec<String> = fields
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("premium.").map(String::from))
        .collect();
    form.display_name = get("display_name");
    form.admins = get("admins");
    form.branding = !get("branding").is_empty();
    form.premium = premium_choices(st, Some(&chosen));
    form.max_tenants = get("max_tenants");
    form.version = get("version");
    if form.display_name.is_empty() {
        form.errors
            .insert("display_name".into(), "Enter the partner's name.".into());
    }
    let admins: Vec<AdminRef> = form
        .admins
        .split(['\n', ',', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| AdminRef {
            email: e.to_string(),
        })
        .collect();
    if admins.is_empty() || admins.iter().any(|a| !crate::config::is_email(&a.email)) {
        form.errors.insert(
            "admins".into(),
            "One e-mail address per line, at least one (the first is the primary admin).".into(),
        );
    }
    let max_tenants = if form.max_tenants.is_empty() {
        None
    } else {
        match form.max_tenants.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                form.errors.insert(
                    "max_tenants".into(),
                    "A whole number, or empty for no limit.".into(),
                );
                None
            }
        }
    };
    let every_premium = form.premium.iter().all(|(_, _, on)| *on);
    form.errors.is_empty().then(|| {
        (
            admins,
            Entitlements {
                branding: form.branding,
                biz_apps: (!every_premium).then_some(chosen),
                max_tenants,
            },
        )
    })
}

fn render_edit(st: &St, s: &Session, form: &SignUp, code: StatusCode) -> Response {
    let chrome = st.chrome(s, &format!("Edit partner {}", form.id));
    st.render(code, "partner_form.html", &chrome, form)
}

/// `GET /portal/partners/{partner}/edit` (platform admins): entitlements and admins.
pub async fn edit_form(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    axum::extract::Path(partner): axum::extract::Path<String>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !crate::config::is_dns_label(&partner) {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    }
    let who = st.identity(&s);
    let p: Partner = match st.as_user(&who).get_cluster(&partner).await {
        Ok(p) => p,
        Err(r) => return (jar, refused_page(&st, &s, "Edit partner", &r)).into_response(),
    };
    let form = SignUp {
        version: super::form_version(&p.metadata),
        id: partner.clone(),
        display_name: p.spec.display_name.clone(),
        admins: p
            .spec
            .admins
            .iter()
            .map(|a| a.email.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        branding: p.spec.entitlements.branding,
        premium: premium_choices(&st, p.spec.entitlements.biz_apps.as_deref()),
        max_tenants: p
            .spec
            .entitlements
            .max_tenants
            .map(|m| m.to_string())
            .unwrap_or_default(),
        errors: BTreeMap::new(),
    };
    (jar, render_edit(&st, &s, &form, StatusCode::OK)).into_response()
}

/// `POST /portal/partners/{partner}/edit`: replace the Partner's name, admins and
/// entitlements (its branding kept) with the version the form was made from, as the user.
pub async fn save(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    axum::extract::Path(partner): axum::extract::Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.clone());
    if let Err(r) = check_post(&st, &headers, &s, csrf.as_deref()) {
        return *r;
    }
    if !crate::config::is_dns_label(&partner) {
        return (jar, not_found(&st, &s, "There is no such partner.")).into_response();
    }
    let mut form = SignUp {
        id: partner.clone(),
        ..SignUp::default()
    };
    let Some((admins, entitlements)) = read_form(&st, &fields, &mut form) else {
        return (
            jar,
            render_edit(&st, &s, &form, StatusCode::UNPROCESSABLE_ENTITY),
        )
            .into_response();
    };
    let who = st.identity(&s);
    let api = st.as_user(&who);
    let mut p: Partner = match api.get_cluster(&partner).await {
        Ok(p) => p,
        Err(r) => return (jar, refused_page(&st, &s, "Edit partner", &r)).into_response(),
    };
    p.spec.display_name = form.display_name.clone();
    p.spec.admins = admins;
    p.spec.entitlements = entitlements;
    let before = p.metadata.resource_version.clone();
    p.metadata.managed_fields = None;
    p.status = None;
    let saved = super::save_spec(
        p,
        &form.version,
        || api.get_cluster::<Partner>(&partner),
        |p| {
            let (api, partner) = (&api, &partner);
            async move { api.replace_cluster(partner, &p).await }
        },
    )
    .await;
    match saved {
        Ok(_) => {
            tracing::info!(user = %s.email, partner = %partner, "portal: partner saved");
            super::until_cached_past(|| st.ctx.world.partner(&partner), before).await;
            see_other(jar, &format!("{BASE}/partners"))
        }
        Err(r) => {
            let text = if r.code == 409 {
                format!(
                    "Someone changed this partner while you were editing it. Open it again to see their change, then make yours. ({})",
                    r.message
                )
            } else {
                r.message.clone()
            };
            form.errors.insert("form".into(), text);
            let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            (jar, render_edit(&st, &s, &form, code)).into_response()
        }
    }
}
