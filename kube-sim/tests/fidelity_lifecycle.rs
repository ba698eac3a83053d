//! Object lifecycle as the API server documents it: watch ("Efficient detection of changes"),
//! finalizers, garbage collection (ownerReferences and cascading deletion), namespace
//! deletion, and deletecollection.
mod common;
use common::*;

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

fn cm_value(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(cm_value(name, labels)).unwrap()
}

fn cms(c: &Cluster, client: &kube::Client) -> Api<ConfigMap> {
    Api::namespaced(client.clone(), &c.ns)
}

fn owner_ref(parent: &ConfigMap, block: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "name": parent.metadata.name, "uid": parent.metadata.uid, "blockOwnerDeletion": block})
}

async fn create_child(
    api: &Api<ConfigMap>,
    name: &str,
    owners: Vec<Value>,
    finalizers: Vec<&str>,
) -> ConfigMap {
    let mut v = cm_value(name, json!({"role": "child"}));
    v["metadata"]["ownerReferences"] = json!(owners);
    if !finalizers.is_empty() {
        v["metadata"]["finalizers"] = json!(finalizers);
    }
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .expect("create child")
}

async fn remove_finalizers(api: &Api<ConfigMap>, name: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizers");
}

/// The next event of a watch stream, for at most `secs` seconds.
async fn next<S, T, E>(s: &mut S, secs: u64, what: &str) -> T
where
    S: Stream<Item = Result<T, E>> + Unpin,
    E: std::fmt::Display,
{
    match tokio::time::timeout(Duration::from_secs(secs), s.next()).await {
        Ok(Some(Ok(e))) => e,
        Ok(Some(Err(e))) => panic!("watch error while waiting for {what}: {e}"),
        Ok(None) => panic!("watch ended while waiting for {what}"),
        Err(_) => panic!("timed out after {secs}s waiting for {what}"),
    }
}

/// The next non-BOOKMARK event of a raw watch.
async fn next_change<S>(s: &mut S, secs: u64, what: &str) -> WatchEvent<ConfigMap>
where
    S: Stream<Item = Result<WatchEvent<ConfigMap>, kube::Error>> + Unpin,
{
    loop {
        match next(s, secs, what).await {
            WatchEvent::Bookmark(_) => continue,
            e => return e,
        }
    }
}

fn describe(e: &WatchEvent<ConfigMap>) -> (String, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED".into(), o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(o) => (
            "MODIFIED".into(),
            o.metadata.name.clone().unwrap_or_default(),
        ),
        WatchEvent::Deleted(o) => (
            "DELETED".into(),
            o.metadata.name.clone().unwrap_or_default(),
        ),
        WatchEvent::Bookmark(_) => ("BOOKMARK".into(), String::new()),
        WatchEvent::Error(s) => ("ERROR".into(), format!("{s:?}")),
    }
}

/// Run kubectl a moment later (while another command waits).
async fn later(c: &Cluster, args: &[&str]) {
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.kubectl_ok(args).await;
}

async fn exists(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.expect("get").is_some()
}

// API concepts, "Efficient detection of changes": a watch from a resourceVersion returns exactly
// the later changes, in order; DELETED carries the object's final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_resource_version_returns_later_changes_in_order() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let before = api
        .create(&PostParams::default(), &cm("before", json!({"w": "seq"})))
        .await
        .unwrap();
    let rv = before.metadata.resource_version.clone().unwrap();

    let a = api
        .create(&PostParams::default(), &cm("a", json!({"w": "seq"})))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v2"}})),
    )
    .await
    .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"final": "yes"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let wp = WatchParams::default().labels("w=seq").timeout(30);
    let mut s = api.watch(&wp, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    let mut last_rv = 0u64;
    for i in 0..4 {
        let e = next_change(&mut s, 20, &format!("event {i}")).await;
        let (kind, name) = describe(&e);
        if let WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) = &e {
            // resourceVersions are opaque, but events arrive in order of their (etcd) revision.
            let r: u64 = o
                .metadata
                .resource_version
                .as_deref()
                .unwrap()
                .parse()
                .unwrap();
            assert!(r > last_rv, "events out of order");
            last_rv = r;
        }
        if let WatchEvent::Deleted(o) = &e {
            let data = o.data.clone().unwrap();
            assert_eq!(
                data.get("k").map(String::as_str),
                Some("v2"),
                "DELETED carries the last state"
            );
            assert_eq!(data.get("final").map(String::as_str), Some("yes"));
            assert_eq!(o.metadata.uid, a.metadata.uid);
        }
        seen.push((kind, name));
    }
    let want: Vec<(String, String)> = [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(
        seen, want,
        "nothing from before the resourceVersion ('before' is not replayed)"
    );
}

