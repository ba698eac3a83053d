//! CustomResourceDefinitions, as the Kubernetes docs describe them: "Extend the Kubernetes API
//! with CustomResourceDefinitions" (scope, names, printer columns, subresources, structural
//! schemas, defaulting, pruning, field validation, versions, deletion) and "Validation rules" (CEL).
mod common;
use common::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, Status};
use serde_json::{Value, json};

/// A CRD this test installed; deleted again on a real cluster.
struct Crd {
    name: String,
    group: String,
    plural: String,
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

impl Crd {
    fn api(&self, c: &Cluster, client: kube::Client) -> Api<DynamicObject> {
        Api::namespaced_with(client, &c.ns, &self.ar)
    }
    fn obj(&self, name: &str, spec: Value) -> Value {
        json!({"apiVersion": self.ar.api_version, "kind": self.ar.kind, "metadata": {"name": name}, "spec": spec})
    }
    /// `plural.group` as kubectl takes it.
    fn resource(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// A `Widget` CRD (group unique to this test) with the given spec schema; `edit` may change anything before it is created.
fn crd_json(c: &Cluster, tag: &str, scope: &str, spec_schema: Value) -> Value {
    let group = format!("{tag}{}.example.com", c.suffix);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": spec_schema,
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"},
                        "conditions": {"type": "array", "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}}}}}}}]}})
}

fn simple_spec() -> Value {
    json!({"type": "object", "properties": {"color": {"type": "string", "description": "The color of the widget, as a CSS name."}, "replicas": {"type": "integer"}}})
}

/// Create the CRD, wait until it is Established and its resource is served.
async fn install(c: &Cluster, crd: Value) -> Crd {
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    let group = crd["spec"]["group"].as_str().unwrap().to_string();
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap().to_string();
    let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["storage"] == true)
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let out = c
        .kubectl_stdin(&["create", "-f", "-"], &crd.to_string())
        .await;
    assert!(out.ok(), "creating the CRD failed: {}", out.stderr);
    let guard = Crd {
        name: name.clone(),
        group: group.clone(),
        plural: plural.clone(),
        ar: ApiResource {
            group: group.clone(),
            version: version.clone(),
            api_version: format!("{group}/{version}"),
            kind,
            plural,
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
    let api: Api<DynamicObject> = Api::all_with(c.client().await, &guard.ar);
    c.eventually(30, "the custom resource to be served", || {
        let api = api.clone();
        async move { api.list(&Default::default()).await.ok() }
    })
    .await;
    guard
}

/// `kubectl create -f -` of a manifest in the test namespace, with extra flags.
async fn kcreate(c: &Cluster, flags: &[&str], manifest: &Value) -> Out {
    let mut args = vec!["create", "-n", &c.ns, "-f", "-"];
    args.extend_from_slice(flags);
    c.kubectl_stdin(&args, &manifest.to_string()).await
}

// CRD docs "Create a CustomResourceDefinition": the CRD becomes Established and its namespaced resource is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_becomes_established_and_serves_a_namespaced_resource() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "est", "Namespaced", simple_spec())).await;
    let got = json(&c.kubectl_ok(&["get", "crd", &crd.name, "-o", "json"]).await);
    let conds = got["status"]["conditions"].as_array().unwrap();
    for t in ["NamesAccepted", "Established"] {
        assert!(
            conds
                .iter()
                .any(|x| x["type"] == t && x["status"] == "True"),
            "{t} missing: {got}"
        );
    }
    assert_eq!(got["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(got["status"]["storedVersions"], json!(["v1"]));

    let out = kcreate(&c, &[], &crd.obj("w1", json!({"color": "red"}))).await;
    assert!(out.ok(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("widget.{}/w1 created", crd.group)),
        "{}",
        out.stdout
    );
    let w = json(
        &c.kubectl_ok(&["get", &crd.resource(), "w1", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(w["metadata"]["namespace"], c.ns.as_str());
    assert_eq!(w["spec"]["color"], "red");
    assert!(w["metadata"]["uid"].is_string() && w["metadata"]["creationTimestamp"].is_string());
    // Served at namespace scope: it is not in another namespace, and listing across namespaces finds it.
    let all = json(
        &c.kubectl_ok(&["get", &crd.resource(), "-A", "-o", "json"])
            .await,
    );
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == "w1")
    );
    let other: Api<DynamicObject> = Api::namespaced_with(c.client().await, "default", &crd.ar);
    assert_eq!(api_err(other.get("w1").await).code, 404);
}

// CRD docs "scope": a cluster-scoped custom resource has no namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_crd_serves_objects_without_a_namespace() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "cs", "Cluster", simple_spec())).await;
    let api: Api<DynamicObject> = Api::all_with(c.client().await, &crd.ar);
    let name = c.name("cw");
    let obj: DynamicObject =
        serde_json::from_value(crd.obj(&name, json!({"color": "blue"}))).unwrap();
    let created = val(&api.create(&PostParams::default(), &obj).await.unwrap());
    assert!(created["metadata"].get("namespace").is_none(), "{created}");
    let out = c
        .kubectl_ok(&["get", &crd.resource(), &name, "-o", "json"])
        .await;
    assert_eq!(json(&out)["spec"]["color"], "blue");
    let listed = c.kubectl_ok(&["get", &crd.resource()]).await;
    assert!(
        listed.lines().next().unwrap().starts_with("NAME"),
        "{listed}"
    );
    assert!(!listed.contains("NAMESPACE"), "{listed}");
    assert!(listed.contains(&name), "{listed}");
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

// CRD docs "names": shortNames and categories work in kubectl get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_names_and_categories_work_in_kubectl_get() {
    let c = Cluster::start().await;
    let mut m = crd_json(&c, "sn", "Namespaced", simple_spec());
    let short = format!("fw{}", c.suffix);
    let category = format!("fcat{}", c.suffix);
    m["spec"]["names"]["shortNames"] = json!([short]);
    m["spec"]["names"]["categories"] = json!([category]);
    let crd = install(&c, m).await;
    assert!(kcreate(&c, &[], &crd.obj("sw", json!({}))).await.ok());
    let by_short = c
        .kubectl_ok(&["get", &short, "-n", &c.ns, "-o", "name"])
        .await;
    assert_eq!(by_short.trim(), format!("widget.{}/sw", crd.group));
    let by_cat = c
        .kubectl_ok(&["get", &category, "-n", &c.ns, "-o", "name"])
        .await;
    assert_eq!(by_cat.trim(), format!("widget.{}/sw", crd.group));
    let got = json(&c.kubectl_ok(&["get", "crd", &crd.name, "-o", "json"]).await);
    assert_eq!(got["status"]["acceptedNames"]["shortNames"], json!([short]));
    assert_eq!(
        got["status"]["acceptedNames"]["categories"],
        json!([category])
    );
}

// CRD docs "Additional printer columns": columns (with a JSONPath filter and a date column) render in kubectl get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn additional_printer_columns_render_in_kubectl_get() {
    let c = Cluster::start().await;
    let mut m = crd_json(&c, "pc", "Namespaced", simple_spec());
    m["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
    let crd = install(&c, m).await;
    let api = crd.api(&c, c.client().await);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(crd.obj("pw", json!({"color": "teal", "replicas": 3}))).unwrap(),
    )
    .await
    .unwrap();
    let status = json!({"status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
    api.patch_status("pw", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    let out = c.kubectl_ok(&["get", &crd.resource(), "-n", &c.ns]).await;
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "COLOR", "REPLICAS", "READY", "AGE"],
        "{out}"
    );
    assert_eq!(&lines[1][..4], ["pw", "teal", "3", "True"], "{out}");
    let age = lines[1][4];
    assert!(
        age.ends_with('s') || age.ends_with('m'),
        "AGE should be a duration: {out}"
    );
    // A column whose JSONPath finds nothing prints empty.
    api.create(
        &PostParams::default(),
        &serde_json::from_value(crd.obj("pw2", json!({}))).unwrap(),
    )
    .await
    .unwrap();
    let out = c
        .kubectl_ok(&["get", &crd.resource(), "pw2", "-n", &c.ns, "--no-headers"])
        .await;
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(cols.len(), 2, "unset columns print empty: {out}");
    assert_eq!(cols[0], "pw2");
}

// CRD docs "Publish Validation Schema in OpenAPI": kubectl explain shows the schema's descriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_shows_the_schema_description() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "ex", "Namespaced", simple_spec())).await;
    let field = format!("{}.spec.color", crd.resource());
    let out = c
        .eventually(60, "kubectl explain to know the new resource", || async {
            let o = c.kubectl(&["explain", &field]).await;
            if o.ok() {
                return Some(o.stdout);
            }
            // kubectl picks the group of `widgets.<group>` from its discovery cache (--cache-dir),
            // written before this CRD existed; while another group serves `widgets` (other tests
            // on a shared cluster) that cache is not refreshed by itself. `kubectl api-resources`
            // refreshes it. (A real server also publishes the new OpenAPI a moment later.)
            c.kubectl(&["api-resources"]).await;
            None
        })
        .await;
    assert!(out.contains("KIND:") && out.contains("Widget"), "{out}");
    assert!(
        out.contains("FIELD:") && out.contains("color") && out.contains("<string>"),
        "{out}"
    );
    assert!(
        out.contains("The color of the widget, as a CSS name."),
        "{out}"
    );
}

// CRD docs "Status subresource": status is ignored on main-resource writes and everything but status on /status writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_splits_spec_and_status_writes() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "sub", "Namespaced", simple_spec())).await;
    let api = crd.api(&c, c.client().await);
    let mut obj = crd.obj("s", json!({"color": "red"}));
    obj["status"] = json!({"phase": "Created"});
    let created = val(&api
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap());
    assert!(
        created
            .get("status")
            .is_none_or(|s| s.get("phase").is_none()),
        "status set on create: {created}"
    );

    let got = val(&api
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "blue"}, "status": {"phase": "Ready"}})),
        )
        .await
        .unwrap());
    assert_eq!(got["status"]["phase"], "Ready");
    assert_eq!(got["spec"]["color"], "red", "/status must not change spec");

    let mut cur = api.get("s").await.unwrap();
    cur.data["spec"]["color"] = json!("green");
    cur.data["status"]["phase"] = json!("Hacked");
    let got = val(&api
        .replace("s", &PostParams::default(), &cur)
        .await
        .unwrap());
    assert_eq!(got["spec"]["color"], "green");
    assert_eq!(
        got["status"]["phase"], "Ready",
        "a main-resource PUT must not change status"
    );
}

