//! Identity, RBAC and admission: "Using RBAC Authorization", "Authorization overview",
//! "User impersonation" (kubernetes.io/docs/reference/access-authn-authz/) and
//! "Validating Admission Policy", driven through kubectl `--as` and kube-rs.
mod common;
use common::*;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// A user name unique to this test (bindings on a shared real cluster must not leak).
fn bob(c: &Cluster) -> String {
    format!("bob-{}@x.example", c.suffix)
}

fn with_as<'a>(who: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--as", who];
    v.extend_from_slice(args);
    v
}

async fn apply_json(c: &Cluster, v: &Value) {
    let o = c.apply(&v.to_string()).await;
    assert!(o.ok(), "apply failed: {}\n{v}", o.stderr);
}

/// RBAC is enforced from caches on a real server: retry until kubectl succeeds.
async fn eventually_ok(c: &Cluster, args: &[&str]) -> String {
    c.eventually(20, &format!("kubectl {args:?} to succeed"), || async {
        let o = c.kubectl(args).await;
        o.ok().then_some(o.stdout)
    })
    .await
}

fn configmap(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data})
}

fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
}

fn role_binding(ns: &str, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects})
}

fn cluster_role_binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": subjects})
}

fn user_subject(name: &str) -> Value {
    json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}])
}

fn reader_rules() -> Value {
    json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}])
}

/// Cluster-scoped objects to delete when a test on a real cluster ends.
struct Cleanup {
    kubeconfig: std::path::PathBuf,
    objects: Vec<String>,
}

impl Cleanup {
    fn new(c: &Cluster) -> Cleanup {
        Cleanup {
            kubeconfig: c.kubeconfig.clone(),
            objects: Vec::new(),
        }
    }
    fn add(&mut self, kind_name: String) {
        self.objects.push(kind_name);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !real() {
            return;
        }
        for o in self.objects.iter().rev() {
            let _ = std::process::Command::new(kubectl_bin())
                .args(["delete", o, "--wait=false", "--ignore-not-found"])
                .env("KUBECONFIG", &self.kubeconfig)
                .output();
        }
    }
}

/// A second namespace (deleted at the end on a real cluster).
async fn other_namespace(c: &Cluster, cleanup: &mut Cleanup) -> String {
    let ns = c.name("other");
    let o = c
        .kubectl_stdin(
            &["create", "-f", "-"],
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string(),
        )
        .await;
    assert!(o.ok(), "creating namespace {ns}: {}", o.stderr);
    cleanup.add(format!("namespace/{ns}"));
    ns
}

// ---------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------

// RBAC: with no bindings a user is refused, with the authorizer's standard 403 text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_user_without_bindings_is_forbidden_with_the_standard_message() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmaps", "-n", &c.ns]))
        .await;
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): configmaps is forbidden: User \"{bob}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"{}\"",
            c.ns
        )),
        "{err}"
    );
    let err = c
        .kubectl_err(&with_as(
            &bob,
            &["get", "configmap", "kube-root-ca.crt", "-n", &c.ns],
        ))
        .await;
    assert!(
        err.contains(&format!(
            "configmaps \"kube-root-ca.crt\" is forbidden: User \"{bob}\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"{}\"",
            c.ns
        )),
        "{err}"
    );
    let err = c.kubectl_err(&with_as(&bob, &["get", "namespaces"])).await;
    assert!(err.contains(&format!("namespaces is forbidden: User \"{bob}\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope")), "{err}");
}

// RBAC: `GET /api/v1/namespaces/foo` is a request in namespace `foo` (apiserver requestinfo):
// a RoleBinding inside `foo` granting `get` on namespaces lets its subjects read the Namespace
// `foo` itself — not another namespace, and not the list of all namespaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_a_role_binding_in_a_namespace_may_grant_get_of_that_namespace() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let other = other_namespace(c, &mut cleanup).await;
    let bob = bob(c);
    apply_json(
        c,
        &role(
            &c.ns,
            "ns-reader",
            json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]),
        ),
    )
    .await;
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "bob-reads-ns",
            "Role",
            "ns-reader",
            user_subject(&bob),
        ),
    )
    .await;
    let out = eventually_ok(
        c,
        &with_as(&bob, &["get", "namespace", &c.ns, "-o", "name"]),
    )
    .await;
    assert_eq!(out.trim(), format!("namespace/{}", c.ns));
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "namespace", &other]))
        .await;
    assert!(
        err.contains(&format!(
            "namespaces \"{other}\" is forbidden: User \"{bob}\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"{other}\""
        )),
        "{err}"
    );
    let err = c.kubectl_err(&with_as(&bob, &["get", "namespaces"])).await;
    assert!(
        err.contains(&format!(
            "namespaces is forbidden: User \"{bob}\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        )),
        "{err}"
    );
}

// RBAC: a Role + RoleBinding grants its verbs in its namespace only, never cluster-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_role_binding_grants_only_in_its_namespace() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let other = other_namespace(c, &mut cleanup).await;
    let bob = bob(c);
    apply_json(c, &configmap(&c.ns, "one", json!({"k": "v"}))).await;
    apply_json(c, &role(&c.ns, "cm-reader", reader_rules())).await;
    apply_json(
        c,
        &role_binding(&c.ns, "bob-reads", "Role", "cm-reader", user_subject(&bob)),
    )
    .await;

    let out = eventually_ok(
        c,
        &with_as(&bob, &["get", "configmaps", "-n", &c.ns, "-o", "name"]),
    )
    .await;
    assert!(out.contains("configmap/one"), "{out}");
    let out = c
        .kubectl_ok(&with_as(
            &bob,
            &["get", "configmap", "one", "-n", &c.ns, "-o", "json"],
        ))
        .await;
    assert_eq!(json(&out)["data"]["k"], "v");
    // A verb the role lacks.
    let err = c
        .kubectl_err(&with_as(&bob, &["delete", "configmap", "one", "-n", &c.ns]))
        .await;
    assert!(err.contains(&format!("configmaps \"one\" is forbidden: User \"{bob}\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"{}\"", c.ns)), "{err}");
    // Another namespace.
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmaps", "-n", &other]))
        .await;
    assert!(err.contains(&format!("User \"{bob}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"{other}\"")), "{err}");
    // Cluster-wide.
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmaps", "--all-namespaces"]))
        .await;
    assert!(err.contains(&format!("configmaps is forbidden: User \"{bob}\" cannot list resource \"configmaps\" in API group \"\" at the cluster scope")), "{err}");
    // Another user.
    let alice = format!("alice-{}@x.example", c.suffix);
    c.kubectl_err(&with_as(&alice, &["get", "configmaps", "-n", &c.ns]))
        .await;
}

// RBAC follows changes: a Role losing a verb, a RoleBinding deleted, a Role deleted and created
// again (kube-sim keeps RBAC per namespace and updates only the namespace that changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_changed_and_deleted_roles_and_bindings_take_effect() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let other = other_namespace(c, &mut cleanup).await;
    let bob = bob(c);
    apply_json(c, &configmap(&c.ns, "one", json!({"k": "v"}))).await;
    let get = with_as(
        &bob,
        &["get", "configmap", "one", "-n", &c.ns, "-o", "name"],
    );
    let refused = async |what: &str| {
        c.eventually(20, what, || async {
            (!c.kubectl(&get).await.ok()).then_some(())
        })
        .await
    };
    for ns in [c.ns.as_str(), other.as_str()] {
        apply_json(c, &role(ns, "cm-reader", reader_rules())).await;
        apply_json(
            c,
            &role_binding(ns, "bob-reads", "Role", "cm-reader", user_subject(&bob)),
        )
        .await;
    }
    eventually_ok(c, &get).await;
    // The Role loses `get`.
    apply_json(
        c,
        &role(
            &c.ns,
            "cm-reader",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
        ),
    )
    .await;
    refused("the narrowed Role to refuse get").await;
    apply_json(c, &role(&c.ns, "cm-reader", reader_rules())).await;
    eventually_ok(c, &get).await;
    // The RoleBinding goes; the same grant in another namespace does not count here.
    c.kubectl_ok(&["delete", "rolebinding", "bob-reads", "-n", &c.ns])
        .await;
    refused("the deleted RoleBinding to stop granting").await;
    // Bound again, to a Role that is deleted, then created again.
    apply_json(
        c,
        &role_binding(&c.ns, "bob-reads", "Role", "cm-reader", user_subject(&bob)),
    )
    .await;
    eventually_ok(c, &get).await;
    c.kubectl_ok(&["delete", "role", "cm-reader", "-n", &c.ns])
        .await;
    refused("the deleted Role to stop granting").await;
    apply_json(c, &role(&c.ns, "cm-reader", reader_rules())).await;
    eventually_ok(c, &get).await;
    // The other namespace's grant held throughout (kubectl_ok: allowed).
    c.kubectl_ok(&with_as(
        &bob,
        &["get", "configmaps", "-n", &other, "-o", "name"],
    ))
    .await;
}

