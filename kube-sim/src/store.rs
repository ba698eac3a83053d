//! The object store: every object as its JSON bytes (memory close to the JSON size),
//! one global, monotonically increasing resourceVersion, and a bounded event log that
//! serves watches from any retained version and paged lists at a consistent snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::kinds::GroupResource;

/// One stored object version.
#[derive(Debug)]
pub struct Obj {
    pub json: Bytes,
    pub rv: u64,
    pub uid: Arc<str>,
    pub labels: crate::selectors::Labels,
    /// uids of the owners in metadata.ownerReferences.
    pub owners: Box<[Arc<str>]>,
    /// metadata.deletionTimestamp is set (saves parsing `json` to find out).
    pub deleting: bool,
}

impl Obj {
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change. `obj` is the new version (for Deleted: the last version, carrying the
/// deletion's resourceVersion), `prev` the version before it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub gr: GroupResource,
    pub ns: Arc<str>,
    pub name: Arc<str>,
    pub kind: EventType,
    pub obj: Arc<Obj>,
    pub prev: Option<Arc<Obj>>,
}

pub type Key = (Arc<str>, Arc<str>); // (namespace, name); namespace "" for cluster-scoped

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    pub gr: GroupResource,
    pub ns: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Default)]
pub struct Store {
    tables: HashMap<GroupResource, BTreeMap<Key, Arc<Obj>>>,
    rv: u64,
    log: VecDeque<Arc<Event>>,
    log_cap: usize,
    /// Highest resourceVersion whose event has been dropped from the log.
    compacted: u64,
    uids: HashMap<Arc<str>, ObjRef>,
    dependents: HashMap<Arc<str>, BTreeSet<ObjRef>>,
}

pub enum Since {
    /// Events after this version are all retained.
    Events(Vec<Arc<Event>>),
    /// The version is older than the retained history.
    TooOld { oldest: u64 },
}

impl Store {
    pub fn new(log_cap: usize) -> Store {
        Store {
            rv: 1,
            log_cap: log_cap.max(1),
            ..Default::default()
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<Arc<Obj>> {
        let key: Key = (ns.into(), name.into());
        self.tables.get(gr)?.get(&key).cloned()
    }

    pub fn by_uid(&self, uid: &str) -> Option<&ObjRef> {
        self.uids.get(uid)
    }

    pub fn dependents_of(&self, uid: &str) -> Vec<ObjRef> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn table(&self, gr: &GroupResource) -> Option<&BTreeMap<Key, Arc<Obj>>> {
        self.tables.get(gr)
    }

    /// Objects of a resource, optionally in one namespace, in key order, starting after `after`.
    pub fn range<'a>(
        &'a self,
        gr: &GroupResource,
        ns: Option<&'a str>,
        after: Option<&'a Key>,
    ) -> Box<dyn Iterator<Item = (&'a Key, &'a Arc<Obj>)> + 'a> {
        let Some(t) = self.tables.get(gr) else {
            return Box::new(std::iter::empty());
        };
        use std::ops::Bound;
        let lower: Bound<Key> = match (after, ns) {
            (Some(k), _) => Bound::Excluded(k.clone()),
            (None, Some(ns)) => Bound::Included((ns.into(), "".into())),
            (None, None) => Bound::Unbounded,
        };
        let it = t.range((lower, Bound::Unbounded));
        match ns {
            Some(ns) => Box::new(it.take_while(move |((n, _), _)| n.as_ref() == ns)),
            None => Box::new(it),
        }
    }

    pub fn namespaces_in_use(&self, ns: &str) -> Vec<ObjRef> {
        let mut out = Vec::new();
        for (gr, t) in &self.tables {
            for ((n, name), _) in t.range::<Key, _>((ns.into(), "".into())..) {
                if n.as_ref() != ns {
                    break;
                }
                out.push(ObjRef {
                    gr: gr.clone(),
                    ns: n.clone(),
                    name: name.clone(),
                });
            }
        }
        out
    }

    /// Store a new version (`Some`) or remove the object (`None`). `value` gets its
    /// resourceVersion here. Returns the event, or None when deleting a missing object.
    pub fn commit(
        &mut self,
        gr: &GroupResource,
        ns: &str,
        name: &str,
        value: Option<Value>,
    ) -> Option<Arc<Event>> {
        let key: Key = (ns.into(), name.into());
        let prev = self.tables.get(gr).and_then(|t| t.get(&key)).cloned();
        let rv = self.rv + 1;
        let (kind, obj) = match value {
            Some(mut v) => {
                v["metadata"]["resourceVersion"] = Value::String(rv.to_string());
                let obj = Arc::new(make_obj(&v, rv));
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                self.tables
                    .entry(gr.clone())
                    .or_default()
                    .insert(key.clone(), obj.clone());
                (kind, obj)
            }
            None => {
                let old = prev.clone()?;
                self.tables.get_mut(gr).map(|t| t.remove(&key));
                let mut v = old.value();
                v["metadata"]["resourceVersion"] = Value::String(rv.to_string());
                (EventType::Deleted, Arc::new(make_obj(&v, rv)))
            }
        };
        self.rv = rv;
        let oref = ObjRef {
            gr: gr.clone(),
            ns: key.0.clone(),
            name: key.1.clone(),
        };
        if let Some(p) = &prev {
            for o in &p.owners {
                if let Some(set) = self.dependents.get_mut(o) {
                    set.remove(&oref);
                    if set.is_empty() {
                        self.dependents.remove(o);
                    }
                }
            }
            if kind == EventType::Deleted {
                self.uids.remove(&p.uid);
            }
        }
        if kind != EventType::Deleted {
            self.uids.insert(obj.uid.clone(), oref.clone());
            for o in &obj.owners {
                self.dependents
                    .entry(o.clone())
                    .or_default()
                    .insert(oref.clone());
            }
        }
        let ev = Arc::new(Event {
            rv,
            gr: gr.clone(),
            ns: key.0,
            name: key.1,
            kind,
            obj,
            prev,
        });
        self.log.push_back(ev.clone());
        while self.log.len() > self.log_cap {
            if let Some(e) = self.log.pop_front() {
                self.compacted = e.rv;
            }
        }
        Some(ev)
    }

