//! The controllers a real control plane runs that object semantics depend on: the garbage
//! collector (ownerReferences; background, foreground and orphan deletion), the namespace
//! controller (empties a Terminating namespace, then finalizes it) and the CRD finalizer
//! (deletes a CRD's objects before the CRD goes).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{delete_object, system_update};
use crate::kinds::GroupResource;
use crate::meta;
use crate::sim::Sim;
use crate::store::{EventType, ObjRef, Since};

pub fn spawn(sim: Arc<Sim>) {
    let weak = Arc::downgrade(&sim);
    drop(sim);
    tokio::spawn(run(weak));
}

async fn run(weak: Weak<Sim>) {
    let mut last = 0u64;
    // Deleting objects waiting on something (dependents, namespace contents, CR instances).
    let mut waiting: BTreeSet<ObjRef> = BTreeSet::new();
    loop {
        let Some(sim) = weak.upgrade() else { return };
        let wake = sim.gc_wake.clone();
        let notified = wake.notified();
        let (events, full) = match sim.store.read().expect("store lock").since(last) {
            Since::Events(e) => (e, false),
            Since::TooOld { .. } => (Vec::new(), true),
        };
        if full {
            // Lost track: look at everything that is being deleted or has owners.
            last = sim.store.read().expect("store lock").current_rv();
            waiting.extend(all_deleting(&sim));
        }
        for e in &events {
            last = e.rv;
            let oref = ObjRef {
                gr: e.gr.clone(),
                ns: e.ns.clone(),
                name: e.name.clone(),
            };
            match e.kind {
                EventType::Deleted => {
                    // Bound first: a guard in the `for` expression would live through the loop (deadlock).
                    let deps = sim
                        .store
                        .read()
                        .expect("store lock")
                        .dependents_of(&e.obj.uid);
                    for dep in deps {
                        orphaned(&sim, &dep, &e.obj.uid);
                    }
                    // Owners waiting in foreground, and terminating namespaces, may now be done.
                    for o in &e.obj.owners {
                        if let Some(r) = sim.store.read().expect("store lock").by_uid(o).cloned() {
                            waiting.insert(r);
                        }
                    }
                    if !e.ns.is_empty() {
                        waiting.insert(ObjRef {
                            gr: ns_gr(),
                            ns: "".into(),
                            name: e.ns.clone(),
                        });
                    }
                    if e.gr.group.as_ref() != "apiextensions.k8s.io" {
                        for crd in crds_of(&sim, &e.gr) {
                            waiting.insert(crd);
                        }
                    }
                    waiting.remove(&oref);
                }
                EventType::Added | EventType::Modified => {
                    if !e.obj.owners.is_empty() && e.kind == EventType::Added {
                        let store = sim.store.read().expect("store lock");
                        let all_gone = e.obj.owners.iter().all(|o| store.by_uid(o).is_none());
                        drop(store);
                        if all_gone {
                            let _ = delete_object(&sim, &e.gr, &e.ns, &e.name, None, false, None);
                            continue;
                        }
                    }
                    if e.obj.deleting {
                        waiting.insert(oref);
                    }
                }
            }
        }
        let todo: Vec<ObjRef> = waiting.iter().cloned().collect();
        for r in todo {
            if !progress(&sim, &r) {
                waiting.remove(&r);
            }
        }
        let idle = waiting.is_empty();
        drop(sim);
        if idle {
            notified.await;
        } else {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

fn ns_gr() -> GroupResource {
    GroupResource {
        group: "".into(),
        resource: "namespaces".into(),
    }
}

fn all_deleting(sim: &Sim) -> Vec<ObjRef> {
    let registry = sim.registry.read().expect("registry lock").clone();
    let store = sim.store.read().expect("store lock");
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for ri in registry.all() {
        let gr = ri.gr();
        if !seen.insert(gr.clone()) {
            continue;
        }
        for ((ns, name), o) in store.range(&gr, None, None) {
            if o.deleting {
                out.push(ObjRef {
                    gr: gr.clone(),
                    ns: ns.clone(),
                    name: name.clone(),
                });
            }
        }
    }
    out
}

fn crds_of(sim: &Sim, gr: &GroupResource) -> Vec<ObjRef> {
    let name = format!("{}.{}", gr.resource, gr.group);
    let crd_gr = GroupResource {
        group: "apiextensions.k8s.io".into(),
        resource: "customresourcedefinitions".into(),
    };
    match sim
        .store
        .read()
        .expect("store lock")
        .get(&crd_gr, "", &name)
    {
        Some(_) => vec![ObjRef {
            gr: crd_gr,
            ns: "".into(),
            name: name.into(),
        }],
        None => Vec::new(),
    }
}

/// A dependent lost its owner `uid`: drop that reference, and delete the dependent once no owner is left.
fn orphaned(sim: &Sim, dep: &ObjRef, uid: &str) {
    let remaining: Vec<Arc<str>> = {
        let store = sim.store.read().expect("store lock");
        let Some(o) = store.get(&dep.gr, &dep.ns, &dep.name) else {
            return;
        };
        o.owners
            .iter()
            .filter(|u| u.as_ref() != uid && store.by_uid(u).is_some())
            .cloned()
            .collect()
    };
    if remaining.is_empty() {
        let _ = delete_object(sim, &dep.gr, &dep.ns, &dep.name, None, false, None);
    } else {
        remove_owner_ref(sim, dep, uid);
    }
}

fn remove_owner_ref(sim: &Sim, dep: &ObjRef, uid: &str) {
    system_update(sim, &dep.gr, &dep.ns, &dep.name, |v| {
        let refs = v["metadata"]["ownerReferences"].as_array()?;
        let kept: Vec<Value> = refs
            .iter()
            .filter(|r| r["uid"].as_str() != Some(uid))
            .cloned()
            .collect();
        if kept.len() == refs.len() {
            return None;
        }
        let mut v = v.clone();
        if kept.is_empty() {
            v["metadata"].as_object_mut()?.remove("ownerReferences");
        } else {
            v["metadata"]["ownerReferences"] = json!(kept);
        }
        Some(v)
    });
}

fn remove_finalizer(sim: &Sim, r: &ObjRef, fin: &str, spec: bool) {
    system_update(sim, &r.gr, &r.ns, &r.name, |v| {
        let mut v = v.clone();
        if spec {
            let fins: Vec<Value> = v["spec"]["finalizers"]
                .as_array()?
                .iter()
                .filter(|f| f.as_str() != Some(fin))
                .cloned()
                .collect();
            v["spec"]["finalizers"] = json!(fins);
        } else {
            let mut fins = meta::finalizers(&v);
            let before = fins.len();
            fins.retain(|f| f != fin);
            if fins.len() == before {
                return None;
            }
            meta::set_finalizers(&mut v, &fins);
        }
        Some(v)
    });
}

/// Move one deleting object along. Returns whether it still waits.
fn progress(sim: &Sim, r: &ObjRef) -> bool {
    let Some(obj) = sim
        .store
        .read()
        .expect("store lock")
        .get(&r.gr, &r.ns, &r.name)
    else {
        return false;
    };
    let v = obj.value();
    if !meta::is_deleting(&v) {
        return false;
    }
    let fins = meta::finalizers(&v);
    let mut waits = false;
    if fins.iter().any(|f| f == "orphan") {
        let deps = sim
            .store
            .read()
            .expect("store lock")
            .dependents_of(&obj.uid);
        for dep in deps {
            remove_owner_ref(sim, &dep, &obj.uid);
        }
        remove_finalizer(sim, r, "orphan", false);
    }
    if fins.iter().any(|f| f == "foregroundDeletion") {
        let deps = sim
            .store
            .read()
            .expect("store lock")
            .dependents_of(&obj.uid);
        let mut blocking = 0;
        for dep in &deps {
            let Some(d) = sim
                .store
                .read()
                .expect("store lock")
                .get(&dep.gr, &dep.ns, &dep.name)
            else {
                continue;
            };
            let dv = d.value();
            let blocks = dv["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter().any(|x| {
                        x["uid"].as_str() == Some(&obj.uid)
                            && x["blockOwnerDeletion"].as_bool() == Some(true)
                    })
                });
            if !meta::is_deleting(&dv) {
                let _ = delete_object(
                    sim,
                    &dep.gr,
                    &dep.ns,
                    &dep.name,
                    Some("Foreground"),
                    false,
                    None,
                );
            }
            if blocks {
                blocking += 1;
            }
        }
        if blocking == 0 {
            remove_finalizer(sim, r, "foregroundDeletion", false);
        } else {
            waits = true;
        }
    }
    if r.gr == ns_gr() {
        let contents = sim
            .store
            .read()
            .expect("store lock")
            .namespaces_in_use(&r.name);
        for c in &contents {
            let _ = delete_object(sim, &c.gr, &c.ns, &c.name, None, false, None);
        }
        if contents.is_empty() {
            remove_finalizer(sim, r, "kubernetes", true);
        } else {
            set_namespace_conditions(sim, r, &contents);
            waits = true;
        }
    }
    if r.gr.group.as_ref() == "apiextensions.k8s.io"
        && r.gr.resource.as_ref() == "customresourcedefinitions"
        && fins.iter().any(|f| f == crate::crd::CLEANUP_FINALIZER)
    {
        let group = v["spec"]["group"].as_str().unwrap_or_default();
        let plural = v["spec"]["names"]["plural"].as_str().unwrap_or_default();
        let gr = GroupResource {
            group: group.into(),
            resource: plural.into(),
        };
        let instances: Vec<ObjRef> = {
            let store = sim.store.read().expect("store lock");
            store
                .range(&gr, None, None)
                .map(|((ns, name), _)| ObjRef {
                    gr: gr.clone(),
                    ns: ns.clone(),
                    name: name.clone(),
                })
                .collect()
        };
        for i in &instances {
            let _ = delete_object(sim, &i.gr, &i.ns, &i.name, None, false, None);
        }
        if instances.is_empty() {
            remove_finalizer(sim, r, crate::crd::CLEANUP_FINALIZER, false);
        } else {
            waits = true;
        }
    }
    waits
        || meta::finalizers(&v)
            .iter()
            .any(|f| f == "foregroundDeletion")
}

