//! Patches and server-side apply, as the Kubernetes docs describe them: API concepts "Patch"
//! (JSON patch, merge patch, strategic merge patch) and "Server-Side Apply" (field management,
//! conflicts, merge strategies, transferring ownership, upgrading from client-side apply).
mod common;
use common::*;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string()
}

/// The managedFields entry of `manager` (and operation), if any.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| {
            e["manager"] == manager
                && e["operation"] == operation
                && e.get("subresource").is_none_or(|s| s.as_str() == Some(""))
        })
}

/// Does `manager` own the field at `path` (a list of `f:`/`k:`/`v:` keys) of `obj`?
fn owns(obj: &Value, manager: &str, path: &[&str]) -> bool {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["manager"] == manager)
        .any(|e| {
            let mut node = &e["fieldsV1"];
            for p in path {
                node = &node[*p];
            }
            !node.is_null()
        })
}

fn cm_body(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

async fn apply_cm(
    api: &Api<ConfigMap>,
    name: &str,
    manager: &str,
    data: Value,
    force: bool,
) -> Result<ConfigMap, kube::Error> {
    let mut pp = PatchParams::apply(manager);
    if force {
        pp = pp.force();
    }
    api.patch(name, &pp, &Patch::Apply(&cm_body(name, data)))
        .await
}

/// A CRD (namespaced, `widgets.<group>`, status subresource) whose spec has list types of each kind.
struct Crd {
    name: String,
    ar: ApiResource,
    real: bool,
}

impl Drop for Crd {
    fn drop(&mut self) {
        if self.real {
            let _ = std::process::Command::new(kubectl_bin())
                .args([
                    "delete",
                    "crd",
                    &self.name,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .output();
        }
    }
}

async fn widget_crd(c: &Cluster) -> Crd {
    let group = format!("fa{}.example.com", c.suffix);
    let name = format!("widgets.{group}");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "color": {"type": "string"},
                        "size": {"type": "integer"},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "args": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "string"}}}},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}}}]}});
    let out = c
        .kubectl_stdin(&["create", "-f", "-"], &crd.to_string())
        .await;
    assert!(out.ok(), "creating the CRD failed: {}", out.stderr);
    let guard = Crd {
        name: name.clone(),
        ar: ApiResource {
            group: group.clone(),
            version: "v1".into(),
            api_version: format!("{group}/v1"),
            kind: "Widget".into(),
            plural: "widgets".into(),
        },
        real: real(),
    };
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{name}"),
        "--timeout=60s",
    ])
    .await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client().await, &c.ns, &guard.ar);
    c.eventually(30, "the custom resource to be served", || {
        let api = api.clone();
        async move { api.list(&Default::default()).await.ok() }
    })
    .await;
    guard
}

