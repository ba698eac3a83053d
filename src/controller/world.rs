//! The controllers' view of the cluster: one reflector per watched kind, indexes kept beside the
//! stores, and the routing of every watch event to the objects it concerns.
//!
//! Reconciles read only from here (never list the API), and every lookup is by key or through an
//! index keyed by namespace, name or partner, so a reconcile's cost depends on the size of one
//! partner, not on the number of tenants on the cluster.
//!
//! Every watched object is decoded without its managedFields ([`super::lean`]).
//!
//! Watched: Partners, Tenants, PartnerAdminInvites and PartnerAssignments (through
//! [`Guarded`], so one malformed object cannot stop a controller); Namespaces (metadata only, all of them: a foreign
//! namespace holding a workspace's name must be seen to be refused); ConfigMaps, RoleBindings,
//! ClusterRoles and ClusterRoleBindings labelled `app.kubernetes.io/managed-by=partnerkit` (the
//! bodies are kept: the controllers compare them with what they would apply and skip the PATCH
//! when nothing differs).

use std::collections::{BTreeSet, HashMap, hash_map::Entry};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::children::{Child, Children, Namespaces, Ns, hash_of};
use super::lean::{Guarded, Lean};
use crate::api::{Partner, PartnerAdminInvite, PartnerAssignment, Tenant};
use crate::config::Config;
use crate::resources::{self, TEMPLATE_NAME, labels};

pub type PartnerObj = Guarded<Partner>;
pub type TenantObj = Guarded<Tenant>;
pub type InviteObj = Guarded<PartnerAdminInvite>;
pub type AssignmentObj = Guarded<PartnerAssignment>;
pub type NamespaceMeta = PartialObjectMeta<Namespace>;

/// `app.kubernetes.io/managed-by=partnerkit`: the selector of every child watch.
pub fn managed_selector() -> String {
    format!("{}=partnerkit", labels::MANAGED_BY)
}

/// Keys (e.g. a namespace) to sets of members (e.g. names), rebuilt atomically on a re-list.
#[derive(Default)]
struct Index {
    live: HashMap<String, Members>,
    building: Option<HashMap<String, Members>>,
}

/// The members of one key, sorted. Most keys have one (a tenant name is rarely taken in two
/// partners), and a `BTreeSet` of one member still allocates a whole node (about 280 bytes):
/// one member is kept as itself.
enum Members {
    One(String),
    Many(BTreeSet<String>),
}

