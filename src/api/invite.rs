//! PartnerAdminInvite: an invitation to become an admin of a partner (in the partner's namespace).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who is invited, and for how long the invitation holds.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnerkit.io",
    version = "v1alpha1",
    kind = "PartnerAdminInvite",
    plural = "partneradmininvites",
    shortname = "pai",
    category = "partnerkit",
    namespaced,
    status = "PartnerAdminInviteStatus",
    derive = "PartialEq",
    validation = Rule::new("self.metadata.name.size() <= 200").message("metadata.name must be at most 200 characters (the link Secret is named <name>-link)").field_path(".metadata.name"),
    doc = "Invites a person, by e-mail, to become an admin of the partner whose namespace it lives in. Accepted, it grants partner admin rights for as long as it exists; deleting it revokes them.",
    printcolumn = r#"{"name":"Email","type":"string","jsonPath":".spec.email"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: delete the invite and create a new one"))]
#[serde(rename_all = "camelCase")]
pub struct PartnerAdminInviteSpec {
    /// Who is invited: the e-mail the invitation goes to and the future admin's user name.
    #[schemars(pattern(super::EMAIL), length(max = 254))]
    pub email: String,
    /// How long the invitation stays valid after creation, e.g. 72h, 30m, 1h30m; at most 8784h
    /// (a leap year). Default 72h.
    #[serde(default = "default_ttl")]
    #[schemars(pattern(r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('8784h')").message("must be at most 8784h (a leap year)"))]
    pub ttl: String,
}

fn default_ttl() -> String {
    "72h".into()
}

/// Where an invitation stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum InvitePhase {
    /// Not delivered yet (or being retried).
    Pending,
    /// The e-mail went out (or, without SMTP, the link is in the `<invite>-link` Secret).
    Sent,
    /// Accepted in time: the e-mail is a partner admin while this invite exists.
    Accepted,
    /// Not accepted before `expiresAt`; delete and re-create it to invite again.
    Expired,
    /// Delivery failed after every retry; the Delivered condition has the SMTP error.
    Failed,
}

impl PartnerAdminInvite {
    /// The e-mail this invite makes a partner admin: Some while it is Accepted and not being
    /// deleted.
    pub fn accepted_email(&self) -> Option<&str> {
        (self.status.as_ref().and_then(|s| s.phase) == Some(InvitePhase::Accepted)
            && self.metadata.deletion_timestamp.is_none())
        .then_some(self.spec.email.as_str())
    }
}

impl InvitePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitePhase::Pending => "Pending",
            InvitePhase::Sent => "Sent",
            InvitePhase::Accepted => "Accepted",
            InvitePhase::Expired => "Expired",
            InvitePhase::Failed => "Failed",
        }
    }
}

/// What partnerkit observed and did for an invitation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PartnerAdminInviteStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Sent, Accepted, Expired or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<InvitePhase>,
    /// When the invitation e-mail was sent (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// When the invitation stops being valid (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When it was accepted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    /// SHA-256 of the current acceptance token (`sha256:<hex>`). The token itself is stored
    /// nowhere: it is only in the link sent to the invitee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::conditions_schema")]
    pub conditions: Vec<Condition>,
}
