//! Pure builders: what partnerkit materializes for a Partner or a Tenant, computed from the
//! objects and the configuration alone — no client, no async, no I/O. The controllers read the
//! world (reflector stores), call [`partner()`] / [`tenant()`], and apply the result with
//! server-side apply under [`FIELD_MANAGER`].
//!
//! Owner references, decided per object (Kubernetes allows a cluster-scoped owner for any
//! object, a namespaced owner only for objects in its own namespace):
//! - Partner children that hold no user data — the `partnerkit:partner:<name>` ClusterRole and
//!   ClusterRoleBinding, and the `partnerkit-partner-admins` RoleBinding and
//!   `partnerkit-branding` ConfigMap in the partner namespace — carry a controller owner
//!   reference to the (cluster-scoped) Partner, so garbage collection removes them with it.
//! - The partner Namespace and the template Tenant carry none: they hold what users create
//!   (Tenants, invites, the edited template), and a foreground deletion of the Partner must
//!   never cascade into them. The Partner's finalizer deletes the namespace once no tenant is left.
//! - Workspace objects (Namespace, ConfigMaps, RoleBindings) carry none: a namespaced Tenant
//!   cannot own a Namespace or anything in another namespace, and an owner reference to the
//!   Partner would be wrong after the tenant moves to another partner. They are found by the
//!   labels `app.kubernetes.io/managed-by=partnerkit`, `partnerkit.io/partner`, `partnerkit.io/tenant`.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::config::Config;

mod inherit;
mod partner;
mod tenant;

#[cfg(test)]
mod tests;

pub use inherit::{
    check_profiles, effective_admins, effective_biz_apps, effective_profiles, is_config_map_key,
    is_profile_name, profile_bytes,
};
pub use partner::{PartnerDesired, PartnerInputs, partner};
pub use tenant::{TenantDesired, TenantInputs, TenantPlan, WorkspaceState, tenant};

/// The server-side-apply field manager of every partnerkit write.
pub const FIELD_MANAGER: &str = "partnerkit";
/// Holds a Partner until its tenants are gone, then removes its namespace.
pub const PARTNER_FINALIZER: &str = "partners.partnerkit.io/cleanup";
/// Holds a Tenant until its workspace is labelled orphaned (Retain) or deleted (Delete).
pub const TENANT_FINALIZER: &str = "tenants.partnerkit.io/cleanup";
/// The reserved name of each partner's template tenant.
pub const TEMPLATE_NAME: &str = "template";
/// Value of the `app.kubernetes.io/managed-by` label.
pub const MANAGED_BY_VALUE: &str = "partnerkit";
/// Refusal reason while the tenant's workspace namespace is still being deleted (transient:
/// requeue; the tenant materializes once the namespace is gone).
pub const WORKSPACE_TERMINATING: &str = "WorkspaceTerminating";

/// Labels partnerkit sets (and finds its objects by).
pub mod labels {
    pub const PARTNER: &str = "partnerkit.io/partner";
    pub const TENANT: &str = "partnerkit.io/tenant";
    pub const TEMPLATE: &str = "partnerkit.io/template";
    pub const ORPHANED: &str = "partnerkit.io/orphaned";
    /// Value "partnerkit" ([`super::MANAGED_BY_VALUE`]).
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// `bizapps.partnerkit.io/<app>=enabled` on a workspace, per enabled app.
    pub const BIZAPP_PREFIX: &str = "bizapps.partnerkit.io/";
}

/// Deterministic object names.
pub mod names {
    use crate::config::Config;

    pub const PARTNER_ADMINS_BINDING: &str = "partnerkit-partner-admins";
    pub const TENANT_ADMINS_BINDING: &str = "partnerkit-tenant-admins";
    /// The operator's own RoleBinding in a partner namespace -> `partnerkit-invite-links`.
    pub const OPERATOR_BINDING: &str = "partnerkit-operator";
    pub const BRANDING: &str = "partnerkit-branding";
    pub const BIZAPPS: &str = "partnerkit-bizapps";
    pub const PROFILE_PREFIX: &str = "partnerkit-profile-";

    /// `partner-<name>` (with the configured prefix).
    pub fn partner_namespace(cfg: &Config, partner: &str) -> String {
        format!("{}{partner}", cfg.namespace_prefixes.partner)
    }

    /// `tenant-<name>` (with the configured prefix): the tenant's workspace namespace.
    pub fn workspace(cfg: &Config, tenant: &str) -> String {
        format!("{}{tenant}", cfg.namespace_prefixes.tenant)
    }

