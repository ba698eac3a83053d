//! The inheritance rules: how a tenant's effective BizApps, profiles and admins follow from
//! the catalog, the partner's entitlements, the template and the tenant itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::conditions::{NOT_ENTITLED, UNKNOWN_BIZ_APP};
use crate::api::{
    EffectiveAdmin, EffectiveBizApp, EffectiveProfile, Entitlements, Source, TenantSpec,
};
use crate::config::CatalogApp;

use super::Refusal;

/// Every catalog app, sorted by name, on or off with its source:
/// - a non-premium app is on unless set false; the tenant's value wins over the template's,
///   and with neither it is on (source catalog);
/// - a premium app is on only if the tenant (or, when the tenant does not set it, the
///   template) sets it true AND the partner is entitled to it (`entitlements.bizApps` None =
///   every premium app); set by neither it is off (source catalog).
///
/// Refusals concern the tenant's own keys only: a key not in the catalog -> `UnknownBizApp`
/// naming every such key (sorted; the message also names not-entitled keys, if any); a premium
/// app the tenant sets true without entitlement -> `NotEntitled` naming them (sorted). The
/// template's keys never refuse an inheriting tenant: an unknown key of the template is
/// ignored, and a premium app the template enables without entitlement is simply off (source
/// template). The template tenant itself (evaluated with `template = None`) is refused for
/// its own such keys, so partner admins see the problem there.
pub fn effective_biz_apps(
    catalog: &[CatalogApp],
    entitlements: &Entitlements,
    template: Option<&TenantSpec>,
    tenant: &TenantSpec,
) -> Result<Vec<EffectiveBizApp>, Refusal> {
    let entitled = |app: &str| {
        entitlements
            .biz_apps
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == app))
    };
    let by_name: BTreeMap<&str, &CatalogApp> =
        catalog.iter().map(|a| (a.name.as_str(), a)).collect();

    let unknown: Vec<&str> = tenant
        .biz_apps
        .keys()
        .map(String::as_str)
        .filter(|k| !by_name.contains_key(k))
        .collect();
    let not_entitled: Vec<&str> = tenant
        .biz_apps
        .iter()
        .filter(|(k, on)| {
            **on && by_name.get(k.as_str()).is_some_and(|a| a.premium) && !entitled(k)
        })
        .map(|(k, _)| k.as_str())
        .collect();
    if !unknown.is_empty() {
        let mut message = format!(
            "BizApps not in the platform catalog: {}",
            unknown.join(", ")
        );
        if !not_entitled.is_empty() {
            message.push_str(&format!(
                "; premium BizApps the partner is not entitled to: {}",
                not_entitled.join(", ")
            ));
        }
        return Err(Refusal::new(UNKNOWN_BIZ_APP, message));
    }
    if !not_entitled.is_empty() {
        return Err(Refusal::new(
            NOT_ENTITLED,
            format!(
                "premium BizApps the partner is not entitled to: {}",
                not_entitled.join(", ")
            ),
        ));
    }

    Ok(by_name
        .into_values()
        .map(|app| {
            let own = tenant.biz_apps.get(&app.name).copied();
            let inherited = template.and_then(|t| t.biz_apps.get(&app.name)).copied();
            let (enabled, source) = match (own, inherited) {
                (Some(on), _) => (on, Source::Tenant),
                (None, Some(on)) => (on, Source::Template),
                (None, None) => (!app.premium, Source::Catalog),
            };
            let enabled = enabled && (!app.premium || entitled(&app.name));
            EffectiveBizApp {
                name: app.name.clone(),
                enabled,
                source,
            }
        })
        .collect())
}

/// Profiles merged per profile name and per key: the template's data, overridden key by key
/// by the tenant's; every key records its source. Sorted by profile name (and key).
pub fn effective_profiles(
    template: Option<&TenantSpec>,
    tenant: &TenantSpec,
) -> Vec<EffectiveProfile> {
    let mut merged: BTreeMap<&str, EffectiveProfile> = BTreeMap::new();
    let layers = template
        .map(|t| (t, Source::Template))
        .into_iter()
        .chain([(tenant, Source::Tenant)]);
    for (spec, source) in layers {
        for (name, data) in &spec.profiles {
            let p = merged
                .entry(name.as_str())
                .or_insert_with(|| EffectiveProfile {
                    name: name.clone(),
                    data: BTreeMap::new(),
                    sources: BTreeMap::new(),
                });
            for (k, v) in data {
                p.data.insert(k.clone(), v.clone());
                p.sources.insert(k.clone(), source);
            }
        }
    }
    merged.into_values().collect()
}

/// The tenant's admins: `spec.admins` if non-empty (source tenant), else the partner's
/// effective admins (source partner). Sorted by e-mail, deduplicated.
pub fn effective_admins(tenant: &TenantSpec, partner_admins: &[String]) -> Vec<EffectiveAdmin> {
    let (emails, source): (BTreeSet<&str>, _) = if tenant.admins.is_empty() {
        (
            partner_admins.iter().map(String::as_str).collect(),
            Source::Partner,
        )
    } else {
        (
            tenant.admins.iter().map(|a| a.email.as_str()).collect(),
            Source::Tenant,
        )
    };
    emails
        .into_iter()
        .map(|e| EffectiveAdmin {
            email: e.to_string(),
            source,
        })
        .collect()
}
