//! The inheritance rules: how a tenant's effective BizApps, profiles and admins follow from
//! the catalog, the partner's entitlements, the template and the tenant itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::conditions::{INVALID_PROFILE, NOT_ENTITLED, UNKNOWN_BIZ_APP};
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

/// A profile name: a DNS label of at most [`crate::api::MAX_PROFILE_NAME`] characters.
pub fn is_profile_name(name: &str) -> bool {
    name.len() <= crate::api::MAX_PROFILE_NAME && crate::config::is_dns_label(name)
}

/// A ConfigMap key (the API server's `IsConfigMapKey`): 1–253 of `[-._a-zA-Z0-9]`, not `.`
/// or `..`, not starting with `..`.
pub fn is_config_map_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && key != "."
        && !key.starts_with("..")
}

/// The tenant's own profiles: `InvalidProfile` naming every bad profile name and every bad
/// key (as `profile.key`), sorted. The template's bad profiles never refuse an inheriting
/// tenant (they are left out of its effective profiles); the template itself is refused.
pub fn check_profiles(spec: &TenantSpec) -> Result<(), Refusal> {
    let names: Vec<&str> = spec
        .profiles
        .keys()
        .map(String::as_str)
        .filter(|n| !is_profile_name(n))
        .collect();
    let keys: Vec<String> = spec
        .profiles
        .iter()
        .flat_map(|(p, data)| {
            data.keys()
                .filter(|k| !is_config_map_key(k))
                .map(move |k| format!("{p}.{k}"))
        })
        .collect();
    let mut problems = Vec::new();
    let bytes = profile_bytes(spec);
    if bytes > crate::api::MAX_PROFILE_BYTES {
        problems.push(format!(
            "spec.profiles: {bytes} bytes of profile names, keys and values, at most {}",
            crate::api::MAX_PROFILE_BYTES
        ));
    }
    if !names.is_empty() {
        problems.push(format!(
            "spec.profiles: {} must be DNS labels of at most {} characters",
            names.join(", "),
            crate::api::MAX_PROFILE_NAME
        ));
    }
    if !keys.is_empty() {
        problems.push(format!(
            "spec.profiles: keys {} must be ConfigMap keys (alphanumerics, '-', '_', '.')",
            keys.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refusal::new(INVALID_PROFILE, problems.join("; ")))
    }
}

/// The bytes of a spec's profile names, keys and values (what [`crate::api::MAX_PROFILE_BYTES`]
/// bounds).
pub fn profile_bytes(spec: &TenantSpec) -> usize {
    spec.profiles
        .iter()
        .map(|(p, data)| p.len() + data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())
        .sum()
}

/// Profiles merged per profile name and per key: the template's data, overridden key by key
/// by the tenant's; every key records its source. Sorted by profile name (and key). The
/// template's invalid profile names and keys are left out, and all of its profiles when they
/// are over the size bound (see [`check_profiles`]).
pub fn effective_profiles(
    template: Option<&TenantSpec>,
    tenant: &TenantSpec,
) -> Vec<EffectiveProfile> {
    let mut merged: BTreeMap<&str, EffectiveProfile> = BTreeMap::new();
    let layers = template
        .filter(|t| profile_bytes(t) <= crate::api::MAX_PROFILE_BYTES)
        .map(|t| (t, Source::Template))
        .into_iter()
        .chain([(tenant, Source::Tenant)]);
    for (spec, source) in layers {
        for (name, data) in &spec.profiles {
            let inherited = source == Source::Template;
            if inherited && !is_profile_name(name) {
                continue;
            }
            let p = merged
                .entry(name.as_str())
                .or_insert_with(|| EffectiveProfile {
                    name: name.clone(),
                    data: BTreeMap::new(),
                    sources: BTreeMap::new(),
                });
            for (k, v) in data {
                if inherited && !is_config_map_key(k) {
                    continue;
                }
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
