//! What a fresh cluster has before anyone writes: the default namespaces and the
//! bootstrap RBAC policy that real clusters ship (discovery for everyone, the user-facing
//! `cluster-admin`, `admin`, `edit` and `view` roles).

use serde_json::{Value, json};

use crate::kinds::GroupResource;
use crate::sim::Sim;

const RBAC: &str = "rbac.authorization.k8s.io";

fn gr(group: &str, resource: &str) -> GroupResource {
    GroupResource {
        group: group.into(),
        resource: resource.into(),
    }
}

/// Store an object as the system, with fresh metadata.
pub fn put_system_object(sim: &Sim, group: &str, resource: &str, mut v: Value) {
    let (ns, name) = crate::meta::namespace_and_name(&v);
    v["metadata"]["uid"] = json!(crate::meta::uid());
    v["metadata"]["creationTimestamp"] = json!(crate::meta::now());
    let gr = gr(group, resource);
    let ev = sim
        .store
        .write()
        .expect("store lock")
        .commit(&gr, &ns, &name, Some(v));
    if let Some(ev) = ev {
        crate::api::post_commit(sim, &ev);
    }
}

pub fn namespace_object(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn cluster_role(name: &str, rules: Value, aggregate_to: &[&str]) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for a in aggregate_to {
        labels[format!("rbac.authorization.k8s.io/aggregate-to-{a}")] = json!("true");
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules})
}

fn binding(name: &str, role: &str, group: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": group}]})
}

pub fn seed(sim: &Sim) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        put_system_object(sim, "", "namespaces", namespace_object(ns));
    }
    let read = json!(["get", "list", "watch"]);
    let write = json!(["create", "delete", "deletecollection", "patch", "update"]);
    let everyday = json!(["", "coordination.k8s.io", "events.k8s.io"]);
    let everyday_resources = json!([
        "configmaps",
        "secrets",
        "serviceaccounts",
        "events",
        "leases"
    ]);
    let roles = [
        cluster_role(
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            &[],
        ),
        cluster_role(
            "admin",
            json!([
                {"apiGroups": everyday, "resources": everyday_resources, "verbs": read},
                {"apiGroups": everyday, "resources": everyday_resources, "verbs": write},
                {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}
            ]),
            &[],
        ),
        cluster_role(
            "edit",
            json!([
                {"apiGroups": everyday, "resources": everyday_resources, "verbs": read},
                {"apiGroups": everyday, "resources": everyday_resources, "verbs": write},
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}
            ]),
            &["admin"],
        ),
        cluster_role(
            "view",
            json!([
                {"apiGroups": everyday, "resources": ["configmaps", "serviceaccounts", "events", "leases"], "verbs": read},
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}
            ]),
            &["edit"],
        ),
        cluster_role(
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            &[],
        ),
        cluster_role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            &[],
        ),
        cluster_role(
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}
            ]),
            &[],
        ),
    ];
    for r in roles {
        put_system_object(sim, RBAC, "clusterroles", r);
    }
    for b in [
        binding("cluster-admin", "cluster-admin", "system:masters"),
        binding(
            "system:discovery",
            "system:discovery",
            "system:authenticated",
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            "system:authenticated",
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            "system:authenticated",
        ),
    ] {
        put_system_object(sim, RBAC, "clusterrolebindings", b);
    }
}

/// What the namespace controllers add to a new namespace.
pub fn namespace_defaults(ns: &str) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "",
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
        ),
        (
            "",
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": ns, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nkube-sim has no CA: it serves plain HTTP on loopback\n-----END CERTIFICATE-----\n"}}),
        ),
    ]
}