fn widget(crd: &Crd, name: &str, spec: Value) -> Value {
    json!({"apiVersion": crd.ar.api_version, "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

async fn apply_widget(
    api: &Api<DynamicObject>,
    crd: &Crd,
    name: &str,
    manager: &str,
    spec: Value,
    force: bool,
) -> Result<Value, kube::Error> {
    let mut pp = PatchParams::apply(manager);
    if force {
        pp = pp.force();
    }
    api.patch(name, &pp, &Patch::Apply(&widget(crd, name, spec)))
        .await
        .map(|o| val(&o))
}

// API concepts "Patch" / JSON patch (RFC 6902): add, replace, remove and test operations; a failing `test` refuses the whole patch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch_applies_operations_and_a_failing_test_refuses_the_patch() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(cm_body("jp", json!({"a": "1", "b": "2"}))).unwrap(),
    )
    .await
    .unwrap();
    let ops = r#"[{"op":"test","path":"/data/a","value":"1"},{"op":"add","path":"/data/c","value":"3"},{"op":"replace","path":"/data/a","value":"10"},{"op":"remove","path":"/data/b"}]"#;
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "jp",
        "-n",
        &c.ns,
        "--type=json",
        "-p",
        ops,
    ])
    .await;
    let got = val(&cms.get("jp").await.unwrap());
    assert_eq!(got["data"], json!({"a": "10", "c": "3"}));

    // A failing test op: 422 and nothing of the patch is applied.
    let bad = json!([{"op": "add", "path": "/data/d", "value": "4"}, {"op": "test", "path": "/data/a", "value": "1"}]);
    let mut req = kube::core::Request::new(format!("/api/v1/namespaces/{}/configmaps", c.ns))
        .patch("jp", &PatchParams::default(), &Patch::Merge(&bad))
        .unwrap();
    req.headers_mut().insert(
        "content-type",
        "application/json-patch+json".parse().unwrap(),
    );
    let st = api_err(c.client().await.request::<ConfigMap>(req).await);
    assert_eq!(st.code, 422, "{st:?}");
    assert_eq!(st.reason, "Invalid", "{st:?}");
    let after = val(&cms.get("jp").await.unwrap());
    assert_eq!(after["data"], json!({"a": "10", "c": "3"}));
    assert_eq!(rv(&after), rv(&got), "a refused JSON patch must not write");
    // kubectl reports the failure too.
    let err = c
        .kubectl_err(&[
            "patch",
            "configmap",
            "jp",
            "-n",
            &c.ns,
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/data/a","value":"nope"}]"#,
        ])
        .await;
    assert!(err.to_lowercase().contains("invalid"), "{err}");
    assert_eq!(
        val(&cms.get("jp").await.unwrap())["data"],
        json!({"a": "10", "c": "3"})
    );
}

// API concepts "Patch" / JSON merge patch (RFC 7386): maps merge and `null` deletes a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_patch_merges_maps_and_null_deletes_a_key() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(cm_body("mp", json!({"a": "1", "b": "2"}))).unwrap(),
    )
    .await
    .unwrap();
    let got = cms
        .patch(
            "mp",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(val(&got)["data"], json!({"b": "2", "c": "3"}));
    c.kubectl_ok(&[
        "patch",
        "configmap",
        "mp",
        "-n",
        &c.ns,
        "--type=merge",
        "-p",
        r#"{"data":{"b":null}}"#,
    ])
    .await;
    assert_eq!(
        val(&cms.get("mp").await.unwrap())["data"],
        json!({"c": "3"})
    );
}

// Strategic merge patch: a list without a patch strategy (RoleBinding.subjects) is replaced whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_replaces_rolebinding_subjects() {
    let c = Cluster::start().await;
    let rbs: Api<RoleBinding> = Api::namespaced(c.client().await, &c.ns);
    let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]});
    rbs.create(&PostParams::default(), &serde_json::from_value(rb).unwrap())
        .await
        .unwrap();
    c.kubectl_ok(&[
        "patch",
        "rolebinding",
        "rb",
        "-n",
        &c.ns,
        "-p",
        r#"{"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"carol"}]}"#,
    ])
    .await;
    let got = val(&rbs.get("rb").await.unwrap());
    assert_eq!(
        got["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}])
    );
}