// RBAC: a RoleBinding may reference a ClusterRole; the permissions are scoped to the binding's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_cluster_role_bound_by_role_binding_is_namespace_scoped() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let other = other_namespace(c, &mut cleanup).await;
    let bob = bob(c);
    let cr = c.name("cm-reader");
    apply_json(c, &cluster_role(&cr, reader_rules())).await;
    cleanup.add(format!("clusterrole/{cr}"));
    apply_json(
        c,
        &role_binding(&c.ns, "bob-reads", "ClusterRole", &cr, user_subject(&bob)),
    )
    .await;

    eventually_ok(c, &with_as(&bob, &["get", "configmaps", "-n", &c.ns])).await;
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmaps", "-n", &other]))
        .await;
    assert!(
        err.contains(&format!(
            "cannot list resource \"configmaps\" in API group \"\" in the namespace \"{other}\""
        )),
        "{err}"
    );
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmaps", "-A"]))
        .await;
    assert!(err.contains("at the cluster scope"), "{err}");
}

// RBAC: a ClusterRoleBinding grants the ClusterRole's permissions in every namespace and cluster-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_cluster_role_binding_grants_everywhere() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let other = other_namespace(c, &mut cleanup).await;
    let bob = bob(c);
    let cr = c.name("cm-reader");
    let crb = c.name("bob-reads");
    apply_json(c, &cluster_role(&cr, reader_rules())).await;
    cleanup.add(format!("clusterrole/{cr}"));
    apply_json(c, &cluster_role_binding(&crb, &cr, user_subject(&bob))).await;
    cleanup.add(format!("clusterrolebinding/{crb}"));
    apply_json(c, &configmap(&other, "there", json!({}))).await;

    eventually_ok(c, &with_as(&bob, &["get", "configmaps", "-A"])).await;
    c.kubectl_ok(&with_as(&bob, &["get", "configmaps", "-n", &c.ns]))
        .await;
    let out = c
        .kubectl_ok(&with_as(
            &bob,
            &["get", "configmap", "there", "-n", &other, "-o", "name"],
        ))
        .await;
    assert_eq!(out.trim(), "configmap/there");
    // Only what the role says.
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "secrets", "-n", &other]))
        .await;
    assert!(err.contains(&format!("User \"{bob}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{other}\"")), "{err}");
}

// RBAC: subjects of kind Group match the groups of the request (`--as-group`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_group_subject_matches_impersonated_group() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let group = c.name("devs");
    apply_json(c, &role(&c.ns, "cm-reader", reader_rules())).await;
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "devs-read",
            "Role",
            "cm-reader",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]),
        ),
    )
    .await;
    eventually_ok(
        c,
        &[
            "--as",
            &bob,
            "--as-group",
            &group,
            "get",
            "configmaps",
            "-n",
            &c.ns,
        ],
    )
    .await;
    // The same user without the group is refused.
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmaps", "-n", &c.ns]))
        .await;
    assert!(
        err.contains(&format!(
            "User \"{bob}\" cannot list resource \"configmaps\""
        )),
        "{err}"
    );
    // Another group is not enough.
    c.kubectl_err(&[
        "--as",
        &bob,
        "--as-group",
        "someone-else",
        "get",
        "configmaps",
        "-n",
        &c.ns,
    ])
    .await;
}

// RBAC: resourceNames restrict a rule to named objects; `list` cannot be restricted by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_resource_names_allow_only_named_objects() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    apply_json(c, &configmap(&c.ns, "x", json!({}))).await;
    apply_json(c, &configmap(&c.ns, "y", json!({}))).await;
    apply_json(c, &role(&c.ns, "x-only", json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"], "verbs": ["get", "list"]}]))).await;
    apply_json(
        c,
        &role_binding(&c.ns, "bob-x", "Role", "x-only", user_subject(&bob)),
    )
    .await;

    let out = eventually_ok(
        c,
        &with_as(&bob, &["get", "configmap", "x", "-n", &c.ns, "-o", "name"]),
    )
    .await;
    assert_eq!(out.trim(), "configmap/x");
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmap", "y", "-n", &c.ns]))
        .await;
    assert!(
        err.contains(&format!("configmaps \"y\" is forbidden: User \"{bob}\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"{}\"", c.ns)),
        "{err}"
    );
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "configmaps", "-n", &c.ns]))
        .await;
    assert!(
        err.contains(&format!(
            "configmaps is forbidden: User \"{bob}\" cannot list resource \"configmaps\""
        )),
        "{err}"
    );
    // A list narrowed to the one name by fieldSelector is allowed (the authorizer sees the name).
    let out = c
        .kubectl_ok(&with_as(
            &bob,
            &[
                "get",
                "configmaps",
                "-n",
                &c.ns,
                "--field-selector",
                "metadata.name=x",
                "-o",
                "name",
            ],
        ))
        .await;
    assert_eq!(out.trim(), "configmap/x");
}

fn widget_crd(group: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    })
}

// RBAC: a rule for a resource does not cover its subresources; `<plural>/status` must be named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_subresource_needs_its_own_rule() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    let group = format!("f{}.example.com", c.suffix);
    apply_json(c, &widget_crd(&group)).await;
    cleanup.add(format!("crd/widgets.{group}"));
    let widget = json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "w", "namespace": c.ns}, "spec": {"size": 1}});
    c.eventually(30, "the CRD to serve widgets", || async {
        c.apply(&widget.to_string()).await.ok().then_some(())
    })
    .await;
    let rules = |status: bool| {
        let mut r = json!([{"apiGroups": [group], "resources": ["widgets"], "verbs": ["get", "list", "patch"]}]);
        if status {
            r.as_array_mut().unwrap().push(json!({"apiGroups": [group], "resources": ["widgets/status"], "verbs": ["get", "patch"]}));
        }
        r
    };
    apply_json(c, &role(&c.ns, "widgets", rules(false))).await;
    apply_json(
        c,
        &role_binding(&c.ns, "bob-widgets", "Role", "widgets", user_subject(&bob)),
    )
    .await;

    eventually_ok(
        c,
        &with_as(
            &bob,
            &[
                "patch",
                "widget",
                "w",
                "-n",
                &c.ns,
                "--type=merge",
                "-p",
                r#"{"spec":{"size":2}}"#,
            ],
        ),
    )
    .await;
    let status_patch = with_as(
        &bob,
        &[
            "patch",
            "widget",
            "w",
            "-n",
            &c.ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"ready":true}}"#,
        ],
    );
    let err = c.kubectl_err(&status_patch).await;
    // (kubectl reads the status subresource before patching it: the refused verb may be get or patch.)
    assert!(
        err.contains(&format!(
            "widgets.{group} \"w\" is forbidden: User \"{bob}\" cannot "
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "resource \"widgets/status\" in API group \"{group}\" in the namespace \"{}\"",
            c.ns
        )),
        "{err}"
    );
    apply_json(c, &role(&c.ns, "widgets", rules(true))).await;
    eventually_ok(c, &status_patch).await;
    let out = c
        .kubectl_ok(&["get", "widget", "w", "-n", &c.ns, "-o", "json"])
        .await;
    assert_eq!(json(&out)["status"]["ready"], true);
    assert_eq!(json(&out)["spec"]["size"], 2);
}

// RBAC: `*` in verbs means every verb; `*` in resources means every resource of the listed groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_wildcard_verbs_and_resources() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let carol = format!("carol-{}@x.example", c.suffix);
    apply_json(c, &configmap(&c.ns, "one", json!({}))).await;
    apply_json(
        c,
        &role(
            &c.ns,
            "all-verbs",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]),
        ),
    )
    .await;
    apply_json(
        c,
        &role(
            &c.ns,
            "get-all",
            json!([{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]),
        ),
    )
    .await;
    apply_json(
        c,
        &role_binding(&c.ns, "bob", "Role", "all-verbs", user_subject(&bob)),
    )
    .await;
    apply_json(
        c,
        &role_binding(&c.ns, "carol", "Role", "get-all", user_subject(&carol)),
    )
    .await;

    // bob: every verb on configmaps, nothing else.
    let cm = configmap(&c.ns, "made-by-bob", json!({"a": "1"})).to_string();
    c.eventually(20, "bob to create a configmap", || async {
        c.kubectl_stdin(&with_as(&bob, &["create", "-f", "-"]), &cm)
            .await
            .ok()
            .then_some(())
    })
    .await;
    c.kubectl_ok(&with_as(
        &bob,
        &["label", "configmap", "made-by-bob", "-n", &c.ns, "x=y"],
    ))
    .await;
    c.kubectl_ok(&with_as(
        &bob,
        &["delete", "configmap", "made-by-bob", "-n", &c.ns],
    ))
    .await;
    c.kubectl_ok(&with_as(&bob, &["get", "configmaps", "-n", &c.ns]))
        .await;
    let err = c
        .kubectl_err(&with_as(&bob, &["get", "secrets", "-n", &c.ns]))
        .await;
    assert!(err.contains("cannot list resource \"secrets\""), "{err}");

    // carol: get on every core resource, no other verb.
    eventually_ok(
        c,
        &with_as(&carol, &["get", "configmap", "one", "-n", &c.ns]),
    )
    .await;
    let sa = c
        .kubectl(&with_as(
            &carol,
            &["get", "serviceaccount", "no-such-sa", "-n", &c.ns],
        ))
        .await;
    assert!(
        sa.stderr
            .contains("serviceaccounts \"no-such-sa\" not found"),
        "get on any resource reaches the store: {}",
        sa.stderr
    );
    let err = c
        .kubectl_err(&with_as(&carol, &["get", "configmaps", "-n", &c.ns]))
        .await;
    assert!(
        err.contains(&format!(
            "User \"{carol}\" cannot list resource \"configmaps\""
        )),
        "{err}"
    );
    let err = c
        .kubectl_err(&with_as(
            &carol,
            &["delete", "configmap", "one", "-n", &c.ns],
        ))
        .await;
    assert!(
        err.contains("cannot delete resource \"configmaps\""),
        "{err}"
    );
    // `*` resources is limited to the rule's API groups.
    let err = c
        .kubectl_err(&with_as(&carol, &["get", "role", "all-verbs", "-n", &c.ns]))
        .await;
    assert!(
        err.contains("cannot get resource \"roles\" in API group \"rbac.authorization.k8s.io\""),
        "{err}"
    );
}

