//! Object semantics (metadata, errors as Status objects) and the kubectl commands that
//! read and write objects, per the Kubernetes "API Concepts" and kubectl reference docs.
mod common;
use common::*;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind, Status};
use serde_json::{Value, json};

// ---------------------------------------------------------------- helpers

fn cm(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
    )
    .unwrap()
}

/// The Status of a failed kube-rs call.
fn status<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Box<Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

/// Sorted names from `kubectl get -o name` output.
fn names(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .map(|l| l.trim().rsplit('/').next().unwrap().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The row (split on whitespace) whose first column (or second, with -A) is `name`.
fn row<'a>(table: &'a str, col: usize, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.get(col) == Some(&name))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{table}"))
}

async fn create_cms(c: &Cluster, specs: &[(&str, &[(&str, &str)])]) {
    for (name, labels) in specs {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let m = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": c.ns, "labels": labels}, "data": {"k": format!("v-{name}")}});
        let o = c
            .kubectl_stdin(&["create", "-f", "-"], &m.to_string())
            .await;
        assert!(o.ok(), "create {name}: {}", o.stderr);
    }
}

const CRD_KIND: &str = "Widget";

/// A namespaced CRD `widgets.<group>` with a status subresource; returns the group.
async fn widget_crd(c: &Cluster) -> String {
    let group = format!("f{}.example.com", c.suffix);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": CRD_KIND, "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
                }}}
            }]
        }
    });
    let o = c
        .kubectl_stdin(&["create", "-f", "-"], &crd.to_string())
        .await;
    assert!(o.ok(), "create CRD: {}", o.stderr);
    let crd_name = format!("widgets.{group}");
    c.eventually(30, "CRD established", || {
        let crd_name = crd_name.clone();
        let group = group.clone();
        async move {
            let o = c
                .kubectl(&[
                    "get",
                    "crd",
                    &crd_name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
                ])
                .await;
            if !(o.ok() && o.stdout.trim() == "True") {
                return None;
            }
            c.kubectl(&["get", &format!("widgets.{group}"), "-n", &c.ns])
                .await
                .ok()
                .then_some(())
        }
    })
    .await;
    group
}

async fn delete_crd(c: &Cluster, group: &str) {
    let _ = c
        .kubectl(&["delete", "crd", &format!("widgets.{group}"), "--wait=false"])
        .await;
}

// ---------------------------------------------------------------- 1. object metadata

// API concepts / object metadata: uid and creationTimestamp are set by the server; an update
// keeps the stored creationTimestamp and uid; a PUT's uid is a precondition (409 if it differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_and_creation_timestamp_are_set_by_the_server_and_immutable() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let mut sent = cm("meta", json!({"a": "1"}));
    sent.metadata.uid = Some("11111111-2222-3333-4444-555555555555".into());
    sent.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2001-01-01T00:00:00Z".parse().unwrap(),
    ));
    let created = api.create(&PostParams::default(), &sent).await.unwrap();
    let uid = created.metadata.uid.clone().expect("uid set");
    assert_ne!(
        uid, "11111111-2222-3333-4444-555555555555",
        "create must ignore a client uid"
    );
    assert_eq!(uid.len(), 36, "uid is a UUID: {uid}");
    let ts = created
        .metadata
        .creation_timestamp
        .clone()
        .expect("creationTimestamp set");
    assert_ne!(
        ts.0.to_string(),
        "2001-01-01T00:00:00Z",
        "create must ignore a client creationTimestamp"
    );

    // A PUT with another creationTimestamp keeps the server's.
    let mut upd = created.clone();
    upd.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2001-01-01T00:00:00Z".parse().unwrap(),
    ));
    upd.data = Some([("a".to_string(), "2".to_string())].into());
    let after = api
        .replace("meta", &PostParams::default(), &upd)
        .await
        .unwrap();
    assert_eq!(after.metadata.creation_timestamp, Some(ts.clone()));
    assert_eq!(after.metadata.uid.as_deref(), Some(uid.as_str()));
    // A PUT without uid keeps the server's.
    let mut upd = after.clone();
    upd.metadata.uid = None;
    let after = api
        .replace("meta", &PostParams::default(), &upd)
        .await
        .unwrap();
    assert_eq!(after.metadata.uid.as_deref(), Some(uid.as_str()));

    // A PUT with another uid is refused: the body's uid is a precondition on the stored object.
    let mut upd = after.clone();
    upd.metadata.uid = Some("11111111-2222-3333-4444-555555555555".into());
    let s = status(api.replace("meta", &PostParams::default(), &upd).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}");
    assert_eq!(
        s.message,
        format!(
            r#"Operation cannot be fulfilled on configmaps "meta": StorageError: invalid object, Code: 4, Key: /registry/configmaps/{}/meta, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: 11111111-2222-3333-4444-555555555555, UID in object meta: {uid}"#,
            c.ns
        )
    );
    let now = api.get("meta").await.unwrap();
    assert_eq!(now.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(now.metadata.creation_timestamp, Some(ts));

    // A DELETE's preconditions are checked before storage (rest.BeforeDelete), in other words
    // naming the kind.
    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("11111111-2222-3333-4444-555555555555".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let s = status(api.delete("meta", &wrong_uid).await.map(|_| ()));
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}");
    assert_eq!(
        s.message,
        format!(
            r#"Operation cannot be fulfilled on ConfigMap "meta": the UID in the precondition (11111111-2222-3333-4444-555555555555) does not match the UID in record ({uid}). The object might have been deleted and then recreated"#
        )
    );
    let stale_rv = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..DeleteParams::default()
    };
    let s = status(api.delete("meta", &stale_rv).await.map(|_| ()));
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}");
    let rv = now.metadata.resource_version.clone().unwrap();
    assert_eq!(
        s.message,
        format!(
            r#"Operation cannot be fulfilled on ConfigMap "meta": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record ({rv}). The object might have been modified"#
        )
    );
    assert!(api.get("meta").await.is_ok());
}

// API concepts / resource versions: one resourceVersion sequence across all kinds, growing
// with every write (etcd revision).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_version_is_global_and_increases_across_kinds() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &c.ns);
    let secrets: Api<Secret> = Api::namespaced(client, &c.ns);
    let a = cms
        .create(&PostParams::default(), &cm("rv-a", json!({})))
        .await
        .unwrap();
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "rv-s"}, "stringData": {"x": "y"}}))
            .unwrap();
    let s = secrets.create(&PostParams::default(), &s).await.unwrap();
    let b = cms
        .create(&PostParams::default(), &cm("rv-b", json!({})))
        .await
        .unwrap();
    let n = |o: &Option<String>| o.as_deref().unwrap().parse::<u64>().unwrap();
    let (ra, rs, rb) = (
        n(&a.metadata.resource_version),
        n(&s.metadata.resource_version),
        n(&b.metadata.resource_version),
    );
    assert!(
        ra < rs && rs < rb,
        "resourceVersions must increase across kinds: {ra} {rs} {rb}"
    );
    // An update moves the object to a newer version; list resourceVersion is at least as new.
    let mut a2 = a.clone();
    a2.data = Some([("k".to_string(), "v".to_string())].into());
    let a2 = cms
        .replace("rv-a", &PostParams::default(), &a2)
        .await
        .unwrap();
    assert!(n(&a2.metadata.resource_version) > rb);
    let list = cms.list(&ListParams::default()).await.unwrap();
    assert!(n(&list.metadata.resource_version) >= n(&a2.metadata.resource_version));
}

