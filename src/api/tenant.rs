//! Tenant: a customer company of a partner (namespaced: lives in its partner's namespace).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AdminRef;

/// What a partner admin asks for a customer company: its BizApps, profiles, admins.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerkit.io",
    version = "v1alpha1",
    kind = "Tenant",
    plural = "tenants",
    shortname = "tnt",
    category = "partnerkit",
    namespaced,
    status = "TenantStatus",
    derive = "PartialEq",
    doc = "A customer company of a partner. Its name is the company ID, unique platform-wide; it gets a workspace namespace (tenant-<name>) holding its BizApps, branding and profiles. Every tenant inherits, live, from its partner's template tenant; its own values win.",
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= 50").message("metadata.name must be a DNS label of at most 50 characters (it names the tenant's workspace namespace)").field_path(".metadata.name"),
    printcolumn = r#"{"name":"Display Name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Workspace","type":"string","jsonPath":".status.workspace"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Template","type":"string","priority":1,"jsonPath":".metadata.labels.partnerkit\\.io/template"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// The company's name as people read it, e.g. "Globex Corporation".
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    /// Inherit BizApps and profiles from the partner's template tenant (live). Default true.
    #[serde(default = "default_true")]
    pub inherit_from_template: bool,
    /// BizApps switched on (true) or off (false) for this tenant, over the template's.
    /// Keys are catalog app names (DNS labels). A premium app needs the partner's entitlement.
    // Map keys are checked by the admission policy partnerkit-tenant-fields and by the
    // controller, not by CEL here: a CEL rule over map keys exceeds the API server's
    // estimated-cost budget for CRDs (keys have no maxLength), and the CRD is refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub biz_apps: BTreeMap<String, bool>,
    /// Named settings bundles (e.g. wifi: {ssid: globex}), merged key by key over the
    /// template's profiles of the same name. Each becomes ConfigMap `partnerkit-profile-<name>`:
    /// names are DNS labels of at most 40 characters, keys valid ConfigMap keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, BTreeMap<String, String>>,
    /// The tenant's admins. Empty: the partner's admins administer the tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["email".into()]))]
    pub admins: Vec<AdminRef>,
    /// What happens to the workspace namespace when the Tenant is deleted: Retain (default;
    /// it is kept and labelled orphaned, and a new Tenant of the same name adopts it) or Delete.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_true() -> bool {
    true
}

/// Fate of the workspace namespace when its Tenant is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the namespace (labelled `partnerkit.io/orphaned=true`) for adoption.
    #[default]
    Retain,
    /// Delete the namespace and everything in it.
    Delete,
}

/// Where an effective value comes from.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The platform's catalog default.
    Catalog,
    /// The partner's template tenant.
    Template,
    /// The tenant itself.
    Tenant,
    /// The partner (admins of a tenant without its own).
    Partner,
}

/// One BizApp as it is in effect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveBizApp {
    pub name: String,
    pub enabled: bool,
    pub source: Source,
}

/// One profile as it is in effect: its data and where each key comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveProfile {
    pub name: String,
    pub data: BTreeMap<String, String>,
    /// Source of each key of data: template or tenant.
    pub sources: BTreeMap<String, Source>,
}

/// One admin as in effect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveAdmin {
    pub email: String,
    /// tenant (spec.admins) or partner (the partner's admins, when spec.admins is empty).
    pub source: Source,
}

/// What partnerkit observed and did for a Tenant.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The .metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The workspace namespace (none for the template tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Every catalog BizApp, on or off, with where that comes from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective_biz_apps: Vec<EffectiveBizApp>,
    /// Every profile in effect, merged from the template and the tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective_profiles: Vec<EffectiveProfile>,
    /// Who administers the tenant's workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effective_admins: Vec<EffectiveAdmin>,
    /// Never on the API: in the operator's cache only, the [`TenantStatus::digest`] of the
    /// status as the API server returned it, whose `effective_profiles` the cache drops (they
    /// are the bulk of a Tenant and nothing reads them back; see `controller::world`).
    #[serde(skip)]
    pub observed_digest: Option<u64>,
}

impl TenantStatus {
    /// A digest of everything the API carries (not `observed_digest`): equal statuses, equal
    /// digests, within one process.
    pub fn digest(&self) -> u64 {
        super::json_digest(self)
    }
    /// Whether `self` (a status about to be written) says what the `observed` one does, also
    /// when `observed` is a cached copy without its effective profiles.
    pub fn same_as(&self, observed: &TenantStatus) -> bool {
        self.same_as_digested(self.digest(), observed)
    }
    /// [`TenantStatus::same_as`], with `digest` the [`TenantStatus::digest`] of `self` (the
    /// writer computed it already).
    pub fn same_as_digested(&self, digest: u64, observed: &TenantStatus) -> bool {
        match observed.observed_digest {
            Some(d) => digest == d,
            None => self == observed,
        }
    }
}
