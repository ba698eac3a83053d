//! The controllers' copy of partnerkit's ConfigMaps and RoleBindings: not the objects but
//! digests of what the controllers compare, a few dozen bytes each.
//!
//! A tenant has five such children, so at 100,000 tenants the watches deliver half a million of
//! them. Keeping their bodies (labels, data, subjects) cost about 10 KB per tenant. Each one
//! here is a [`Child`]: its name, a hash of its resourceVersion, hashes of the labels that say
//! whose it is, a digest of the metadata partnerkit sets (its own labels, owner references), a
//! digest of the body (`data`, `roleRef` and `subjects`) and hashes of the `data` keys.
//!
//! Comparing what partnerkit would apply with a [`Child`] answers "equal" or "differs" without
//! the object ([`crate::controller::apply::apply_child`]): equal skips the write; a different
//! body over partnerkit's labels and keys is applied at once; anything else (a key or a label
//! someone else added, which partnerkit must strip first) reads the object from the API once.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher::Event;

use super::apply::is_our_label;
use crate::resources::{MANAGED_BY_VALUE, labels};

/// A 64-bit hash of anything hashable (std's SipHash; collisions are not a concern at the
/// scale of one object's fields, and a wrong "differs" only costs one read).
pub fn hash_of(v: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// A child kind: how its body is digested.
pub trait Digestible: Resource<DynamicType = ()> + serde::Serialize {
    /// A hash of the fields partnerkit applies, as the API server returns them (server defaults
    /// filled in, so that an applied object and its desired form give the same digest). Hashed
    /// from the fields directly: building a JSON value first was an eighth of a restart's CPU.
    fn body(&self) -> u64;
    /// The keys of `data` (a ConfigMap's); none for other kinds.
    fn data_keys(&self) -> Vec<&str> {
        Vec::new()
    }
}

impl Digestible for ConfigMap {
    fn body(&self) -> u64 {
        // `data` and `binaryData` are partnerkit's whole: an absent map and an empty one agree.
        let data = self.data.as_ref().filter(|d| !d.is_empty());
        let binary: Option<Vec<(&String, &[u8])>> = self
            .binary_data
            .as_ref()
            .filter(|d| !d.is_empty())
            .map(|d| d.iter().map(|(k, v)| (k, v.0.as_slice())).collect());
        hash_of((data, binary, self.immutable))
    }
    fn data_keys(&self) -> Vec<&str> {
        self.data
            .iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

impl Digestible for RoleBinding {
    fn body(&self) -> u64 {
        // The API server defaults a subject's apiGroup: rbac.authorization.k8s.io for User and
        // Group, none for ServiceAccount.
        let subjects: Vec<[&str; 4]> = self
            .subjects
            .iter()
            .flatten()
            .map(|s| {
                let group = match (s.api_group.as_deref(), s.kind.as_str()) {
                    (Some(g), _) if !g.is_empty() => g,
                    (_, "User" | "Group") => "rbac.authorization.k8s.io",
                    _ => "",
                };
                [
                    s.kind.as_str(),
                    group,
                    s.name.as_str(),
                    s.namespace.as_deref().unwrap_or(""),
                ]
            })
            .collect();
        let r = &self.role_ref;
        hash_of(([&r.api_group, &r.kind, &r.name], subjects))
    }
}

/// One child, as kept in [`Children`]: 88 bytes and nothing on the heap of its own (its name is
/// shared with every child of that name, [`Kids`]; one or no `data` key is kept inline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub name: Arc<str>,
    /// Hash of the resourceVersion.
    pub rv: u64,
    managed: bool,
    partner: Option<Tag>,
    tenant: Option<Tag>,
    /// Digest of partnerkit's labels (all of them, observed: an extra one is a difference) and
    /// the owner references (uid, controller).
    pub meta: u64,
    pub body: u64,
    /// Hashes of the keys of `data`, sorted.
    data_keys: Keys,
}

/// The hash of a label's value, never zero, so that `Option<Tag>` takes no more room than the
/// hash itself.
type Tag = NonZeroU64;

fn tag(value: &str) -> Tag {
    NonZeroU64::new(hash_of(value)).unwrap_or(NonZeroU64::MIN)
}

/// Sorted hashes of a ConfigMap's `data` keys: most have one (or none, as every RoleBinding),
/// kept inline; more take a slice of their own.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Keys {
    One(u64),
    Many(Box<[u64]>),
}

impl Keys {
    fn of(mut hashes: Vec<u64>) -> Keys {
        hashes.sort_unstable();
        match hashes[..] {
            [one] => Keys::One(one),
            _ => Keys::Many(hashes.into()),
        }
    }
    fn as_slice(&self) -> &[u64] {
        match self {
            Keys::One(k) => std::slice::from_ref(k),
            Keys::Many(ks) => ks,
        }
    }
}

fn label<'a>(m: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    m.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// What partnerkit applies with metadata `desired` can be compared with digests alone: it sets
/// no label outside partnerkit's own keys and no annotation.
pub fn comparable(desired: &ObjectMeta) -> bool {
    desired
        .labels
        .iter()
        .flatten()
        .all(|(k, _)| is_our_label(k))
        && desired.annotations.as_ref().is_none_or(|a| a.is_empty())
}

/// Every hash of `keys` is in `of` (sorted).
fn within(keys: &[u64], of: &[u64]) -> bool {
    keys.iter().all(|k| of.binary_search(k).is_ok())
}

/// Digest of the metadata partnerkit sets: its labels, the owner references.
fn meta_digest(m: &ObjectMeta) -> u64 {
    let ours: Vec<(&String, &String)> = m
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| is_our_label(k))
        .collect();
    let mut owners: Vec<(&str, bool)> = m
        .owner_references
        .iter()
        .flatten()
        .map(|o| (o.uid.as_str(), o.controller.unwrap_or(false)))
        .collect();
    owners.sort();
    hash_of((ours, owners))
}