// API conventions / metadata.generation: set to 1 on create of a custom resource with a status
// subresource, bumped only by spec changes, not by metadata or /status writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_bumps_only_on_spec_changes_of_a_custom_resource() {
    let c = Cluster::start().await;
    let group = widget_crd(&c).await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", CRD_KIND),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(c.client().await, &c.ns, &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": CRD_KIND,
        "metadata": {"name": "w", "generation": 7}, "spec": {"size": 1}
    }))
    .unwrap();
    let w = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(w.metadata.generation, Some(1), "generation starts at 1");
    let pp = PatchParams::default();
    // Metadata change: no bump.
    let w = api
        .patch(
            "w",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}, "annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        w.metadata.generation,
        Some(1),
        "labels/annotations do not bump generation"
    );
    // Status change through /status: no bump.
    let w = api
        .patch_status(
            "w",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        w.metadata.generation,
        Some(1),
        "status does not bump generation"
    );
    assert_eq!(w.data["status"]["phase"], "Ready");
    // Status in a main-resource write is ignored and bumps nothing.
    let w = api
        .patch(
            "w",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Other"}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    assert_eq!(
        w.data["status"]["phase"], "Ready",
        "status subresource: main writes ignore status"
    );
    // Spec change: bump.
    let w = api
        .patch("w", &pp, &Patch::Merge(json!({"spec": {"size": 2}})))
        .await
        .unwrap();
    assert_eq!(
        w.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    // A client cannot set generation.
    let w = api
        .patch(
            "w",
            &pp,
            &Patch::Merge(json!({"metadata": {"generation": 40}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(2), "generation is server-owned");
    delete_crd(&c, &group).await;
}

// API conventions: kinds without spec (ConfigMap) carry no metadata.generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmaps_have_no_generation() {
    let c = Cluster::start().await;
    let o = c.kubectl_stdin(&["create", "-n", &c.ns, "-f", "-"], &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nogen"}, "data": {"a": "1"}}).to_string()).await;
    assert!(o.ok(), "{}", o.stderr);
    c.kubectl_ok(&[
        "patch",
        "cm",
        "nogen",
        "-n",
        &c.ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ])
    .await;
    let v = json(
        &c.kubectl_ok(&["get", "cm", "nogen", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"]["a"], "2");
    assert!(
        v["metadata"].get("generation").is_none(),
        "ConfigMap must not have generation: {}",
        v["metadata"]
    );
}

// API concepts / generated values: generateName yields `<prefix>` plus 5 random characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_appends_five_random_characters() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let mut o = cm("", json!({}));
        o.metadata.name = None;
        o.metadata.generate_name = Some("gen-".into());
        let made = api.create(&PostParams::default(), &o).await.unwrap();
        let name = made.metadata.name.unwrap();
        let tail = name
            .strip_prefix("gen-")
            .unwrap_or_else(|| panic!("{name} lacks the prefix"));
        assert_eq!(tail.len(), 5, "{name}");
        assert!(
            tail.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit()),
            "{name}"
        );
        assert_eq!(made.metadata.generate_name.as_deref(), Some("gen-"));
        seen.insert(name);
    }
    assert_eq!(seen.len(), 3, "generated names are distinct");
    // kubectl create -f with only generateName works too.
    let out = c
        .kubectl_stdin(
            &["create", "-n", &c.ns, "-f", "-", "-o", "name"],
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"kc-"}}"#,
        )
        .await;
    assert!(out.ok(), "{}", out.stderr);
    let n = out
        .stdout
        .trim()
        .strip_prefix("configmap/kc-")
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!(n.len(), 5);
}

// ---------------------------------------------------------------- 2. errors as Status

// API concepts / Status: GET of a missing object is 404 NotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_missing_object_is_404_not_found() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let s = status(api.get("x").await);
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (404, "NotFound", r#"configmaps "x" not found"#)
    );
    let d = s.details.expect("details");
    assert_eq!((d.name.as_str(), d.kind.as_str()), ("x", "configmaps"));
    let e = c.kubectl_err(&["get", "cm", "x", "-n", &c.ns]).await;
    assert!(
        e.contains(r#"Error from server (NotFound): configmaps "x" not found"#),
        "{e}"
    );
    let s = status(api.delete("x", &DeleteParams::default()).await);
    assert_eq!(s.code, 404);
}

// API concepts / Status: creating an existing name is 409 AlreadyExists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_existing_is_409_already_exists() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    api.create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap();
    let s = status(
        api.create(&PostParams::default(), &cm("x", json!({})))
            .await,
    );
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (409, "AlreadyExists", r#"configmaps "x" already exists"#)
    );
}

// API concepts / concurrency control: a PUT with a stale resourceVersion is 409 Conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_resource_version_put_is_409_conflict() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let first = api
        .create(&PostParams::default(), &cm("x", json!({"a": "1"})))
        .await
        .unwrap();
    let mut second = first.clone();
    second.data = Some([("a".to_string(), "2".to_string())].into());
    api.replace("x", &PostParams::default(), &second)
        .await
        .unwrap();
    let mut stale = first.clone();
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let s = status(api.replace("x", &PostParams::default(), &stale).await);
    assert_eq!(s.code, 409);
    assert_eq!(s.reason, "Conflict");
    assert_eq!(
        s.message,
        r#"Operation cannot be fulfilled on configmaps "x": the object has been modified; please apply your changes to the latest version and try again"#
    );
    assert_eq!(api.get("x").await.unwrap().data.unwrap()["a"], "2");
}