// Strategic merge patch: metadata.ownerReferences merge by uid, and `$patch: delete` removes one item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_merges_owner_references_by_uid_and_patch_delete_removes_one() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let mut owners = Vec::new();
    for n in ["owner-1", "owner-2"] {
        let o = cms
            .create(
                &PostParams::default(),
                &serde_json::from_value(cm_body(n, json!({}))).unwrap(),
            )
            .await
            .unwrap();
        owners.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": o.metadata.uid.unwrap()}));
    }
    let mut dep = cm_body("dependent", json!({"k": "v"}));
    dep["metadata"]["ownerReferences"] = json!([owners[0]]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(dep).unwrap(),
    )
    .await
    .unwrap();

    let got = cms
        .patch(
            "dependent",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"ownerReferences": [owners[1]]}})),
        )
        .await
        .unwrap();
    let refs = val(&got)["metadata"]["ownerReferences"].clone();
    let uids: Vec<&str> = refs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), 2, "{refs}");
    assert!(
        uids.contains(&owners[0]["uid"].as_str().unwrap())
            && uids.contains(&owners[1]["uid"].as_str().unwrap()),
        "{refs}"
    );

    let del =
        json!({"metadata": {"ownerReferences": [{"uid": owners[0]["uid"], "$patch": "delete"}]}});
    let got = cms
        .patch("dependent", &PatchParams::default(), &Patch::Strategic(del))
        .await
        .unwrap();
    let refs = val(&got)["metadata"]["ownerReferences"].clone();
    assert_eq!(refs.as_array().unwrap().len(), 1, "{refs}");
    assert_eq!(refs[0]["uid"], owners[1]["uid"]);
    assert_eq!(val(&got)["data"], json!({"k": "v"}));
}

// Strategic merge patch: metadata.finalizers (a merged primitive list) and `$deleteFromPrimitiveList/finalizers`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_unions_finalizers_and_delete_from_primitive_list_removes_one() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let mut cm = cm_body("fin", json!({}));
    cm["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
    cms.create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
        .await
        .unwrap();

    let got = cms
        .patch(
            "fin",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"finalizers": ["example.com/c"]}})),
        )
        .await
        .unwrap();
    let mut fins = got.metadata.finalizers.clone().unwrap_or_default();
    fins.sort();
    assert_eq!(fins, ["example.com/a", "example.com/b", "example.com/c"]);

    let got = cms
        .patch(
            "fin",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
            ),
        )
        .await
        .unwrap();
    let mut fins = got.metadata.finalizers.clone().unwrap_or_default();
    fins.sort();
    assert_eq!(fins, ["example.com/b", "example.com/c"]);
    // Let the namespace go away on a real cluster.
    cms.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

// API concepts "Patch": custom resources do not support strategic merge patch — 415 Unsupported Media Type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_on_a_custom_resource_is_415() {
    let c = Cluster::start().await;
    let crd = widget_crd(&c).await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client().await, &c.ns, &crd.ar);
    apply_widget(&api, &crd, "w", "mgr-a", json!({"color": "red"}), false)
        .await
        .unwrap();
    let st = api_err(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"color": "blue"}})),
        )
        .await,
    );
    assert_eq!(st.code, 415, "{st:?}");
    assert_eq!(st.reason, "UnsupportedMediaType", "{st:?}");
    assert_eq!(
        st.message,
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
    // merge patch works on it.
    let got = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(val(&got)["spec"]["color"], "blue");
}