// API concepts, "Efficient detection of changes": a watch with resourceVersion unset or "0" starts
// with synthetic ADDED events for every existing object, then continues with changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_without_resource_version_starts_with_synthetic_added_events() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    for n in ["x1", "x2", "x3"] {
        api.create(&PostParams::default(), &cm(n, json!({"w": "init"})))
            .await
            .unwrap();
    }
    for rv in ["0", ""] {
        let wp = WatchParams::default().labels("w=init").timeout(30);
        let mut s = api.watch(&wp, rv).await.unwrap().boxed();
        let mut names = Vec::new();
        for _ in 0..3 {
            match next_change(&mut s, 20, "synthetic ADDED").await {
                WatchEvent::Added(o) => names.push(o.metadata.name.unwrap()),
                other => panic!("want ADDED, got {:?}", describe(&other)),
            }
        }
        names.sort();
        assert_eq!(names, ["x1", "x2", "x3"], "resourceVersion={rv:?}");
        let n = format!("later{}", if rv.is_empty() { "u" } else { "0" });
        api.create(&PostParams::default(), &cm(&n, json!({"w": "init"})))
            .await
            .unwrap();
        match next_change(&mut s, 20, "ADDED of a new object").await {
            WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some(n.as_str())),
            other => panic!("want ADDED, got {:?}", describe(&other)),
        }
        api.delete(&n, &DeleteParams::default()).await.unwrap();
    }
}

// API concepts, "Watch bookmarks": with allowWatchBookmarks the server sends BOOKMARK events that
// carry only a resourceVersion (a real server sends them about once a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_bookmarks_carry_a_resource_version() {
    let c = Cluster::start_with(kube_sim::SimConfig {
        bookmark_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let o = api
        .create(&PostParams::default(), &cm("b", json!({"w": "bm"})))
        .await
        .unwrap();
    let rv = o.metadata.resource_version.unwrap();
    let wp = WatchParams::default().labels("w=bm").timeout(290);
    assert!(wp.bookmarks, "kube-rs asks for bookmarks by default");
    let mut s = api.watch(&wp, &rv).await.unwrap().boxed();
    loop {
        match next(&mut s, 200, "a BOOKMARK").await {
            WatchEvent::Bookmark(b) => {
                assert!(
                    !b.metadata.resource_version.is_empty(),
                    "bookmark carries a resourceVersion"
                );
                assert_eq!(b.types.kind, "ConfigMap");
                assert_eq!(b.types.api_version, "v1");
                break;
            }
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
            _ => {}
        }
    }
}

// API concepts, "Efficient detection of changes": timeoutSeconds ends the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_timeout_seconds_ends_the_stream() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let wp = WatchParams::default().labels("w=timeout").timeout(1);
    let s = api.watch(&wp, "0").await.unwrap();
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(30), s.collect::<Vec<_>>())
        .await
        .expect("watch ended by timeoutSeconds");
    assert!(
        events.iter().all(|e| e.is_ok()),
        "the watch just ends, without errors"
    );
}