// Namespaces: creating an object in a namespace that does not exist is 404 for the namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_in_missing_namespace_is_404() {
    let c = Cluster::start().await;
    let ns = c.name("nope");
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &ns);
    let s = status(
        api.create(&PostParams::default(), &cm("x", json!({})))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, format!(r#"namespaces "{ns}" not found"#));
}

// Namespaces / finalizers: no new objects may be created in a Terminating namespace (403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_in_terminating_namespace_is_403_forbidden() {
    let c = Cluster::start().await;
    let ns = c.name("term");
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string(),
    )
    .await;
    let hold = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hold", "namespace": ns, "finalizers": ["example.com/hold"]}});
    let o = c
        .kubectl_stdin(&["create", "-f", "-"], &hold.to_string())
        .await;
    assert!(o.ok(), "{}", o.stderr);
    c.kubectl_ok(&["delete", "namespace", &ns, "--wait=false"])
        .await;
    let phase = c
        .kubectl_ok(&["get", "namespace", &ns, "-o", "jsonpath={.status.phase}"])
        .await;
    assert_eq!(phase, "Terminating");
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &ns);
    // A real server's admission sees the phase through an informer: allow it a moment.
    let mut attempt = 0;
    let (name, s) = c
        .eventually(30, "creation refused", || {
            attempt += 1;
            let name = format!("late-{attempt}");
            let api = api.clone();
            async move {
                match api
                    .create(&PostParams::default(), &cm(&name, json!({})))
                    .await
                {
                    Err(kube::Error::Api(s)) => Some((name, s)),
                    Err(e) => panic!("{e}"),
                    Ok(_) => None,
                }
            }
        })
        .await;
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"), "{s:?}");
    assert_eq!(
        s.message,
        format!(
            r#"configmaps "{name}" is forbidden: unable to create new content in namespace {ns} because it is being terminated"#
        )
    );
    // Release the hold so the namespace goes away.
    c.kubectl_ok(&[
        "patch",
        "cm",
        "hold",
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await;
    c.eventually(60, "namespace gone", || async {
        (!c.kubectl(&["get", "namespace", &ns]).await.ok()).then_some(())
    })
    .await;
}

// API conventions / validation: a name that is not a DNS subdomain is 422 Invalid with the field path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_name_is_422_invalid() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let s = status(
        api.create(&PostParams::default(), &cm("Bad_Name", json!({})))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
    assert!(
        s.message
            .starts_with(r#"ConfigMap "Bad_Name" is invalid: "#),
        "{}",
        s.message
    );
    assert!(
        s.message
            .contains(r#"metadata.name: Invalid value: "Bad_Name""#),
        "{}",
        s.message
    );
    let d = s.details.expect("details");
    assert_eq!(
        (d.name.as_str(), d.kind.as_str()),
        ("Bad_Name", "ConfigMap")
    );
    assert!(
        d.causes
            .iter()
            .any(|c| c.field == "metadata.name" && c.reason == "FieldValueInvalid"),
        "{:?}",
        d.causes
    );
}

// API concepts: a body whose metadata.namespace differs from the URL's is 400 BadRequest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_namespace_differing_from_url_is_400() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let mut o = cm("x", json!({}));
    o.metadata.namespace = Some("default".into());
    let s = status(api.create(&PostParams::default(), &o).await);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"), "{s:?}");
    assert_eq!(
        s.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
}

// ---------------------------------------------------------------- 3. kubectl get

// kubectl get: the default table for configmaps is NAME DATA AGE; -o wide adds nothing for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_default_and_wide_tables() {
    let c = Cluster::start().await;
    c.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t1", "namespace": c.ns}, "data": {"a": "1", "b": "2"}}).to_string()).await;
    let t = c.kubectl_ok(&["get", "cm", "t1", "-n", &c.ns]).await;
    assert_eq!(header(&t), ["NAME", "DATA", "AGE"]);
    let r = row(&t, 0, "t1");
    assert_eq!(r[1], "2");
    assert!(
        r[2].ends_with('s') || r[2].ends_with('m'),
        "AGE like 3s: {}",
        r[2]
    );
    let w = c
        .kubectl_ok(&["get", "cm", "t1", "-n", &c.ns, "-o", "wide"])
        .await;
    assert_eq!(header(&w), ["NAME", "DATA", "AGE"]);
    let none = c.kubectl(&["get", "leases", "-n", &c.ns]).await;
    assert!(none.ok());
    assert!(
        none.stderr
            .contains(&format!("No resources found in {} namespace.", c.ns)),
        "{}",
        none.stderr
    );
}

// kubectl get -o json / yaml / name: whole objects and lists, and resource/name lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_json_yaml_and_name() {
    let c = Cluster::start().await;
    create_cms(&c, &[("o1", &[("set", "o")]), ("o2", &[("set", "o")])]).await;
    let one = json(
        &c.kubectl_ok(&["get", "cm", "o1", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(
        (one["apiVersion"].as_str(), one["kind"].as_str()),
        (Some("v1"), Some("ConfigMap"))
    );
    assert_eq!(one["data"]["k"], "v-o1");
    let list = json(
        &c.kubectl_ok(&["get", "cm", "-l", "set=o", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["kind"], "ConfigMap");
    let y = c
        .kubectl_ok(&["get", "cm", "o1", "-n", &c.ns, "-o", "yaml"])
        .await;
    assert!(y.starts_with("apiVersion: v1\n"), "{y}");
    assert!(
        y.contains("kind: ConfigMap\n") && y.contains("  k: v-o1\n") && y.contains("  name: o1\n"),
        "{y}"
    );
    let n = c
        .kubectl_ok(&["get", "cm", "-l", "set=o", "-n", &c.ns, "-o", "name"])
        .await;
    assert_eq!(n, "configmap/o1\nconfigmap/o2\n");
}

// kubectl get -o jsonpath / custom-columns over the object JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_jsonpath_and_custom_columns() {
    let c = Cluster::start().await;
    create_cms(&c, &[("j1", &[("set", "j")]), ("j2", &[("set", "j")])]).await;
    let jp = c
        .kubectl_ok(&[
            "get",
            "cm",
            "-l",
            "set=j",
            "-n",
            &c.ns,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert_eq!(jp, "j1 j2");
    let jp = c
        .kubectl_ok(&[
            "get",
            "cm",
            "j1",
            "-n",
            &c.ns,
            "-o",
            "jsonpath={.data.k}/{.metadata.labels.set}",
        ])
        .await;
    assert_eq!(jp, "v-j1/j");
    let cc = c
        .kubectl_ok(&[
            "get",
            "cm",
            "-l",
            "set=j",
            "-n",
            &c.ns,
            "-o",
            "custom-columns=N:.metadata.name,VAL:.data.k,MISSING:.spec.x",
        ])
        .await;
    let lines: Vec<Vec<&str>> = cc.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines,
        vec![
            vec!["N", "VAL", "MISSING"],
            vec!["j1", "v-j1", "<none>"],
            vec!["j2", "v-j2", "<none>"]
        ]
    );
}

// kubectl get --show-labels and -A (all namespaces adds a NAMESPACE column).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_show_labels_and_all_namespaces() {
    let c = Cluster::start().await;
    create_cms(
        &c,
        &[("l1", &[("tier", "fe"), ("app", "web")]), ("l2", &[])],
    )
    .await;
    let t = c
        .kubectl_ok(&["get", "cm", "l1", "l2", "-n", &c.ns, "--show-labels"])
        .await;
    assert_eq!(header(&t), ["NAME", "DATA", "AGE", "LABELS"]);
    assert_eq!(row(&t, 0, "l1")[3], "app=web,tier=fe");
    assert_eq!(row(&t, 0, "l2")[3], "<none>");
    let a = c.kubectl_ok(&["get", "cm", "-A", "-l", "app=web"]).await;
    assert_eq!(header(&a), ["NAMESPACE", "NAME", "DATA", "AGE"]);
    let r = row(&a, 1, "l1");
    assert_eq!(r[0], c.ns);
    let aj = json(&c.kubectl_ok(&["get", "namespaces", "-o", "json"]).await);
    assert!(
        aj["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["metadata"]["name"] == c.ns.as_str())
    );
}

// Labels and selectors: equality (=, !=) and set-based (in, notin, exists, !exists) selectors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_label_selectors() {
    let c = Cluster::start().await;
    create_cms(
        &c,
        &[
            ("a", &[("set", "sel"), ("app", "web"), ("tier", "fe")]),
            ("b", &[("set", "sel"), ("app", "db"), ("tier", "be")]),
            ("c", &[("set", "sel"), ("app", "web")]),
            ("d", &[("set", "sel")]),
        ],
    )
    .await;
    let sel = |s: &str| {
        let s = s.to_string();
        let c = &c;
        async move {
            names(
                &c.kubectl_ok(&["get", "cm", "-n", &c.ns, "-o", "name", "-l", &s])
                    .await,
            )
        }
    };
    assert_eq!(sel("set=sel,app=web").await, ["a", "c"]);
    assert_eq!(sel("set=sel,app==web").await, ["a", "c"]);
    assert_eq!(sel("set=sel,app!=web").await, ["b", "d"]);
    assert_eq!(sel("set=sel,app in (db,web),tier").await, ["a", "b"]);
    assert_eq!(sel("set=sel,tier notin (fe)").await, ["b", "c", "d"]);
    assert_eq!(sel("set=sel,tier").await, ["a", "b"]);
    assert_eq!(sel("set=sel,!tier").await, ["c", "d"]);
    assert_eq!(sel("set=sel,app=web,tier=fe").await, ["a"]);
    let e = c
        .kubectl_err(&["get", "cm", "-n", &c.ns, "-l", "app in web"])
        .await;
    assert!(!e.is_empty());
}

// Field selectors: metadata.name with = and !=; unsupported fields are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_field_selectors() {
    let c = Cluster::start().await;
    create_cms(
        &c,
        &[
            ("f1", &[("set", "f")]),
            ("f2", &[("set", "f")]),
            ("f3", &[("set", "f")]),
        ],
    )
    .await;
    let n = names(
        &c.kubectl_ok(&[
            "get",
            "cm",
            "-n",
            &c.ns,
            "-o",
            "name",
            "--field-selector",
            "metadata.name=f2",
        ])
        .await,
    );
    assert_eq!(n, ["f2"]);
    let n = names(
        &c.kubectl_ok(&[
            "get",
            "cm",
            "-n",
            &c.ns,
            "-o",
            "name",
            "-l",
            "set=f",
            "--field-selector",
            "metadata.name!=f2",
        ])
        .await,
    );
    assert_eq!(n, ["f1", "f3"]);
    let n = names(
        &c.kubectl_ok(&[
            "get",
            "cm",
            "-n",
            &c.ns,
            "-o",
            "name",
            "--field-selector",
            &format!("metadata.namespace={},metadata.name=f3", c.ns),
        ])
        .await,
    );
    assert_eq!(n, ["f3"]);
    // ConfigMaps have no field selectors of their own (the default field-label conversion)...
    let e = c
        .kubectl_err(&["get", "cm", "-n", &c.ns, "--field-selector", "spec.foo=bar"])
        .await;
    assert!(
        e.contains(r#""spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace""#),
        "{e}"
    );
    let api: Api<ConfigMap> = Api::namespaced(c.client().await, &c.ns);
    let s = status(api.list(&ListParams::default().fields("data.k=x")).await);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"), "{s:?}");
    assert_eq!(
        s.message,
        r#""data.k" is not a known field selector: only "metadata.name", "metadata.namespace""#
    );
    // ...Secrets and Namespaces have their own, which word it differently; a Namespace has no
    // metadata.namespace to select on.
    let secrets: Api<Secret> = Api::namespaced(c.client().await, &c.ns);
    let s = status(
        secrets
            .list(&ListParams::default().fields("data.k=x"))
            .await,
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (400, "field label not supported: data.k")
    );
    let namespaces: Api<Namespace> = Api::all(c.client().await);
    let s = status(
        namespaces
            .list(&ListParams::default().fields("metadata.namespace=x"))
            .await,
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (400, "field label not supported: metadata.namespace")
    );
}

// API concepts / retrieving large results in chunks: kubectl --chunk-size pages with limit/continue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_chunk_size_pages_through_everything() {
    let c = Cluster::start().await;
    let specs: Vec<(String, [(&str, &str); 1])> = (1..=5)
        .map(|i| (format!("p{i}"), [("set", "chunk")]))
        .collect();
    let specs: Vec<(&str, &[(&str, &str)])> =
        specs.iter().map(|(n, l)| (n.as_str(), &l[..])).collect();
    create_cms(&c, &specs).await;
    let o = c
        .kubectl(&[
            "get",
            "cm",
            "-n",
            &c.ns,
            "-l",
            "set=chunk",
            "-o",
            "name",
            "--chunk-size=2",
            "-v=6",
        ])
        .await;
    assert!(o.ok(), "{}", o.stderr);
    assert_eq!(names(&o.stdout), ["p1", "p2", "p3", "p4", "p5"]);
    assert!(o.stderr.contains("limit=2"), "{}", o.stderr);
    assert_eq!(
        o.stderr.matches("continue=").count(),
        2,
        "two follow-up pages: {}",
        o.stderr
    );
    let t = c
        .kubectl_ok(&[
            "get",
            "cm",
            "-n",
            &c.ns,
            "-l",
            "set=chunk",
            "--chunk-size=2",
        ])
        .await;
    assert_eq!(
        t.lines().filter(|l| l.starts_with("NAME")).count(),
        1,
        "one header across pages:\n{t}"
    );
    assert_eq!(t.lines().count(), 6, "{t}");
}

// API concepts / chunking: limit returns a continue token and remainingItemCount; continuing
// returns the rest, the last page without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_with_limit_returns_continue_and_remaining_item_count() {
    let c = Cluster::start().await;
    let api: Api<Secret> = Api::namespaced(c.client().await, &c.ns);
    for i in 1..=5 {
        let s: Secret = serde_json::from_value(
            json!({"metadata": {"name": format!("s{i}")}, "stringData": {"i": i.to_string()}}),
        )
        .unwrap();
        api.create(&PostParams::default(), &s).await.unwrap();
    }
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let tok = first
        .metadata
        .continue_
        .clone()
        .filter(|t| !t.is_empty())
        .expect("continue token");
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&tok))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 2);
    assert_eq!(second.metadata.remaining_item_count, Some(1));
    let tok2 = second
        .metadata
        .continue_
        .clone()
        .filter(|t| !t.is_empty())
        .expect("second continue token");
    let third = api
        .list(&ListParams::default().limit(2).continue_token(&tok2))
        .await
        .unwrap();
    assert_eq!(third.items.len(), 1);
    assert!(
        third.metadata.continue_.as_deref().unwrap_or("").is_empty(),
        "last page has no continue"
    );
    assert_eq!(third.metadata.remaining_item_count, None);
    let mut all: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, ["s1", "s2", "s3", "s4", "s5"]);
    // Every page of one listing is served at the first page's resourceVersion.
    assert_eq!(
        first.metadata.resource_version,
        third.metadata.resource_version
    );
    // A garbage token is a 400 (BadRequest).
    let s = status(
        api.list(&ListParams::default().limit(2).continue_token("garbage"))
            .await,
    );
    assert_eq!(s.code, 400, "{s:?}");
}

