//! What a cluster needs before the operator starts, besides the CRDs: the user-facing
//! ClusterRoles of the design and the admission policies: one keeps partner admins to
//! `spec.branding` of their own Partner (RBAC cannot say "only this field"), one checks the
//! Tenant map keys the CRD schema cannot check.

use serde_json::{Value, json};

/// The verb on `partners` that only platform admins hold: changing anything of a Partner but
/// `spec.branding`. cluster-admin has it through `*`.
pub const MANAGE_VERB: &str = "manage";
pub const PLATFORM_ADMIN_ROLE: &str = "partnerkit-platform-admin";
pub const PARTNER_ADMIN_ROLE: &str = "partnerkit-partner-admin";
pub const TENANT_ADMIN_ROLE: &str = "partnerkit-tenant-admin";
pub const PARTNER_FIELDS_POLICY: &str = "partnerkit-partner-fields";
pub const INVITE_LINKS_ROLE: &str = "partnerkit-invite-links";
pub const TENANT_FIELDS_POLICY: &str = "partnerkit-tenant-fields";

const RBAC: &str = "rbac.authorization.k8s.io";

fn labels() -> Value {
    json!({"app.kubernetes.io/name": "partnerkit", "app.kubernetes.io/part-of": "partnerkit"})
}

/// `partnerkit-platform-admin`: everything partnerkit, anywhere, including the `manage` verb
/// and PartnerAssignments (moving a company between partners).
pub fn platform_admin_role() -> Value {
    json!({
        "apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole",
        "metadata": {"name": PLATFORM_ADMIN_ROLE, "labels": labels()},
        "rules": [
            {"apiGroups": ["partnerkit.io"], "resources": ["partners", "tenants", "partneradmininvites", "partnerassignments"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
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

/// The label that adds a ClusterRole's rules to `partnerkit-tenant-admin` (for rights beyond
/// Kubernetes' namespace `admin`, e.g. on a platform's own custom resources).
pub const AGGREGATE_TO_TENANT_ADMIN: &str = "partnerkit.io/aggregate-to-tenant-admin";

/// `partnerkit-tenant-admin`: bound in a tenant's workspace namespace; admin of it. It is
/// Kubernetes' own namespace `admin` role — aggregated from the same parts
/// (`rbac.authorization.k8s.io/aggregate-to-admin`, which brings `edit` and `view`, and
/// every operator's CRD rights labelled so) — plus any ClusterRole labelled
/// [`AGGREGATE_TO_TENANT_ADMIN`]. So a tenant admin holds every permission of `admin`, `edit`
/// and `view` and may bind those roles in its workspace (the API server's escalation check).
/// No `rules`: kube-controller-manager's aggregation controller writes them.
pub fn tenant_admin_role() -> Value {
    json!({
        "apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole",
        "metadata": {"name": TENANT_ADMIN_ROLE, "labels": labels()},
        "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
            {"matchLabels": {AGGREGATE_TO_TENANT_ADMIN: "true"}}
        ]}
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

/// What the Tenant schema cannot say: its map keys. BizApp names must be DNS labels, profile
/// names DNS labels of at most 40 characters, profile keys ConfigMap keys. (A CEL rule over a
/// map's keys in the CRD exceeds the API server's estimated-cost budget, because keys have no
/// maxLength; an admission policy is costed on the real object.) Checked when a Tenant is
/// created or its spec changes, so that finalizer and label edits of an older Tenant always
/// pass; the controller re-checks (UnknownBizApp, InvalidProfile).
pub fn tenant_fields_policy() -> Value {
    let label = format!("'{}'", crate::api::DNS_LABEL);
    let max = crate::api::MAX_PROFILE_NAME;
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": TENANT_FIELDS_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["partnerkit.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["tenants"]}]},
            "matchConditions": [
                {"name": "spec-written", "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec"}
            ],
            "variables": [
                {"name": "badApps", "expression": format!("has(object.spec.bizApps) ? object.spec.bizApps.filter(k, k.size() > 63 || !k.matches({label})) : []")},
                {"name": "badProfiles", "expression": format!("has(object.spec.profiles) ? object.spec.profiles.filter(p, p.size() > {max} || !p.matches({label})) : []")},
                {"name": "badKeys", "expression": "has(object.spec.profiles) ? object.spec.profiles.filter(p, object.spec.profiles[p].exists(k, k.size() > 253 || k == '.' || k.startsWith('..') || !k.matches('^[-._a-zA-Z0-9]+$'))) : []"}
            ],
            "validations": [
                {"expression": "size(variables.badApps) == 0", "reason": "Invalid",
                 "messageExpression": "'spec.bizApps: BizApp names must be DNS labels: ' + variables.badApps.join(', ')"},
                {"expression": "size(variables.badProfiles) == 0", "reason": "Invalid",
                 "messageExpression": format!("'spec.profiles: profile names must be DNS labels of at most {max} characters: ' + variables.badProfiles.join(', ')")},
                {"expression": "size(variables.badKeys) == 0", "reason": "Invalid",
                 "messageExpression": "\"spec.profiles: keys must be ConfigMap keys (alphanumerics, '-', '_', '.'), in profile \" + variables.badKeys.join(', ')"}
            ]
        }
    })
}

pub fn tenant_fields_binding() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": TENANT_FIELDS_POLICY, "labels": labels()},
        "spec": {"policyName": TENANT_FIELDS_POLICY, "validationActions": ["Deny"]}
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
        tenant_fields_policy(),
        tenant_fields_binding(),
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