// CRD docs "Status subresource": metadata.generation increments on spec changes only, not on status or metadata changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_increments_only_on_spec_changes() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "gen", "Namespaced", simple_spec())).await;
    let api = crd.api(&c, c.client().await);
    let g = |v: &DynamicObject| v.metadata.generation.unwrap();
    let o = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(crd.obj("g", json!({"color": "red"}))).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(g(&o), 1);
    let o = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(g(&o), 2);
    let o = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(g(&o), 2, "a metadata change keeps the generation");
    let o = api
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(g(&o), 2, "a status change keeps the generation");
    let o = api
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(g(&o), 2, "a no-op spec write keeps the generation");
}

// API concepts: a PUT body's uid is a precondition, checked by storage; for a custom resource
// the storage key holds the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_with_another_uid_names_the_custom_resource_storage_key() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "uid", "Namespaced", simple_spec())).await;
    let api = crd.api(&c, c.client().await);
    let mut o = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(crd.obj("u", json!({"color": "red"}))).unwrap(),
        )
        .await
        .unwrap();
    let uid = o.metadata.uid.clone().unwrap();
    o.metadata.uid = Some("11111111-2222-3333-4444-555555555555".into());
    let st = api_err(api.replace("u", &PostParams::default(), &o).await);
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"), "{st:?}");
    assert_eq!(
        st.message,
        format!(
            "Operation cannot be fulfilled on widgets.{g} \"u\": StorageError: invalid object, Code: 4, Key: /registry/{g}/widgets/{ns}/u, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: 11111111-2222-3333-4444-555555555555, UID in object meta: {uid}",
            g = crd.group,
            ns = c.ns
        )
    );
}