/// The namespace controller's five deletion conditions, with its messages
/// ("configmaps. has 1 resource instances", "example.com/hold in 1 resource instances").
fn set_namespace_conditions(sim: &Sim, r: &ObjRef, contents: &[ObjRef]) {
    let mut by_resource: std::collections::BTreeMap<String, usize> = Default::default();
    let mut by_finalizer: std::collections::BTreeMap<String, usize> = Default::default();
    {
        let store = sim.store.read().expect("store lock");
        // What is still there after this round of deletes.
        for c in contents {
            if let Some(o) = store.get(&c.gr, &c.ns, &c.name) {
                *by_resource
                    .entry(format!("{}.{}", c.gr.resource, c.gr.group))
                    .or_default() += 1;
                for f in meta::finalizers(&o.value()) {
                    *by_finalizer.entry(f).or_default() += 1;
                }
            }
        }
    }
    let resources: Vec<String> = by_resource
        .iter()
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect();
    let finalizers: Vec<String> = by_finalizer
        .iter()
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    let content = if resources.is_empty() {
        (
            "False",
            "ContentRemoved",
            "All content successfully removed".to_string(),
        )
    } else {
        (
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", resources.join(", ")),
        )
    };
    let fins = if finalizers.is_empty() {
        (
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".to_string(),
        )
    } else {
        (
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                finalizers.join(", ")
            ),
        )
    };
    let want = [
        (
            "NamespaceDeletionDiscoveryFailure",
            (
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered".to_string(),
            ),
        ),
        (
            "NamespaceDeletionGroupVersionParsingFailure",
            (
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed".to_string(),
            ),
        ),
        (
            "NamespaceDeletionContentFailure",
            (
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".to_string(),
            ),
        ),
        ("NamespaceContentRemaining", content),
        ("NamespaceFinalizersRemaining", fins),
    ];
    system_update(sim, &r.gr, &r.ns, &r.name, |v| {
        let old = v["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut changed = old.len() != want.len();
        let conds: Vec<Value> = want
            .iter()
            .map(|(ty, (status, reason, message))| {
                let cur = old.iter().find(|c| c["type"] == *ty);
                if cur.is_none_or(|c| c["status"] != *status || c["reason"] != *reason || c["message"] != message.as_str()) {
                    changed = true;
                }
                // lastTransitionTime moves only when the status does.
                let since = cur.filter(|c| c["status"] == *status).and_then(|c| c["lastTransitionTime"].as_str().map(String::from)).unwrap_or_else(meta::now);
                json!({"type": ty, "status": status, "lastTransitionTime": since, "reason": reason, "message": message})
            })
            .collect();
        if !changed {
            return None;
        }
        let mut v = v.clone();
        v["status"]["conditions"] = json!(conds);
        Some(v)
    });
}