// API concepts, "Efficient detection of changes": a label-selector watch sees an object that starts
// matching as ADDED and one that stops matching as DELETED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_label_selector_sees_objects_enter_and_leave() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let o = api
        .create(&PostParams::default(), &cm("sel", json!({"tier": "other"})))
        .await
        .unwrap();
    let rv = o.metadata.resource_version.unwrap();
    let mut s = api
        .watch(
            &WatchParams::default().labels("tier=front").timeout(30),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    api.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    api.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "back"}}})),
    )
    .await
    .unwrap();
    match next_change(&mut s, 20, "ADDED").await {
        WatchEvent::Added(o) => assert_eq!(o.metadata.labels.unwrap()["tier"], "front"),
        other => panic!("want ADDED, got {:?}", describe(&other)),
    }
    assert_eq!(
        describe(&next_change(&mut s, 20, "MODIFIED").await),
        ("MODIFIED".into(), "sel".into())
    );
    match next_change(&mut s, 20, "DELETED").await {
        WatchEvent::Deleted(o) => {
            // The watch cache sends the last state that matched, at the resourceVersion of the change.
            assert_eq!(
                o.metadata.labels.unwrap()["tier"],
                "front",
                "DELETED carries the last matching state"
            );
            assert_eq!(o.data.unwrap()["k"], "2");
            let now = api.get("sel").await.unwrap().metadata.resource_version;
            assert_eq!(
                o.metadata.resource_version, now,
                "at the resourceVersion of the change"
            );
        }
        other => panic!("want DELETED, got {:?}", describe(&other)),
    }
}

// API concepts: a watch on a namespaced collection sees only that namespace; a cluster-wide watch
// sees all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_in_a_namespace_does_not_see_other_namespaces() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let other = c.name("fid-other");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": other}})).unwrap(),
    )
    .await
    .unwrap();
    let mine = cms(&c, &client);
    let theirs: Api<ConfigMap> = Api::namespaced(client.clone(), &other);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let label = format!("w=ns{}", c.suffix);
    let start = mine
        .create(&PostParams::default(), &cm("start", json!({})))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut s = mine
        .watch(&WatchParams::default().labels(&label).timeout(30), &start)
        .await
        .unwrap()
        .boxed();
    let mut s_all = all
        .watch(&WatchParams::default().labels(&label).timeout(30), &start)
        .await
        .unwrap()
        .boxed();
    let lbl = json!({"w": format!("ns{}", c.suffix)});
    theirs
        .create(&PostParams::default(), &cm("elsewhere", lbl.clone()))
        .await
        .unwrap();
    mine.create(&PostParams::default(), &cm("here", lbl))
        .await
        .unwrap();
    match next_change(&mut s, 20, "ADDED here").await {
        WatchEvent::Added(o) => {
            assert_eq!(
                o.metadata.name.as_deref(),
                Some("here"),
                "the other namespace's object is not seen"
            );
            assert_eq!(o.metadata.namespace.as_deref(), Some(c.ns.as_str()));
        }
        other => panic!("want ADDED, got {:?}", describe(&other)),
    }
    let mut names = Vec::new();
    for _ in 0..2 {
        if let WatchEvent::Added(o) = next_change(&mut s_all, 20, "ADDED (all namespaces)").await {
            names.push(o.metadata.name.unwrap());
        }
    }
    names.sort();
    assert_eq!(names, ["elsewhere", "here"]);
    nss.delete(&other, &DeleteParams::default()).await.unwrap();
}

async fn watcher_sequence(config: watcher::Config) {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    for n in ["w1", "w2"] {
        api.create(&PostParams::default(), &cm(n, json!({"w": "rt"})))
            .await
            .unwrap();
    }
    let mut s = watcher::watcher(api.clone(), config.labels("w=rt")).boxed();
    assert!(matches!(next(&mut s, 20, "Init").await, Event::Init));
    let mut names = Vec::new();
    loop {
        match next(&mut s, 20, "InitApply/InitDone").await {
            Event::InitApply(o) => names.push(o.metadata.name.unwrap()),
            Event::InitDone => break,
            other => panic!("unexpected {other:?} during the initial list"),
        }
    }
    names.sort();
    assert_eq!(names, ["w1", "w2"]);
    api.create(&PostParams::default(), &cm("w3", json!({"w": "rt"})))
        .await
        .unwrap();
    match next(&mut s, 20, "Apply").await {
        Event::Apply(o) => assert_eq!(o.metadata.name.as_deref(), Some("w3")),
        other => panic!("want Apply, got {other:?}"),
    }
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    match next(&mut s, 20, "Apply (modified)").await {
        Event::Apply(o) => assert_eq!(o.data.unwrap()["k"], "changed"),
        other => panic!("want Apply, got {other:?}"),
    }
    api.delete("w2", &DeleteParams::default()).await.unwrap();
    match next(&mut s, 20, "Delete").await {
        Event::Delete(o) => assert_eq!(o.metadata.name.as_deref(), Some("w2")),
        other => panic!("want Delete, got {other:?}"),
    }
}