// CRD docs "Defaulting": defaults (nested ones too) are applied on create and on update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_apply_on_create_and_on_update() {
    let c = Cluster::start().await;
    let spec = json!({"type": "object", "properties": {
        "replicas": {"type": "integer", "default": 1},
        "config": {"type": "object", "default": {}, "properties": {
            "mode": {"type": "string", "default": "fast"},
            "level": {"type": "integer", "default": 3}}}}});
    let crd = install(&c, crd_json(&c, "def", "Namespaced", spec)).await;
    let api = crd.api(&c, c.client().await);
    let o = val(&api
        .create(
            &PostParams::default(),
            &serde_json::from_value(crd.obj("d", json!({}))).unwrap(),
        )
        .await
        .unwrap());
    assert_eq!(
        o["spec"],
        json!({"replicas": 1, "config": {"mode": "fast", "level": 3}})
    );
    let o = val(&api
        .create(
            &PostParams::default(),
            &serde_json::from_value(crd.obj("d2", json!({"config": {"mode": "slow"}}))).unwrap(),
        )
        .await
        .unwrap());
    assert_eq!(
        o["spec"],
        json!({"replicas": 1, "config": {"mode": "slow", "level": 3}})
    );
    // On update: removing a defaulted field brings the default back.
    let o = val(&api
        .patch(
            "d2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": {"mode": null}, "replicas": null}})),
        )
        .await
        .unwrap());
    assert_eq!(
        o["spec"],
        json!({"replicas": 1, "config": {"mode": "fast", "level": 3}})
    );
    let o = val(&api.get("d2").await.unwrap());
    assert_eq!(o["spec"]["config"]["mode"], "fast");
}