// RBAC: ServiceAccount subjects; a service account's user name is `system:serviceaccount:<ns>:<name>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_service_account_subject() {
    let c = Cluster::start().await;
    let c = &c;
    apply_json(c, &role(&c.ns, "cm-reader", reader_rules())).await;
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "robot-reads",
            "Role",
            "cm-reader",
            json!([{"kind": "ServiceAccount", "name": "robot", "namespace": c.ns}]),
        ),
    )
    .await;
    let robot = format!("system:serviceaccount:{}:robot", c.ns);
    let other = format!("system:serviceaccount:{}:other", c.ns);
    eventually_ok(c, &with_as(&robot, &["get", "configmaps", "-n", &c.ns])).await;
    let err = c
        .kubectl_err(&with_as(&other, &["get", "configmaps", "-n", &c.ns]))
        .await;
    assert!(
        err.contains(&format!("configmaps is forbidden: User \"{other}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"{}\"", c.ns)),
        "{err}"
    );
    // Service accounts are in the groups system:serviceaccounts and system:serviceaccounts:<ns>.
    let who = json(
        &c.kubectl_ok(&with_as(&robot, &["auth", "whoami", "-o", "json"]))
            .await,
    );
    let groups: Vec<&str> = who["status"]["userInfo"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    for g in [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{}", c.ns),
        "system:authenticated".to_string(),
    ] {
        assert!(groups.contains(&g.as_str()), "{groups:?} lacks {g}");
    }
    // A binding to the namespace's service-account group grants every service account there.
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "all-sas",
            "Role",
            "cm-reader",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": format!("system:serviceaccounts:{}", c.ns)}]),
        ),
    )
    .await;
    eventually_ok(c, &with_as(&other, &["get", "configmaps", "-n", &c.ns])).await;
}

// ---------------------------------------------------------------------------
// Access reviews
// ---------------------------------------------------------------------------

// Authorization overview: `kubectl auth can-i` (SelfSubjectAccessReview) answers for the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_can_i_answers_for_admin_and_impersonated_users() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let o = c
        .kubectl(&["auth", "can-i", "create", "configmaps", "-n", &c.ns])
        .await;
    assert_eq!((o.code, o.stdout.trim()), (0, "yes"), "{}", o.stderr);
    let o = c
        .kubectl(&with_as(
            &bob,
            &["auth", "can-i", "list", "configmaps", "-n", &c.ns],
        ))
        .await;
    assert_eq!((o.code, o.stdout.trim()), (1, "no"), "{}", o.stderr);

    apply_json(c, &role(&c.ns, "cm-reader", reader_rules())).await;
    apply_json(
        c,
        &role_binding(&c.ns, "bob-reads", "Role", "cm-reader", user_subject(&bob)),
    )
    .await;
    c.eventually(20, "bob may list", || async {
        let o = c
            .kubectl(&with_as(
                &bob,
                &["auth", "can-i", "list", "configmaps", "-n", &c.ns],
            ))
            .await;
        (o.code == 0 && o.stdout.trim() == "yes").then_some(())
    })
    .await;
    for (args, want) in [
        (vec!["get", "configmaps/anything"], "yes"),
        (vec!["delete", "configmaps"], "no"),
        (vec!["list", "secrets"], "no"),
    ] {
        let mut a = vec!["auth", "can-i"];
        a.extend(args.iter());
        a.extend(["-n", c.ns.as_str()]);
        let o = c.kubectl(&with_as(&bob, &a)).await;
        assert_eq!(o.stdout.trim(), want, "{a:?}: {}", o.stderr);
        assert_eq!(o.code, if want == "yes" { 0 } else { 1 }, "{a:?}");
    }
    let o = c
        .kubectl(&with_as(
            &bob,
            &["auth", "can-i", "list", "configmaps", "--all-namespaces"],
        ))
        .await;
    assert_eq!((o.code, o.stdout.trim()), (1, "no"), "{}", o.stderr);
}

// Authorization overview: `kubectl auth can-i --list` (SelfSubjectRulesReview) lists the caller's rules in a namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_can_i_list_shows_the_rules_of_the_user() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    apply_json(
        c,
        &role(
            &c.ns,
            "mixed",
            json!([
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["token"], "verbs": ["get"]}
            ]),
        ),
    )
    .await;
    apply_json(
        c,
        &role_binding(&c.ns, "bob-mixed", "Role", "mixed", user_subject(&bob)),
    )
    .await;
    let out = c
        .eventually(20, "bob's rules to show", || async {
            let o = c
                .kubectl(&with_as(&bob, &["auth", "can-i", "--list", "-n", &c.ns]))
                .await;
            (o.ok() && o.stdout.lines().any(|l| l.starts_with("configmaps "))).then_some(o.stdout)
        })
        .await;
    let row = |res: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(res))
            .unwrap_or_else(|| panic!("no row for {res}:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert!(
        out.lines().next().unwrap().split_whitespace().eq([
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs"
        ]),
        "{out}"
    );
    assert_eq!(
        row("configmaps"),
        ["configmaps", "[]", "[]", "[get", "list]"],
        "{out}"
    );
    assert_eq!(
        row("secrets"),
        ["secrets", "[]", "[token]", "[get]"],
        "{out}"
    );
    // Every authenticated user may ask these questions (system:basic-user).
    assert!(
        row("selfsubjectaccessreviews.authorization.k8s.io").contains(&"[create]".to_string()),
        "{out}"
    );
    // In another namespace bob has none of the Role's rules.
    let o = c
        .kubectl_ok(&with_as(
            &bob,
            &["auth", "can-i", "--list", "-n", "default"],
        ))
        .await;
    assert!(!o.lines().any(|l| l.starts_with("configmaps ")), "{o}");
}

// Authorization overview: a SubjectAccessReview asks about any user and group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_subject_access_review_answers_for_another_user() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let group = c.name("readers");
    apply_json(c, &role(&c.ns, "cm-reader", reader_rules())).await;
    apply_json(
        c,
        &role_binding(&c.ns, "bob-reads", "Role", "cm-reader", user_subject(&bob)),
    )
    .await;
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "group-reads",
            "Role",
            "cm-reader",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]),
        ),
    )
    .await;
    let client = c.client().await;
    let sars: Api<SubjectAccessReview> = Api::all(client);
    let ask = |user: &str, groups: Vec<String>, verb: &str, ns: &str| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                verb: Some(verb.to_string()),
                resource: Some("configmaps".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let allowed = |r: SubjectAccessReview| r.status.expect("status").allowed;
    let pp = PostParams::default();
    c.eventually(20, "bob's review to allow", || async {
        allowed(
            sars.create(&pp, &ask(&bob, vec![], "list", &c.ns))
                .await
                .unwrap(),
        )
        .then_some(())
    })
    .await;
    assert!(!allowed(
        sars.create(&pp, &ask(&bob, vec![], "delete", &c.ns))
            .await
            .unwrap()
    ));
    assert!(!allowed(
        sars.create(&pp, &ask(&bob, vec![], "list", "default"))
            .await
            .unwrap()
    ));
    assert!(!allowed(
        sars.create(&pp, &ask("alice", vec![], "get", &c.ns))
            .await
            .unwrap()
    ));
    assert!(allowed(
        sars.create(&pp, &ask("alice", vec![group.clone()], "get", &c.ns))
            .await
            .unwrap()
    ));
    // The review is answered, not stored: the response echoes the spec.
    let r = sars
        .create(&pp, &ask(&bob, vec![], "list", &c.ns))
        .await
        .unwrap();
    assert_eq!(r.spec.user.as_deref(), Some(bob.as_str()));
}