// kube-runtime watcher (list then watch): Init, InitApply per object, InitDone, then Apply/Delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_runtime_watcher_lists_then_watches() {
    watcher_sequence(watcher::Config::default()).await;
}

// API concepts, "Streaming lists" (sendInitialEvents): the same events from a single watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_runtime_watcher_with_streaming_lists() {
    watcher_sequence(watcher::Config::default().streaming_lists()).await;
}

// kubectl get -w: prints objects created while it watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_kubectl_get_w_prints_a_new_object() {
    use tokio::io::AsyncBufReadExt;
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    api.create(&PostParams::default(), &cm("existing", json!({})))
        .await
        .unwrap();
    let mut child = tokio::process::Command::new(kubectl_bin())
        .args(["get", "cm", "-n", &c.ns, "-w", "--cache-dir"])
        .arg(c.path("kubectl-cache"))
        .env("KUBECONFIG", c.kubeconfig_path())
        .env("HOME", &c.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl get -w");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut created = false;
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("existing") && !created {
                created = true;
                api.create(&PostParams::default(), &cm("newcomer", json!({})))
                    .await
                    .unwrap();
            }
            if line.starts_with("newcomer ") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("kubectl get -w printed the new object");
    let line = found.expect("kubectl get -w ended early");
    assert_eq!(
        line.split_whitespace().nth(1),
        Some("1"),
        "DATA column: {line}"
    );
    let _ = child.kill().await;
}

// kubectl wait: --for=condition, --for=jsonpath and --for=delete return once satisfied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_kubectl_wait_returns_once_satisfied() {
    let c = Cluster::start().await;
    let group = format!("f{}.example.com", c.suffix);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let o = c
        .kubectl_stdin(&["create", "-f", "-"], &crd.to_string())
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let crd_name = format!("crd/widgets.{group}");
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        &crd_name,
        "--timeout=60s",
    ])
    .await;
    let widget = format!("widgets.{group}/w");
    let manifest = json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "w"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let o = c
        .kubectl_stdin(&["create", "-n", &c.ns, "-f", "-"], &manifest.to_string())
        .await;
    assert!(o.ok(), "{}", o.stderr);

    let patch = r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
    let wait = [
        "wait",
        "-n",
        &c.ns,
        &widget,
        "--for=condition=Ready",
        "--timeout=50s",
    ];
    let set = ["patch", "-n", &c.ns, &widget, "--type=merge", "-p", patch];
    let (out, _) = tokio::join!(c.kubectl(&wait), later(&c, &set));
    assert!(out.ok(), "wait --for=condition: {}", out.stderr);
    assert!(out.stdout.contains("condition met"), "{}", out.stdout);

    let o = c.kubectl_stdin(&["create", "-n", &c.ns, "-f", "-"], &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "state", "finalizers": ["example.com/hold"]}, "data": {"state": "new"}}).to_string()).await;
    assert!(o.ok(), "{}", o.stderr);
    let wait = [
        "wait",
        "-n",
        &c.ns,
        "cm/state",
        "--for=jsonpath={.data.state}=done",
        "--timeout=50s",
    ];
    let set = [
        "patch",
        "-n",
        &c.ns,
        "cm/state",
        "--type=merge",
        "-p",
        r#"{"data":{"state":"done"}}"#,
    ];
    let (out, _) = tokio::join!(c.kubectl(&wait), later(&c, &set));
    assert!(out.ok(), "wait --for=jsonpath: {}", out.stderr);
    assert!(out.stdout.contains("condition met"), "{}", out.stdout);

    c.kubectl_ok(&["delete", "-n", &c.ns, "cm/state", "--wait=false"])
        .await;
    let wait = [
        "wait",
        "-n",
        &c.ns,
        "cm/state",
        "--for=delete",
        "--timeout=50s",
    ];
    let set = [
        "patch",
        "-n",
        &c.ns,
        "cm/state",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ];
    let (out, _) = tokio::join!(c.kubectl(&wait), later(&c, &set));
    assert!(out.ok(), "wait --for=delete: {}", out.stderr);
    assert!(
        c.kubectl(&["get", "-n", &c.ns, "cm/state"])
            .await
            .stderr
            .contains("NotFound")
    );
    c.kubectl_ok(&["delete", &crd_name, "--wait=false"]).await;
}