// Server-Side Apply "Field management": the applier is recorded in managedFields with operation Apply and the fields it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_records_the_manager_operation_and_applied_fields() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let got = val(&apply_cm(&cms, "ssa", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap());
    assert_eq!(got["data"], json!({"a": "1"}));
    let e =
        entry(&got, "mgr-a", "Apply").unwrap_or_else(|| panic!("no Apply entry for mgr-a: {got}"));
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].is_string(), "{e}");
    assert!(e["fieldsV1"]["f:data"]["f:a"].is_object(), "{e}");

    // The same through kubectl apply --server-side (default manager "kubectl").
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa-kubectl", "namespace": c.ns, "labels": {"app": "x"}}, "data": {"k": "v"}});
    let out = c
        .kubectl_stdin(
            &["apply", "--server-side", "-f", "-"],
            &manifest.to_string(),
        )
        .await;
    assert!(out.ok(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("configmap/ssa-kubectl serverside-applied"),
        "{}",
        out.stdout
    );
    let got = json(
        &c.kubectl_ok(&[
            "get",
            "configmap",
            "ssa-kubectl",
            "-n",
            &c.ns,
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await,
    );
    let e = entry(&got, "kubectl", "Apply")
        .unwrap_or_else(|| panic!("no Apply entry for kubectl: {got}"));
    assert!(e["fieldsV1"]["f:data"]["f:k"].is_object(), "{e}");
    assert!(
        e["fieldsV1"]["f:metadata"]["f:labels"]["f:app"].is_object(),
        "{e}"
    );
}

// Server-Side Apply: re-applying an unchanged configuration is a no-op (the resourceVersion stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reapplying_the_same_configuration_changes_nothing() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let first = val(&apply_cm(&cms, "same", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap());
    let second = val(&apply_cm(&cms, "same", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap());
    assert_eq!(rv(&first), rv(&second));
    assert_eq!(
        first["metadata"]["managedFields"],
        second["metadata"]["managedFields"]
    );
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same-k", "namespace": c.ns}, "data": {"a": "1"}});
    c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &manifest.to_string(),
    )
    .await;
    let out = c
        .kubectl_stdin(
            &["apply", "--server-side", "-f", "-"],
            &manifest.to_string(),
        )
        .await;
    assert!(out.ok(), "{}", out.stderr);
    let v1 = rv(&json(
        &c.kubectl_ok(&["get", "configmap", "same-k", "-n", &c.ns, "-o", "json"])
            .await,
    ));
    c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &manifest.to_string(),
    )
    .await;
    let v2 = rv(&json(
        &c.kubectl_ok(&["get", "configmap", "same-k", "-n", &c.ns, "-o", "json"])
            .await,
    ));
    assert_eq!(v1, v2);
}

// Server-Side Apply "Conflicts": a second applier setting a different value gets 409 naming the owner and field; force takes ownership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_apply_is_409_naming_the_manager_and_force_takes_ownership() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    apply_cm(&cms, "cf", "mgr-a", json!({"a": "1", "x": "keep"}), false)
        .await
        .unwrap();
    let st = api_err(apply_cm(&cms, "cf", "mgr-b", json!({"a": "2"}), false).await);
    assert_eq!(st.code, 409, "{st:?}");
    assert_eq!(st.reason, "Conflict", "{st:?}");
    assert_eq!(
        st.message,
        "Apply failed with 1 conflict: conflict with \"mgr-a\": .data.a"
    );
    assert_eq!(val(&cms.get("cf").await.unwrap())["data"]["a"], "1");

    // kubectl shows the same conflict.
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cf", "namespace": c.ns}, "data": {"a": "3"}});
    let out = c
        .kubectl_stdin(
            &["apply", "--server-side", "--field-manager=mgr-k", "-f", "-"],
            &manifest.to_string(),
        )
        .await;
    assert!(!out.ok());
    assert!(
        out.stderr.contains("conflict with \"mgr-a\""),
        "{}",
        out.stderr
    );

    let got = val(&apply_cm(&cms, "cf", "mgr-b", json!({"a": "2"}), true)
        .await
        .unwrap());
    assert_eq!(got["data"], json!({"a": "2", "x": "keep"}));
    assert!(owns(&got, "mgr-b", &["f:data", "f:a"]), "{got}");
    assert!(!owns(&got, "mgr-a", &["f:data", "f:a"]), "{got}");
    assert!(owns(&got, "mgr-a", &["f:data", "f:x"]), "{got}");
}

// Server-Side Apply "Conflicts": appliers setting the same value share the field without conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_values_are_shared_without_conflict() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    apply_cm(&cms, "sh", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap();
    let got = val(&apply_cm(&cms, "sh", "mgr-b", json!({"a": "1"}), false)
        .await
        .unwrap());
    assert!(owns(&got, "mgr-a", &["f:data", "f:a"]), "{got}");
    assert!(owns(&got, "mgr-b", &["f:data", "f:a"]), "{got}");
}