// User impersonation / SelfSubjectReview: `kubectl auth whoami` shows the impersonated user and groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_whoami_shows_impersonated_user_and_groups() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let out = c
        .kubectl_ok(&[
            "--as",
            &bob,
            "--as-group",
            "g1",
            "--as-group",
            "g2",
            "auth",
            "whoami",
            "-o",
            "json",
        ])
        .await;
    let v = json(&out);
    assert_eq!(v["kind"], "SelfSubjectReview");
    assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(v["status"]["userInfo"]["username"], bob.as_str());
    assert_eq!(
        v["status"]["userInfo"]["groups"],
        json!(["g1", "g2", "system:authenticated"])
    );
    let table = c
        .kubectl_ok(&["--as", &bob, "--as-group", "g1", "auth", "whoami"])
        .await;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.contains(&vec!["Username", bob.as_str()]), "{table}");
    assert!(
        lines.contains(&vec!["Groups", "[g1", "system:authenticated]"]),
        "{table}"
    );
}

// User impersonation: impersonating a user adds system:authenticated unless the groups name
// system:unauthenticated; without it the user loses what system:basic-user grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_impersonated_unauthenticated_group_is_not_authenticated() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let err = c
        .kubectl_err(&[
            "--as",
            &bob,
            "--as-group",
            "system:unauthenticated",
            "auth",
            "whoami",
        ])
        .await;
    assert!(err.contains("the selfsubjectreviews API is not enabled in the cluster or you do not have permission to call it"), "{err}");
    let err = c
        .kubectl_err(&[
            "--as",
            &bob,
            "--as-group",
            "system:unauthenticated",
            "auth",
            "can-i",
            "get",
            "pods",
        ])
        .await;
    assert!(
        err.contains(&format!(
            "selfsubjectaccessreviews.authorization.k8s.io is forbidden: User \"{bob}\" cannot create resource \"selfsubjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
        )),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// ValidatingAdmissionPolicy
// ---------------------------------------------------------------------------

/// A policy on CREATE/UPDATE of ConfigMaps in namespaces labelled `vap-test=<suffix>`, and its binding.
fn vap(c: &Cluster, policy: &str, extra: Value, binding: &str, actions: &[&str]) -> (Value, Value) {
    let mut spec = json!({
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"vap-test": c.suffix}}
        }
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let p = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": policy}, "spec": spec});
    let b = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": binding},
        "spec": {"policyName": policy, "validationActions": actions}});
    (p, b)
}

async fn install_vap(c: &Cluster, cleanup: &mut Cleanup, (p, b): (Value, Value)) {
    let o = c
        .kubectl(&[
            "label",
            "namespace",
            &c.ns,
            &format!("vap-test={}", c.suffix),
            "--overwrite",
        ])
        .await;
    assert!(o.ok(), "{}", o.stderr);
    apply_json(c, &p).await;
    cleanup.add(format!(
        "validatingadmissionpolicy/{}",
        p["metadata"]["name"].as_str().unwrap()
    ));
    apply_json(c, &b).await;
    cleanup.add(format!(
        "validatingadmissionpolicybinding/{}",
        b["metadata"]["name"].as_str().unwrap()
    ));
}

fn no_forbidden_key() -> Value {
    json!([{"expression": "!has(object.data) || !('forbidden' in object.data)", "message": "data key 'forbidden' is not allowed"}])
}

/// Create a ConfigMap with kube-rs as the admin; the API error on refusal.
async fn create_cm(
    c: &Cluster,
    name: &str,
    data: Value,
) -> Result<ConfigMap, Box<kube::core::Status>> {
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let cm: ConfigMap = serde_json::from_value(configmap(&c.ns, name, data)).unwrap();
    match api.create(&PostParams::default(), &cm).await {
        Ok(v) => Ok(v),
        Err(kube::Error::Api(s)) => Err(s),
        Err(e) => panic!("create {name}: {e}"),
    }
}

/// Wait for a policy to become active: create `forbidden` ConfigMaps until one is refused.
async fn first_denial(c: &Cluster, base: &str) -> (String, Box<kube::core::Status>) {
    let mut n = 0;
    c.eventually(30, "the policy to deny", || {
        n += 1;
        let name = format!("{base}-{n}");
        async move {
            create_cm(c, &name, json!({"forbidden": "1"}))
                .await
                .err()
                .map(|e| (name, e))
        }
    })
    .await
}

// ValidatingAdmissionPolicy: a failed validation denies with `ValidatingAdmissionPolicy '<p>' with
// binding '<b>' denied request: <message>`, 422 Invalid when `reason` is unset; namespaceSelector scopes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_validation_denies_with_invalid_and_the_standard_message() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let other = other_namespace(c, &mut cleanup).await;
    let (p, b) = (c.name("no-forbidden"), c.name("no-forbidden-binding"));
    install_vap(
        c,
        &mut cleanup,
        vap(
            c,
            &p,
            json!({"validations": no_forbidden_key()}),
            &b,
            &["Deny"],
        ),
    )
    .await;

    let (name, st) = first_denial(c, "bad").await;
    let cause = format!(
        "ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: data key 'forbidden' is not allowed"
    );
    assert_eq!(st.code, 422, "{st:?}");
    assert_eq!(st.reason, "Invalid");
    assert_eq!(
        st.message,
        format!("configmaps \"{name}\" is forbidden: {cause}")
    );
    let d = st.details.as_ref().expect("details");
    assert_eq!(
        (d.kind.as_str(), d.name.as_str()),
        ("configmaps", name.as_str())
    );
    assert_eq!(
        d.causes
            .iter()
            .map(|c| c.message.as_str())
            .collect::<Vec<_>>(),
        [cause.as_str()]
    );

    // kubectl prints the cause of the Invalid status.
    let o = c
        .kubectl_stdin(
            &["create", "-f", "-"],
            &configmap(&c.ns, "bad-kubectl", json!({"forbidden": "x"})).to_string(),
        )
        .await;
    assert!(!o.ok());
    assert!(
        o.stderr.contains(&format!(
            "The configmaps \"bad-kubectl\" is invalid: : {cause}"
        )),
        "{}",
        o.stderr
    );

    // Allowed objects, and updates are checked too.
    create_cm(c, "good", json!({"fine": "1"}))
        .await
        .expect("a ConfigMap without the key is allowed");
    let o = c
        .kubectl(&[
            "patch",
            "configmap",
            "good",
            "-n",
            &c.ns,
            "--type=merge",
            "-p",
            r#"{"data":{"forbidden":"now"}}"#,
        ])
        .await;
    assert!(!o.ok() && o.stderr.contains(&cause), "{}", o.stderr);
    // Namespaces without the label are not selected.
    let o = c
        .kubectl_stdin(
            &["create", "-f", "-"],
            &configmap(&other, "fine-there", json!({"forbidden": "x"})).to_string(),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
}

// ValidatingAdmissionPolicy: `reason: Forbidden` on a validation turns the denial into 403 Forbidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_reason_forbidden_is_403() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let (p, b) = (c.name("forbid"), c.name("forbid-binding"));
    let validations = json!([{"expression": "!has(object.data) || !('forbidden' in object.data)", "message": "no", "reason": "Forbidden"}]);
    install_vap(
        c,
        &mut cleanup,
        vap(c, &p, json!({"validations": validations}), &b, &["Deny"]),
    )
    .await;
    let (name, st) = first_denial(c, "bad").await;
    assert_eq!((st.code, st.reason.as_str()), (403, "Forbidden"), "{st:?}");
    assert_eq!(
        st.message,
        format!(
            "configmaps \"{name}\" is forbidden: ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: no"
        )
    );
    let o = c
        .kubectl_stdin(
            &["create", "-f", "-"],
            &configmap(&c.ns, "bad-kubectl", json!({"forbidden": "x"})).to_string(),
        )
        .await;
    assert!(
        o.stderr.contains(&format!(
            "Error from server (Forbidden): error when creating \"STDIN\": configmaps \"bad-kubectl\" is forbidden: ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: no"
        )),
        "{}",
        o.stderr
    );
}

// ValidatingAdmissionPolicy: `request.userInfo.username` is available to expressions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_request_user_info_in_expression() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    let alice = format!("alice-{}@x.example", c.suffix);
    apply_json(
        c,
        &role(
            &c.ns,
            "cm-writer",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]),
        ),
    )
    .await;
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "writers",
            "Role",
            "cm-writer",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": bob}, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": alice}]),
        ),
    )
    .await;
    let (p, b) = (c.name("only-bob"), c.name("only-bob-binding"));
    let validations = json!([{"expression": format!("request.userInfo.username == '{bob}'"), "messageExpression": "'user ' + request.userInfo.username + ' may not write configmaps here'"}]);
    install_vap(
        c,
        &mut cleanup,
        vap(c, &p, json!({"validations": validations}), &b, &["Deny"]),
    )
    .await;

    let mut n = 0;
    let err = c
        .eventually(30, "the policy to deny alice", || {
            n += 1;
            let cm = configmap(&c.ns, &format!("by-alice-{n}"), json!({})).to_string();
            let alice = alice.clone();
            async move {
                let o = c
                    .kubectl_stdin(&["--as", &alice, "create", "-f", "-"], &cm)
                    .await;
                (!o.ok() && o.stderr.contains("ValidatingAdmissionPolicy")).then_some(o.stderr)
            }
        })
        .await;
    assert!(err.contains(&format!("ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: user {alice} may not write configmaps here")), "{err}");
    let o = c
        .kubectl_stdin(
            &["--as", &bob, "create", "-f", "-"],
            &configmap(&c.ns, "by-bob", json!({})).to_string(),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
}