// Finalizers: DELETE of an object with finalizers only marks it (deletionTimestamp); it stays
// readable, no new finalizers may be added, and it goes once the last finalizer is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_a_deleted_object_until_removed() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let mut v = cm_value("held", json!({"w": "fin"}));
    v["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let created = api
        .create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();

    let deleted = api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = deleted
        .left()
        .expect("DELETE of an object with finalizers returns the object, not a Status");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let got = api.get("held").await.expect("still readable");
    assert!(got.metadata.deletion_timestamp.is_some());
    assert_eq!(
        got.metadata.finalizers.as_deref(),
        Some(&["example.com/hold".to_string()][..])
    );

    let err = api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}),
            ),
        )
        .await
        .expect_err("adding a finalizer to a deleting object");
    let kube::Error::Api(s) = err else {
        panic!("want an API error, got {err:?}")
    };
    assert_eq!(s.code, 422, "{s:?}");
    assert!(
        s.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        s.message
    );

    // Other updates are still allowed while it waits.
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "still-here"}})),
    )
    .await
    .unwrap();

    let mut s = api
        .watch(&WatchParams::default().labels("w=fin").timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    remove_finalizers(&api, "held").await;
    loop {
        match next_change(&mut s, 20, "DELETED").await {
            WatchEvent::Deleted(o) => {
                assert_eq!(o.metadata.name.as_deref(), Some("held"));
                assert!(o.metadata.deletion_timestamp.is_some());
                break;
            }
            WatchEvent::Modified(_) => {}
            other => panic!("unexpected {:?}", describe(&other)),
        }
    }
    assert!(!exists(&api, "held").await);
}

// Garbage collection, background cascading deletion (kubectl delete --cascade=background): the
// owner goes at once and the collector deletes the dependents afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_background_deletion_removes_dependents_after_the_owner() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let parent = api
        .create(&PostParams::default(), &cm("parent", json!({})))
        .await
        .unwrap();
    for n in ["c1", "c2"] {
        create_child(&api, n, vec![owner_ref(&parent, false)], vec![]).await;
    }
    let bystander = api
        .create(&PostParams::default(), &cm("bystander", json!({})))
        .await
        .unwrap();
    assert!(bystander.metadata.owner_references.is_none());
    c.kubectl_ok(&[
        "delete",
        "-n",
        &c.ns,
        "cm",
        "parent",
        "--cascade=background",
    ])
    .await;
    assert!(
        !exists(&api, "parent").await,
        "the owner is deleted immediately"
    );
    c.eventually(60, "dependents collected", || async {
        (!exists(&api, "c1").await && !exists(&api, "c2").await).then_some(())
    })
    .await;
    assert!(exists(&api, "bystander").await);
}

// Garbage collection, foreground cascading deletion: the owner stays (deletionTimestamp and the
// foregroundDeletion finalizer) until its blocking dependents are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_foreground_deletion_waits_for_blocking_dependents() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let parent = api
        .create(&PostParams::default(), &cm("parent", json!({})))
        .await
        .unwrap();
    create_child(
        &api,
        "blocker",
        vec![owner_ref(&parent, true)],
        vec!["example.com/hold"],
    )
    .await;
    create_child(&api, "plain", vec![owner_ref(&parent, true)], vec![]).await;
    c.kubectl_ok(&[
        "delete",
        "-n",
        &c.ns,
        "cm",
        "parent",
        "--cascade=foreground",
        "--wait=false",
    ])
    .await;
    let p = api.get("parent").await.expect("the owner waits");
    assert!(p.metadata.deletion_timestamp.is_some());
    assert!(
        p.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    c.eventually(60, "dependents being deleted", || async {
        let b = api.get("blocker").await.unwrap();
        (b.metadata.deletion_timestamp.is_some() && !exists(&api, "plain").await).then_some(())
    })
    .await;
    assert!(
        exists(&api, "parent").await,
        "the owner stays while a blocking dependent exists"
    );
    remove_finalizers(&api, "blocker").await;
    c.eventually(60, "owner deleted after its dependents", || async {
        (!exists(&api, "parent").await).then_some(())
    })
    .await;
    assert!(!exists(&api, "blocker").await);
}