impl Members {
    fn insert(&mut self, member: String) {
        match self {
            Members::One(m) if *m == member => {}
            Members::One(m) => {
                let first = std::mem::take(m);
                *self = Members::Many(BTreeSet::from([first, member]));
            }
            Members::Many(s) => {
                s.insert(member);
            }
        }
    }
    /// Drop `member`; true when none is left.
    fn remove(&mut self, member: &str) -> bool {
        match self {
            Members::One(m) => m == member,
            Members::Many(s) => {
                s.remove(member);
                s.is_empty()
            }
        }
    }
    fn len(&self) -> usize {
        match self {
            Members::One(_) => 1,
            Members::Many(s) => s.len(),
        }
    }
    /// How many members sort before `key`, counted up to `limit`: cost O(limit).
    fn count_before(&self, key: &str, limit: usize) -> usize {
        self.iter()
            .take_while(|k| k.as_str() < key)
            .take(limit)
            .count()
    }
    /// Up to `n` members after `after` (all from the first when none), in order: cost O(n).
    fn after(&self, after: Option<&str>, n: usize) -> Vec<String> {
        use std::ops::Bound::{Excluded, Unbounded};
        match (self, after) {
            (Members::Many(s), Some(a)) => s
                .range::<str, _>((Excluded(a), Unbounded))
                .take(n)
                .cloned()
                .collect(),
            _ => self
                .iter()
                .filter(|m| after.is_none_or(|a| m.as_str() > a))
                .take(n)
                .cloned()
                .collect(),
        }
    }
    /// In order.
    fn iter(&self) -> impl Iterator<Item = &String> {
        let (one, many) = match self {
            Members::One(m) => (Some(m), None),
            Members::Many(s) => (None, Some(s)),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl Index {
    fn insert(&mut self, key: String, member: String) {
        let map = self.building.as_mut().unwrap_or(&mut self.live);
        Self::put(map, key, member);
    }
    fn put(map: &mut HashMap<String, Members>, key: String, member: String) {
        match map.entry(key) {
            Entry::Occupied(mut e) => e.get_mut().insert(member),
            Entry::Vacant(e) => {
                e.insert(Members::One(member));
            }
        }
    }
    fn remove(&mut self, key: &str, member: &str) {
        if let Some(set) = self.live.get_mut(key)
            && set.remove(member)
        {
            self.live.remove(key);
        }
    }
    fn get(&self, key: &str) -> Vec<String> {
        self.live
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
    /// Apply a watch event, given how an object maps to (key, member) pairs.
    fn apply<K: Resource>(&mut self, ev: &Event<K>, keys: impl Fn(&K) -> Vec<(String, String)>) {
        match ev {
            Event::Init => self.building = Some(HashMap::new()),
            Event::InitApply(o) => {
                let map = self.building.get_or_insert_with(HashMap::new);
                for (k, m) in keys(o) {
                    Self::put(map, k, m);
                }
            }
            Event::InitDone => {
                if let Some(b) = self.building.take() {
                    self.live = b;
                }
            }
            Event::Apply(o) => {
                for (k, m) in keys(o) {
                    self.insert(k, m);
                }
            }
            Event::Delete(o) => {
                for (k, m) in keys(o) {
                    self.remove(&k, &m);
                }
            }
        }
    }
}

#[derive(Default)]
struct Indexes {
    /// partner namespace -> tenant names
    tenants_by_ns: Index,
    /// tenant name -> namespaces holding a Tenant of that name
    tenants_by_name: Index,
    /// partner namespace -> its tenants but the template, oldest first ([`age_key`]): quota
    /// ranks and counts without scanning the partner's tenants
    tenants_by_age: Index,
    /// namespace -> invite names
    invites_by_ns: Index,
    /// tenant name -> names of the PartnerAssignments that move it
    assignments_by_tenant: Index,
    /// partner label -> managed ClusterRole names
    cluster_roles_by_partner: Index,
    /// partner label -> managed ClusterRoleBinding names
    cluster_role_bindings_by_partner: Index,
}

/// Read-only stores and indexes shared by both controllers.
pub struct World {
    pub partners: Store<PartnerObj>,
    pub tenants: Store<TenantObj>,
    pub invites: Store<InviteObj>,
    pub assignments: Store<AssignmentObj>,
    /// Every Namespace, as [`Ns`].
    pub namespaces: Namespaces,
    /// partnerkit's ConfigMaps and RoleBindings, as digests ([`Children`]).
    pub config_maps: Children,
    pub role_bindings: Children,
    pub cluster_roles: Store<ClusterRole>,
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    idx: RwLock<Indexes>,
    /// The versions partnerkit's own writes produced: their watch events need no reconcile.
    pub echoes: Arc<super::apply::Echoes>,
}

/// A tenant's place in its partner's age order: creationTimestamp (zero-padded seconds and
/// nanoseconds, so that the strings sort as the times do; none first), then the name.
fn age_key(meta: &ObjectMeta) -> String {
    let created = meta
        .creation_timestamp
        .as_ref()
        .map(|c| {
            format!(
                "{:020}{:09}",
                c.0.as_second().saturating_add(1 << 40),
                c.0.subsec_nanosecond()
            )
        })
        .unwrap_or_default();
    format!("{created}\0{}", meta.name.as_deref().unwrap_or_default())
}

fn ns_of<K: Resource>(o: &K) -> String {
    o.meta().namespace.clone().unwrap_or_default()
}

fn label<'a, K: Resource>(o: &'a K, key: &str) -> Option<&'a str> {
    o.meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

impl World {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Indexes> {
        self.idx.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Indexes> {
        self.idx.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn partner(&self, name: &str) -> Option<Arc<PartnerObj>> {
        self.partners.get(&ObjectRef::new(name))
    }
    pub fn tenant(&self, ns: &str, name: &str) -> Option<Arc<TenantObj>> {
        self.tenants.get(&ObjectRef::new(name).within(ns))
    }
    /// Whether a PartnerAssignment moves `tenant` from partner `from` to partner `to`.
    pub fn assigned(&self, tenant: &str, from: &str, to: &str) -> bool {
        self.read()
            .assignments_by_tenant
            .get(tenant)
            .iter()
            .filter_map(|n| self.assignments.get(&ObjectRef::new(n)))
            .any(|a| a.0.as_ref().is_ok_and(|a| a.moves(tenant, from, to)))
    }
    pub fn namespace(&self, name: &str) -> Option<Ns> {
        self.namespaces.get(name)
    }
    pub fn config_map(&self, ns: &str, name: &str) -> Option<Child> {
        self.config_maps.get(ns, name)
    }
    pub fn role_binding(&self, ns: &str, name: &str) -> Option<Child> {
        self.role_bindings.get(ns, name)
    }
    pub fn cluster_role(&self, name: &str) -> Option<Arc<ClusterRole>> {
        self.cluster_roles.get(&ObjectRef::new(name))
    }
    pub fn cluster_role_binding(&self, name: &str) -> Option<Arc<ClusterRoleBinding>> {
        self.cluster_role_bindings.get(&ObjectRef::new(name))
    }

    /// Every Tenant in a namespace (valid or not), by name.
    pub fn tenants_in(&self, ns: &str) -> Vec<Arc<TenantObj>> {
        let names = self.read().tenants_by_ns.get(ns);
        names.iter().filter_map(|n| self.tenant(ns, n)).collect()
    }
    /// How many Tenants a namespace holds, the template excluded.
    pub fn tenant_count(&self, ns: &str) -> usize {
        self.read()
            .tenants_by_age
            .live
            .get(ns)
            .map_or(0, |s| s.len())
    }
    /// How many of the namespace's tenants (template excluded) are older than `t` (by
    /// creationTimestamp, then name), counted up to `limit`: cost O(limit), not O(tenants).
    pub fn older_tenants(&self, ns: &str, tenant: &ObjectMeta, limit: usize) -> usize {
        let key = age_key(tenant);
        self.read()
            .tenants_by_age
            .live
            .get(ns)
            .map_or(0, |s| s.count_before(&key, limit))
    }
    /// Every Tenant named `name`, in any namespace.
    pub fn tenants_named(&self, name: &str) -> Vec<Arc<TenantObj>> {
        let namespaces = self.read().tenants_by_name.get(name);
        namespaces
            .iter()
            .filter_map(|ns| self.tenant(ns, name))
            .collect()
    }
    /// Up to `n` names of the Tenants in namespace `ns` after `after`, in order (a fan-out's
    /// next batch: [`super::fanout`]).
    pub(super) fn tenants_after(&self, ns: &str, after: Option<&str>, n: usize) -> Vec<String> {
        self.read()
            .tenants_by_ns
            .live
            .get(ns)
            .map(|m| m.after(after, n))
            .unwrap_or_default()
    }
    /// The namespaces that hold Tenants.
    fn tenant_namespaces(&self) -> Vec<String> {
        self.read().tenants_by_ns.live.keys().cloned().collect()
    }
    #[cfg(test)]
    pub(super) fn index_tenant_for_test(&self, ns: &str, name: &str) {
        self.write()
            .tenants_by_ns
            .insert(ns.to_string(), name.to_string());
    }
    pub fn invites_in(&self, ns: &str) -> Vec<Arc<InviteObj>> {
        let names = self.read().invites_by_ns.get(ns);
        names
            .iter()
            .filter_map(|n| self.invites.get(&ObjectRef::new(n).within(ns)))
            .collect()
    }
    /// Who administers the tenants of `partner` (in its namespace `ns`) that name no admins of
    /// their own: the Partner's admins and the e-mails of its namespace's accepted invites,
    /// sorted, each once.
    pub fn partner_admins(&self, partner: &Partner, ns: &str) -> Vec<String> {
        let mut v: Vec<String> = partner
            .spec
            .admins
            .iter()
            .map(|a| a.email.clone())
            .chain(self.accepted_invites(ns))
            .collect();
        v.sort();
        v.dedup();
        v
    }
    /// E-mails of the Accepted invites in a namespace, sorted.
    pub fn accepted_invites(&self, ns: &str) -> Vec<String> {
        self.accepted_invites_except(ns, None)
    }
    /// The same, leaving out the invite named `except`.
    pub fn accepted_invites_except(&self, ns: &str, except: Option<&str>) -> Vec<String> {
        let mut v: Vec<String> = self
            .invites_in(ns)
            .iter()
            .filter(|i| except.is_none_or(|n| i.name_any() != n))
            .filter_map(|i| i.0.as_ref().ok()?.accepted_email().map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }
    pub fn config_maps_in(&self, ns: &str) -> Vec<Child> {
        self.config_maps.in_namespace(ns)
    }
    pub fn role_bindings_in(&self, ns: &str) -> Vec<Child> {
        self.role_bindings.in_namespace(ns)
    }
    pub fn cluster_roles_of(&self, partner: &str) -> Vec<Arc<ClusterRole>> {
        let names = self.read().cluster_roles_by_partner.get(partner);
        names.iter().filter_map(|n| self.cluster_role(n)).collect()
    }
    pub fn cluster_role_bindings_of(&self, partner: &str) -> Vec<Arc<ClusterRoleBinding>> {
        let names = self.read().cluster_role_bindings_by_partner.get(partner);
        names
            .iter()
            .filter_map(|n| self.cluster_role_binding(n))
            .collect()
    }
}

/// Where reconcile requests go.
#[derive(Clone)]
pub struct Queues {
    pub partners: UnboundedSender<ObjectRef<PartnerObj>>,
    pub tenants: UnboundedSender<ObjectRef<TenantObj>>,
    pub invites: UnboundedSender<ObjectRef<InviteObj>>,
    /// Requests are sent only while this replica leads (a standby drops them: it reconciles
    /// everything once it takes over).
    pub active: Arc<std::sync::atomic::AtomicBool>,
    /// Fan-outs over many tenants, released to `tenants` a batch at a time by
    /// [`super::fanout::feed`].
    pub lane: Arc<super::fanout::Lane>,
}

impl Queues {
    fn on(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }
    /// Start sending requests, beginning with one for every Partner, Tenant and invite.
    pub fn activate(&self, world: &World) {
        self.active
            .store(true, std::sync::atomic::Ordering::Release);
        self.everything(world);
    }
    fn invite(&self, ns: &str, name: &str) {
        if self.on() {
            let _ = self.invites.unbounded_send(ObjectRef::new(name).within(ns));
        }
    }
    /// Every invite of a partner namespace.
    fn invites_of_ns(&self, world: &World, ns: &str) {
        for n in world.read().invites_by_ns.get(ns) {
            self.invite(ns, &n);
        }
    }
    fn partner(&self, name: &str) {
        if self.on() {
            let _ = self.partners.unbounded_send(ObjectRef::new(name));
        }
    }
    pub(super) fn tenant(&self, ns: &str, name: &str) {
        if self.on() {
            let _ = self.tenants.unbounded_send(ObjectRef::new(name).within(ns));
        }
    }
    /// Every tenant of a partner namespace, through the fan-out lane.
    fn tenants_of_ns(&self, ns: &str) {
        if self.on() {
            self.lane.push(ns);
        }
    }
    /// Every Partner, Tenant and invite (after a re-list of a child kind); the tenants through
    /// the fan-out lane.
    fn everything(&self, world: &World) {
        for p in world.partners.state() {
            self.partner(&p.name_any());
        }
        for i in world.invites.state() {
            self.invite(&ns_of(&*i), &i.name_any());
        }
        for ns in world.tenant_namespaces() {
            self.tenants_of_ns(&ns);
        }
    }
    /// The tenants of a partner namespace from the `rank`-th oldest on (template excluded).
    fn tenants_from_rank(&self, world: &World, ns: &str, rank: usize) {
        let names: Vec<String> = world
            .read()
            .tenants_by_age
            .live
            .get(ns)
            .map(|s| {
                s.iter()
                    .skip(rank)
                    .filter_map(|k| k.split_once('\0').map(|(_, n)| n.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        for n in names {
            self.tenant(ns, &n);
        }
    }
    /// Every Tenant named `name`, anywhere.
    fn tenants_named(&self, world: &World, name: &str) {
        self.tenants_named_except(world, name, None)
    }
    /// Every Tenant named `name` but the one in namespace `except`.
    fn tenants_named_except(&self, world: &World, name: &str, except: Option<&str>) {
        for ns in world.read().tenants_by_name.get(name) {
            if except != Some(ns.as_str()) {
                self.tenant(&ns, name);
            }
        }
    }
    /// The owner of a child carrying partnerkit's labels: its tenant, else its partner.
    fn owner_of<K: Resource>(&self, world: &World, config: &Config, o: &K) {
        match (label(o, labels::PARTNER), label(o, labels::TENANT)) {
            (Some(p), Some(t)) => {
                // The Tenant lives in its partner's namespace; after a move (adoption) the label
                // names the new partner, and while orphaned no Tenant exists: look both ways.
                self.tenant(&resources::names::partner_namespace(config, p), t);
                self.tenants_named(world, t);
            }
            (Some(p), None) => self.partner(p),
            _ => {}
        }
    }
}

/// The writers of the stores, consumed by [`spawn_reflectors`].
pub struct Writers {
    partners: Writer<PartnerObj>,
    tenants: Writer<TenantObj>,
    invites: Writer<InviteObj>,
    assignments: Writer<AssignmentObj>,
    cluster_roles: Writer<ClusterRole>,
    cluster_role_bindings: Writer<ClusterRoleBinding>,
}

/// Empty stores and their writers.
pub fn world() -> (Arc<World>, Writers) {
    let w = Writers {
        partners: Writer::default(),
        tenants: Writer::default(),
        invites: Writer::default(),
        assignments: Writer::default(),
        cluster_roles: Writer::default(),
        cluster_role_bindings: Writer::default(),
    };
    let world = World {
        partners: w.partners.as_reader(),
        tenants: w.tenants.as_reader(),
        invites: w.invites.as_reader(),
        assignments: w.assignments.as_reader(),
        namespaces: Namespaces::default(),
        config_maps: Children::default(),
        role_bindings: Children::default(),
        cluster_roles: w.cluster_roles.as_reader(),
        cluster_role_bindings: w.cluster_role_bindings.as_reader(),
        idx: RwLock::default(),
        echoes: Arc::default(),
    };
    (Arc::new(world), w)
}

impl World {
    /// Resolves once every store has been listed.
    pub async fn synced(&self) -> bool {
        self.partners.wait_until_ready().await.is_ok()
            && self.tenants.wait_until_ready().await.is_ok()
            && self.invites.wait_until_ready().await.is_ok()
            && self.assignments.wait_until_ready().await.is_ok()
            && self.namespaces.wait_until_ready().await
            && self.config_maps.wait_until_ready().await
            && self.role_bindings.wait_until_ready().await
            && self.cluster_roles.wait_until_ready().await.is_ok()
            && self.cluster_role_bindings.wait_until_ready().await.is_ok()
    }
}

/// Drive one reflector over every `K` of the cluster: every event updates the store, then `hook`
/// (indexes and routing).
/// Watch errors are logged and retried with the default backoff.
async fn drive<K>(
    kind: &'static str,
    client: Client,
    wc: watcher::Config,
    slim: fn(&mut K),
    mut store: impl FnMut(&Event<K>) + Send,
    mut hook: impl FnMut(&Event<K>) + Send,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    // managedFields (never decoded: `Lean`) and kubectl's last-applied-configuration are never
    // read here, and are most of a small object's size: dropping them keeps the stores
    // (hundreds of thousands of objects at scale) a fraction of the size.
    let lean: Api<Lean<K>> = Api::all(client);
    let mut stream = std::pin::pin!(watch(lean, wc).default_backoff());
    let trim = |Lean(mut o): Lean<K>| {
        if let Some(a) = o.meta_mut().annotations.as_mut() {
            a.remove(LAST_APPLIED);
            if a.is_empty() {
                o.meta_mut().annotations = None;
            }
        }
        slim(&mut o);
        o
    };
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                let ev = match ev {
                    Event::Init => Event::Init,
                    Event::InitApply(o) => Event::InitApply(trim(o)),
                    Event::InitDone => Event::InitDone,
                    Event::Apply(o) => Event::Apply(trim(o)),
                    Event::Delete(o) => Event::Delete(trim(o)),
                };
                store(&ev);
                hook(&ev);
            }
            Err(e) => tracing::warn!(kind, error = %e, "watch failed; retrying"),
        }
    }
}

/// A Tenant as the cache keeps it: its status's effective profiles, BizApps and admins (each
/// a list of names and sources, most of a cached Tenant's size: about 260 bytes a Tenant
/// without the profiles, 25 MiB at 100,000) are dropped, and the status's digest is kept in
/// their place, so that an unchanged status is still never written again. The status keeps
/// what the controllers read back: its conditions (a condition's lastTransitionTime is kept
/// while its status holds), the workspace and the observed generation. The portal computes
/// the lists it shows from the specs, as the controller does ([`World::partner_admins`]).
/// A condition that holds (`True`) keeps no reason and no message: nothing reads them (the
/// portal shows a False one's; a new condition keeps only the old one's status and time),
/// and they are 80 bytes a Tenant, 8 MiB at 100,000.
fn slim_tenant(o: &mut TenantObj) {
    if let Some(status) = o.0.as_mut().ok().and_then(|t| t.status.as_mut()) {
        status.observed_digest = Some(status.digest());
        status.effective_profiles = Vec::new();
        status.effective_biz_apps = Vec::new();
        status.effective_admins = Vec::new();
        for c in status.conditions.iter_mut().filter(|c| c.status == "True") {
            c.reason = String::new();
            c.message = String::new();
        }
    }
}

/// The key of a Tenant's [`Fp`] in the Tenant watch's map: a hash, not two strings per Tenant.
fn seen_key(ns: &str, name: &str) -> u64 {
    hash_of((ns, name))
}

/// The workspace a Tenant's status names.
fn workspace_of(o: &TenantObj) -> Option<&str> {
    o.0.as_ref()
        .ok()
        .and_then(|t| t.status.as_ref())
        .and_then(|s| s.workspace.as_deref())
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Fingerprint of what dependants of an object care about; fan out only when it changes. Kept
/// per object (every Tenant), so it is two hashes, not copies of the uid and the workspace.
#[derive(PartialEq, Eq, Clone, Copy)]
struct Fp {
    /// The uid, whether it is being deleted, the generation and the `extra`.
    all: u64,
    /// The uid and whether it is being deleted: which object this is, and whether it is going.
    life: u64,
}

fn fp<K: Resource>(o: &K, extra: Option<&str>) -> Fp {
    let m = o.meta();
    let life = (m.uid.as_deref(), m.deletion_timestamp.is_some());
    Fp {
        all: hash_of((life, m.generation, extra)),
        life: hash_of(life),
    }
}

/// A reflector store's writer as the sink of [`drive`].
fn store<K>(mut writer: Writer<K>) -> impl FnMut(&Event<K>) + Send
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    move |ev| writer.apply_watcher_event(ev)
}

/// A [`Children`] of the world as the sink of [`drive`].
fn digests<K: super::children::Digestible>(
    world: Arc<World>,
    children: fn(&World) -> &Children,
) -> impl FnMut(&Event<K>) + Send {
    move |ev| children(&world).update(ev)
}

/// Start every reflector; returns their tasks. Events are routed to `queues`.
pub fn spawn_reflectors(
    client: &Client,
    config: Arc<Config>,
    world: Arc<World>,
    w: Writers,
    queues: Queues,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    let managed = watcher::Config::default().labels(&managed_selector());
    set.spawn(super::fanout::feed(world.clone(), queues.clone()));

    // Partners: reconcile the partner; its tenants when its spec (generation) or existence changes.
    {
        let (world, q) = (world.clone(), queues.clone());
        let config = config.clone();
        let mut seen: HashMap<String, Fp> = HashMap::new();
        set.spawn(drive::<PartnerObj>(
            "Partner",
            client.clone(),
            watcher::Config::default(),
            |_| {},
            store(w.partners),
            move |ev| {
                let route = |o: &PartnerObj, seen: &mut HashMap<String, Fp>, deleted: bool| {
                    let name = o.name_any();
                    if deleted {
                        world.echoes.forget::<Partner>(o.meta());
                        q.partner(&name);
                    } else if !world.echoes.is_echo::<Partner>(o.meta()) {
                        q.partner(&name);
                    }
                    let ns = resources::names::partner_namespace(&config, &name);
                    let now = fp(o, None);
                    let changed = if deleted {
                        seen.remove(&name);
                        true
                    } else {
                        seen.insert(name, now) != Some(now)
                    };
                    if changed {
                        q.tenants_of_ns(&ns);
                        q.invites_of_ns(&world, &ns);
                    }
                };
                match ev {
                    Event::Apply(o) => route(o, &mut seen, false),
                    Event::Delete(o) => route(o, &mut seen, true),
                    Event::InitApply(o) => {
                        seen.insert(o.name_any(), fp(o, None));
                    }
                    Event::InitDone => {
                        for o in world.partners.state() {
                            q.partner(&o.name_any());
                        }
                    }
                    Event::Init => {}
                }
            },
        ));
    }

    // Tenants: the tenant; its partner (count, workspaces); same-named tenants elsewhere (name
    // uniqueness); when it is the template, every tenant of the partner; when it comes or goes
    // and the partner has a quota, its siblings (quota rank).
    {
        let (world, q) = (world.clone(), queues.clone());
        let config = config.clone();
        // By the hash of (namespace, name): one entry per Tenant.
        let mut seen: HashMap<u64, Fp> = HashMap::new();
        set.spawn(drive::<TenantObj>(
            "Tenant",
            client.clone(),
            watcher::Config::default(),
            slim_tenant,
            store(w.tenants),
            move |ev| {
                {
                    let mut idx = world.write();
                    idx.tenants_by_ns
                        .apply(ev, |o: &TenantObj| vec![(ns_of(o), o.name_any())]);
                    idx.tenants_by_name
                        .apply(ev, |o: &TenantObj| vec![(o.name_any(), ns_of(o))]);
                    idx.tenants_by_age.apply(ev, |o: &TenantObj| {
                        if o.name_any() == TEMPLATE_NAME {
                            vec![]
                        } else {
                            vec![(ns_of(o), age_key(o.meta()))]
                        }
                    });
                }
                let route = |o: &TenantObj, seen: &mut HashMap<u64, Fp>, deleted: bool| {
                    let (ns, name) = (ns_of(o), o.name_any());
                    let key = seen_key(&ns, &name);
                    let now = fp(o, workspace_of(o));
                    let before = if deleted {
                        seen.remove(&key)
                    } else {
                        seen.insert(key, now)
                    };
                    if deleted {
                        world.echoes.forget::<Tenant>(o.meta());
                    } else if !world.echoes.is_echo::<Tenant>(o.meta()) {
                        q.tenant(&ns, &name);
                    }
                    if before.as_ref() == Some(&now) && !deleted {
                        return; // a status write of ours, or metadata only: nobody else cares
                    }
                    let partner = resources::partner_of_namespace(&config, &ns);
                    if let Some(p) = &partner {
                        q.partner(p);
                    }
                    if name == TEMPLATE_NAME {
                        q.tenants_of_ns(&ns);
                        return;
                    }
                    let came_or_went = deleted || before.map(|b| b.life) != Some(now.life);
                    if came_or_went {
                        q.tenants_named(&world, &name);
                        let quota = partner.and_then(|p| world.partner(&p)).and_then(|p| {
                            p.0.as_ref()
                                .ok()
                                .and_then(|p| p.spec.entitlements.max_tenants)
                        });
                        if let Some(max) = quota {
                            // Only the tenants at the quota's edge can change side.
                            q.tenants_from_rank(&world, &ns, (max as usize).saturating_sub(1));
                        }
                    }
                };
                match ev {
                    Event::Apply(o) => route(o, &mut seen, false),
                    Event::Delete(o) => route(o, &mut seen, true),
                    Event::InitApply(o) => {
                        seen.insert(seen_key(&ns_of(o), &o.name_any()), fp(o, workspace_of(o)));
                    }
                    Event::InitDone => {
                        for o in world.tenants.state() {
                            q.tenant(&ns_of(&*o), &o.name_any());
                            if let Some(p) = resources::partner_of_namespace(&config, &ns_of(&*o)) {
                                q.partner(&p);
                            }
                        }
                    }
                    Event::Init => {}
                }
            },
        ));
    }

    // Invites: the invite; when the set of accepted e-mails of its namespace changes (accepted,
    // deleted after acceptance), the partner, its tenants (effective admins) and the other
    // invites (AlreadyAdmin). An invite's own status writes (Sent, Retrying) reach only itself,
    // so delivering invitations costs nothing at 10,000 tenants.
    {
        let (world, q) = (world.clone(), queues.clone());
        let config = config.clone();
        let mut seen: HashMap<(String, String), String> = HashMap::new();
        let accepted = |o: &InviteObj| {
            o.0.as_ref()
                .ok()
                .and_then(|i| i.accepted_email())
                .map(str::to_string)
        };
        let mut listed = false;
        set.spawn(drive::<InviteObj>(
            "PartnerAdminInvite",
            client.clone(),
            watcher::Config::default(),
            |_| {},
            store(w.invites),
            move |ev| {
                world
                    .write()
                    .invites_by_ns
                    .apply(ev, |o: &InviteObj| vec![(ns_of(o), o.name_any())]);
                let grants_changed = |ns: &str| {
                    if let Some(p) = resources::partner_of_namespace(&config, ns) {
                        q.partner(&p);
                        q.tenants_of_ns(ns);
                    }
                    q.invites_of_ns(&world, ns);
                };
                match ev {
                    Event::Apply(o) | Event::Delete(o) => {
                        let deleted = matches!(ev, Event::Delete(_));
                        let key = (ns_of(o), o.name_any());
                        let now = if deleted { None } else { accepted(o) };
                        if !deleted {
                            q.invite(&key.0, &key.1);
                        }
                        let before = match &now {
                            Some(email) => seen.insert(key.clone(), email.clone()),
                            None => seen.remove(&key),
                        };
                        if before != now {
                            grants_changed(&key.0);
                        }
                    }
                    Event::Init => {}
                    Event::InitApply(_) => {}
                    Event::InitDone => {
                        // Rebuild what is accepted; a re-list may hide deletions and acceptances.
                        let mut fresh = HashMap::new();
                        for o in world.invites.state() {
                            let key = (ns_of(&*o), o.name_any());
                            q.invite(&key.0, &key.1);
                            if let Some(e) = accepted(&o) {
                                fresh.insert(key, e);
                            }
                        }
                        if listed {
                            let changed: BTreeSet<String> = seen
                                .iter()
                                .filter(|(k, v)| fresh.get(*k) != Some(*v))
                                .chain(fresh.iter().filter(|(k, v)| seen.get(*k) != Some(*v)))
                                .map(|((ns, _), _)| ns.clone())
                                .collect();
                            for ns in changed {
                                grants_changed(&ns);
                            }
                        }
                        seen = fresh;
                        listed = true;
                    }
                }
            },
        ));
    }

    // PartnerAssignments: the Tenants of the company they move (which may now adopt its
    // retained workspace, or no longer may).
    {
        let (world, q) = (world.clone(), queues.clone());
        let mut listed = false;
        set.spawn(drive::<AssignmentObj>(
            "PartnerAssignment",
            client.clone(),
            watcher::Config::default(),
            |_| {},
            store(w.assignments),
            move |ev| {
                let tenant = |o: &AssignmentObj| o.0.as_ref().ok().map(|a| a.spec.tenant.clone());
                world
                    .write()
                    .assignments_by_tenant
                    .apply(ev, |o: &AssignmentObj| {
                        tenant(o)
                            .map(|t| vec![(t, o.name_any())])
                            .unwrap_or_default()
                    });
                match ev {
                    Event::Apply(o) | Event::Delete(o) => {
                        if let Some(t) = tenant(o) {
                            q.tenants_named(&world, &t);
                        }
                    }
                    Event::InitDone if listed => q.everything(&world),
                    Event::InitDone => listed = true,
                    _ => {}
                }
            },
        ));
    }

    // Namespaces (metadata): a workspace -> its tenant(s); a partner namespace -> its partner.
    {
        let (world, q) = (world.clone(), queues.clone());
        let config = config.clone();
        let mut listed = false;
        set.spawn(drive::<NamespaceMeta>(
            "Namespace",
            client.clone(),
            watcher::Config::default(),
            |_| {},
            {
                let world = world.clone();
                move |ev: &Event<NamespaceMeta>| world.namespaces.update(ev)
            },
            move |ev| {
                let route = |o: &NamespaceMeta| {
                    let name = o.name_any();
                    if let Some(t) = label(o, labels::TENANT) {
                        q.tenants_named(&world, t);
                        if let Some(p) = label(o, labels::PARTNER) {
                            q.partner(p);
                        }
                    }
                    if let Some(t) = name.strip_prefix(&config.namespace_prefixes.tenant) {
                        q.tenants_named(&world, t);
                    }
                    if let Some(p) = resources::partner_of_namespace(&config, &name) {
                        q.partner(&p);
                    }
                };
                match ev {
                    // partnerkit's own write, which its writer has accounted for. But a Tenant
                    // of the same name in another partner (a company being moved) waits for
                    // exactly such a write (its workspace orphaned by the old Tenant's
                    // finalizer), and may have looked before this event arrived: tell it.
                    Event::Apply(o) if world.echoes.is_echo::<Namespace>(&o.metadata) => {
                        if let Some(t) = label(o, labels::TENANT) {
                            let writer = label(o, labels::PARTNER)
                                .map(|p| resources::names::partner_namespace(&config, p));
                            q.tenants_named_except(&world, t, writer.as_deref());
                        }
                    }
                    Event::Apply(o) => route(o),
                    Event::Delete(o) => {
                        world.echoes.forget::<Namespace>(&o.metadata);
                        route(o)
                    }
                    // A re-list after a lost watch may hide deletions: look at everything again.
                    Event::InitDone if listed => q.everything(&world),
                    Event::InitDone => listed = true,
                    _ => {}
                }
            },
        ));
    }

    // Children: their owner.
    macro_rules! children {
        ($kind:literal, $ty:ty, $store:expr, $index:expr) => {{
            let (world, q) = (world.clone(), queues.clone());
            let config = config.clone();
            let mut listed = false;
            set.spawn(drive::<$ty>(
                $kind,
                client.clone(),
                managed.clone(),
                |_| {},
                $store,
                move |ev| {
                    ($index)(&mut world.write(), ev);
                    match ev {
                        Event::Apply(o) if world.echoes.is_echo::<$ty>(o.meta()) => {}
                        Event::Apply(o) => q.owner_of(&world, &config, o),
                        Event::Delete(o) => {
                            world.echoes.forget::<$ty>(o.meta());
                            q.owner_of(&world, &config, o)
                        }
                        Event::InitDone if listed => q.everything(&world),
                        Event::InitDone => listed = true,
                        _ => {}
                    }
                },
            ));
        }};
    }
    children!(
        "ConfigMap",
        ConfigMap,
        digests(world.clone(), |w| &w.config_maps),
        |_: &mut Indexes, _: &Event<ConfigMap>| {}
    );
    children!(
        "RoleBinding",
        RoleBinding,
        digests(world.clone(), |w| &w.role_bindings),
        |_: &mut Indexes, _: &Event<RoleBinding>| {}
    );
    children!(
        "ClusterRole",
        ClusterRole,
        store(w.cluster_roles),
        |idx: &mut Indexes, ev: &Event<ClusterRole>| idx.cluster_roles_by_partner.apply(
            ev,
            |o: &ClusterRole| label(o, labels::PARTNER)
                .map(|p| vec![(p.to_string(), o.name_any())])
                .unwrap_or_default()
        )
    );
    children!(
        "ClusterRoleBinding",
        ClusterRoleBinding,
        store(w.cluster_role_bindings),
        |idx: &mut Indexes, ev: &Event<ClusterRoleBinding>| idx
            .cluster_role_bindings_by_partner
            .apply(ev, |o: &ClusterRoleBinding| label(o, labels::PARTNER)
                .map(|p| vec![(p.to_string(), o.name_any())])
                .unwrap_or_default())
    );
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EffectiveProfile, Source, TenantStatus};

    /// An index key holds one member as itself, and more in order; removing the last member
    /// drops the key, and a re-list replaces everything at once.
    #[test]
    fn an_index_keeps_its_members_sorted_whether_one_or_many() {
        let mut idx = Index::default();
        idx.insert("acme".into(), "m".into());
        idx.insert("acme".into(), "m".into());
        assert!(matches!(idx.live["acme"], Members::One(_)));
        assert_eq!(idx.get("acme"), ["m"]);
        idx.insert("acme".into(), "b".into());
        idx.insert("acme".into(), "z".into());
        assert_eq!(idx.get("acme"), ["b", "m", "z"]);
        assert_eq!(idx.live["acme"].len(), 3);
        assert_eq!(idx.live["acme"].count_before("n", 10), 2);
        assert_eq!(idx.live["acme"].count_before("n", 1), 1);
        assert_eq!(idx.live["acme"].count_before("a", 10), 0);
        idx.remove("acme", "m");
        idx.remove("acme", "nothing");
        assert_eq!(idx.get("acme"), ["b", "z"]);
        idx.remove("acme", "b");
        idx.remove("acme", "z");
        assert!(!idx.live.contains_key("acme"), "an empty key is dropped");
        idx.insert("one".into(), "x".into());
        idx.remove("one", "x");
        assert!(idx.get("one").is_empty());

        // A re-list: built aside, then swapped in whole.
        idx.insert("kept".into(), "k".into());
        idx.building = Some(HashMap::new());
        idx.insert("new".into(), "n".into());
        assert_eq!(
            idx.get("kept"),
            ["k"],
            "the live index serves until the list is in"
        );
        assert!(idx.get("new").is_empty());
        idx.live = idx.building.take().unwrap();
        assert!(idx.get("kept").is_empty());
        assert_eq!(idx.get("new"), ["n"]);
    }

    /// A Tenant's fingerprint changes with its generation and workspace; its `life` only when
    /// it is another object (uid) or starts going away.
    #[test]
    fn a_fingerprint_tells_a_new_spec_from_a_new_life() {
        let spec = serde_json::from_value(serde_json::json!({"displayName": "Globex"})).unwrap();
        let mut t = Tenant::new("globex", spec);
        t.metadata.uid = Some("u1".into());
        t.metadata.generation = Some(1);
        let a = fp(&t, Some("ws"));
        assert!(a == fp(&t, Some("ws")));
        let moved = fp(&t, Some("other"));
        assert!(moved.all != a.all && moved.life == a.life);
        t.metadata.generation = Some(2);
        let edited = fp(&t, Some("ws"));
        assert!(edited.all != a.all && edited.life == a.life);
        t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        let going = fp(&t, Some("ws"));
        assert!(going.life != a.life);
        t.metadata.deletion_timestamp = None;
        t.metadata.uid = Some("u2".into());
        assert!(
            fp(&t, Some("ws")).life != a.life,
            "a new Tenant of the same name"
        );
    }

    fn cached(status: &TenantStatus) -> TenantStatus {
        let spec = serde_json::from_value(serde_json::json!({"displayName": "Globex"})).unwrap();
        let mut t = Tenant::new("globex", spec);
        t.status = Some(status.clone());
        let mut o = Guarded(Ok(t));
        slim_tenant(&mut o);
        o.0.unwrap().status.unwrap()
    }

    #[test]
    fn a_cached_tenant_drops_its_effective_profiles_and_still_compares_by_digest() {
        let profile = |ssid: &str| EffectiveProfile {
            name: "wifi".into(),
            data: [("ssid".to_string(), ssid.to_string())].into(),
            sources: [("ssid".to_string(), Source::Template)].into(),
        };
        let status = TenantStatus {
            observed_generation: Some(3),
            workspace: Some("tenant-globex".into()),
            effective_profiles: vec![profile("guest")],
            ..TenantStatus::default()
        };
        let slim = cached(&status);
        assert!(slim.effective_profiles.is_empty());
        assert_eq!(slim.workspace, status.workspace);
        assert_eq!(slim.observed_generation, status.observed_generation);
        assert!(
            status.same_as(&slim),
            "the same status is not written again"
        );
        let mut changed = status.clone();
        changed.effective_profiles = vec![profile("visitors")];
        assert!(
            !changed.same_as(&slim),
            "a changed profile value is written"
        );
        changed.effective_profiles.clear();
        assert!(!changed.same_as(&slim), "a dropped profile is written");
        assert!(status.same_as(&status.clone()), "uncached: plain equality");
    }

    /// A pass whose copy of a Tenant is older than the cache's does not write a status the
    /// cache's copy already says: partnerkit's own write, made by a pass that ended after this
    /// one took its copy, whose echo has since dropped the memo entry. A status the newer copy
    /// does not say is written. (The API answers 500 here: any request is counted.)
    #[tokio::test]
    async fn a_status_a_newer_cached_copy_already_says_is_not_written_again() {
        use std::sync::atomic::Ordering;
        let (client, requests) = super::super::counting_client();
        let (world, mut writers) = super::world();
        let ctx = super::super::Ctx {
            client: client.clone(),
            config: Arc::new(Config::from_yaml("catalog: [{name: mail}]\n", "test").unwrap()),
            world: world.clone(),
            recorder: kube::runtime::events::Recorder::new(
                client.clone(),
                kube::runtime::events::Reporter {
                    controller: "test".into(),
                    instance: None,
                },
            ),
            telemetry: crate::telemetry::Telemetry::new(),
            invalid_reported: Default::default(),
            memo: super::super::apply::Memo::new(world.echoes.clone()),
            deliveries: Default::default(),
        };
        let ready: k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition =
            serde_json::from_value(serde_json::json!({
                "type": "Ready", "status": "True", "reason": "Reconciled", "message": "up to date",
                "lastTransitionTime": "2026-12-07T00:00:00Z", "observedGeneration": 1,
            }))
            .unwrap();
        let profile = |ssid: &str| EffectiveProfile {
            name: "wifi".into(),
            data: [("ssid".to_string(), ssid.to_string())].into(),
            sources: [("ssid".to_string(), Source::Template)].into(),
        };
        let status = |ssid: &str| TenantStatus {
            observed_generation: Some(1),
            conditions: vec![ready.clone()],
            workspace: Some("tenant-globex".into()),
            effective_profiles: vec![profile(ssid)],
            ..TenantStatus::default()
        };
        let tenant = |rv: &str, status: TenantStatus| {
            let spec =
                serde_json::from_value(serde_json::json!({"displayName": "Globex"})).unwrap();
            let mut t = Tenant::new("globex", spec);
            t.metadata.namespace = Some("partner-a".into());
            t.metadata.generation = Some(1);
            t.metadata.resource_version = Some(rv.into());
            t.status = Some(status);
            t
        };
        // This pass's copy: version 1, the profile's old value.
        let copy = tenant("1", status("guest"));
        // The cache: version 2, partnerkit's write of the new value, as the watch stores it.
        let mut newer = Guarded(Ok(tenant("2", status("visitors"))));
        slim_tenant(&mut newer);
        writers.tenants.apply_watcher_event(&Event::Apply(newer));
        let api: Api<Tenant> = Api::namespaced(client.clone(), "partner-a");
        let readiness = || super::super::apply::Readiness {
            ready: true,
            reason: "Reconciled",
            message: "up to date".into(),
        };
        let write = |ssid: &str| {
            super::super::apply::write_status(
                &ctx,
                &api,
                &copy,
                copy.status.as_ref(),
                status(ssid),
                readiness(),
            )
        };
        write("visitors").await.unwrap();
        assert_eq!(
            requests.load(Ordering::SeqCst),
            0,
            "the cache says it already"
        );
        assert!(
            write("staff").await.is_err(),
            "written (the API answers 500)"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            1,
            "a status the cache does not say"
        );
    }

    /// The BizApps and admins go too; the conditions stay (a transition time is kept while
    /// its condition holds), without the reason and message of one that holds; a change to
    /// either list, or to a condition, is still a change.
    #[test]
    fn a_cached_tenant_drops_its_apps_and_admins_and_keeps_its_conditions() {
        use crate::api::{EffectiveAdmin, EffectiveBizApp};
        let ready = serde_json::from_value(serde_json::json!({
            "type": "Ready", "status": "True", "reason": "Reconciled", "message": "up to date",
            "lastTransitionTime": "2026-12-07T00:00:00Z", "observedGeneration": 1,
        }))
        .unwrap();
        let app = |on: bool| EffectiveBizApp {
            name: "crm".into(),
            enabled: on,
            source: Source::Template,
        };
        let status = TenantStatus {
            observed_generation: Some(1),
            conditions: vec![ready],
            effective_biz_apps: vec![app(true)],
            effective_admins: vec![EffectiveAdmin {
                email: "it@globex.example".into(),
                source: Source::Tenant,
            }],
            ..TenantStatus::default()
        };
        let slim = cached(&status);
        assert!(slim.effective_biz_apps.is_empty() && slim.effective_admins.is_empty());
        let (kept, was) = (&slim.conditions[0], &status.conditions[0]);
        assert_eq!(
            (
                &kept.type_,
                &kept.status,
                &kept.last_transition_time,
                kept.observed_generation
            ),
            (
                &was.type_,
                &was.status,
                &was.last_transition_time,
                was.observed_generation
            )
        );
        assert_eq!((kept.reason.as_str(), kept.message.as_str()), ("", ""));
        assert!(status.same_as(&slim));
        let mut changed = status.clone();
        changed.conditions[0].message = "workspace tenant-globex is up to date".into();
        assert!(!changed.same_as(&slim), "a new message is written");
        // A condition that does not hold keeps why: the portal shows it.
        let mut failing = status.clone();
        failing.conditions[0].status = "False".into();
        failing.conditions[0].reason = "QuotaExceeded".into();
        let slim_failing = cached(&failing);
        assert_eq!(slim_failing.conditions, failing.conditions);
        assert!(failing.same_as(&slim_failing));
        let mut changed = status.clone();
        changed.effective_biz_apps = vec![app(false)];
        assert!(!changed.same_as(&slim), "an app switched off is written");
        let mut changed = status.clone();
        changed.effective_admins.clear();
        assert!(!changed.same_as(&slim), "an admin gone is written");
    }
}