// Server-Side Apply "Merge strategy": a field dropped from the applied config is removed when that manager was its only owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_field_is_removed_when_the_applier_was_its_only_owner() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    apply_cm(&cms, "drop", "mgr-a", json!({"a": "1", "b": "2"}), false)
        .await
        .unwrap();
    let got = val(&apply_cm(&cms, "drop", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap());
    assert_eq!(got["data"], json!({"a": "1"}));
    assert!(!owns(&got, "mgr-a", &["f:data", "f:b"]), "{got}");
}

// Server-Side Apply "Merge strategy": a dropped field that another manager also owns stays, owned by that manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_field_is_kept_when_another_manager_also_owns_it() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    apply_cm(&cms, "keep", "mgr-a", json!({"a": "1", "b": "2"}), false)
        .await
        .unwrap();
    apply_cm(&cms, "keep", "mgr-b", json!({"b": "2"}), false)
        .await
        .unwrap();
    let got = val(&apply_cm(&cms, "keep", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap());
    assert_eq!(got["data"], json!({"a": "1", "b": "2"}));
    assert!(owns(&got, "mgr-b", &["f:data", "f:b"]), "{got}");
    assert!(!owns(&got, "mgr-a", &["f:data", "f:b"]), "{got}");
}

// Server-Side Apply "Merge strategy": x-kubernetes-list-type map merges two managers' items by key; set unions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_type_map_merges_by_key_and_set_unions() {
    let c = Cluster::start().await;
    let crd = widget_crd(&c).await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client().await, &c.ns, &crd.ar);
    apply_widget(
        &api,
        &crd,
        "lists",
        "mgr-a",
        json!({"ports": [{"name": "http", "port": 80}], "tags": ["x", "y"]}),
        false,
    )
    .await
    .unwrap();
    let got = apply_widget(
        &api,
        &crd,
        "lists",
        "mgr-b",
        json!({"ports": [{"name": "https", "port": 443}], "tags": ["y", "z"]}),
        false,
    )
    .await
    .unwrap();
    let ports = got["spec"]["ports"].as_array().unwrap().clone();
    assert_eq!(ports.len(), 2, "{got}");
    assert!(
        ports.contains(&json!({"name": "http", "port": 80}))
            && ports.contains(&json!({"name": "https", "port": 443})),
        "{got}"
    );
    let mut tags: Vec<&str> = got["spec"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["x", "y", "z"]);
    assert!(
        owns(
            &got,
            "mgr-a",
            &["f:spec", "f:ports", "k:{\"name\":\"http\"}"]
        ),
        "{got}"
    );
    assert!(
        owns(
            &got,
            "mgr-b",
            &["f:spec", "f:ports", "k:{\"name\":\"https\"}"]
        ),
        "{got}"
    );
    assert!(
        owns(&got, "mgr-a", &["f:spec", "f:tags", "v:\"x\""]),
        "{got}"
    );
    assert!(
        owns(&got, "mgr-b", &["f:spec", "f:tags", "v:\"z\""]),
        "{got}"
    );

    // mgr-a dropping its item removes only that item.
    let got = apply_widget(
        &api,
        &crd,
        "lists",
        "mgr-a",
        json!({"tags": ["x", "y"]}),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        got["spec"]["ports"],
        json!([{"name": "https", "port": 443}])
    );
}

// Server-Side Apply "Merge strategy": an atomic list is owned whole — another applier conflicts, and forcing replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_type_atomic_is_replaced_whole() {
    let c = Cluster::start().await;
    let crd = widget_crd(&c).await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client().await, &c.ns, &crd.ar);
    apply_widget(
        &api,
        &crd,
        "atom",
        "mgr-a",
        json!({"args": ["1", "2"]}),
        false,
    )
    .await
    .unwrap();
    let st =
        api_err(apply_widget(&api, &crd, "atom", "mgr-b", json!({"args": ["3"]}), false).await);
    assert_eq!(st.code, 409, "{st:?}");
    assert!(
        st.message.contains("conflict with \"mgr-a\"") && st.message.contains(".spec.args"),
        "{}",
        st.message
    );
    let got = apply_widget(&api, &crd, "atom", "mgr-b", json!({"args": ["3"]}), true)
        .await
        .unwrap();
    assert_eq!(got["spec"]["args"], json!(["3"]));
    assert!(owns(&got, "mgr-b", &["f:spec", "f:args"]), "{got}");
    assert!(!owns(&got, "mgr-a", &["f:spec", "f:args"]), "{got}");
}

