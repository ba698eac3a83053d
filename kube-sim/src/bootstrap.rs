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

pub fn seed(sim: &Sim) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        put_system_object(sim, "", "namespaces", namespace_object(ns));
    }
    for o in bootstrap_rbac() {
        let resource = match o["kind"].as_str() {
            Some("ClusterRole") => "clusterroles",
            Some("ClusterRoleBinding") => "clusterrolebindings",
            Some("Role") => "roles",
            _ => "rolebindings",
        };
        put_system_object(sim, RBAC, resource, o);
    }
}

/// The RBAC objects kube-apiserver creates at start (label `kubernetes.io/bootstrapping=
/// rbac-defaults`), as a real v1.36 server serves them: written from one by
/// `hack/kube-sim-bootstrap-rbac.sh`. Aggregated roles (admin, edit, view, ...) come with
/// empty rules and their aggregationRule, as the aggregation controller finds them.
pub fn bootstrap_rbac() -> Vec<Value> {
    static TEXT: &str = include_str!("bootstrap_rbac.json");
    let v: Value = serde_json::from_str(TEXT).expect("bootstrap_rbac.json is JSON");
    match v.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
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