    /// `partnerkit:partner:<name>`: the per-partner ClusterRole and ClusterRoleBinding.
    pub fn partner_cluster_role(partner: &str) -> String {
        format!("partnerkit:partner:{partner}")
    }

    /// `partnerkit-profile-<name>`.
    pub fn profile(profile: &str) -> String {
        format!("{PROFILE_PREFIX}{profile}")
    }
}

/// The partner a namespace belongs to, from its name (prefix) — None if not a partner namespace.
pub fn partner_of_namespace(cfg: &Config, ns: &str) -> Option<String> {
    let name = ns.strip_prefix(cfg.namespace_prefixes.partner.as_str())?;
    (name.len() <= crate::api::MAX_NAME && crate::config::is_dns_label(name))
        .then(|| name.to_string())
}

/// Subject user name for an e-mail: config.user_prefix + email.
pub fn user(cfg: &Config, email: &str) -> String {
    format!("{}{email}", cfg.user_prefix)
}

/// Why a tenant is not materialized: the Ready=False reason (a constant of
/// [`crate::api::conditions`], or [`WORKSPACE_TERMINATING`]) and a message naming the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

// ---------------------------------------------------------------------------------------------
// helpers shared by the builders
// ---------------------------------------------------------------------------------------------

/// `managed-by=partnerkit`, `partnerkit.io/partner=<partner>`, and the given extras.
fn labels_for(partner: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (labels::MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        (labels::PARTNER.to_string(), partner.to_string()),
    ]);
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

fn meta(
    name: &str,
    namespace: Option<&str>,
    labels: BTreeMap<String, String>,
    owner: Option<OwnerReference>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn user_subjects<'a>(cfg: &Config, emails: impl IntoIterator<Item = &'a String>) -> Vec<Subject> {
    emails
        .into_iter()
        .map(|e| Subject {
            api_group: Some(RBAC_GROUP.into()),
            kind: "User".into(),
            name: user(cfg, e),
            namespace: None,
        })
        .collect()
}

fn cluster_role_ref(name: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.into(),
        kind: "ClusterRole".into(),
        name: name.into(),
    }
}

/// The branding a partner's customers see (its tenants' `partnerkit-branding`, its invitation
/// e-mails and acceptance page): its own `spec.branding` when it is entitled to branding, else
/// the platform default.
pub fn customer_branding(
    partner: &crate::api::Partner,
    cfg: &crate::config::Config,
) -> BTreeMap<String, String> {
    branding_data(
        partner,
        partner
            .spec
            .branding
            .as_ref()
            .filter(|_| partner.spec.entitlements.branding),
        &cfg.default_branding,
    )
}

/// The data of a `partnerkit-branding` ConfigMap: `partner`, `partnerDisplayName`, `logoUrl`,
/// `primaryColor`, and `supportEmail` or `supportUrl`. Each of logo, colour and support comes
/// from `branding` when it sets it, else from the platform default; keys neither sets are absent.
fn branding_data(
    partner: &crate::api::Partner,
    branding: Option<&crate::api::Branding>,
    default: &crate::config::DefaultBranding,
) -> BTreeMap<String, String> {
    use kube::ResourceExt;
    let mut data = BTreeMap::from([
        ("partner".to_string(), partner.name_any()),
        (
            "partnerDisplayName".to_string(),
            partner.spec.display_name.clone(),
        ),
    ]);
    let logo = branding
        .and_then(|b| b.logo_url.clone())
        .or_else(|| default.logo_url.clone());
    let color = branding
        .and_then(|b| b.primary_color.clone())
        .or_else(|| default.primary_color.clone());
    if let Some(logo) = logo {
        data.insert("logoUrl".into(), logo);
    }
    if let Some(color) = color {
        data.insert("primaryColor".into(), color);
    }
    // The support channel falls back as a whole: a partner's e-mail never mixes with the
    // platform's URL.
    let own = branding
        .and_then(|b| b.support.as_ref())
        .and_then(|s| match (&s.email, &s.url) {
            (Some(email), _) => Some(("supportEmail", email.clone())),
            (None, Some(url)) => Some(("supportUrl", url.clone())),
            (None, None) => None,
        });
    let platform = default
        .support
        .as_ref()
        .and_then(|s| match (&s.email, &s.url) {
            (Some(email), _) => Some(("supportEmail", email.clone())),
            (None, Some(url)) => Some(("supportUrl", url.clone())),
            (None, None) => None,
        });
    if let Some((key, value)) = own.or(platform) {
        data.insert(key.into(), value);
    }
    data
}