fn pruning_spec() -> Value {
    json!({"type": "object", "properties": {
        "color": {"type": "string"},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
}

// API concepts "Field validation" + CRD docs "Pruning": Strict refuses unknown fields with 400 `strict decoding error`
// (server-side apply refuses them in any case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_with_strict_validation_are_refused() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "prs", "Namespaced", pruning_spec())).await;
    let out = kcreate(
        &c,
        &["--validate=strict"],
        &crd.obj("p", json!({"color": "red", "x": 1})),
    )
    .await;
    assert!(!out.ok());
    assert!(out.stderr.contains("BadRequest"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("strict decoding error: unknown field \"spec.x\""),
        "{}",
        out.stderr
    );
    assert_eq!(
        api_err(crd.api(&c, c.client().await).get("p").await).code,
        404
    );
    // Server-side apply first converts the applied object to the schema's structured-merge-diff
    // type: an undeclared field fails that conversion, a 500 without a reason, whatever the
    // fieldValidation.
    let api = crd.api(&c, c.client().await);
    for pp in [
        PatchParams::apply("m").validation_strict(),
        PatchParams::apply("m"),
    ] {
        let st = api_err(
            api.patch("p", &pp, &Patch::Apply(&crd.obj("p", json!({"x": 1}))))
                .await,
        );
        assert_eq!((st.code, st.reason.as_str()), (500, ""), "{st:?}");
        assert_eq!(
            st.message,
            format!(
                "failed to create typed patch object (/p; {}/v1, Kind=Widget): .spec.x: field not declared in schema",
                crd.group
            )
        );
    }
    assert_eq!(api_err(api.get("p").await).code, 404);
}

// API concepts "Field validation" Warn + CRD docs "Pruning": a Warning header, and the object is stored without the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_with_warn_validation_are_pruned_with_a_warning() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "prw", "Namespaced", pruning_spec())).await;
    let out = kcreate(
        &c,
        &["--validate=warn"],
        &crd.obj("p", json!({"color": "red", "x": 1})),
    )
    .await;
    assert!(out.ok(), "{}", out.stderr);
    assert!(
        out.stderr.contains("Warning: unknown field \"spec.x\""),
        "{}",
        out.stderr
    );
    let got = json(
        &c.kubectl_ok(&["get", &crd.resource(), "p", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(got["spec"], json!({"color": "red"}));
}

// API concepts "Field validation" Ignore + CRD docs "Pruning": unknown fields are silently dropped; preserve-unknown-fields keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_with_ignore_are_pruned_silently_and_preserve_unknown_fields_keeps_them() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "pri", "Namespaced", pruning_spec())).await;
    let out = kcreate(
        &c,
        &["--validate=false"],
        &crd.obj(
            "p",
            json!({"color": "red", "x": 1, "extra": {"any": {"thing": [1, 2]}}}),
        ),
    )
    .await;
    assert!(out.ok(), "{}", out.stderr);
    assert!(!out.stderr.contains("Warning"), "{}", out.stderr);
    let got = json(
        &c.kubectl_ok(&["get", &crd.resource(), "p", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(
        got["spec"],
        json!({"color": "red", "extra": {"any": {"thing": [1, 2]}}})
    );
    // Strict does not complain about fields under x-kubernetes-preserve-unknown-fields.
    let out = kcreate(
        &c,
        &["--validate=strict"],
        &crd.obj("p2", json!({"extra": {"free": "form"}})),
    )
    .await;
    assert!(out.ok(), "{}", out.stderr);
}

fn validated_spec() -> Value {
    json!({"type": "object", "required": ["color"], "properties": {
        "color": {"type": "string", "enum": ["red", "green", "blue"]},
        "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 5},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
        "host": {"type": "string", "format": "ipv4"},
        "items": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}}}})
}

/// Create `spec` and expect a 422 whose message contains each of `wants`.
async fn expect_invalid(
    api: &Api<DynamicObject>,
    crd: &Crd,
    spec: Value,
    wants: &[&str],
) -> Status {
    let obj: DynamicObject = serde_json::from_value(crd.obj("v", spec.clone())).unwrap();
    let st = api_err(api.create(&PostParams::default(), &obj).await);
    assert_eq!(st.code, 422, "{spec}: {st:?}");
    assert_eq!(st.reason, "Invalid", "{spec}: {st:?}");
    assert!(
        st.message
            .starts_with(&format!("Widget.{} \"v\" is invalid: ", crd.group)),
        "{}",
        st.message
    );
    for w in wants {
        assert!(
            st.message.contains(w),
            "{spec}: want {w:?} in {}",
            st.message
        );
    }
    st
}

// CRD docs "Validation": OpenAPI schema violations are 422s whose messages name the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_validation_errors_name_the_field() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "val", "Namespaced", validated_spec())).await;
    let api = crd.api(&c, c.client().await);
    expect_invalid(&api, &crd, json!({"color": "red", "replicas": "three"}), &["spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""]).await;
    expect_invalid(&api, &crd, json!({}), &["spec.color: Required value"]).await;
    expect_invalid(
        &api,
        &crd,
        json!({"color": "x"}),
        &["spec.color: Unsupported value: \"x\": supported values: \"red\", \"green\", \"blue\""],
    )
    .await;
    expect_invalid(
        &api,
        &crd,
        json!({"color": "red", "name": "AB"}),
        &["spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"],
    )
    .await;
    expect_invalid(&api, &crd, json!({"color": "red", "host": "300.1.1.1"}), &["spec.host: Invalid value: \"300.1.1.1\": spec.host in body must be of type ipv4: \"300.1.1.1\""]).await;
    expect_invalid(&api, &crd, json!({"color": "red", "replicas": 0}), &["spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"]).await;
    expect_invalid(&api, &crd, json!({"color": "red", "replicas": 11}), &["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"]).await;
    expect_invalid(
        &api,
        &crd,
        json!({"color": "red", "name": "a"}),
        &["spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"],
    )
    .await;
    expect_invalid(
        &api,
        &crd,
        json!({"color": "red", "name": "abcdef"}),
        &["spec.name: Too long: may not be more than 5 bytes"],
    )
    .await;
    expect_invalid(
        &api,
        &crd,
        json!({"color": "red", "items": []}),
        &["spec.items: Invalid value: 0: spec.items in body should have at least 1 items"],
    )
    .await;
    expect_invalid(
        &api,
        &crd,
        json!({"color": "red", "items": [1, 2, 3]}),
        &["spec.items: Too many: 3: must have at most 2 items"],
    )
    .await;
    expect_invalid(&api, &crd, json!({"color": "red", "items": ["one"]}), &["spec.items[0]: Invalid value: \"string\": spec.items[0] in body must be of type integer: \"string\""]).await;
    // A valid object is accepted.
    api.create(
        &PostParams::default(),
        &serde_json::from_value(crd.obj(
            "ok",
            json!({"color": "red", "name": "ab", "replicas": 10, "host": "10.0.0.1", "items": [1]}),
        ))
        .unwrap(),
    )
    .await
    .unwrap();
}

// CRD docs "Validation": all schema errors come back together in one response, one cause each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_validation_errors_come_back_in_one_response() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "mul", "Namespaced", validated_spec())).await;
    let api = crd.api(&c, c.client().await);
    let st = expect_invalid(
        &api,
        &crd,
        json!({"color": "red", "replicas": 0, "name": "A1"}),
        &[
            "spec.replicas: Invalid value: 0",
            "spec.name: Invalid value: \"A1\"",
        ],
    )
    .await;
    let details = st.details.expect("details");
    let fields: Vec<&str> = details.causes.iter().map(|c| c.field.as_str()).collect();
    assert!(
        fields.contains(&"spec.replicas") && fields.contains(&"spec.name"),
        "{fields:?}"
    );
    assert_eq!(details.kind, "Widget");
    assert_eq!(details.group, crd.group);
    // kubectl prints them all.
    let out = kcreate(&c, &[], &crd.obj("k", json!({"replicas": 0, "name": "A1"}))).await;
    assert!(!out.ok());
    assert!(
        out.stderr.contains("spec.color: Required value")
            && out.stderr.contains("spec.replicas")
            && out.stderr.contains("spec.name"),
        "{}",
        out.stderr
    );
}

fn cel_spec() -> Value {
    json!({"type": "object",
        "properties": {
            "minReplicas": {"type": "integer"},
            "maxReplicas": {"type": "integer"},
            "name": {"type": "string", "maxLength": 63},
            "mode": {"type": "string", "maxLength": 63, "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "mode is immutable"}]}},
        "x-kubernetes-validations": [
            {"rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
            // Not `'...' + string(self.maxReplicas) + '...'`: string() of an int has no size bound,
            // so a real server estimates that concatenation far over the CEL cost budget and
            // refuses the CRD; format() costs only its (bounded) format string.
            {"rule": "!has(self.maxReplicas) || self.maxReplicas <= 10", "messageExpression": "'maxReplicas %d is too many'.format([self.maxReplicas])"},
            {"rule": "!has(self.name) || self.name.startsWith('w')", "message": "name must start with w", "fieldPath": ".name", "reason": "FieldValueForbidden"}]})
}

// Validation rules docs: x-kubernetes-validations with message, messageExpression, and fieldPath + reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_rules_report_message_message_expression_field_path_and_reason() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "cel", "Namespaced", cel_spec())).await;
    let api = crd.api(&c, c.client().await);
    expect_invalid(
        &api,
        &crd,
        json!({"minReplicas": 5, "maxReplicas": 2}),
        &["spec: Invalid value: minReplicas must not exceed maxReplicas"],
    )
    .await;
    expect_invalid(
        &api,
        &crd,
        json!({"maxReplicas": 11}),
        &["spec: Invalid value: maxReplicas 11 is too many"],
    )
    .await;
    let st = expect_invalid(
        &api,
        &crd,
        json!({"name": "gadget"}),
        &["spec.name: Forbidden: name must start with w"],
    )
    .await;
    let cause = &st.details.expect("details").causes[0];
    assert_eq!(cause.reason, "FieldValueForbidden");
    assert_eq!(cause.field, "spec.name");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(crd.obj(
            "fine",
            json!({"minReplicas": 1, "maxReplicas": 10, "name": "widget"}),
        ))
        .unwrap(),
    )
    .await
    .unwrap();
}

// Validation rules docs "Transition rules": `self == oldSelf` makes a field immutable — refused on update, not on create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transition_rule_makes_a_field_immutable() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "tr", "Namespaced", cel_spec())).await;
    let api = crd.api(&c, c.client().await);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(crd.obj("t", json!({"mode": "a"}))).unwrap(),
    )
    .await
    .unwrap();
    let st = api_err(
        api.patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": "b"}})),
        )
        .await,
    );
    assert_eq!(st.code, 422, "{st:?}");
    assert!(
        st.message
            .contains("spec.mode: Invalid value: \"b\": mode is immutable"),
        "{}",
        st.message
    );
    assert_eq!(val(&api.get("t").await.unwrap())["spec"]["mode"], "a");
    // Writing the same value again is fine.
    api.patch(
        "t",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"mode": "a", "name": "w"}})),
    )
    .await
    .unwrap();
}

