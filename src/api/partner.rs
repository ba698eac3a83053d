//! Partner: a reseller company (cluster-scoped; the name is the partner ID).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{AdminRef, DNS_LABEL, HTTPS_URL};

/// What the platform admin asks for a partner: its name, admins, entitlements and branding.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerkit.io",
    version = "v1alpha1",
    kind = "Partner",
    plural = "partners",
    shortname = "ptn",
    category = "partnerkit",
    status = "PartnerStatus",
    derive = "PartialEq",
    doc = "A reseller company. The platform admin creates it; partnerkit gives it a namespace (partner-<name>) where its admins manage their customer companies (Tenants).",
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= 50").message("metadata.name must be a DNS label of at most 50 characters (it names the partner's namespace)").field_path(".metadata.name"),
    printcolumn = r#"{"name":"Display Name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"Tenants","type":"integer","jsonPath":".status.tenants"}"#,
    printcolumn = r#"{"name":"Branding","type":"boolean","jsonPath":".status.brandingApplied"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PartnerSpec {
    /// The company's name as people read it, e.g. "Acme Reseller". At most 245 characters: the
    /// template tenant is named "<displayName> (Template)", within a Tenant's 256.
    #[schemars(length(min = 1, max = 245))]
    pub display_name: String,
    /// The partner's admins. The first is the primary admin. Each may manage every tenant of
    /// this partner; more can be invited with PartnerAdminInvites.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["email".into()]))]
    pub admins: Vec<AdminRef>,
    /// What the platform lets this partner do. Only platform admins may change it.
    #[serde(default)]
    pub entitlements: Entitlements,
    /// The partner's look, applied to its tenants only if `entitlements.branding` is true.
    /// Partner admins may edit this field (and only this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
}

/// What the platform lets a partner do.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entitlements {
    /// A "licensing partner" may theme its tenants with its own branding.
    #[serde(default)]
    pub branding: bool,
    /// Premium BizApps this partner may enable for its tenants. Omitted: every premium app of
    /// the catalog; empty: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(pattern(DNS_LABEL)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub biz_apps: Option<Vec<String>>,
    /// The most tenants this partner may have (its template tenant not counted). Omitted: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // (`int64`: the API server knows no `uint32` format and warns about it.)
    #[schemars(range(min = 0), extend("format" = "int64"))]
    pub max_tenants: Option<u32>,
}

/// A partner's branding.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    /// Logo image, an https URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTPS_URL), length(max = 2048))]
    pub logo_url: Option<String>,
    /// Primary colour as #RRGGBB, e.g. "#0055ff".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^#[0-9a-fA-F]{6}$"))]
    pub primary_color: Option<String>,
    /// Where tenants get help: exactly one of email or url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<Support>,
}

/// A support channel: exactly one of email or url.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.email) != has(self.url)").message("exactly one of email or url must be set"))]
pub struct Support {
    /// Support e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(super::EMAIL), length(max = 254))]
    pub email: Option<String>,
    /// Support page, an https URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HTTPS_URL), length(max = 2048))]
    pub url: Option<String>,
}

/// What partnerkit observed and did for a Partner.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PartnerStatus {
    /// The .metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The partner's namespace, where its Tenants and PartnerAdminInvites live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The effective admins: spec.admins and accepted invites, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admins: Vec<String>,
    /// How many tenants the partner has (its template not counted).
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub tenants: u32,
    /// Whether the partner's branding reaches its tenants (it is entitled to branding and set some).
    #[serde(default)]
    pub branding_applied: bool,
}