impl Child {
    pub fn of<K: Digestible>(o: &K) -> Child {
        Child::named(o, o.meta().name.as_deref().unwrap_or_default().into())
    }
    /// [`Child::of`] with its name given (shared, [`Kids`]).
    fn named<K: Digestible>(o: &K, name: Arc<str>) -> Child {
        let m = o.meta();
        Child {
            name,
            rv: hash_of(m.resource_version.as_deref().unwrap_or_default()),
            managed: label(m, labels::MANAGED_BY) == Some(MANAGED_BY_VALUE),
            partner: label(m, labels::PARTNER).map(tag),
            tenant: label(m, labels::TENANT).map(tag),
            meta: meta_digest(m),
            body: o.body(),
            data_keys: Keys::of(o.data_keys().into_iter().map(hash_of).collect()),
        }
    }
    /// Every `data` key of this child is one of `desired`'s: nobody added one.
    pub fn keys_within(&self, desired: &Child) -> bool {
        within(self.data_keys.as_slice(), desired.data_keys.as_slice())
    }
    /// partnerkit's, for tenant `tenant`.
    pub fn is_tenant_child(&self, tenant: &str) -> bool {
        self.managed && self.tenant == Some(tag(tenant))
    }
    /// partnerkit's, for partner `partner` itself (not one of its tenants).
    pub fn is_partner_child(&self, partner: &str) -> bool {
        self.managed && self.partner == Some(tag(partner)) && self.tenant.is_none()
    }
}

/// A map fed by one watch: a re-list builds a new one and replaces the old at its end.
pub struct Listed<M> {
    live: RwLock<M>,
    building: Mutex<Option<M>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl<M: Default> Default for Listed<M> {
    fn default() -> Self {
        Listed {
            live: RwLock::default(),
            building: Mutex::default(),
            ready: tokio::sync::watch::channel(false).0,
        }
    }
}

impl<M: Default> Listed<M> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, M> {
        self.live.read().unwrap_or_else(|e| e.into_inner())
    }
    /// Resolves once the first list is in.
    pub async fn wait_until_ready(&self) -> bool {
        let mut rx = self.ready.subscribe();
        rx.wait_for(|r| *r).await.is_ok()
    }
    /// Apply a watch event: `put` adds or replaces an object, `remove` drops it.
    fn apply<K>(&self, ev: &Event<K>, put: impl Fn(&mut M, &K), remove: impl Fn(&mut M, &K)) {
        let building = || self.building.lock().unwrap_or_else(|e| e.into_inner());
        let live = || self.live.write().unwrap_or_else(|e| e.into_inner());
        match ev {
            Event::Init => *building() = Some(M::default()),
            Event::InitApply(o) => put(building().get_or_insert_with(M::default), o),
            Event::InitDone => {
                if let Some(b) = building().take() {
                    *live() = b;
                }
                self.ready.send_replace(true);
            }
            Event::Apply(o) => put(&mut live(), o),
            Event::Delete(o) => remove(&mut live(), o),
        }
    }
}