// ---------------------------------------------------------------- 4. kubectl writes

// kubectl create -f / replace -f: create, then a full replacement of the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_and_replace_from_file() {
    let c = Cluster::start().await;
    let f1 = c.write("cm1.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rep\n  namespace: {}\ndata:\n  a: \"1\"\n  b: \"2\"\n", c.ns));
    assert_eq!(
        c.kubectl_ok(&["create", "-f", &f1]).await,
        "configmap/rep created\n"
    );
    let e = c.kubectl_err(&["create", "-f", &f1]).await;
    assert!(e.contains(r#"configmaps "rep" already exists"#), "{e}");
    let f2 = c.write("cm2.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rep\n  namespace: {}\ndata:\n  c: \"3\"\n", c.ns));
    assert_eq!(
        c.kubectl_ok(&["replace", "-f", &f2]).await,
        "configmap/rep replaced\n"
    );
    let v = json(
        &c.kubectl_ok(&["get", "cm", "rep", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"], json!({"c": "3"}), "replace is a full PUT");
    let f3 = c.write(
        "cm3.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone\n  namespace: {}\n",
            c.ns
        ),
    );
    let e = c.kubectl_err(&["replace", "-f", &f3]).await;
    assert!(e.contains(r#"configmaps "gone" not found"#), "{e}");
}

// kubectl patch --type json / merge / strategic on a ConfigMap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_json_merge_and_strategic() {
    let c = Cluster::start().await;
    c.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p", "namespace": c.ns}, "data": {"a": "1"}}).to_string()).await;
    let ns = c.ns.as_str();
    let out = c
        .kubectl_ok(&[
            "patch",
            "cm",
            "p",
            "-n",
            ns,
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/data/b","value":"2"}]"#,
        ])
        .await;
    assert_eq!(out, "configmap/p patched\n");
    let out = c
        .kubectl_ok(&[
            "patch",
            "cm",
            "p",
            "-n",
            ns,
            "--type",
            "merge",
            "-p",
            r#"{"data":{"a":null,"c":"3"}}"#,
        ])
        .await;
    assert_eq!(out, "configmap/p patched\n");
    let out = c
        .kubectl_ok(&[
            "patch",
            "cm",
            "p",
            "-n",
            ns,
            "--type",
            "strategic",
            "-p",
            r#"{"data":{"d":"4"},"metadata":{"labels":{"x":"y"}}}"#,
        ])
        .await;
    assert_eq!(out, "configmap/p patched\n");
    let v = json(
        &c.kubectl_ok(&["get", "cm", "p", "-n", ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"], json!({"b": "2", "c": "3", "d": "4"}));
    assert_eq!(v["metadata"]["labels"], json!({"x": "y"}));
    let out = c
        .kubectl_ok(&[
            "patch",
            "cm",
            "p",
            "-n",
            ns,
            "--type",
            "merge",
            "-p",
            r#"{"data":{"d":"4"}}"#,
        ])
        .await;
    assert_eq!(out, "configmap/p patched (no change)\n");
    // A JSON patch whose test fails is refused and changes nothing.
    let e = c
        .kubectl_err(&[
            "patch",
            "cm",
            "p",
            "-n",
            ns,
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/data/b","value":"9"},{"op":"remove","path":"/data/b"}]"#,
        ])
        .await;
    assert!(!e.is_empty());
    let v = json(
        &c.kubectl_ok(&["get", "cm", "p", "-n", ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"]["b"], "2");
}

// kubectl delete by name and by label selector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_by_name_and_by_label() {
    let c = Cluster::start().await;
    create_cms(
        &c,
        &[
            ("d1", &[("grp", "x")]),
            ("d2", &[("grp", "x")]),
            ("d3", &[("grp", "y")]),
        ],
    )
    .await;
    let out = c.kubectl_ok(&["delete", "cm", "d3", "-n", &c.ns]).await;
    assert!(out.starts_with(r#"configmap "d3" deleted"#), "{out}");
    let out = c
        .kubectl_ok(&["delete", "cm", "-l", "grp=x", "-n", &c.ns])
        .await;
    assert!(
        out.contains(r#"configmap "d1" deleted"#) && out.contains(r#"configmap "d2" deleted"#),
        "{out}"
    );
    let left = c
        .kubectl_ok(&["get", "cm", "-n", &c.ns, "-l", "grp", "-o", "name"])
        .await;
    assert_eq!(left, "");
    let e = c.kubectl_err(&["delete", "cm", "d1", "-n", &c.ns]).await;
    assert!(e.contains(r#"configmaps "d1" not found"#), "{e}");
    assert!(
        c.kubectl(&["delete", "cm", "d1", "-n", &c.ns, "--ignore-not-found"])
            .await
            .ok()
    );
}

// kubectl label / annotate: add, refuse overwrite without --overwrite, overwrite, remove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_label_and_annotate() {
    let c = Cluster::start().await;
    create_cms(&c, &[("la", &[])]).await;
    let ns = c.ns.as_str();
    assert_eq!(
        c.kubectl_ok(&["label", "cm", "la", "-n", ns, "env=prod"])
            .await,
        "configmap/la labeled\n"
    );
    let e = c
        .kubectl_err(&["label", "cm", "la", "-n", ns, "env=dev"])
        .await;
    assert!(e.contains("already has a value (prod)"), "{e}");
    assert_eq!(
        c.kubectl_ok(&["label", "cm", "la", "-n", ns, "env=dev", "--overwrite"])
            .await,
        "configmap/la labeled\n"
    );
    assert_eq!(
        c.kubectl_ok(&["annotate", "cm", "la", "-n", ns, "note=hello world"])
            .await,
        "configmap/la annotated\n"
    );
    let v = json(
        &c.kubectl_ok(&["get", "cm", "la", "-n", ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["metadata"]["labels"]["env"], "dev");
    assert_eq!(v["metadata"]["annotations"]["note"], "hello world");
    assert_eq!(
        c.kubectl_ok(&["label", "cm", "la", "-n", ns, "env-"]).await,
        "configmap/la unlabeled\n"
    );
    assert_eq!(
        c.kubectl_ok(&["annotate", "cm", "la", "-n", ns, "note-"])
            .await,
        "configmap/la annotated\n"
    );
    let v = json(
        &c.kubectl_ok(&["get", "cm", "la", "-n", ns, "-o", "json"])
            .await,
    );
    assert!(
        v["metadata"]["labels"].get("env").is_none(),
        "{}",
        v["metadata"]
    );
    assert!(
        v["metadata"]["annotations"].get("note").is_none(),
        "{}",
        v["metadata"]
    );
}

// kubectl apply (client-side): created, unchanged, configured; last-applied annotation kept;
// a field dropped from the manifest is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_client_side_apply_created_unchanged_configured() {
    let c = Cluster::start().await;
    let m1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ap", "namespace": c.ns}, "data": {"a": "1", "b": "2"}}).to_string();
    let o = c.apply(&m1).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "configmap/ap created\n"),
        "{}",
        o.stderr
    );
    let o = c.apply(&m1).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "configmap/ap unchanged\n"),
        "{}",
        o.stderr
    );
    // Someone else adds a key; apply of a manifest without b keeps theirs and prunes b.
    c.kubectl_ok(&[
        "patch",
        "cm",
        "ap",
        "-n",
        &c.ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"other":"x"}}"#,
    ])
    .await;
    let m2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ap", "namespace": c.ns}, "data": {"a": "10"}}).to_string();
    let o = c.apply(&m2).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "configmap/ap configured\n"),
        "{}",
        o.stderr
    );
    let v = json(
        &c.kubectl_ok(&["get", "cm", "ap", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"], json!({"a": "10", "other": "x"}));
    let last = v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("last-applied annotation");
    assert_eq!(json(last)["data"], json!({"a": "10"}));
}

// Dry run: apply/create with --dry-run=server run admission and validation but persist nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_persists_nothing() {
    let c = Cluster::start().await;
    let m = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry", "namespace": c.ns}, "data": {"a": "1"}}).to_string();
    let o = c
        .kubectl_stdin(&["apply", "-f", "-", "--dry-run=server"], &m)
        .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "configmap/dry created (server dry run)\n"),
        "{}",
        o.stderr
    );
    let o = c
        .kubectl_stdin(&["create", "-f", "-", "--dry-run=server", "-o", "json"], &m)
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let v = json(&o.stdout);
    assert_eq!(v["data"]["a"], "1");
    assert!(
        v["metadata"]["uid"].is_string(),
        "a dry-run create is defaulted like a real one"
    );
    let e = c.kubectl_err(&["get", "cm", "dry", "-n", &c.ns]).await;
    assert!(e.contains("NotFound"), "{e}");
    // Dry-run validation errors are real errors.
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "namespace": c.ns}}).to_string();
    let o = c
        .kubectl_stdin(&["create", "-f", "-", "--dry-run=server"], &bad)
        .await;
    assert!(
        !o.ok() && o.stderr.contains("Invalid value: \"Bad_Name\""),
        "{}",
        o.stderr
    );
    // A dry-run change to an existing object leaves it untouched.
    c.apply(&m).await;
    let m2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry", "namespace": c.ns}, "data": {"a": "2"}}).to_string();
    let o = c
        .kubectl_stdin(&["apply", "-f", "-", "--dry-run=server"], &m2)
        .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "configmap/dry configured (server dry run)\n"),
        "{}",
        o.stderr
    );
    let v = json(
        &c.kubectl_ok(&["get", "cm", "dry", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"]["a"], "1");
}

// kubectl diff: a server-side dry run shows the change, exits 1 and persists nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_diff_shows_change_and_persists_nothing() {
    let c = Cluster::start().await;
    let m = |a: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "df", "namespace": c.ns}, "data": {"a": a}}).to_string()
    };
    c.apply(&m("1")).await;
    let same = c.kubectl_stdin(&["diff", "-f", "-"], &m("1")).await;
    assert_eq!(
        same.code, 0,
        "no difference: {}{}",
        same.stdout, same.stderr
    );
    assert_eq!(same.stdout, "");
    let o = c.kubectl_stdin(&["diff", "-f", "-"], &m("2")).await;
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("-  a: \"1\"") && o.stdout.contains("+  a: \"2\""),
        "{}",
        o.stdout
    );
    let v = json(
        &c.kubectl_ok(&["get", "cm", "df", "-n", &c.ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"]["a"], "1");
    // A new object diffs against nothing.
    let new = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "df-new", "namespace": c.ns}, "data": {"z": "9"}}).to_string();
    let o = c.kubectl_stdin(&["diff", "-f", "-"], &new).await;
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("+  z: \"9\""), "{}", o.stdout);
    assert!(!c.kubectl(&["get", "cm", "df-new", "-n", &c.ns]).await.ok());
}