// Server-Side Apply "Transferring ownership": an Update (merge patch or PUT) by another manager takes the field; re-applying the old value conflicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_by_another_manager_takes_ownership_from_the_applier() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    apply_cm(&cms, "upd", "mgr-a", json!({"a": "1", "b": "1"}), false)
        .await
        .unwrap();
    let pp = PatchParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    let got = val(&cms
        .patch("upd", &pp, &Patch::Merge(json!({"data": {"a": "2"}})))
        .await
        .unwrap());
    let e = entry(&got, "editor", "Update")
        .unwrap_or_else(|| panic!("no Update entry for editor: {got}"));
    assert_eq!(e["fieldsV1"]["f:data"]["f:a"], json!({}), "{e}");
    assert!(owns(&got, "editor", &["f:data", "f:a"]), "{got}");
    assert!(!owns(&got, "mgr-a", &["f:data", "f:a"]), "{got}");
    let st = api_err(apply_cm(&cms, "upd", "mgr-a", json!({"a": "1", "b": "1"}), false).await);
    assert_eq!(st.code, 409, "{st:?}");
    assert_eq!(
        st.message,
        "Apply failed with 1 conflict: conflict with \"editor\" using v1: .data.a"
    );

    // A PUT does the same.
    let mut cur = cms.get("upd").await.unwrap();
    cur.data.as_mut().unwrap().insert("b".into(), "9".into());
    let got = val(&cms
        .replace(
            "upd",
            &PostParams {
                field_manager: Some("putter".into()),
                ..Default::default()
            },
            &cur,
        )
        .await
        .unwrap());
    assert!(owns(&got, "putter", &["f:data", "f:b"]), "{got}");
    assert!(!owns(&got, "mgr-a", &["f:data", "f:b"]), "{got}");
    let st = api_err(apply_cm(&cms, "upd", "mgr-a", json!({"b": "1"}), false).await);
    assert_eq!(st.code, 409, "{st:?}");
    assert!(
        st.message.contains("conflict with \"putter\""),
        "{}",
        st.message
    );
}

// API concepts / PatchOptions validation: an apply patch without fieldManager is refused (422 on PatchOptions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_field_manager_is_refused() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let st = api_err(
        cms.patch(
            "nofm",
            &PatchParams::default(),
            &Patch::Apply(&cm_body("nofm", json!({"a": "1"}))),
        )
        .await,
    );
    assert_eq!(st.code, 422, "{st:?}");
    assert_eq!(st.reason, "Invalid", "{st:?}");
    assert_eq!(
        st.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert!(api_err(cms.get("nofm").await).code == 404);
}