// Validation rules docs: a rule that does not compile makes the CRD itself invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_does_not_compile_makes_the_crd_invalid() {
    let c = Cluster::start().await;
    let spec = json!({"type": "object", "properties": {"a": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.a >"}]});
    let m = crd_json(&c, "bad", "Namespaced", spec);
    let group = m["spec"]["group"].as_str().unwrap().to_string();
    let _cleanup = Crd {
        name: m["metadata"]["name"].as_str().unwrap().into(),
        group: group.clone(),
        plural: "widgets".into(),
        ar: ApiResource {
            group: group.clone(),
            version: "v1".into(),
            api_version: format!("{group}/v1"),
            kind: "Widget".into(),
            plural: "widgets".into(),
        },
        real: real(),
    };
    let crds: Api<CustomResourceDefinition> = Api::all(c.client().await);
    let st = api_err(
        crds.create(
            &PostParams::default(),
            &serde_json::from_value(m.clone()).unwrap(),
        )
        .await,
    );
    assert_eq!(st.code, 422, "{st:?}");
    assert_eq!(st.reason, "Invalid", "{st:?}");
    let out = c
        .kubectl_stdin(&["create", "-f", "-"], &m.to_string())
        .await;
    assert!(!out.ok(), "a CRD with an uncompilable rule was accepted");
    assert!(out.stderr.contains("Invalid"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "The CustomResourceDefinition \"{}\" is invalid",
            m["metadata"]["name"].as_str().unwrap()
        )),
        "{}",
        out.stderr
    );
    // The schema is the same in every version, so it is validated (and named) as the top-level
    // `spec.validation`; the bad value is the rule as the server's internal Go struct.
    assert!(out.stderr.contains(r#"spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {"Rule":"self.a \u003e","Message":"","MessageExpression":"","Reason":null,"FieldPath":"","OptionalOldSelf":null}: compilation failed: ERROR: <input>:1:9: Syntax error: mismatched input '<EOF>'"#), "{}", out.stderr);
    assert!(
        !c.kubectl(&["get", "crd", m["metadata"]["name"].as_str().unwrap()])
            .await
            .ok()
    );
}

// CRD docs "Delete a CustomResourceDefinition": its objects are deleted and the resource is no longer served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_crd_deletes_its_objects_and_stops_serving() {
    let c = Cluster::start().await;
    let crd = install(&c, crd_json(&c, "del", "Namespaced", simple_spec())).await;
    let api = crd.api(&c, c.client().await);
    for n in ["d1", "d2"] {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(crd.obj(n, json!({}))).unwrap(),
        )
        .await
        .unwrap();
    }
    assert!(
        c.kubectl_ok(&["get", &crd.resource(), "-n", &c.ns])
            .await
            .contains("d1")
    );
    c.kubectl_ok(&["delete", "crd", &crd.name, "--timeout=60s"])
        .await;
    c.eventually(60, "the custom resource to stop being served", || {
        let api = api.clone();
        async move {
            match api.get("d1").await {
                Err(kube::Error::Api(s)) if s.code == 404 => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(api_err(api.list(&Default::default()).await).code, 404);
    let err = c.kubectl_err(&["get", &crd.resource(), "-n", &c.ns]).await;
    assert!(
        err.contains("the server doesn't have a resource type \"widgets\""),
        "{err}"
    );
    assert!(!c.kubectl(&["get", "crd", &crd.name]).await.ok());
}

// CRD docs "Versions in CustomResourceDefinitions": with conversion None an object created via v1 reads back via v1beta1 with that apiVersion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_version_crd_serves_objects_at_each_version() {
    let c = Cluster::start().await;
    let mut m = crd_json(&c, "mv", "Namespaced", simple_spec());
    let mut beta = m["spec"]["versions"][0].clone();
    beta["name"] = json!("v1beta1");
    beta["storage"] = json!(false);
    m["spec"]["versions"].as_array_mut().unwrap().push(beta);
    m["spec"]["conversion"] = json!({"strategy": "None"});
    let crd = install(&c, m).await;
    let api = crd.api(&c, c.client().await);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(crd.obj("mv", json!({"color": "red"}))).unwrap(),
    )
    .await
    .unwrap();
    let beta_ar = ApiResource {
        version: "v1beta1".into(),
        api_version: format!("{}/v1beta1", crd.group),
        ..crd.ar.clone()
    };
    let beta_api: Api<DynamicObject> = Api::namespaced_with(c.client().await, &c.ns, &beta_ar);
    let got = val(&beta_api.get("mv").await.unwrap());
    assert_eq!(got["apiVersion"], format!("{}/v1beta1", crd.group));
    assert_eq!(got["spec"]["color"], "red");
    let listed = val(&beta_api.list(&Default::default()).await.unwrap());
    assert_eq!(
        listed["items"][0]["apiVersion"],
        format!("{}/v1beta1", crd.group)
    );
    let out = json(
        &c.kubectl_ok(&[
            "get",
            &format!("widgets.v1beta1.{}", crd.group),
            "mv",
            "-n",
            &c.ns,
            "-o",
            "json",
        ])
        .await,
    );
    assert_eq!(out["apiVersion"], format!("{}/v1beta1", crd.group));
    // The preferred (storage) version is what plain kubectl get serves.
    let out = json(
        &c.kubectl_ok(&["get", &crd.resource(), "mv", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(out["apiVersion"], format!("{}/v1", crd.group));
    // Writes through v1beta1 land in the same object.
    beta_api
        .patch(
            "mv",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(val(&api.get("mv").await.unwrap())["spec"]["color"], "blue");
    // managedFields record the version each manager wrote through.
    let applied = json!({"apiVersion": format!("{}/v1beta1", crd.group), "kind": "Widget", "metadata": {"name": "mv"}, "spec": {"replicas": 2}});
    let got = val(&beta_api
        .patch(
            "mv",
            &PatchParams::apply("beta-mgr"),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap());
    assert_eq!(got["apiVersion"], format!("{}/v1beta1", crd.group));
    let e = got["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "beta-mgr")
        .cloned()
        .unwrap_or_default();
    assert_eq!(e["apiVersion"], format!("{}/v1beta1", crd.group), "{got}");
    assert_eq!(
        val(&api.get("mv").await.unwrap())["spec"],
        json!({"color": "blue", "replicas": 2})
    );
}

// A rule's `fieldPath` must name something the schema declares (apiextensions
// `ValidFieldPath`): `.metadata.name` at the root only when the schema declares
// `metadata.name` (which a root schema may, to restrict the name), `.spec.x` only for a
// declared property, `['key']` under a map. Otherwise the CRD is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_field_path_must_be_declared_in_the_schema() {
    let c = Cluster::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.client().await);
    let with_rules = |tag: &str, declare_metadata: bool, root_path: &str, spec_path: &str| {
        let spec = json!({"type": "object", "properties": {
                "a": {"type": "integer"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}},
            "x-kubernetes-validations": [{"rule": "true", "fieldPath": spec_path}]});
        let mut m = crd_json(&c, tag, "Namespaced", spec);
        let root = &mut m["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        root["x-kubernetes-validations"] = json!([{"rule": "self.metadata.name.size() <= 20", "message": "short names", "fieldPath": root_path}]);
        if declare_metadata {
            root["properties"]["metadata"] =
                json!({"type": "object", "properties": {"name": {"type": "string"}}});
        }
        m
    };
    let cleanup = |m: &Value| {
        let group = m["spec"]["group"].as_str().unwrap().to_string();
        Crd {
            name: m["metadata"]["name"].as_str().unwrap().into(),
            group: group.clone(),
            plural: "widgets".into(),
            ar: ApiResource {
                group: group.clone(),
                version: "v1".into(),
                api_version: format!("{group}/v1"),
                kind: "Widget".into(),
                plural: "widgets".into(),
            },
            real: real(),
        }
    };

    for (tag, declare, root_path, spec_path, bad) in [
        (
            "fpmeta",
            false,
            ".metadata.name",
            ".a",
            Some(("x-kubernetes-validations[0].fieldPath", ".metadata.name")),
        ),
        (
            "fpspec",
            true,
            ".metadata.name",
            ".b",
            Some((
                "properties[spec].x-kubernetes-validations[0].fieldPath",
                ".b",
            )),
        ),
        (
            "fpidx",
            true,
            ".metadata.name",
            ".labels[0]",
            Some((
                "properties[spec].x-kubernetes-validations[0].fieldPath",
                ".labels[0]",
            )),
        ),
        ("fpok", true, ".metadata.name", ".labels['team']", None),
    ] {
        let m = with_rules(tag, declare, root_path, spec_path);
        let _cleanup = cleanup(&m);
        let r = crds
            .create(
                &PostParams::default(),
                &serde_json::from_value(m.clone()).unwrap(),
            )
            .await;
        match bad {
            Some((field, value)) => {
                let st = api_err(r);
                assert_eq!(st.code, 422, "{tag}: {st:?}");
                let want = format!(
                    "spec.validation.openAPIV3Schema.{field}: Invalid value: \"{value}\": must be a valid path"
                );
                assert!(
                    st.message.contains(&want),
                    "{tag}: want {want}\n in {}",
                    st.message
                );
            }
            None => {
                r.unwrap_or_else(|e| {
                    panic!("{tag}: a CRD with valid field paths was refused: {e}")
                });
            }
        }
    }
}