// ---------------------------------------------------------------- 5. every built-in kind

// Every built-in kind kube-sim serves: create from a YAML manifest, get, list, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_kind_round_trips_through_kubectl() {
    let c = Cluster::start().await;
    let ns = c.ns.clone();
    let nsname = c.name("kinds");
    let cr = c.name("kinds-cr");
    let crb = c.name("kinds-crb");
    let vap = c.name("kinds-vap");
    let vapb = c.name("kinds-vapb");
    // (resource for kubectl, name, namespaced, manifest)
    let cases: Vec<(&str, String, bool, String)> = vec![
        (
            "namespaces",
            nsname.clone(),
            false,
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {nsname}\n"),
        ),
        (
            "configmaps",
            "k-cm".into(),
            true,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k-cm\n  namespace: {ns}\ndata:\n  a: \"1\"\n"
            ),
        ),
        (
            "secrets",
            "k-secret".into(),
            true,
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: k-secret\n  namespace: {ns}\ntype: Opaque\ndata:\n  a: aGVsbG8=\nstringData:\n  b: world\n"
            ),
        ),
        (
            "serviceaccounts",
            "k-sa".into(),
            true,
            format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: k-sa\n  namespace: {ns}\n"
            ),
        ),
        (
            "events",
            "k-ev".into(),
            true,
            format!(
                "apiVersion: v1\nkind: Event\nmetadata:\n  name: k-ev\n  namespace: {ns}\ninvolvedObject:\n  apiVersion: v1\n  kind: ConfigMap\n  name: k-cm\n  namespace: {ns}\nreason: Tested\nmessage: hello\ntype: Normal\nsource:\n  component: fidelity\n"
            ),
        ),
        (
            "events.v1.events.k8s.io",
            "k-ev2".into(),
            true,
            format!(
                "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: k-ev2\n  namespace: {ns}\neventTime: \"2024-01-01T00:00:00.000000Z\"\nreportingController: example.com/fidelity\nreportingInstance: fidelity-1\naction: Testing\nreason: Tested\nnote: hello\ntype: Normal\nregarding:\n  apiVersion: v1\n  kind: ConfigMap\n  name: k-cm\n  namespace: {ns}\n"
            ),
        ),
        (
            "leases",
            "k-lease".into(),
            true,
            format!(
                "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: k-lease\n  namespace: {ns}\nspec:\n  holderIdentity: me\n  leaseDurationSeconds: 15\n"
            ),
        ),
        (
            "roles",
            "k-role".into(),
            true,
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: k-role\n  namespace: {ns}\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\"]\n"
            ),
        ),
        (
            "rolebindings",
            "k-rb".into(),
            true,
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: k-rb\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: k-role\nsubjects:\n- kind: ServiceAccount\n  name: k-sa\n  namespace: {ns}\n"
            ),
        ),
        (
            "clusterroles",
            cr.clone(),
            false,
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {cr}\nrules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"list\"]\n"
            ),
        ),
        (
            "clusterrolebindings",
            crb.clone(),
            false,
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {crb}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {cr}\nsubjects:\n- kind: User\n  apiGroup: rbac.authorization.k8s.io\n  name: fidelity-nobody-{}\n",
                c.suffix
            ),
        ),
        (
            "validatingadmissionpolicies",
            vap.clone(),
            false,
            format!(
                "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: {vap}\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    resourceRules:\n    - apiGroups: [\"\"]\n      apiVersions: [\"v1\"]\n      operations: [\"CREATE\"]\n      resources: [\"configmaps\"]\n  validations:\n  - expression: \"true\"\n"
            ),
        ),
        (
            "validatingadmissionpolicybindings",
            vapb.clone(),
            false,
            format!(
                "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: {vapb}\nspec:\n  policyName: {vap}\n  validationActions: [Deny]\n  matchResources:\n    namespaceSelector:\n      matchLabels:\n        kubernetes.io/metadata.name: {ns}\n"
            ),
        ),
    ];
    for (i, (res, name, namespaced, manifest)) in cases.iter().enumerate() {
        let f = c.write(&format!("kind{i}.yaml"), manifest);
        let out = c.kubectl(&["create", "-f", &f]).await;
        assert!(out.ok(), "create {res}/{name}: {}", out.stderr);
        assert!(
            out.stdout.contains(&format!("/{name} created")),
            "{}",
            out.stdout
        );
        let mut get = vec!["get", *res, name.as_str(), "-o", "json"];
        let mut list = vec!["get", *res, "-o", "name"];
        if *namespaced {
            get.extend(["-n", ns.as_str()]);
            list.extend(["-n", ns.as_str()]);
        }
        let v = json(&c.kubectl_ok(&get).await);
        assert_eq!(v["metadata"]["name"], name.as_str(), "{res}");
        assert!(
            v["metadata"]["uid"].is_string() && v["metadata"]["creationTimestamp"].is_string(),
            "{res}: {v}"
        );
        let listed = c.kubectl_ok(&list).await;
        assert!(
            listed.lines().any(|l| l.ends_with(&format!("/{name}"))),
            "{res} list lacks {name}:\n{listed}"
        );
        // The default (server-side Table) output: a header and its row (core Events have no NAME column).
        let table = c
            .kubectl_ok(
                &get[..3]
                    .iter()
                    .chain(&get[5..])
                    .copied()
                    .collect::<Vec<_>>(),
            )
            .await;
        assert_eq!(table.lines().count(), 2, "{res} table:\n{table}");
        if !res.starts_with("events") {
            assert!(
                header(&table)[0] == "NAME" && table.contains(name.as_str()),
                "{res} table:\n{table}"
            );
        }
        match *res {
            "secrets" => {
                assert_eq!(
                    v["data"],
                    json!({"a": "aGVsbG8=", "b": "d29ybGQ="}),
                    "stringData folds into data"
                );
                assert!(
                    v.get("stringData").is_none(),
                    "stringData is write-only: {v}"
                );
                assert_eq!(v["type"], "Opaque");
            }
            "events" => assert_eq!(
                (
                    v["apiVersion"].as_str(),
                    v["involvedObject"]["name"].as_str()
                ),
                (Some("v1"), Some("k-cm"))
            ),
            "events.v1.events.k8s.io" => assert_eq!(
                (v["apiVersion"].as_str(), v["regarding"]["name"].as_str()),
                (Some("events.k8s.io/v1"), Some("k-cm"))
            ),
            "namespaces" => assert_eq!(v["status"]["phase"], "Active"),
            "validatingadmissionpolicies" => assert_eq!(v["metadata"]["generation"], 1),
            "leases" => assert_eq!(v["spec"]["holderIdentity"], "me"),
            _ => {}
        }
    }
    // Delete in reverse order (bindings before what they reference).
    for (res, name, namespaced, _) in cases.iter().rev() {
        let mut del = vec!["delete", *res, name.as_str(), "--wait=false"];
        if *namespaced {
            del.extend(["-n", ns.as_str()]);
        }
        let out = c.kubectl_ok(&del).await;
        assert!(out.contains(&format!("\"{name}\" deleted")), "{out}");
        if *res != "namespaces" {
            let mut get = vec!["get", *res, name.as_str()];
            if *namespaced {
                get.extend(["-n", ns.as_str()]);
            }
            let e = c.kubectl_err(&get).await;
            assert!(e.contains("NotFound"), "{res}/{name}: {e}");
        }
    }
}

