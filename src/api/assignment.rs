//! PartnerAssignment: a platform admin's act that lets a company's retained workspace move to
//! another partner (cluster-scoped: partner admins, whose rights are namespaced, cannot create
//! one).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::DNS_LABEL;

/// Moves a company (a tenant name) from one partner to another: a Tenant of that name in the
/// `to` partner may adopt the workspace that the `from` partner retained when it deleted its
/// Tenant. Without one, a retained workspace is adopted only by a Tenant of the partner that
/// last held it; no partner ever reaches another partner's retained data on its own.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerkit.io",
    version = "v1alpha1",
    kind = "PartnerAssignment",
    plural = "partnerassignments",
    shortname = "pas",
    category = "partnerkit",
    derive = "PartialEq",
    doc = "A platform admin's assignment of a company (a tenant name) from one partner to another: a Tenant of that name in the 'to' partner may then adopt the workspace the 'from' partner retained. Only platform admins may create one.",
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenant"}"#,
    printcolumn = r#"{"name":"From","type":"string","jsonPath":".spec.from"}"#,
    printcolumn = r#"{"name":"To","type":"string","jsonPath":".spec.to"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.from != self.to").message("from and to must be different partners"))]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: create another PartnerAssignment"))]
#[serde(rename_all = "camelCase")]
pub struct PartnerAssignmentSpec {
    /// The company ID: the name of the Tenant (and of its workspace tenant-<name>) to move.
    #[schemars(pattern(DNS_LABEL), length(min = 1, max = 50))]
    pub tenant: String,
    /// The partner that last held the company: the retained workspace is labelled
    /// partnerkit.io/partner=<from>.
    #[schemars(pattern(DNS_LABEL), length(min = 1, max = 50))]
    pub from: String,
    /// The partner whose Tenant of that name may adopt the workspace.
    #[schemars(pattern(DNS_LABEL), length(min = 1, max = 50))]
    pub to: String,
}

impl PartnerAssignment {
    /// Whether this assignment moves `tenant` from `from` to `to`.
    pub fn moves(&self, tenant: &str, from: &str, to: &str) -> bool {
        self.spec.tenant == tenant && self.spec.from == from && self.spec.to == to
    }
}