// ValidatingAdmissionPolicy: the `authorizer` library checks the requesting user's RBAC permissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_authorizer_checks_the_requesters_permissions() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    let alice = format!("alice-{}@x.example", c.suffix);
    // Both may create; only alice may delete.
    apply_json(
        c,
        &role(
            &c.ns,
            "creator",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]}]),
        ),
    )
    .await;
    apply_json(
        c,
        &role(
            &c.ns,
            "deleter",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["delete"]}]),
        ),
    )
    .await;
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "creators",
            "Role",
            "creator",
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": bob}, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": alice}]),
        ),
    )
    .await;
    apply_json(
        c,
        &role_binding(&c.ns, "deleters", "Role", "deleter", user_subject(&alice)),
    )
    .await;
    let (p, b) = (c.name("protected"), c.name("protected-binding"));
    let validations = json!([{
        "expression": "!has(object.metadata.labels) || !('protected' in object.metadata.labels) || authorizer.group('').resource('configmaps').namespace(object.metadata.namespace).check('delete').allowed()",
        "message": "only users who may delete configmaps may create protected ones"
    }]);
    install_vap(
        c,
        &mut cleanup,
        vap(c, &p, json!({"validations": validations}), &b, &["Deny"]),
    )
    .await;

    let protected = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": c.ns, "labels": {"protected": "yes"}}}).to_string()
    };
    let mut n = 0;
    let err = c
        .eventually(30, "the policy to deny bob", || {
            n += 1;
            let cm = protected(&format!("by-bob-{n}"));
            let bob = bob.clone();
            async move {
                let o = c
                    .kubectl_stdin(&["--as", &bob, "create", "-f", "-"], &cm)
                    .await;
                (!o.ok() && o.stderr.contains("ValidatingAdmissionPolicy")).then_some(o.stderr)
            }
        })
        .await;
    assert!(err.contains(&format!("ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: only users who may delete")), "{err}");
    let o = c
        .kubectl_stdin(
            &["--as", &alice, "create", "-f", "-"],
            &protected("by-alice"),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
    // Unprotected ones are fine for bob.
    let o = c
        .kubectl_stdin(
            &["--as", &bob, "create", "-f", "-"],
            &configmap(&c.ns, "plain", json!({})).to_string(),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
}

// ValidatingAdmissionPolicy: `matchConditions` that are false skip the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_match_conditions_skip_the_policy() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let (p, b) = (c.name("strict"), c.name("strict-binding"));
    let extra = json!({
        "matchConditions": [{"name": "only-strict", "expression": "has(object.metadata.labels) && 'strict' in object.metadata.labels"}],
        "validations": [{"expression": "has(object.data) && 'owner' in object.data", "message": "strict configmaps need an owner"}]
    });
    install_vap(c, &mut cleanup, vap(c, &p, extra, &b, &["Deny"])).await;
    let strict = |name: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": c.ns, "labels": {"strict": "1"}}, "data": data}).to_string()
    };
    let mut n = 0;
    let err = c
        .eventually(30, "the policy to deny", || {
            n += 1;
            let cm = strict(&format!("strict-{n}"), json!({}));
            async move {
                let o = c.kubectl_stdin(&["create", "-f", "-"], &cm).await;
                (!o.ok()).then_some(o.stderr)
            }
        })
        .await;
    assert!(err.contains(&format!("ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: strict configmaps need an owner")), "{err}");
    let o = c
        .kubectl_stdin(
            &["create", "-f", "-"],
            &strict("strict-owned", json!({"owner": "me"})),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
    // No label: the match condition is false, the validation is not evaluated.
    create_cm(c, "lax", json!({}))
        .await
        .expect("unmatched objects are admitted");
}

// ValidatingAdmissionPolicy: `validationActions: [Warn]` admits the request and returns a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_warn_action_admits_with_a_warning() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let (p, b) = (c.name("warn"), c.name("warn-binding"));
    install_vap(
        c,
        &mut cleanup,
        vap(
            c,
            &p,
            json!({"validations": no_forbidden_key()}),
            &b,
            &["Warn"],
        ),
    )
    .await;
    let want = format!(
        "Warning: Validation failed for ValidatingAdmissionPolicy '{p}' with binding '{b}': data key 'forbidden' is not allowed"
    );
    let mut n = 0;
    let stderr = c
        .eventually(30, "the warning", || {
            n += 1;
            let cm =
                configmap(&c.ns, &format!("warned-{n}"), json!({"forbidden": "1"})).to_string();
            async move {
                let o = c.kubectl_stdin(&["create", "-f", "-"], &cm).await;
                assert!(o.ok(), "Warn must not deny: {}", o.stderr);
                o.stderr.contains("Warning:").then_some(o.stderr)
            }
        })
        .await;
    assert!(stderr.contains(&want), "{stderr}");
    let o = c
        .kubectl_stdin(
            &["create", "-f", "-"],
            &configmap(&c.ns, "quiet", json!({"ok": "1"})).to_string(),
        )
        .await;
    assert!(o.ok() && !o.stderr.contains("Warning"), "{}", o.stderr);
}

// ValidatingAdmissionPolicy: a runtime error is ignored under `failurePolicy: Ignore` and denies under `Fail`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_failure_policy_decides_on_runtime_errors() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    // object.data.missing fails at run time (no such key) for every ConfigMap without `missing`.
    let validations = json!([
        {"expression": "object.data.missing == 'x'", "message": "missing must be x"},
        {"expression": "!has(object.data) || !('forbidden' in object.data)", "message": "data key 'forbidden' is not allowed"}
    ]);
    let (p, b) = (c.name("ignore"), c.name("ignore-binding"));
    install_vap(
        c,
        &mut cleanup,
        vap(
            c,
            &p,
            json!({"failurePolicy": "Ignore", "validations": validations}),
            &b,
            &["Deny"],
        ),
    )
    .await;
    // Active once the second validation denies.
    let (_, st) = first_denial(c, "bad").await;
    assert!(st.message.ends_with(&format!("ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: data key 'forbidden' is not allowed")), "{st:?}");
    create_cm(c, "errs-but-ignored", json!({"other": "1"}))
        .await
        .expect("Ignore admits on a runtime error");

    // The same policy with failurePolicy Fail denies.
    let o = c
        .kubectl(&[
            "patch",
            "validatingadmissionpolicy",
            &p,
            "--type=merge",
            "-p",
            r#"{"spec":{"failurePolicy":"Fail"}}"#,
        ])
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let mut n = 0;
    let st = c
        .eventually(30, "Fail to deny", || {
            n += 1;
            let name = format!("errs-{n}");
            async move { create_cm(c, &name, json!({"other": "1"})).await.err() }
        })
        .await;
    assert_eq!(st.code, 422, "{st:?}");
    assert!(st.message.contains(&format!("ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: expression 'object.data.missing == 'x'' resulted in error")), "{st:?}");
}