/// The children of one kind: by namespace, and the names they share. A tenant's ConfigMaps and
/// RoleBindings have the same few names in every workspace (`partnerkit-bizapps`, the
/// profiles'), so each name is kept once and its children point to it.
#[derive(Default)]
pub struct Kids {
    by_ns: HashMap<Box<str>, Vec<Child>>,
    names: HashSet<Arc<str>>,
}

impl Kids {
    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        let n: Arc<str> = name.into();
        self.names.insert(n.clone());
        n
    }
    fn put<K: Digestible>(&mut self, o: &K) {
        let m = o.meta();
        let name = self.name(m.name.as_deref().unwrap_or_default());
        let child = Child::named(o, name);
        let ns = m.namespace.as_deref().unwrap_or_default();
        if !self.by_ns.contains_key(ns) {
            self.by_ns.insert(ns.into(), Vec::new());
        }
        let v = self.by_ns.get_mut(ns).expect("inserted above");
        match v.iter_mut().find(|c| c.name == child.name) {
            Some(c) => *c = child,
            None => {
                // A namespace holds two or three children of a kind: a Vec's growth (to four)
                // would waste a quarter to half of 50,000 entries at 10,000 tenants.
                v.reserve_exact(1);
                v.push(child)
            }
        }
    }
    fn remove(&mut self, ns: &str, name: &str) {
        let Some(v) = self.by_ns.get_mut(ns) else {
            return;
        };
        v.retain(|c| &*c.name != name);
        if v.is_empty() {
            self.by_ns.remove(ns);
        }
        // The last child of that name gone, its name goes too. (Should a copy handed out
        // still hold it, the name stays until the next removal of a child of that name: at
        // most one name per name ever seen, never a child's worth.)
        if self
            .names
            .get(name)
            .is_some_and(|n| Arc::strong_count(n) == 1)
        {
            self.names.remove(name);
        }
    }
}

/// The children of one kind, by namespace, fed by its watch.
pub type Children = Listed<Kids>;

impl Children {
    pub fn get(&self, ns: &str, name: &str) -> Option<Child> {
        self.read()
            .by_ns
            .get(ns)?
            .iter()
            .find(|c| &*c.name == name)
            .cloned()
    }
    /// Every child in a namespace.
    pub fn in_namespace(&self, ns: &str) -> Vec<Child> {
        self.read().by_ns.get(ns).cloned().unwrap_or_default()
    }
    /// How many children are kept.
    pub fn len(&self) -> usize {
        self.read().by_ns.values().map(Vec::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// How many distinct names the children have.
    pub fn names(&self) -> usize {
        self.read().names.len()
    }
    /// Apply a watch event of the children's kind.
    pub fn update<K: Digestible>(&self, ev: &Event<K>) {
        self.apply(ev, Kids::put, |kids, o| {
            let m = o.meta();
            kids.remove(
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
            )
        })
    }
}

/// A Namespace as the controllers read it: whose it is (partnerkit's labels), whether it is
/// going away, and digests for comparing it with what partnerkit would apply. Every namespace
/// of the cluster is kept (a foreign one holding a workspace's name must be seen to be
/// refused), so this is small: about a hundred bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ns {
    pub rv: u64,
    pub deleting: bool,
    pub managed: bool,
    pub orphaned: bool,
    pub partner: Option<Box<str>>,
    pub tenant: Option<Box<str>>,
    /// Digest of partnerkit's labels, as [`Child::meta`] (namespaces have no owners).
    pub meta: u64,
    /// Hashes of partnerkit's label keys, sorted.
    pub label_keys: Box<[u64]>,
}

impl Ns {
    pub fn of(m: &ObjectMeta) -> Ns {
        let mut keys: Vec<u64> = m
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| is_our_label(k))
            .map(|(k, _)| hash_of(k))
            .collect();
        keys.sort_unstable();
        Ns {
            rv: hash_of(m.resource_version.as_deref().unwrap_or_default()),
            deleting: m.deletion_timestamp.is_some(),
            managed: label(m, labels::MANAGED_BY) == Some(MANAGED_BY_VALUE),
            orphaned: label(m, labels::ORPHANED) == Some("true"),
            partner: label(m, labels::PARTNER).map(Into::into),
            tenant: label(m, labels::TENANT).map(Into::into),
            meta: meta_digest(m),
            label_keys: keys.into(),
        }
    }
    /// Every partnerkit label key of this namespace is one of `desired`'s.
    pub fn keys_within(&self, desired: &Ns) -> bool {
        within(&self.label_keys, &desired.label_keys)
    }
}

