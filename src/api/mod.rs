//! The partnerkit API: group `partnerkit.io`, version `v1alpha1`, category `partnerkit`.
//!
//! Validation lives in the schema (patterns, enums, list types, CEL rules) so bad input fails
//! at `kubectl apply` with the field named; doc comments become `kubectl explain` text.

pub mod assignment;
pub mod invite;
pub mod partner;
pub mod tenant;

pub use assignment::{PartnerAssignment, PartnerAssignmentSpec};
pub use invite::{
    InvitePhase, PartnerAdminInvite, PartnerAdminInviteSpec, PartnerAdminInviteStatus,
};
pub use partner::{Branding, Entitlements, Partner, PartnerSpec, PartnerStatus, Support};
pub use tenant::{
    DeletionPolicy, EffectiveAdmin, EffectiveBizApp, EffectiveProfile, Source, Tenant, TenantSpec,
    TenantStatus,
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A 64-bit digest of `v`'s JSON, hashed as it is written (nothing is allocated for the text):
/// equal values, equal digests, within one process (std's SipHash, keyed per process).
pub fn json_digest(v: &impl Serialize) -> u64 {
    use std::hash::Hasher;
    struct Writer(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Writer(Default::default());
    serde_json::to_writer(&mut w, v).expect("a value partnerkit built serializes");
    w.0.finish()
}

pub const GROUP: &str = "partnerkit.io";
pub const VERSION: &str = "v1alpha1";

/// The longest Partner or Tenant name: a DNS label that still fits a namespace prefix of up
/// to 13 characters (`partner-`, `tenant-` by default) within the 63-character limit.
pub const MAX_NAME: usize = 50;

/// A DNS label (RFC 1123): lower-case alphanumerics and '-', starting and ending alphanumeric.
pub const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// The longest profile name (it names ConfigMap `partnerkit-profile-<name>`).
pub const MAX_PROFILE_NAME: usize = 40;

/// The most profile data one Tenant may hold: the bytes of its profile names, keys and values.
/// A tenant's effective profiles (the template's and its own) are then at most twice this,
/// well within a ConfigMap's 1 MiB, and the Tenant with its status within etcd's 1.5 MiB.
pub const MAX_PROFILE_BYTES: usize = 256 * 1024;

/// An e-mail address as partnerkit accepts it (it becomes an RBAC user name).
pub const EMAIL: &str = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+$";
/// An https URL.
pub const HTTPS_URL: &str = r"^https://[^\s/$.?#][^\s]*$";

/// A person by e-mail. The e-mail (with the configured `userPrefix`) is their Kubernetes user name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminRef {
    /// E-mail address, e.g. alice@acme.example.
    #[schemars(pattern(EMAIL), length(max = 254))]
    pub email: String,
}

/// Condition types and reasons.
pub mod conditions {
    pub const READY: &str = "Ready";
    pub const RECONCILED: &str = "Reconciled";
    pub const NAME_CONFLICT: &str = "NameConflict";
    pub const NOT_ENTITLED: &str = "NotEntitled";
    pub const UNKNOWN_BIZ_APP: &str = "UnknownBizApp";
    /// A profile name that is not a DNS label of at most 40 characters, or a key that is not
    /// a ConfigMap key (refused at admission too, by partnerkit-tenant-fields).
    pub const INVALID_PROFILE: &str = "InvalidProfile";
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    pub const NOT_IN_PARTNER_NAMESPACE: &str = "NotInPartnerNamespace";
    pub const PARTNER_NOT_READY: &str = "PartnerNotReady";
    pub const HAS_TENANTS: &str = "HasTenants";
    pub const NAMESPACE_CONFLICT: &str = "NamespaceConflict";
    /// Tenant: its workspace holds the data another partner retained; a platform admin's
    /// PartnerAssignment must move the company first.
    pub const ASSIGNMENT_REQUIRED: &str = "AssignmentRequired";

    /// PartnerAdminInvite: whether the invitation reached the invitee (True: `Sent` by e-mail,
    /// or `LinkInSecret`; False: `Sending`, `Retrying`, `SmtpError`, `NotConfigured`,
    /// `PartnerNotFound`).
    pub const DELIVERED: &str = "Delivered";
    /// PartnerAdminInvite: the e-mail is already an admin of the partner (`InPartnerSpec` or
    /// `AcceptedInvite`); the invite still works, as a grant of its own.
    pub const ALREADY_ADMIN: &str = "AlreadyAdmin";
    pub const SENT: &str = "Sent";
    pub const LINK_IN_SECRET: &str = "LinkInSecret";
    pub const SENDING: &str = "Sending";
    pub const RETRYING: &str = "Retrying";
    pub const SMTP_ERROR: &str = "SmtpError";
    pub const NOT_CONFIGURED: &str = "NotConfigured";
    pub const PARTNER_NOT_FOUND: &str = "PartnerNotFound";
    pub const IN_PARTNER_SPEC: &str = "InPartnerSpec";
    pub const ACCEPTED_INVITE: &str = "AcceptedInvite";
    pub const ACCEPTED: &str = "Accepted";
    pub const EXPIRED: &str = "Expired";
}

/// The schema of `status.conditions`: a list-map keyed by `type` (metav1.Condition).
pub(crate) fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Conditions of the object: Ready says whether everything it asks for is in place, with a reason when not.",
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string", "description": "Type of condition, e.g. Ready."},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"], "description": "True, False or Unknown."},
                "observedGeneration": {"type": "integer", "format": "int64", "description": "The .metadata.generation the condition was set for."},
                "lastTransitionTime": {"type": "string", "format": "date-time", "description": "When the status last changed."},
                "reason": {"type": "string", "description": "A CamelCase reason for the condition's last transition."},
                "message": {"type": "string", "description": "A human-readable message about the transition."}
            }
        }
    })
}

/// Type alias kept for readability in status structs.
pub type Conditions = Vec<Condition>;