// ValidatingAdmissionPolicy: every CEL expression is compiled when the policy is written
// (create, update, patch, apply); one that does not compile is a 422 naming its field, with
// cel-go's error. A policy that compiles is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vap_expressions_that_do_not_compile_are_refused() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let api: Api<ValidatingAdmissionPolicy> = Api::all(c.client().await);
    let name = c.name("cel-compiles");
    let policy = |validations: Value| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {"failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]},
                "validations": validations}})
    };
    let typed = |v: Value| -> ValidatingAdmissionPolicy { serde_json::from_value(v).unwrap() };
    let bad = json!([
        {"expression": "true", "messageExpression": "'a 'b' c'"},
        {"expression": "object.x >"}
    ]);
    let message_cause = "Invalid value: \"'a 'b' c'\": compilation failed: ERROR: <input>:1:5: Syntax error: extraneous input 'b' c'' expecting <EOF>\n | 'a 'b' c'\n | ....^";
    let expression_cause = "Invalid value: \"object.x >\": compilation failed: ERROR: <input>:1:11: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | object.x >\n | ..........^";
    let causes = |st: &kube::core::Status| -> Vec<(String, String, String)> {
        assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
        let d = st.details.as_ref().expect("details");
        assert_eq!(
            (d.group.as_str(), d.kind.as_str(), d.name.as_str()),
            (
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicy",
                name.as_str()
            )
        );
        d.causes
            .iter()
            .map(|c| (c.reason.clone(), c.field.clone(), c.message.clone()))
            .collect()
    };
    let both = vec![
        (
            "FieldValueInvalid".to_string(),
            "spec.validations[0].messageExpression".to_string(),
            message_cause.to_string(),
        ),
        (
            "FieldValueInvalid".to_string(),
            "spec.validations[1].expression".to_string(),
            expression_cause.to_string(),
        ),
    ];

    // Create.
    let st = api_err(
        api.create(&PostParams::default(), &typed(policy(bad.clone())))
            .await,
    );
    assert_eq!(causes(&st), both);
    assert_eq!(
        st.message,
        format!(
            "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"{name}\" is invalid: [spec.validations[0].messageExpression: {message_cause}, spec.validations[1].expression: {expression_cause}]"
        )
    );
    // kubectl prints one cause per line.
    let o = c
        .kubectl_stdin(&["apply", "-f", "-"], &policy(bad.clone()).to_string())
        .await;
    assert!(!o.ok());
    assert!(
        o.stderr.contains(&format!(
            "The ValidatingAdmissionPolicy \"{name}\" is invalid: \n* spec.validations[0].messageExpression: {message_cause}\n* spec.validations[1].expression: {expression_cause}"
        )),
        "{}",
        o.stderr
    );
    // An identifier the environment does not declare fails the type check.
    let st = api_err(
        api.create(
            &PostParams::default(),
            &typed(policy(json!([{"expression": "self.x == 1"}]))),
        )
        .await,
    );
    assert_eq!(
        causes(&st),
        [(
            "FieldValueInvalid".to_string(),
            "spec.validations[0].expression".to_string(),
            "Invalid value: \"self.x == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'self' (in container '')\n | self.x == 1\n | ^".to_string()
        )]
    );

    // A policy that compiles is accepted.
    let good = json!([{
        "expression": "!has(object.data) || !('forbidden' in object.data)",
        "messageExpression": "'data key forbidden in ' + object.metadata.name",
        "reason": "Forbidden"
    }]);
    cleanup.add(format!("validatingadmissionpolicy/{name}"));
    api.create(&PostParams::default(), &typed(policy(good.clone())))
        .await
        .expect("a policy whose expressions compile is created");

    // Patch, update and server-side apply are validated too.
    let st = api_err(
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"validations": bad}})),
        )
        .await,
    );
    assert_eq!(causes(&st), both);
    let mut current = api.get(&name).await.expect("get");
    current.spec.as_mut().unwrap().validations = Some(serde_json::from_value(bad.clone()).unwrap());
    let st = api_err(api.replace(&name, &PostParams::default(), &current).await);
    assert_eq!(causes(&st), both);
    let st = api_err(
        api.patch(
            &name,
            &PatchParams::apply("fidelity").force(),
            &Patch::Apply(policy(bad.clone())),
        )
        .await,
    );
    assert_eq!(causes(&st), both);
    let stored = api.get(&name).await.expect("get");
    assert_eq!(
        val(&stored.spec.unwrap().validations),
        good,
        "the refused writes changed nothing"
    );

    // Bindings are validated as well: at least one validation action.
    let bapi: Api<ValidatingAdmissionPolicyBinding> = Api::all(c.client().await);
    let bname = c.name("cel-compiles-binding");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": bname}, "spec": {"policyName": name}}))
    .unwrap();
    let st = api_err(bapi.create(&PostParams::default(), &binding).await);
    assert_eq!((st.code, st.reason.as_str()), (422, "Invalid"), "{st:?}");
    assert_eq!(
        st.message,
        format!(
            "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io \"{bname}\" is invalid: spec.validationActions: Required value: at least one validation action is required"
        )
    );
}

// ---------------------------------------------------------------------------
// RBAC privilege-escalation prevention ("Using RBAC Authorization" > "Privilege escalation
// prevention and bootstrapping"): a role may only grant, and a binding only bind, what the
// writer already holds, unless it may `escalate` the role / `bind` the referenced role.
// ---------------------------------------------------------------------------

const NOT_HELD: &str = "is attempting to grant RBAC permissions not currently held";

/// `kubectl --as who create -f -` of a manifest.
async fn create_as(c: &Cluster, who: &str, manifest: &Value) -> Out {
    c.kubectl_stdin(&with_as(who, &["create", "-f", "-"]), &manifest.to_string())
        .await
}

/// Creating `manifest` as `who` is refused with a message containing `needle` (retried while
/// the writer's own grants reach the real server's caches); returns kubectl's stderr.
async fn refused_as(c: &Cluster, who: &str, manifest: &Value, needle: &str) -> String {
    c.eventually(
        20,
        &format!("creating as {who} to be refused with {needle:?}"),
        || async {
            let o = create_as(c, who, manifest).await;
            assert!(
                !o.ok(),
                "creating as {who} should be refused:\n{manifest}\n{}",
                o.stdout
            );
            o.stderr.contains(needle).then_some(o.stderr)
        },
    )
    .await
}

/// Creating `manifest` as `who` eventually succeeds (grants reach the real server's caches).
async fn created_as(c: &Cluster, who: &str, manifest: &Value) {
    c.eventually(20, &format!("creating as {who} to succeed"), || async {
        create_as(c, who, manifest).await.ok().then_some(())
    })
    .await;
}

/// `(groups=["system:authenticated"]) ...` as the refusal words an impersonated user.
fn not_held_by(user: &str) -> String {
    format!("user \"{user}\" (groups=[\"system:authenticated\"]) {NOT_HELD}:\n")
}

/// A kube-rs client acting as `who` (impersonation by the admin).
async fn client_as(c: &Cluster, who: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(c.kubeconfig_path()).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    cfg.auth_info.impersonate = Some(who.to_string());
    kube::Client::try_from(cfg).expect("client")
}

/// A ClusterRole and a ClusterRoleBinding giving `user` the `rules` cluster-wide.
async fn grant_cluster_wide(
    c: &Cluster,
    cleanup: &mut Cleanup,
    base: &str,
    user: &str,
    rules: Value,
) -> String {
    let name = c.name(base);
    cleanup.add(format!("clusterrole/{name}"));
    cleanup.add(format!("clusterrolebinding/{name}"));
    apply_json(c, &cluster_role(&name, rules)).await;
    apply_json(c, &cluster_role_binding(&name, &name, user_subject(user))).await;
    name
}

/// A Role and a RoleBinding giving `user` the `rules` in the test namespace.
async fn grant_in_namespace(c: &Cluster, name: &str, user: &str, rules: Value) {
    apply_json(c, &role(&c.ns, name, rules)).await;
    apply_json(
        c,
        &role_binding(&c.ns, name, "Role", name, user_subject(user)),
    )
    .await;
}

fn secret_rules(verbs: &[&str]) -> Value {
    json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": verbs}])
}

fn rbac_rule(resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": resources, "verbs": verbs})
}

// A user who may create ClusterRoles cannot create one granting what it lacks: 403 with the
// missing rules, dry run included, nothing stored; once it holds the permissions it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_cluster_role_needs_the_permissions_it_grants() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    grant_cluster_wide(
        c,
        &mut cleanup,
        "role-writer",
        &bob,
        json!([rbac_rule(
            &["clusterroles"],
            &["create", "get", "update", "patch"]
        )]),
    )
    .await;

    let x = c.name("secret-getter");
    cleanup.add(format!("clusterrole/{x}"));
    let manifest = cluster_role(&x, secret_rules(&["get"]));
    let err = refused_as(c, &bob, &manifest, NOT_HELD).await;
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): error when creating \"STDIN\": clusterroles.rbac.authorization.k8s.io \"{x}\" is forbidden: {}{{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}}",
            not_held_by(&bob)
        )),
        "{err}"
    );
    let err = c.kubectl_err(&["get", "clusterrole", &x]).await;
    assert!(err.contains("NotFound"), "{err}");
    // The Status: 403 Forbidden naming the ClusterRole.
    let api: Api<ClusterRole> = Api::all(client_as(c, &bob).await);
    let typed: ClusterRole = serde_json::from_value(manifest.clone()).expect("ClusterRole");
    let st = api_err(api.create(&PostParams::default(), &typed).await);
    assert_eq!((st.code, st.reason.as_str()), (403, "Forbidden"), "{st:?}");
    let d = st.details.expect("details");
    assert_eq!(
        (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
        (x.as_str(), "rbac.authorization.k8s.io", "clusterroles")
    );
    // A server-side dry run is refused the same way.
    let o = c
        .kubectl_stdin(
            &with_as(&bob, &["create", "--dry-run=server", "-f", "-"]),
            &manifest.to_string(),
        )
        .await;
    assert!(
        !o.ok() && o.stderr.contains(NOT_HELD),
        "{}{}",
        o.stdout,
        o.stderr
    );
    // Rules without permissions behind them (an aggregationRule) need cluster-admin.
    let agg = c.name("aggregated");
    cleanup.add(format!("clusterrole/{agg}"));
    let agg_manifest = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": agg},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate": agg}}]}});
    let err = refused_as(c, &bob, &agg_manifest, "must have cluster-admin").await;
    assert!(
        err.contains(&format!("clusterroles.rbac.authorization.k8s.io \"{agg}\" is forbidden: must have cluster-admin privileges to use the aggregationRule")),
        "{err}"
    );

    // Holding `get` on secrets cluster-wide, bob may grant it ...
    grant_cluster_wide(
        c,
        &mut cleanup,
        "bob-secret-getter",
        &bob,
        secret_rules(&["get"]),
    )
    .await;
    created_as(c, &bob, &manifest).await;
    let out = c
        .kubectl_ok(&["get", "clusterrole", &x, "-o", "json"])
        .await;
    assert_eq!(json(&out)["rules"][0]["resources"], json!(["secrets"]));
    // ... but not `list` too: only what is missing is named.
    let y = c.name("secret-lister");
    cleanup.add(format!("clusterrole/{y}"));
    let err = refused_as(
        c,
        &bob,
        &cluster_role(&y, secret_rules(&["get", "list"])),
        NOT_HELD,
    )
    .await;
    assert!(
        err.contains(&format!(
            "clusterroles.rbac.authorization.k8s.io \"{y}\" is forbidden: {}{{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"list\"]}}",
            not_held_by(&bob)
        )),
        "{err}"
    );
    // An update (patch) adding rules is checked as well.
    let o = c
        .kubectl(&with_as(
            &bob,
            &["patch", "clusterrole", &x, "--type=json", "-p",
              r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["pods"],"verbs":["delete"]}}]"#],
        ))
        .await;
    assert!(!o.ok(), "{}", o.stdout);
    assert!(
        o.stderr.contains(&format!(
            "clusterroles.rbac.authorization.k8s.io \"{x}\" is forbidden: {}",
            not_held_by(&bob)
        )) && o
            .stderr
            .contains("{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"),
        "{}",
        o.stderr
    );
}