// Secrets: stringData is a write-only convenience merged into data (overwriting) on every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_string_data_is_folded_into_data_on_every_write() {
    let c = Cluster::start().await;
    let ns = c.ns.as_str();
    let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd", "namespace": ns}, "data": {"a": "b2xk", "keep": "aw=="}, "stringData": {"a": "new"}});
    let o = c
        .kubectl_stdin(&["create", "-f", "-"], &s.to_string())
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let v = json(
        &c.kubectl_ok(&["get", "secret", "sd", "-n", ns, "-o", "json"])
            .await,
    );
    assert_eq!(
        v["data"],
        json!({"a": "bmV3", "keep": "aw=="}),
        "stringData wins over data"
    );
    assert!(v.get("stringData").is_none());
    c.kubectl_ok(&[
        "patch",
        "secret",
        "sd",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"stringData":{"p":"patched"}}"#,
    ])
    .await;
    let v = json(
        &c.kubectl_ok(&["get", "secret", "sd", "-n", ns, "-o", "json"])
            .await,
    );
    assert_eq!(v["data"]["p"], "cGF0Y2hlZA==");
    assert!(v.get("stringData").is_none());
    let api: Api<Secret> = Api::namespaced(c.client().await, ns);
    let mut cur = api.get("sd").await.unwrap();
    cur.string_data = Some([("r".to_string(), "put".to_string())].into());
    let after = api
        .replace("sd", &PostParams::default(), &cur)
        .await
        .unwrap();
    assert_eq!(after.data.unwrap()["r"].0, b"put");
    assert!(after.string_data.is_none());
}

