//! A tenant admin's view of their own company: its BizApps, branding and support channel, as
//! the company's workspace ConfigMaps (`partnerkit-bizapps`, `partnerkit-branding`) say —
//! read as the tenant admin, so the API server decides whose company they may see.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::PrivateCookieJar;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde::Serialize;

use super::auth::signed_in;
use super::companies::{not_found, refused_page};
use super::{Peer, St};
use crate::resources::names;

/// A company the signed-in person administers: (partner, company ID, company name).
#[derive(Serialize, Clone)]
pub struct Own {
    pub partner: String,
    pub id: String,
    pub name: String,
}

/// The companies whose effective admins include `email`, from the watch cache. (A scan of
/// the cached Tenants — in memory, a few milliseconds at 100,000 — made only for a signed-in
/// person who administers no partner.) For such a person that is the companies naming them
/// among their own admins: a company that names none has its partner's admins
/// (`resources::effective_admins`), and the cache keeps no status lists to read instead
/// (`controller::world::slim_tenant`).
pub fn companies_of(st: &St, email: &str) -> Vec<Own> {
    let mut out: Vec<Own> = st
        .ctx
        .world
        .tenants
        .state()
        .iter()
        .filter_map(|t| {
            let tenant = t.0.as_ref().ok()?;
            tenant
                .spec
                .admins
                .iter()
                .any(|a| a.email.eq_ignore_ascii_case(email))
                .then(|| {
                    let ns = t.namespace().unwrap_or_default();
                    Some(Own {
                        partner: crate::resources::partner_of_namespace(&st.ctx.config, &ns)?,
                        id: t.name_any(),
                        name: tenant.spec.display_name.clone(),
                    })
                })
                .flatten()
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// `GET /portal/company/{partner}/{id}`.
pub async fn show(
    State(st): State<St>,
    peer: Peer,
    headers: HeaderMap,
    jar: PrivateCookieJar,
    Path((partner, id)): Path<(String, String)>,
) -> Response {
    let (s, jar) = match signed_in(&st, &headers, &peer, jar) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let valid = |n: &str| crate::config::is_dns_label(n) && n.len() <= crate::api::MAX_NAME;
    if !valid(&partner) || !valid(&id) {
        return (jar, not_found(&st, &s, "There is no such company.")).into_response();
    }
    let ws = names::workspace(&st.ctx.config, &id);
    let who = st.identity(&s);
    let api = st.as_user(&who);
    let apps: ConfigMap = match api.get(&ws, "partnerkit-bizapps").await {
        Ok(c) => c,
        Err(r) => return (jar, refused_page(&st, &s, "Your company", &r)).into_response(),
    };
    let branding: ConfigMap = match api.get(&ws, "partnerkit-branding").await {
        Ok(c) => c,
        Err(r) => return (jar, refused_page(&st, &s, "Your company", &r)).into_response(),
    };
    // The workspace must be this partner's company (the URL names both).
    if branding
        .data
        .as_ref()
        .and_then(|d| d.get("partner"))
        .is_some_and(|p| p != &partner)
    {
        return (jar, not_found(&st, &s, "There is no such company.")).into_response();
    }
    let name = st
        .ctx
        .world
        .tenant(&names::partner_namespace(&st.ctx.config, &partner), &id)
        .and_then(|t| t.0.as_ref().ok().map(|t| t.spec.display_name.clone()))
        .unwrap_or_else(|| id.clone());
    let enabled: Vec<String> = st
        .ctx
        .config
        .catalog
        .iter()
        .filter(|a| {
            apps.data
                .as_ref()
                .and_then(|d| d.get(&a.name))
                .is_some_and(|v| v == "true")
        })
        .map(|a| {
            if a.display_name.is_empty() {
                a.name.clone()
            } else {
                a.display_name.clone()
            }
        })
        .collect();
    let b = branding.data.unwrap_or_default();
    let get = |k: &str| b.get(k).cloned().unwrap_or_default();
    let partner_name = st
        .ctx
        .world
        .partner(&partner)
        .and_then(|p| p.0.as_ref().ok().map(|p| p.spec.display_name.clone()))
        .unwrap_or_else(|| partner.clone());
    let mut chrome = st.chrome(&s, &name);
    chrome.partner = None;
    // The company's brand: its partner's colour if the partner is licensing, else the
    // platform's (brand.css serves what the company's branding ConfigMap gets).
    chrome.brand = Some(partner.clone());
    let r = st.render(
        StatusCode::OK,
        "company.html",
        &chrome,
        minijinja::context! {
            id => id,
            partner => partner_name,
            apps => enabled,
            logo_url => get("logoUrl"),
            primary_color => get("primaryColor"),
            support_email => get("supportEmail"),
            support_url => get("supportUrl"),
        },
    );
    (jar, r).into_response()
}