// Only ownerReferences/finalizers changing: the registry does not check the rules (so the
// garbage collector and finalizer owners can always clean up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_is_not_checked_when_only_gc_fields_change() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    grant_cluster_wide(
        c,
        &mut cleanup,
        "role-patcher",
        &bob,
        json!([rbac_rule(&["clusterroles"], &["get", "patch"])]),
    )
    .await;
    let x = c.name("kept");
    cleanup.add(format!("clusterrole/{x}"));
    let mut manifest = cluster_role(&x, secret_rules(&["*"]));
    manifest["metadata"]["finalizers"] = json!(["example.com/keep"]);
    apply_json(c, &manifest).await;
    // A label is more than GC fields: refused, bob holds nothing of the role.
    let err = c
        .eventually(
            20,
            "the label patch to be refused as an escalation",
            || async {
                let o = c
                    .kubectl(&with_as(&bob, &["label", "clusterrole", &x, "a=b"]))
                    .await;
                assert!(!o.ok(), "{}", o.stdout);
                o.stderr.contains(NOT_HELD).then_some(o.stderr)
            },
        )
        .await;
    assert!(
        err.contains("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"*\"]}"),
        "{err}"
    );
    // Dropping the finalizer is allowed.
    c.kubectl_ok(&with_as(
        &bob,
        &[
            "patch",
            "clusterrole",
            &x,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ],
    ))
    .await;
    let out = c
        .kubectl_ok(&["get", "clusterrole", &x, "-o", "json"])
        .await;
    let v = json(&out);
    assert!(v["metadata"].get("finalizers").is_none(), "{v}");
    assert!(v["metadata"]["labels"].get("a").is_none(), "{v}");
}

// `escalate` on a role lets its holder write rules it does not hold. The grant is checked
// against the request's path name, so a resourceNames-restricted `escalate` covers updates and
// patches of that role but not creating it by POST (which has no name in its path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_escalate_verb_allows_granting_more() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    let carol = format!("carol-{}@x.example", c.suffix);
    let x = c.name("escalated");
    let y = c.name("not-escalated");
    cleanup.add(format!("clusterrole/{x}"));
    cleanup.add(format!("clusterrole/{y}"));
    grant_cluster_wide(
        c,
        &mut cleanup,
        "escalate-one",
        &bob,
        json!([
            rbac_rule(&["clusterroles"], &["create", "get", "update", "patch"]),
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"], "resourceNames": [x]}
        ]),
    )
    .await;
    let wide = cluster_role(&x, secret_rules(&["*"]));
    // POST: refused in spite of `escalate` on that name.
    let err = refused_as(c, &bob, &wide, NOT_HELD).await;
    assert!(
        err.contains(&format!(
            "clusterroles.rbac.authorization.k8s.io \"{x}\" is forbidden"
        )),
        "{err}"
    );

    apply_json(c, &cluster_role(&x, json!([]))).await;
    apply_json(c, &cluster_role(&y, json!([]))).await;
    let patch = r#"{"rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["*"]}]}"#;
    // PATCH .../clusterroles/<x>: allowed by `escalate` on x.
    c.eventually(20, "bob's patch of the escalatable role", || async {
        c.kubectl(&with_as(
            &bob,
            &["patch", "clusterrole", &x, "--type=merge", "-p", patch],
        ))
        .await
        .ok()
        .then_some(())
    })
    .await;
    let out = c
        .kubectl_ok(&["get", "clusterrole", &x, "-o", "json"])
        .await;
    assert_eq!(
        json(&out)["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}])
    );
    // Server-side apply (a PATCH with the name) too.
    let mut applied = cluster_role(
        &x,
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]),
    );
    applied["metadata"]["labels"] = json!({"applied": "yes"});
    let o = c
        .kubectl_stdin(
            &with_as(
                &bob,
                &[
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager",
                    "bob",
                    "-f",
                    "-",
                ],
            ),
            &applied.to_string(),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
    // Another role: refused.
    let o = c
        .kubectl(&with_as(
            &bob,
            &["patch", "clusterrole", &y, "--type=merge", "-p", patch],
        ))
        .await;
    assert!(!o.ok(), "{}", o.stdout);
    assert!(
        o.stderr.contains(&format!(
            "clusterroles.rbac.authorization.k8s.io \"{y}\" is forbidden: {}",
            not_held_by(&bob)
        )),
        "{}",
        o.stderr
    );
    let out = c
        .kubectl_ok(&["get", "clusterrole", &y, "-o", "json"])
        .await;
    // Still empty (a real server prints `"rules": null`).
    let rules = &json(&out)["rules"];
    assert!(rules.is_null() || rules == &json!([]), "{out}");

    // `escalate` on every ClusterRole (no resourceNames) covers creating by POST.
    grant_cluster_wide(
        c,
        &mut cleanup,
        "escalate-all",
        &carol,
        json!([rbac_rule(&["clusterroles"], &["create", "escalate"])]),
    )
    .await;
    let z = c.name("by-carol");
    cleanup.add(format!("clusterrole/{z}"));
    created_as(c, &carol, &cluster_role(&z, secret_rules(&["*"]))).await;
}

// A RoleBinding needs the referenced role's permissions in its namespace, or `bind` on that
// role there; a missing role is answered with the registry's NotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_role_binding_needs_the_roles_permissions_or_bind() {
    let c = Cluster::start().await;
    let c = &c;
    let bob = bob(c);
    let eve = format!("eve-{}@x.example", c.suffix);
    grant_in_namespace(
        c,
        "binder",
        &bob,
        json!([rbac_rule(&["rolebindings"], &["create", "get"])]),
    )
    .await;
    apply_json(
        c,
        &role(&c.ns, "secret-reader", secret_rules(&["get", "list"])),
    )
    .await;

    let to_reader = role_binding(
        &c.ns,
        "eve-reads",
        "Role",
        "secret-reader",
        user_subject(&eve),
    );
    let err = refused_as(c, &bob, &to_reader, NOT_HELD).await;
    assert!(
        err.contains(&format!(
            "rolebindings.rbac.authorization.k8s.io \"eve-reads\" is forbidden: {}{{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}}",
            not_held_by(&bob)
        )),
        "{err}"
    );
    let to_admin = role_binding(
        &c.ns,
        "eve-admin",
        "ClusterRole",
        "admin",
        user_subject(&eve),
    );
    let err = refused_as(c, &bob, &to_admin, NOT_HELD).await;
    assert!(
        err.contains(&format!(
            "rolebindings.rbac.authorization.k8s.io \"eve-admin\" is forbidden: {}",
            not_held_by(&bob)
        )) && err.contains("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\""),
        "{err}"
    );
    // A role that does not exist: 404, in the words of the registry (which names the
    // request's resource).
    let to_nothing = role_binding(
        &c.ns,
        "eve-nothing",
        "Role",
        "no-such-role",
        user_subject(&eve),
    );
    let err = refused_as(c, &bob, &to_nothing, "not found").await;
    assert!(
        err.contains("Error from server (NotFound): error when creating \"STDIN\": rolebindings.rbac.authorization.k8s.io \"no-such-role\" not found"),
        "{err}"
    );
    let api: Api<RoleBinding> = Api::namespaced(client_as(c, &bob).await, &c.ns);
    let typed: RoleBinding = serde_json::from_value(to_nothing.clone()).expect("RoleBinding");
    let st = api_err(api.create(&PostParams::default(), &typed).await);
    assert_eq!((st.code, st.reason.as_str()), (404, "NotFound"), "{st:?}");
    let typed: RoleBinding = serde_json::from_value(to_reader.clone()).expect("RoleBinding");
    let st = api_err(api.create(&PostParams::default(), &typed).await);
    assert_eq!((st.code, st.reason.as_str()), (403, "Forbidden"), "{st:?}");
    let d = st.details.expect("details");
    assert_eq!(
        (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
        ("eve-reads", "rbac.authorization.k8s.io", "rolebindings")
    );

    // `bind` on that Role by name, in this namespace.
    grant_in_namespace(
        c,
        "bind-reader",
        &bob,
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"], "resourceNames": ["secret-reader"]}]),
    )
    .await;
    created_as(c, &bob, &to_reader).await;
    let out = c
        .kubectl_ok(&["get", "rolebinding", "eve-reads", "-n", &c.ns, "-o", "json"])
        .await;
    assert_eq!(json(&out)["roleRef"]["name"], "secret-reader");
    // ... which does not extend to `admin`.
    refused_as(c, &bob, &to_admin, NOT_HELD).await;

    // Holding `admin` in the namespace, bob may bind it there.
    apply_json(
        c,
        &role_binding(
            &c.ns,
            "bob-admin",
            "ClusterRole",
            "admin",
            user_subject(&bob),
        ),
    )
    .await;
    created_as(c, &bob, &to_admin).await;
    c.kubectl_ok(&["get", "rolebinding", "eve-admin", "-n", &c.ns])
        .await;
}