// Garbage collection, orphan deletion (kubectl delete --cascade=orphan): the dependents stay and
// lose their ownerReference to the deleted owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_orphan_deletion_keeps_dependents_and_strips_the_reference() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let parent = api
        .create(&PostParams::default(), &cm("parent", json!({})))
        .await
        .unwrap();
    for n in ["c1", "c2"] {
        create_child(&api, n, vec![owner_ref(&parent, true)], vec![]).await;
    }
    c.kubectl_ok(&["delete", "-n", &c.ns, "cm", "parent", "--cascade=orphan"])
        .await;
    c.eventually(60, "owner gone", || async {
        (!exists(&api, "parent").await).then_some(())
    })
    .await;
    for n in ["c1", "c2"] {
        let child = api.get(n).await.expect("orphaned dependent survives");
        assert!(
            child
                .metadata
                .owner_references
                .unwrap_or_default()
                .is_empty(),
            "{n} keeps no reference to the deleted owner"
        );
        assert!(child.metadata.deletion_timestamp.is_none());
    }
}

// Garbage collection: a dependent with two owners survives the deletion of one and loses just that
// ownerReference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_dependent_with_two_owners_survives_one() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let a = api
        .create(&PostParams::default(), &cm("owner-a", json!({})))
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &cm("owner-b", json!({})))
        .await
        .unwrap();
    create_child(
        &api,
        "shared",
        vec![owner_ref(&a, false), owner_ref(&b, false)],
        vec![],
    )
    .await;
    api.delete("owner-a", &DeleteParams::background())
        .await
        .unwrap();
    let refs = c
        .eventually(60, "the reference to owner-a removed", || async {
            let child = api.get_opt("shared").await.unwrap()?;
            let refs = child.metadata.owner_references.unwrap_or_default();
            (refs.len() == 1).then_some(refs)
        })
        .await;
    assert_eq!(refs[0].uid, b.metadata.uid.clone().unwrap());
    assert_eq!(refs[0].name, "owner-b");
    let child = api.get("shared").await.expect("the dependent survives");
    assert!(child.metadata.deletion_timestamp.is_none());
    // Deleting the last owner collects it.
    api.delete("owner-b", &DeleteParams::background())
        .await
        .unwrap();
    c.eventually(60, "dependent collected with its last owner", || async {
        (!exists(&api, "shared").await).then_some(())
    })
    .await;
}

// Garbage collection: an object whose ownerReference names an owner that does not exist (no such
// uid) is collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_dependent_of_a_missing_owner_is_collected() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    let ghost = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "3f1c8b7e-0000-4000-8000-000000000001"});
    create_child(&api, "dangling", vec![ghost], vec![]).await;
    api.create(&PostParams::default(), &cm("ownerless", json!({})))
        .await
        .unwrap();
    c.eventually(60, "the dependent of a missing owner collected", || async {
        (!exists(&api, "dangling").await).then_some(())
    })
    .await;
    assert!(exists(&api, "ownerless").await);
}