// Events: core/v1 and events.k8s.io/v1 Events are one resource served in two shapes
// (involvedObject <-> regarding, message <-> note, source.component <-> deprecatedSource.component).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_and_events_k8s_io_events_share_storage() {
    let c = Cluster::start().await;
    let ns = c.ns.as_str();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "shared", "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "namespace": ns},
        "reason": "Tested", "message": "hello", "type": "Normal", "source": {"component": "fidelity"}
    });
    let o = c
        .kubectl_stdin(&["create", "-f", "-"], &ev.to_string())
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let v = json(
        &c.kubectl_ok(&[
            "get",
            "events.v1.events.k8s.io",
            "shared",
            "-n",
            ns,
            "-o",
            "json",
        ])
        .await,
    );
    assert_eq!(v["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v["regarding"]["name"], "x");
    assert_eq!(v["note"], "hello");
    assert_eq!(v["deprecatedSource"]["component"], "fidelity");
    let listed = c
        .kubectl_ok(&["get", "events.v1.events.k8s.io", "-n", ns, "-o", "name"])
        .await;
    assert!(listed.lines().any(|l| l.ends_with("/shared")), "{listed}");
    c.kubectl_ok(&["delete", "events.v1.events.k8s.io", "shared", "-n", ns])
        .await;
    let e = c.kubectl_err(&["get", "events", "shared", "-n", ns]).await;
    assert!(e.contains("NotFound"), "{e}");
}

// kubectl api-resources: built-in kinds with their short names and namespaced flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_lists_builtin_kinds() {
    let c = Cluster::start().await;
    let out = c.kubectl_ok(&["api-resources"]).await;
    let head = out.lines().next().unwrap();
    let col = |h: &str| {
        head.find(h)
            .unwrap_or_else(|| panic!("no {h} column: {head}"))
    };
    let (short_at, api_at, nsd_at, kind_at) = (
        col("SHORTNAMES"),
        col("APIVERSION"),
        col("NAMESPACED"),
        col("KIND"),
    );
    let cell =
        |l: &str, a: usize, b: usize| l.get(a..b.min(l.len())).unwrap_or("").trim().to_string();
    let rows: Vec<(String, String, String, String, String)> = out
        .lines()
        .skip(1)
        .map(|l| {
            (
                cell(l, 0, short_at),
                cell(l, short_at, api_at),
                cell(l, api_at, nsd_at),
                cell(l, nsd_at, kind_at),
                cell(l, kind_at, l.len()),
            )
        })
        .collect();
    let expect = [
        ("namespaces", "ns", "v1", "false", "Namespace"),
        ("configmaps", "cm", "v1", "true", "ConfigMap"),
        ("secrets", "", "v1", "true", "Secret"),
        ("serviceaccounts", "sa", "v1", "true", "ServiceAccount"),
        ("events", "ev", "v1", "true", "Event"),
        ("events", "ev", "events.k8s.io/v1", "true", "Event"),
        ("leases", "", "coordination.k8s.io/v1", "true", "Lease"),
        ("roles", "", "rbac.authorization.k8s.io/v1", "true", "Role"),
        (
            "rolebindings",
            "",
            "rbac.authorization.k8s.io/v1",
            "true",
            "RoleBinding",
        ),
        (
            "clusterroles",
            "",
            "rbac.authorization.k8s.io/v1",
            "false",
            "ClusterRole",
        ),
        (
            "clusterrolebindings",
            "",
            "rbac.authorization.k8s.io/v1",
            "false",
            "ClusterRoleBinding",
        ),
        (
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            "false",
            "CustomResourceDefinition",
        ),
        (
            "validatingadmissionpolicies",
            "",
            "admissionregistration.k8s.io/v1",
            "false",
            "ValidatingAdmissionPolicy",
        ),
        (
            "validatingadmissionpolicybindings",
            "",
            "admissionregistration.k8s.io/v1",
            "false",
            "ValidatingAdmissionPolicyBinding",
        ),
        (
            "selfsubjectaccessreviews",
            "",
            "authorization.k8s.io/v1",
            "false",
            "SelfSubjectAccessReview",
        ),
        (
            "localsubjectaccessreviews",
            "",
            "authorization.k8s.io/v1",
            "true",
            "LocalSubjectAccessReview",
        ),
    ];
    for (name, short, av, nsd, kind) in expect {
        let want = (
            name.to_string(),
            short.to_string(),
            av.to_string(),
            nsd.to_string(),
            kind.to_string(),
        );
        assert!(rows.contains(&want), "api-resources lacks {want:?}:\n{out}");
    }
    // --namespaced=false lists only cluster-scoped kinds; -o name lists resource.group.
    let cluster = c
        .kubectl_ok(&["api-resources", "--namespaced=false", "-o", "name"])
        .await;
    assert!(
        cluster.lines().any(|l| l == "namespaces")
            && cluster
                .lines()
                .any(|l| l == "clusterroles.rbac.authorization.k8s.io"),
        "{cluster}"
    );
    assert!(!cluster.lines().any(|l| l == "configmaps"), "{cluster}");
    // Short names resolve.
    c.kubectl_ok(&["get", "cm,sa,ev", "-n", &c.ns]).await;
}

