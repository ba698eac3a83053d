//! What a cluster needs before the operator starts, besides the CRDs: the user-facing
//! ClusterRoles of the design and the admission policy that keeps partner admins to
//! `spec.branding` of their own Partner (RBAC cannot say "only this field").

use serde_json::{Value, json};

/// The verb on `partners` that only platform admins hold: changing anything of a Partner but
/// `spec.branding`. cluster-admin has it through `*`.
pub const MANAGE_VERB: &str = "manage";
pub const PLATFORM_ADMIN_ROLE: &str = "partnerkit-platform-admin";
pub const PARTNER_ADMIN_ROLE: &str = "partnerkit-partner-admin";
pub const TENANT_ADMIN_ROLE: &str = "partnerkit-tenant-admin";
pub const PARTNER_FIELDS_POLICY: &str = "partnerkit-partner-fields";
pub const INVITE_LINKS_ROLE: &str = "partnerkit-invite-links";

const RBAC: &str = "rbac.authorization.k8s.io";

fn labels() -> Value {
    json!({"app.kubernetes.io/name": "partnerkit", "app.kubernetes.io/part-of": "partnerkit"})
}

/// `partnerkit-platform-admin`: everything partnerkit, anywhere, including the `manage` verb.
pub fn platform_admin_role() -> Value {
    json!({
        "apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole",
        "metadata": {"name": PLATFORM_ADMIN_ROLE, "labels": labels()},
        "rules": [
            {"apiGroups": ["partnerkit.io"], "resources": ["partners", "tenants", "partneradmininvites"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
            {"apiGroups": ["partnerkit.io"], "resources": ["partners"], "verbs": [MANAGE_VERB]},
            {"apiGroups": ["partnerkit.io"], "resources": ["partners/status", "tenants/status", "partneradmininvites/status"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps", "events"], "verbs": ["get", "list", "watch"]}
        ]
    })
}

/// `partnerkit-partner-admin`: bound in a partner's namespace; tenants and invites there.
/// (Its Partner object and its tenants' workspaces come from the per-partner ClusterRole.)
pub fn partner_admin_role() -> Value {
    json!({
        "apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole",
        "metadata": {"name": PARTNER_ADMIN_ROLE, "labels": labels()},
        "rules": [
            {"apiGroups": ["partnerkit.io"], "resources": ["tenants", "partneradmininvites"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
            {"apiGroups": ["partnerkit.io"], "resources": ["tenants/status", "partneradmininvites/status"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["configmaps", "events"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
            // The invitation links (`<invite>-link`) without SMTP, to forward; only partnerkit
            // writes Secrets in a partner namespace.
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}
        ]
    })
}

/// `partnerkit-tenant-admin`: bound in a tenant's workspace namespace; admin of it.
pub fn tenant_admin_role() -> Value {
    json!({
        "apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole",
        "metadata": {"name": TENANT_ADMIN_ROLE, "labels": labels()},
        "rules": [
            {"apiGroups": ["", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "coordination.k8s.io"], "resources": ["*"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
            {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]}
        ]
    })
}

/// `partnerkit-invite-links`: Secrets, for the operator itself, bound by it in each partner
/// namespace only (RoleBinding `partnerkit-operator`). There it writes the invitation links
/// (`<invite>-link`) when no SMTP server is configured; tenant workspaces, where customers keep
/// their own Secrets, stay out of its reach.
pub fn invite_links_role() -> Value {
    json!({
        "apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole",
        "metadata": {"name": INVITE_LINKS_ROLE, "labels": labels()},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update", "patch", "delete"]}
        ]
    })
}

/// Every change to a Partner but `spec.branding` (and what the API server maintains) needs
/// `manage` on that partner: a partner admin, who may patch its own Partner through RBAC, can
/// change its branding and nothing else.
pub fn partner_fields_policy() -> Value {
    // Written without mixed-type ternaries, so that it type-checks under the API server's CEL.
    let same = |f: &str| {
        format!(
            "(has(object.{f}) == has(oldObject.{f}) && (!has(object.{f}) || object.{f} == oldObject.{f}))"
        )
    };
    let unchanged = [
        "spec.displayName",
        "spec.admins",
        "spec.entitlements",
        "metadata.labels",
        "metadata.annotations",
        "metadata.finalizers",
        "metadata.ownerReferences",
    ]
    .iter()
    .map(|f| same(f))
    .collect::<Vec<_>>()
    .join(" && ");
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": PARTNER_FIELDS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["partnerkit.io"], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["partners"]}]},
            "variables": [
                {"name": "mayManage", "expression": format!("authorizer.group('partnerkit.io').resource('partners').name(object.metadata.name).check('{MANAGE_VERB}').allowed()")},
                {"name": "onlyBranding", "expression": unchanged}
            ],
            "validations": [{
                "expression": "variables.mayManage || variables.onlyBranding",
                "reason": "Forbidden",
                "messageExpression": format!("'partner admins may change only spec.branding of their Partner; other changes need the \"{MANAGE_VERB}\" permission on partners (partnerkit-platform-admin)'")
            }]
        }
    })
}

pub fn partner_fields_binding() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": PARTNER_FIELDS_POLICY, "labels": labels()},
        "spec": {"policyName": PARTNER_FIELDS_POLICY, "validationActions": ["Deny"]}
    })
}

/// The non-CRD objects of `partnerkit manifests`, in apply order.
pub fn objects() -> Vec<Value> {
    vec![
        platform_admin_role(),
        partner_admin_role(),
        tenant_admin_role(),
        invite_links_role(),
        partner_fields_policy(),
        partner_fields_binding(),
    ]
}

/// `partnerkit manifests`: CRDs, ClusterRoles, the admission policy and its binding.
pub fn all_yaml() -> crate::Result<String> {
    let mut out = crate::crdgen::all_yaml()?;
    for o in objects() {
        out.push_str("---\n");
        out.push_str(&crate::crdgen::to_yaml(&o)?);
    }
    Ok(out)
}