// Server-Side Apply on the status subresource: Patch::Apply via patch_status changes only status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_to_status_changes_only_status() {
    let c = Cluster::start().await;
    let crd = widget_crd(&c).await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client().await, &c.ns, &crd.ar);
    let created = apply_widget(&api, &crd, "st", "mgr-a", json!({"color": "red"}), false)
        .await
        .unwrap();
    let mut body = widget(&crd, "st", json!({"color": "blue"}));
    body["status"] = json!({"phase": "Ready"});
    let got = val(&api
        .patch_status(
            "st",
            &PatchParams::apply("status-mgr"),
            &Patch::Apply(&body),
        )
        .await
        .unwrap());
    assert_eq!(got["status"]["phase"], "Ready");
    assert_eq!(got["spec"]["color"], "red");
    assert_eq!(
        got["metadata"]["generation"],
        created["metadata"]["generation"]
    );
    let e = got["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "status-mgr")
        .cloned()
        .unwrap_or_default();
    assert_eq!(e["operation"], "Apply", "{got}");
    assert_eq!(e["subresource"], "status", "{got}");
    assert!(e["fieldsV1"]["f:status"]["f:phase"].is_object(), "{e}");
    // And applying status on the main resource is ignored.
    let mut main = widget(&crd, "st", json!({"color": "red"}));
    main["status"] = json!({"phase": "Broken"});
    let got = val(&api
        .patch("st", &PatchParams::apply("mgr-a"), &Patch::Apply(&main))
        .await
        .unwrap());
    assert_eq!(got["status"]["phase"], "Ready");
}