/// Every Namespace, by name.
pub type Namespaces = Listed<HashMap<Box<str>, Ns>>;

impl Namespaces {
    pub fn get(&self, name: &str) -> Option<Ns> {
        self.read().get(name).cloned()
    }
    /// Apply a watch event of Namespaces (metadata).
    pub fn update<K: Resource>(&self, ev: &Event<K>) {
        let name = |o: &K| -> Box<str> { o.meta().name.as_deref().unwrap_or_default().into() };
        self.apply(
            ev,
            |map, o| {
                map.insert(name(o), Ns::of(o.meta()));
            },
            |map, o| {
                map.remove(&name(o));
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::{RoleRef, Subject};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn cm(labels: &[(&str, &str)], data: &[(&str, &str)], rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("c".into()),
                namespace: Some("ws".into()),
                resource_version: Some(rv.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    const OURS: &[(&str, &str)] = &[
        (labels::MANAGED_BY, "partnerkit"),
        (labels::PARTNER, "p"),
        (labels::TENANT, "t"),
    ];

    #[test]
    fn a_config_map_differs_exactly_where_partnerkit_compares() {
        let desired = Child::of(&cm(OURS, &[("a", "1")], ""));
        // The server's copy: a resourceVersion and someone else's label are no difference.
        let mut with_foreign = OURS.to_vec();
        with_foreign.push(("team", "x"));
        let observed = Child::of(&cm(&with_foreign, &[("a", "1")], "42"));
        assert_eq!((desired.meta, desired.body), (observed.meta, observed.body));
        assert_ne!(desired.rv, observed.rv);
        // A changed value: body differs, keys and labels do not.
        let changed = Child::of(&cm(OURS, &[("a", "2")], "43"));
        assert_ne!(changed.body, desired.body);
        assert_eq!(changed.meta, desired.meta);
        assert!(changed.keys_within(&desired));
        // A key someone added: not within; a key partnerkit adds now: within.
        let extra = Child::of(&cm(OURS, &[("a", "1"), ("b", "x")], "44"));
        assert!(!extra.keys_within(&desired));
        assert!(desired.keys_within(&extra));
        // A partnerkit label someone added: the metadata differs.
        let mut more = OURS.to_vec();
        more.push(("bizapps.partnerkit.io/crm", "enabled"));
        assert_ne!(
            Child::of(&cm(&more, &[("a", "1")], "45")).meta,
            desired.meta
        );
        // Empty data and no data are the same.
        let mut none = cm(OURS, &[], "");
        none.data = None;
        assert_eq!(Child::of(&none).body, Child::of(&cm(OURS, &[], "")).body);
    }

    #[test]
    fn a_role_binding_digest_fills_in_the_servers_defaults() {
        let rb = |group: Option<&str>, name: &str| RoleBinding {
            metadata: ObjectMeta {
                name: Some("rb".into()),
                owner_references: Some(vec![OwnerReference {
                    uid: "u1".into(),
                    controller: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: "admin".into(),
            },
            subjects: Some(vec![Subject {
                api_group: group.map(str::to_string),
                kind: "User".into(),
                name: name.into(),
                namespace: None,
            }]),
        };
        let desired = Child::of(&rb(Some("rbac.authorization.k8s.io"), "a@x"));
        assert_eq!(Child::of(&rb(None, "a@x")).body, desired.body);
        assert_ne!(Child::of(&rb(None, "b@x")).body, desired.body);
        let mut other_owner = rb(None, "a@x");
        other_owner.metadata.owner_references.as_mut().unwrap()[0].uid = "u2".into();
        assert_ne!(Child::of(&other_owner).meta, desired.meta);
    }

    #[test]
    fn ownership_is_read_from_the_labels() {
        let c = Child::of(&cm(OURS, &[], "1"));
        assert!(c.is_tenant_child("t"));
        assert!(!c.is_tenant_child("u"));
        assert!(
            !c.is_partner_child("p"),
            "a tenant's child is not the partner's own"
        );
        let p = Child::of(&cm(&OURS[..2], &[], "1"));
        assert!(p.is_partner_child("p"));
        assert!(!Child::of(&cm(&OURS[1..], &[], "1")).is_tenant_child("t"));
    }

    #[test]
    fn the_store_follows_the_watch_and_a_relist_replaces_it() {
        let s = Children::default();
        let mut a = cm(OURS, &[("k", "1")], "1");
        s.update(&Event::<ConfigMap>::Init);
        s.update(&Event::InitApply(a.clone()));
        assert!(
            s.get("ws", "c").is_none(),
            "nothing is live before the list is done"
        );
        s.update(&Event::<ConfigMap>::InitDone);
        assert_eq!(s.get("ws", "c"), Some(Child::of(&a)));
        a.data = Some([("k".to_string(), "2".to_string())].into());
        a.metadata.resource_version = Some("2".into());
        s.update(&Event::Apply(a.clone()));
        assert_eq!(s.in_namespace("ws"), vec![Child::of(&a)]);
        // A re-list that no longer has it (deleted while the watch was down).
        s.update(&Event::<ConfigMap>::Init);
        s.update(&Event::<ConfigMap>::InitDone);
        assert!(s.is_empty());
        s.update(&Event::Apply(a.clone()));
        s.update(&Event::Delete(a));
        assert!(s.in_namespace("ws").is_empty());
    }

    #[test]
    fn children_share_their_names_until_the_last_of_a_name_goes() {
        let s = Children::default();
        s.update(&Event::<ConfigMap>::Init);
        s.update(&Event::<ConfigMap>::InitDone);
        let in_ws = |ws: &str, name: &str, keys: &[(&str, &str)]| {
            let mut c = cm(OURS, keys, "1");
            c.metadata.namespace = Some(ws.into());
            c.metadata.name = Some(name.into());
            c
        };
        let a = in_ws("ws-a", "profile-default", &[("k", "1")]);
        let b = in_ws("ws-b", "profile-default", &[("k", "1"), ("l", "2")]);
        let other = in_ws("ws-b", "partnerkit-bizapps", &[]);
        for o in [&a, &b, &other] {
            s.update(&Event::Apply(o.clone()));
        }
        assert_eq!((s.len(), s.names()), (3, 2));
        let (ca, cb) = (
            s.get("ws-a", "profile-default").unwrap(),
            s.get("ws-b", "profile-default").unwrap(),
        );
        assert!(Arc::ptr_eq(&ca.name, &cb.name), "one name, kept once");
        // One key inline, two on the heap: the same answers either way.
        assert!(ca.keys_within(&cb) && !cb.keys_within(&ca));
        assert!(Child::of(&other).keys_within(&ca), "no keys are within any");
        drop((ca, cb));
        s.update(&Event::Delete(a));
        assert_eq!(
            (s.len(), s.names()),
            (2, 2),
            "ws-b still has one of that name"
        );
        s.update(&Event::Delete(b));
        assert_eq!(
            (s.len(), s.names()),
            (1, 1),
            "the last of that name took it along"
        );
        assert_eq!(s.get("ws-b", "partnerkit-bizapps"), Some(Child::of(&other)));
    }
    #[test]
    fn a_namespace_is_kept_as_whose_it_is_and_digests_of_partnerkits_labels() {
        let meta = |labels: &[(&str, &str)], deleting: bool| ObjectMeta {
            name: Some("tenant-t".into()),
            resource_version: Some("7".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            deletion_timestamp: deleting.then_some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            ),
            ..Default::default()
        };
        let desired = Ns::of(&meta(OURS, false));
        let mut observed = OURS.to_vec();
        observed.push(("kubernetes.io/metadata.name", "tenant-t"));
        let o = Ns::of(&meta(&observed, false));
        assert_eq!(o.meta, desired.meta, "labels of others are no difference");
        assert_eq!(
            (
                o.managed,
                o.partner.as_deref(),
                o.tenant.as_deref(),
                o.orphaned,
                o.deleting
            ),
            (true, Some("p"), Some("t"), false, false)
        );
        // An app switched off: its label is still on the namespace, and is not desired.
        observed.push(("bizapps.partnerkit.io/crm", "enabled"));
        let o = Ns::of(&meta(&observed, false));
        assert_ne!(o.meta, desired.meta);
        assert!(!o.keys_within(&desired));
        assert!(desired.keys_within(&o), "an app switched on needs no strip");
        observed.push((labels::ORPHANED, "true"));
        let o = Ns::of(&meta(&observed, true));
        assert!(o.orphaned && o.deleting);
    }
}