// ---------------------------------------------------------------- 6. every kubectl version

// Version skew: every installed kubectl (1.27 … 1.33) runs a basic flow against the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_flow_with_every_kubectl_version() {
    let c = Cluster::start().await;
    let mut bins: Vec<String> = std::fs::read_dir("/usr/lib/google-cloud-sdk/bin")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().to_string_lossy().into_owned())
                .filter(|p| p.contains("/kubectl.1."))
                .collect()
        })
        .unwrap_or_default();
    bins.sort();
    if bins.is_empty() {
        eprintln!("no versioned kubectl binaries found; nothing to test");
        return;
    }
    let mut failures = Vec::new();
    for bin in &bins {
        let ver = bin.rsplit("kubectl.").next().unwrap().replace('.', "-");
        let name = format!("flow-{ver}");
        let ns = c.ns.as_str();
        let m = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"v": ver}}).to_string();
        let steps: Vec<(Vec<&str>, Option<&str>)> = vec![
            (vec!["get", "ns", ns], None),
            (vec!["apply", "-f", "-"], Some(m.as_str())),
            (vec!["get", "cm", &name, "-n", ns, "-o", "json"], None),
            (vec!["get", "cm", "-n", ns], None),
            (vec!["delete", "cm", &name, "-n", ns], None),
        ];
        for (args, stdin) in steps {
            let o = c.kubectl_with(bin, &args, stdin).await;
            if !o.ok() {
                failures.push(format!("{bin} {args:?}: {}", o.stderr.trim()));
                break;
            }
            if args[0] == "get" && args.contains(&"json") {
                let v = json(&o.stdout);
                if v["data"]["v"] != ver.as_str() {
                    failures.push(format!("{bin} get -o json: {v}"));
                }
            }
            if args[0] == "get" && args[1] == "ns" && !o.stdout.contains("Active") {
                failures.push(format!("{bin} get ns: {}", o.stdout));
            }
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}