// Server-Side Apply "Upgrading from client-side apply to server-side apply": kubectl apply then kubectl apply --server-side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_upgrades_to_server_side_apply() {
    let c = Cluster::start().await;
    let m = |data: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mig", "namespace": c.ns}, "data": data}).to_string()
    };
    let out = c.apply(&m(json!({"a": "1", "b": "2"}))).await;
    assert!(out.ok(), "{}", out.stderr);
    let got = json(
        &c.kubectl_ok(&[
            "get",
            "configmap",
            "mig",
            "-n",
            &c.ns,
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await,
    );
    assert!(
        got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "{got}"
    );
    assert!(
        entry(&got, "kubectl-client-side-apply", "Update").is_some(),
        "{got}"
    );

    let out = c
        .kubectl_stdin(
            &["apply", "--server-side", "-f", "-"],
            &m(json!({"a": "1", "b": "2"})),
        )
        .await;
    assert!(out.ok(), "{}", out.stderr);
    let got = json(
        &c.kubectl_ok(&[
            "get",
            "configmap",
            "mig",
            "-n",
            &c.ns,
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await,
    );
    assert!(
        owns(&got, "kubectl", &["f:data", "f:a"]) && owns(&got, "kubectl", &["f:data", "f:b"]),
        "{got}"
    );
    assert!(
        !owns(&got, "kubectl-client-side-apply", &["f:data"]),
        "{got}"
    );

    // Now server-side apply alone owns the fields: dropping one removes it.
    let out = c
        .kubectl_stdin(
            &["apply", "--server-side", "-f", "-"],
            &m(json!({"a": "1"})),
        )
        .await;
    assert!(out.ok(), "{}", out.stderr);
    let got = json(
        &c.kubectl_ok(&["get", "configmap", "mig", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(got["data"], json!({"a": "1"}));
}

// API concepts "Dry-run": an apply with dryRun=All answers with the result but persists nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_apply_persists_nothing() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let dry = PatchParams::apply("mgr-a").dry_run();
    let got = cms
        .patch(
            "dry",
            &dry,
            &Patch::Apply(&cm_body("dry", json!({"a": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(val(&got)["data"], json!({"a": "1"}));
    assert_eq!(api_err(cms.get("dry").await).code, 404);

    let before = val(&apply_cm(&cms, "dry", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap());
    let got = cms
        .patch(
            "dry",
            &dry,
            &Patch::Apply(&cm_body("dry", json!({"a": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(val(&got)["data"], json!({"a": "2"}));
    let after = val(&cms.get("dry").await.unwrap());
    assert_eq!(after["data"], json!({"a": "1"}));
    assert_eq!(rv(&after), rv(&before));
    let out = c.kubectl_stdin(&["apply", "--server-side", "--dry-run=server", "--field-manager=mgr-a", "-f", "-"], &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry", "namespace": c.ns}, "data": {"a": "3"}}).to_string()).await;
    assert!(out.ok(), "{}", out.stderr);
    assert!(out.stdout.contains("(server dry run)"), "{}", out.stdout);
    assert_eq!(
        val(&cms.get("dry").await.unwrap())["data"],
        json!({"a": "1"})
    );
}

// API concepts / PatchOptions validation: `force` is only for apply patches (422 on PatchOptions otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_on_a_non_apply_patch_is_refused() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    apply_cm(&cms, "frc", "mgr-a", json!({"a": "1"}), false)
        .await
        .unwrap();
    let pp = PatchParams {
        field_manager: Some("editor".into()),
        ..Default::default()
    };
    let mut req = kube::core::Request::new(format!("/api/v1/namespaces/{}/configmaps", c.ns))
        .patch("frc", &pp, &Patch::Merge(json!({"data": {"a": "2"}})))
        .unwrap();
    *req.uri_mut() = format!("{}&force=true", req.uri()).parse().unwrap();
    let st = api_err(c.client().await.request::<ConfigMap>(req).await);
    assert_eq!(st.code, 422, "{st:?}");
    assert_eq!(
        st.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    assert_eq!(val(&cms.get("frc").await.unwrap())["data"]["a"], "1");
}

// Server-side apply checks the name of the object the apply produces: an applied configuration
// without metadata.name updates the stored object of the URL's name (Lease managers apply so),
// while for a missing object it produces one without a name, refused with a 400 (the name is
// "undeterminable").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_a_name_updates_the_object_of_the_url_and_creates_nothing() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let pp = PatchParams::apply("nameless");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"b": "1"}});
    let st = api_err(api.patch("missing", &pp, &Patch::Apply(&body)).await);
    assert_eq!(st.code, 400, "{st:?}");
    assert_eq!(
        st.message,
        "the name of the object (missing based on URL) was undeterminable: name must be provided"
    );
    assert!(api.get_opt("missing").await.unwrap().is_none());

    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "present"}, "data": {"a": "0"}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let applied = api
        .patch("present", &pp, &Patch::Apply(&body))
        .await
        .expect("apply without a name to an existing object");
    assert_eq!(applied.metadata.name.as_deref(), Some("present"));
    let data = applied.data.unwrap();
    assert_eq!((data["a"].as_str(), data["b"].as_str()), ("0", "1"));
}

// An apply racing a create of the same object never fails with AlreadyExists: the server's
// create-on-update retries against the object that won (found by the operator benchmark: the
// operator creates a partner's template while the platform admin applies it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_racing_a_create_applies_to_the_winner() {
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let mut tasks = Vec::new();
    for i in 0..400 {
        let name = format!("race-{i}");
        let (a, b) = (cms.clone(), cms.clone());
        let n2 = name.clone();
        tasks.push(tokio::spawn(async move {
            let created = tokio::spawn(async move {
                a.create(
                    &Default::default(),
                    &serde_json::from_value(cm_body(&n2, json!({"c": "1"}))).unwrap(),
                )
                .await
            });
            let applied = apply_cm(&b, &name, "racer", json!({"a": "1"}), true).await;
            (name, created.await.unwrap(), applied)
        }));
    }
    let mut both = 0;
    for t in tasks {
        let (name, created, applied) = t.await.unwrap();
        let applied = applied.unwrap_or_else(|e| panic!("apply of {name}: {e}"));
        let data = applied.data.unwrap_or_default();
        assert_eq!(data.get("a").map(String::as_str), Some("1"), "{name}");
        match created {
            // The create came first: the apply merged into it.
            Ok(_) if data.contains_key("c") => both += 1,
            Ok(_) => panic!("{name}: created, yet the apply's result lacks its data"),
            // The apply came first: the create is the one refused.
            Err(kube::Error::Api(s)) => assert_eq!(s.reason, "AlreadyExists", "{name}"),
            Err(e) => panic!("create of {name}: {e}"),
        }
    }
    eprintln!("{both} of 400 applies landed on a created object");
}