// Namespaces: deleting a namespace makes it Terminating, deletes its content, waits for content
// with finalizers, refuses new content meanwhile, and removes the namespace at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_empties_then_removes_the_namespace() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let name = c.name("fid-term");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    api.create(&PostParams::default(), &cm("plain", json!({})))
        .await
        .unwrap();
    let mut v = cm_value("held", json!({}));
    v["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();

    c.kubectl_ok(&["delete", "namespace", &name, "--wait=false"])
        .await;
    let ns = nss
        .get(&name)
        .await
        .expect("the namespace waits for its content");
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );

    c.eventually(60, "content deleted", || async {
        (!exists(&api, "plain").await).then_some(())
    })
    .await;
    let held = api
        .get("held")
        .await
        .expect("content with a finalizer waits");
    assert!(held.metadata.deletion_timestamp.is_some());
    // The namespace controller reports what it waits for in status.conditions.
    let conds = c
        .eventually(
            60,
            "the namespace's conditions to name the held finalizer",
            || async {
                let ns = nss.get(&name).await.unwrap();
                let conds = ns.status?.conditions?;
                let fin = conds
                    .iter()
                    .find(|c| c.type_ == "NamespaceFinalizersRemaining")?;
                (fin.status == "True").then_some(conds)
            },
        )
        .await;
    let find = |t: &str| {
        conds
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t} condition"))
    };
    let fin = find("NamespaceFinalizersRemaining");
    assert_eq!(fin.reason.as_deref(), Some("SomeFinalizersRemain"));
    assert_eq!(
        fin.message.as_deref(),
        Some(
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        )
    );
    let content = find("NamespaceContentRemaining");
    assert_eq!(
        (content.status.as_str(), content.reason.as_deref()),
        ("True", Some("SomeResourcesRemain"))
    );
    assert_eq!(
        content.message.as_deref(),
        Some("Some resources are remaining: configmaps. has 1 resource instances")
    );
    assert_eq!(find("NamespaceDeletionContentFailure").status, "False");

    let err = api
        .create(&PostParams::default(), &cm("late", json!({})))
        .await
        .expect_err("no new content in a terminating namespace");
    let kube::Error::Api(s) = err else {
        panic!("want an API error, got {err:?}")
    };
    assert_eq!(s.code, 403, "{s:?}");
    assert_eq!(s.reason, "Forbidden");
    assert!(
        s.message.contains(&format!(
            "unable to create new content in namespace {name} because it is being terminated"
        )),
        "{}",
        s.message
    );
    assert!(
        nss.get_opt(&name).await.unwrap().is_some(),
        "still waiting for `held`"
    );

    remove_finalizers(&api, "held").await;
    c.eventually(120, "namespace removed", || async {
        nss.get_opt(&name).await.unwrap().is_none().then_some(())
    })
    .await;
}

// Namespaces via kubectl: `kubectl delete ns x` waits (by default) until the namespace is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_kubectl_delete_waits_until_gone() {
    let c = Cluster::start().await;
    let name = c.name("fid-del");
    let o = c
        .kubectl_stdin(
            &["create", "-f", "-"],
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
                .to_string(),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let o = c
        .kubectl_stdin(
            &["create", "-n", &name, "-f", "-"],
            &cm_value("content", json!({})).to_string(),
        )
        .await;
    assert!(o.ok(), "{}", o.stderr);
    let out = c.kubectl_ok(&["delete", "namespace", &name]).await;
    assert!(
        out.contains(&format!("namespace \"{name}\" deleted")),
        "{out}"
    );
    let err = c.kubectl_err(&["get", "namespace", &name]).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

// API concepts, deletecollection: `kubectl delete cm -l app=x` and a DELETE on the collection with
// a labelSelector delete exactly the matching objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletecollection_deletes_exactly_the_matching_objects() {
    let c = Cluster::start().await;
    let client = c.client().await;
    let api = cms(&c, &client);
    for (n, app) in [
        ("x1", "x"),
        ("x2", "x"),
        ("y1", "y"),
        ("z1", "z"),
        ("z2", "z"),
    ] {
        api.create(&PostParams::default(), &cm(n, json!({"app": app})))
            .await
            .unwrap();
    }
    let out = c
        .kubectl_ok(&["delete", "cm", "-n", &c.ns, "-l", "app=x"])
        .await;
    assert!(
        out.contains("configmap \"x1\" deleted") && out.contains("configmap \"x2\" deleted"),
        "{out}"
    );
    assert!(!exists(&api, "x1").await && !exists(&api, "x2").await);
    assert!(exists(&api, "y1").await && exists(&api, "z1").await && exists(&api, "z2").await);

    let res = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=z"),
        )
        .await
        .unwrap();
    let listed = res
        .left()
        .expect("deletecollection returns the deleted objects as a list");
    let mut names: Vec<String> = listed
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["z1", "z2"]);
    let left: Vec<String> = api
        .list(&ListParams::default().labels("app"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["y1"]);
}