    /// The retained events with resourceVersion > `rv`.
    pub fn since(&self, rv: u64) -> Since {
        if rv < self.compacted {
            return Since::TooOld {
                oldest: self.compacted + 1,
            };
        }
        let start = self.log.partition_point(|e| e.rv <= rv);
        Since::Events(self.log.range(start..).cloned().collect())
    }

    /// Can the state at `rv` still be reconstructed?
    pub fn snapshot_available(&self, rv: u64) -> bool {
        rv >= self.compacted && rv <= self.rv
    }

    /// The version of each key of `gr` that was current at `rv`, for keys changed since
    /// (None = did not exist then). Requires `snapshot_available(rv)`.
    pub fn changes_since(&self, gr: &GroupResource, rv: u64) -> HashMap<Key, Option<Arc<Obj>>> {
        let mut out = HashMap::new();
        let start = self.log.partition_point(|e| e.rv <= rv);
        for e in self.log.range(start..) {
            if &e.gr == gr {
                out.entry((e.ns.clone(), e.name.clone()))
                    .or_insert_with(|| e.prev.clone());
            }
        }
        out
    }

    pub fn object_count(&self) -> usize {
        self.tables.values().map(|t| t.len()).sum()
    }

    pub fn json_bytes(&self) -> usize {
        self.tables
            .values()
            .flat_map(|t| t.values())
            .map(|o| o.json.len())
            .sum()
    }
}

fn make_obj(v: &Value, rv: u64) -> Obj {
    let meta = &v["metadata"];
    let labels =
        crate::selectors::Labels::from_json(meta.get("labels").and_then(|l| l.as_object()));
    let owners = meta
        .get("ownerReferences")
        .and_then(|o| o.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(|u| u.as_str()).map(Arc::from))
                .collect()
        })
        .unwrap_or_default();
    // Exactly sized: serde_json's buffer doubles as it grows, and Bytes would keep it all.
    let json = serde_json::to_vec(v).unwrap_or_default().into_boxed_slice();
    Obj {
        json: Bytes::from(json),
        rv,
        uid: meta
            .get("uid")
            .and_then(|u| u.as_str())
            .unwrap_or_default()
            .into(),
        labels,
        owners,
        deleting: meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gr() -> GroupResource {
        GroupResource {
            group: "".into(),
            resource: "configmaps".into(),
        }
    }

    fn cm(name: &str, uid: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "uid": uid}})
    }

    #[test]
    fn versions_increase_and_history_is_bounded() {
        let mut s = Store::new(2);
        let a = s.commit(&gr(), "ns", "a", Some(cm("a", "1"))).unwrap();
        let b = s.commit(&gr(), "ns", "b", Some(cm("b", "2"))).unwrap();
        assert!(b.rv > a.rv);
        assert_eq!(
            s.get(&gr(), "ns", "a").unwrap().value()["metadata"]["resourceVersion"],
            a.rv.to_string()
        );
        let c = s.commit(&gr(), "ns", "a", None).unwrap();
        assert_eq!(c.kind, EventType::Deleted);
        assert!(s.get(&gr(), "ns", "a").is_none());
        assert!(matches!(s.since(a.rv - 1), Since::TooOld { .. }));
        match s.since(a.rv) {
            Since::Events(e) => {
                assert_eq!(e.iter().map(|e| e.rv).collect::<Vec<_>>(), vec![b.rv, c.rv])
            }
            Since::TooOld { .. } => panic!("history should cover {}", a.rv),
        }
    }

    #[test]
    fn snapshot_reconstructs_the_past() {
        let mut s = Store::new(100);
        s.commit(&gr(), "ns", "a", Some(cm("a", "1")));
        let at = s.current_rv();
        s.commit(&gr(), "ns", "b", Some(cm("b", "2")));
        s.commit(&gr(), "ns", "a", None);
        let changes = s.changes_since(&gr(), at);
        assert!(changes[&("ns".into(), "b".into())].is_none());
        assert!(changes[&("ns".into(), "a".into())].is_some());
    }

    #[test]
    fn dependents_follow_owner_references() {
        let mut s = Store::new(100);
        let mut child = cm("c", "2");
        child["metadata"]["ownerReferences"] =
            json!([{"uid": "1", "name": "a", "kind": "ConfigMap", "apiVersion": "v1"}]);
        s.commit(&gr(), "ns", "c", Some(child));
        assert_eq!(s.dependents_of("1").len(), 1);
        s.commit(&gr(), "ns", "c", None);
        assert!(s.dependents_of("1").is_empty());
        assert!(s.by_uid("2").is_none());
    }
}