// A ClusterRoleBinding needs the permissions cluster-wide (holding them in a namespace is not
// enough), or `bind` on the ClusterRole at the cluster scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_cluster_role_binding_needs_the_permissions_cluster_wide_or_bind() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    let eve = format!("eve-{}@x.example", c.suffix);
    grant_cluster_wide(
        c,
        &mut cleanup,
        "crb-writer",
        &bob,
        json!([rbac_rule(&["clusterrolebindings"], &["create", "get"])]),
    )
    .await;
    let readers = c.name("secret-readers");
    let listers = c.name("secret-listers");
    cleanup.add(format!("clusterrole/{readers}"));
    cleanup.add(format!("clusterrole/{listers}"));
    apply_json(c, &cluster_role(&readers, secret_rules(&["get"]))).await;
    apply_json(c, &cluster_role(&listers, secret_rules(&["list"]))).await;
    let b1 = c.name("eve-reads");
    let b2 = c.name("eve-lists");
    cleanup.add(format!("clusterrolebinding/{b1}"));
    cleanup.add(format!("clusterrolebinding/{b2}"));
    let to_readers = cluster_role_binding(&b1, &readers, user_subject(&eve));
    let to_listers = cluster_role_binding(&b2, &listers, user_subject(&eve));

    let err = refused_as(c, &bob, &to_readers, NOT_HELD).await;
    assert!(
        err.contains(&format!(
            "clusterrolebindings.rbac.authorization.k8s.io \"{b1}\" is forbidden: {}{{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}}",
            not_held_by(&bob)
        )),
        "{err}"
    );
    // Holding the role's permissions in a namespace only, and `bind` on it only there.
    grant_in_namespace(
        c,
        "ns-grants",
        &bob,
        json!([
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": [readers]}
        ]),
    )
    .await;
    eventually_ok(
        c,
        &with_as(
            &bob,
            &[
                "auth",
                "can-i",
                "bind",
                &format!("clusterroles.rbac.authorization.k8s.io/{readers}"),
                "-n",
                &c.ns,
            ],
        ),
    )
    .await;
    eventually_ok(
        c,
        &with_as(&bob, &["auth", "can-i", "get", "secrets", "-n", &c.ns]),
    )
    .await;
    let err = refused_as(c, &bob, &to_readers, NOT_HELD).await;
    assert!(
        err.contains(&format!(
            "clusterrolebindings.rbac.authorization.k8s.io \"{b1}\" is forbidden"
        )),
        "{err}"
    );

    // `bind` on that ClusterRole, cluster-wide.
    grant_cluster_wide(
        c,
        &mut cleanup,
        "bind-readers",
        &bob,
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": [readers]}]),
    )
    .await;
    created_as(c, &bob, &to_readers).await;
    // ... by name: not the other role.
    let err = refused_as(c, &bob, &to_listers, NOT_HELD).await;
    assert!(
        err.contains(&format!(
            "clusterrolebindings.rbac.authorization.k8s.io \"{b2}\" is forbidden: {}{{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"list\"]}}",
            not_held_by(&bob)
        )),
        "{err}"
    );
    // Holding `list` on secrets cluster-wide, bob may bind the other role.
    grant_cluster_wide(c, &mut cleanup, "bob-lists", &bob, secret_rules(&["list"])).await;
    created_as(c, &bob, &to_listers).await;
    let out = c
        .kubectl_ok(&["get", "clusterrolebinding", &b2, "-o", "json"])
        .await;
    assert_eq!(json(&out)["subjects"][0]["name"], eve.as_str());
}

// Members of system:masters are never checked: any role, any binding, even of a missing role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_system_masters_may_grant_anything() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let root = format!("root-{}@x.example", c.suffix);
    let eve = format!("eve-{}@x.example", c.suffix);
    let as_masters = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["--as", &root, "--as-group", "system:masters"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let everything = c.name("everything");
    cleanup.add(format!("clusterrole/{everything}"));
    let b = c.name("eve-everything");
    cleanup.add(format!("clusterrolebinding/{b}"));
    let manifests = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": everything},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate": everything}}]},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        cluster_role_binding(&b, &everything, user_subject(&eve)),
        role_binding(
            &c.ns,
            "eve-nothing",
            "Role",
            "no-such-role",
            user_subject(&eve),
        ),
    ];
    for m in &manifests {
        let args = as_masters(&["create", "-f", "-"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = c.kubectl_stdin(&args, &m.to_string()).await;
        assert!(o.ok(), "{}\n{m}", o.stderr);
    }
    c.kubectl_ok(&["get", "clusterrolebinding", &b]).await;
    c.kubectl_ok(&["get", "rolebinding", "eve-nothing", "-n", &c.ns])
        .await;
    // The same user without the group is refused (by the authorizer: it holds nothing).
    let err = c
        .kubectl_stdin(
            &with_as(&root, &["create", "-f", "-"]),
            &role_binding(&c.ns, "x", "Role", "no-such-role", user_subject(&eve)).to_string(),
        )
        .await;
    assert!(
        !err.ok()
            && err.stderr.contains(&format!(
                "User \"{root}\" cannot create resource \"rolebindings\""
            )),
        "{}",
        err.stderr
    );
}

// The registry's other answers, word for word: a generated name is not known yet when the
// check runs; the writer's own bindings of missing roles are listed as resolution errors;
// a ClusterRoleBinding naming a Role is a 400 and an unknown roleRef kind a 500 (both
// before validation would refuse them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_refusals_in_the_registrys_words() {
    let c = Cluster::start().await;
    let c = &c;
    let mut cleanup = Cleanup::new(c);
    let bob = bob(c);
    grant_cluster_wide(
        c,
        &mut cleanup,
        "rbac-writer",
        &bob,
        json!([rbac_rule(
            &["clusterroles", "clusterrolebindings", "rolebindings"],
            &["create", "get"]
        )]),
    )
    .await;
    let gone1 = c.name("gone-one");
    let gone2 = c.name("gone-two");
    for g in [&gone1, &gone2] {
        cleanup.add(format!("clusterrolebinding/{g}"));
        apply_json(c, &cluster_role_binding(g, g, user_subject(&bob))).await;
    }
    let generated = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"generateName": c.name("gen-")}, "rules": secret_rules(&["get"])});
    let err = refused_as(c, &bob, &generated, "resolution errors").await;
    assert!(
        err.contains(&format!(
            "Error from server (Forbidden): error when creating \"STDIN\": clusterroles.rbac.authorization.k8s.io is forbidden: {}{{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}}; resolution errors: [[clusterroles.rbac.authorization.k8s.io \"{gone1}\" not found, clusterroles.rbac.authorization.k8s.io \"{gone2}\" not found]]",
            not_held_by(&bob)
        )),
        "{err}"
    );

    let crb_to_role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": c.name("to-a-role")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": []});
    let err = refused_as(c, &bob, &crb_to_role, "Namespace parameter").await;
    assert!(
        err.contains("Error from server (BadRequest): error when creating \"STDIN\": Namespace parameter required."),
        "{err}"
    );
    let odd_kind = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "odd", "namespace": c.ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Thing", "name": "r"}, "subjects": []});
    let err = refused_as(c, &bob, &odd_kind, "unsupported role reference kind").await;
    assert!(
        err.contains("Error from server: error when creating \"STDIN\": unsupported role reference kind: \"Thing\""),
        "{err}"
    );
    let api: Api<RoleBinding> = Api::namespaced(client_as(c, &bob).await, &c.ns);
    let typed: RoleBinding = serde_json::from_value(odd_kind).expect("RoleBinding");
    let st = api_err(api.create(&PostParams::default(), &typed).await);
    assert_eq!((st.code, st.reason.as_str()), (500, ""), "{st:?}");
}
