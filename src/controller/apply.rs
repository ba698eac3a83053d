//! Writing to the API: server-side apply only when the observed object differs from what would
//! be applied, finalizers by JSON patch with a `test` guard, deletes that tolerate absence, and
//! status conditions that move `lastTransitionTime` only when their status flips.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Error;
use super::children::{Child, Digestible, Ns, comparable, hash_of};
use crate::api::json_digest;
use crate::resources::{FIELD_MANAGER, labels};

/// Label keys partnerkit owns outright: on these, observed and desired must agree exactly
/// (an extra one means a label partnerkit applied before and no longer wants).
pub fn is_our_label(key: &str) -> bool {
    key == labels::MANAGED_BY
        || key.starts_with("partnerkit.io/")
        || key.starts_with(labels::BIZAPP_PREFIX)
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// `desired` is contained in `observed`: every field desired is there with the same value (the
/// server may add defaults and other managers' fields); lists match element by element.
pub fn subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (d, o) if empty(d) && empty(o) => true,
        (Value::Object(d), Value::Object(o)) => d
            .iter()
            .all(|(k, dv)| subset(dv, o.get(k).unwrap_or(&Value::Null))),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(a, b)| subset(a, b))
        }
        (d, o) => d == o,
    }
}

/// Labels and annotations of `desired` are in `observed`, and no label of partnerkit's own
/// prefixes is on `observed` that `desired` lacks.
pub fn meta_matches(desired: &ObjectMeta, observed: &ObjectMeta) -> bool {
    let none = BTreeMap::new();
    let (dl, ol) = (
        desired.labels.as_ref().unwrap_or(&none),
        observed.labels.as_ref().unwrap_or(&none),
    );
    let (da, oa) = (
        desired.annotations.as_ref().unwrap_or(&none),
        observed.annotations.as_ref().unwrap_or(&none),
    );
    dl.iter().all(|(k, v)| ol.get(k) == Some(v))
        && ol
            .keys()
            .filter(|k| is_our_label(k))
            .all(|k| dl.contains_key(k))
        && da.iter().all(|(k, v)| oa.get(k) == Some(v))
        && desired.owner_references.iter().flatten().all(|d| {
            observed
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == d.uid && o.controller == d.controller)
        })
}

/// Whether `observed` already is what applying `desired` would make it. Top-level maps that
/// partnerkit owns whole (`data`, `binaryData` of its ConfigMaps) must match exactly.
pub fn matches<K: Resource + Serialize>(desired: &K, observed: &K) -> bool {
    if !meta_matches(desired.meta(), observed.meta()) {
        return false;
    }
    let (Ok(Value::Object(d)), Ok(o)) = (
        serde_json::to_value(desired),
        serde_json::to_value(observed),
    ) else {
        return false;
    };
    d.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "apiVersion" | "kind" | "status"))
        .all(|(k, dv)| {
            let ov = o.get(k).unwrap_or(&Value::Null);
            if matches!(k.as_str(), "data" | "binaryData") {
                (empty(dv) && empty(ov)) || dv == ov
            } else {
                subset(dv, ov)
            }
        })
}

fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).into_owned()
}

/// What partnerkit last wrote, per object: a hash of the body and of the resourceVersion of
/// the copy it was computed from. A reconcile that runs before the watch delivered partnerkit's
/// own write still sees that older copy; when it would write the same body again, it skips.
/// Hashes, not copies: three integers per object, and only until the watch delivers the write
/// (the map lives in [`Echoes`], which drops an object's entries with its echo).
pub struct Memo {
    /// The resourceVersions partnerkit's own writes produced (shared with the watches), and
    /// the memo's own map.
    pub echoes: std::sync::Arc<Echoes>,
}

/// The hash of an object's resourceVersion, as [`Memo`] and [`super::children::Child`] keep it.
pub fn rv_of(meta: &ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref().map(hash_of)
}

/// Per object, the resourceVersion partnerkit's last write to it produced. A watch event that
/// carries exactly that version is the echo of partnerkit's own write: its content is what
/// the write made it, so it needs no reconcile. Any other version (someone else's change, a
/// deletion) does. Hashes, not copies: two integers per object.
///
/// Kept only while the write is in flight: the echo, once seen, drops the object's entry here
/// and its [`Memo`] entries (the object's and its status's). From then on the cache holds the
/// write, and what it holds answers what these entries did: kept for every object ever
/// written, they were 7 MiB of hash tables at 10,000 tenants (80,000 objects).
#[derive(Default)]
pub struct Echoes {
    produced: Mutex<HashMap<u64, u64>>,
    /// [`Memo`]'s: by the hash of an object's [`key`] (with its subresource), the hash of the
    /// body last written and of the version it was written over.
    written: Mutex<HashMap<u64, (u64, Option<u64>)>>,
}

impl Echoes {
    fn object_key<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> u64 {
        hash_of(key_of::<K>(meta, ""))
    }
    fn memo(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (u64, Option<u64>)>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn produced(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.produced.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Partnerkit's write returned `obj` (its new resourceVersion).
    pub fn record<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        self.record_meta::<K>(obj.meta())
    }
    /// Partnerkit's write to a `K` returned `meta` (its new resourceVersion).
    pub fn record_meta<K: Resource<DynamicType = ()>>(&self, meta: &ObjectMeta) {
        if let Some(rv) = rv_of(meta) {
            self.produced().insert(Self::object_key::<K>(meta), rv);
        }
    }
    /// This version of the object, just delivered by its watch (and already in the cache), is
    /// what partnerkit's last write to it produced. Then the write is no longer in flight: its
    /// entries are dropped (see [`Echoes`]), and the same version asked again is no echo.
    pub fn is_echo<K: Resource<DynamicType = ()>>(&self, meta: &ObjectMeta) -> bool {
        let Some(rv) = rv_of(meta) else {
            return false;
        };
        let k = Self::object_key::<K>(meta);
        {
            let mut produced = self.produced();
            if produced.get(&k) != Some(&rv) {
                return false;
            }
            produced.remove(&k);
        }
        self.drop_memo::<K>(k, meta);
        true
    }
    /// Drop the memo entries of the object (key hash `k`) and of its status.
    fn drop_memo<K: Resource<DynamicType = ()>>(&self, k: u64, meta: &ObjectMeta) {
        let mut memo = self.memo();
        memo.remove(&k);
        memo.remove(&hash_of(key_of::<K>(meta, "/status")));
    }
    /// The version partnerkit's last write to the object produced, if it wrote it (by the hash
    /// of the object's [`key_of`]).
    fn last(&self, object_key: u64) -> Option<u64> {
        self.produced().get(&object_key).copied()
    }
    /// Partnerkit wrote the object `name` (in `ns`) and its watch has not delivered that write
    /// yet: the cache may not hold it at all.
    pub fn in_flight<K: Resource<DynamicType = ()>>(&self, ns: Option<&str>, name: &str) -> bool {
        self.last(hash_of(key::<K>(ns, name, ""))).is_some()
    }
    /// The object is gone.
    pub fn forget<K: Resource<DynamicType = ()>>(&self, meta: &ObjectMeta) {
        let k = Self::object_key::<K>(meta);
        self.produced().remove(&k);
        self.drop_memo::<K>(k, meta);
    }
    /// How many writes are in flight (their echoes not seen), and how many memo entries.
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        (self.produced().len(), self.memo().len())
    }
}

impl Memo {
    pub fn new(echoes: std::sync::Arc<Echoes>) -> Memo {
        Memo { echoes }
    }
    fn hash(body: &impl Serialize) -> u64 {
        json_digest(body)
    }
    /// `body` was already written on top of the version (hash) `observed_rv`.
    pub fn written(&self, key: &str, body: &impl Serialize, observed_rv: Option<u64>) -> bool {
        self.written_digest(key, Self::hash(body), observed_rv)
    }
    /// [`Memo::written`], for a body of [`json_digest`] `digest`.
    pub fn written_digest(&self, key: &str, digest: u64, observed_rv: Option<u64>) -> bool {
        self.echoes
            .memo()
            .get(&hash_of(key))
            .is_some_and(|(h, rv)| *h == digest && *rv == observed_rv)
    }
    /// Whether a cached copy at `observed_rv` that already looks like `desired` may be older
    /// than partnerkit's last write, which wrote something else: the cache is behind that write
    /// (its event not here yet) and shows what was there before it. Then the object must be
    /// written again (a change reverted quickly: an invite accepted, then deleted).
    pub fn behind_own_write<K>(&self, desired: &K, observed_rv: u64) -> bool
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        // The memo and the echoes key an object by the same hash.
        let k = Echoes::object_key::<K>(desired.meta());
        self.echoes.last(k).is_some_and(|rv| rv != observed_rv)
            && self
                .echoes
                .memo()
                .get(&k)
                .is_some_and(|(h, _)| *h != Self::hash(desired))
    }
    pub fn forget(&self, key: &str) {
        self.echoes.memo().remove(&hash_of(key));
    }
    pub fn record(&self, key: &str, body: &impl Serialize, observed_rv: Option<u64>) {
        self.record_digest(key, Self::hash(body), observed_rv);
    }
    /// [`Memo::record`], for a body of [`json_digest`] `digest`.
    pub fn record_digest(&self, key: &str, digest: u64, observed_rv: Option<u64>) {
        self.echoes
            .memo()
            .insert(hash_of(key), (digest, observed_rv));
    }
}

/// [`key`] of the object `meta` names.
fn key_of<K: Resource<DynamicType = ()>>(meta: &ObjectMeta, sub: &str) -> String {
    key::<K>(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
        sub,
    )
}

pub(crate) fn key<K: Resource<DynamicType = ()>>(
    obj_ns: Option<&str>,
    name: &str,
    sub: &str,
) -> String {
    format!(
        "{}/{}/{}/{name}{sub}",
        K::api_version(&()),
        K::kind(&()),
        obj_ns.unwrap_or("")
    )
}

/// A merge patch removing what someone else added where partnerkit owns every key: labels of
/// partnerkit's prefixes and keys of `data` that `desired` does not have. (Server-side apply
/// cannot remove fields another manager owns, and an extra `bizapps.partnerkit.io/<app>`
/// label or `partnerkit-bizapps` key would switch an app on.)
pub fn strip_patch(desired: &Value, observed: &Value) -> Option<Value> {
    let mut patch = serde_json::Map::new();
    let dl = desired
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    if let Some(ol) = observed
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    {
        let extra: serde_json::Map<String, Value> = ol
            .keys()
            .filter(|k| is_our_label(k) && !dl.is_some_and(|d| d.contains_key(*k)))
            .map(|k| (k.clone(), Value::Null))
            .collect();
        if !extra.is_empty() {
            patch.insert("metadata".into(), json!({"labels": extra}));
        }
    }
    if let (Some(dd), Some(od)) = (
        desired.get("data").and_then(Value::as_object),
        observed.get("data").and_then(Value::as_object),
    ) {
        let extra: serde_json::Map<String, Value> = od
            .keys()
            .filter(|k| !dd.contains_key(*k))
            .map(|k| (k.clone(), Value::Null))
            .collect();
        if !extra.is_empty() {
            patch.insert("data".into(), Value::Object(extra));
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Server-side apply of `obj` (field manager `partnerkit`, force) unless the store's copy
/// (`lookup`) matches it; first strip what others added where partnerkit owns every key
/// ([`strip_patch`]). Returns whether it wrote.
pub async fn apply_if_changed<K>(
    memo: &Memo,
    api: &Api<K>,
    obj: &K,
    lookup: impl Fn() -> Option<std::sync::Arc<K>>,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let (observed, verdict) = settled(
        lookup,
        |o| rv_of(o.meta()),
        |o| match o.map(|o| &**o) {
            Some(o) if matches(obj, o) => InPlace::Unchanged,
            o if memo.written(
                &key_of::<K>(obj.meta(), ""),
                obj,
                o.and_then(|o| rv_of(o.meta())),
            ) =>
            {
                InPlace::Written
            }
            _ => InPlace::No,
        },
    );
    let observed_rv = observed.as_deref().and_then(|o| rv_of(o.meta()));
    match verdict {
        InPlace::Unchanged => Ok(false),
        InPlace::Written => apply_unless_written(memo, api, obj, observed_rv).await,
        InPlace::No => apply_over(memo, api, obj, observed.as_deref()).await,
    }
}

/// [`apply_if_changed`] on a copy of the object read from the API (`observed`).
async fn apply_over<K>(
    memo: &Memo,
    api: &Api<K>,
    obj: &K,
    observed: Option<&K>,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    if let Some(o) = observed {
        if matches(obj, o) {
            return Ok(false);
        }
        strip_if_needed(
            api,
            &obj.name_any(),
            &serde_json::to_value(obj)?,
            &serde_json::to_value(o)?,
        )
        .await?;
    }
    apply_unless_written(memo, api, obj, observed.and_then(|o| rv_of(o.meta()))).await
}

/// What a write path found, on the store's copy and in the memo.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum InPlace {
    /// The copy already says what is desired (and is not behind partnerkit's own last write).
    Unchanged,
    /// The memo says this body was written over this copy's version.
    Written,
    /// Neither: write.
    No,
}

/// The store's copy a write decides on, and `judge`'s verdict on it, taken on a copy that was
/// still the store's after the verdict (its `version` read again). Partnerkit's own last write
/// may reach the store while the verdict is taken, and its arrival drops that write's
/// bookkeeping ([`Echoes`]: the version it produced, the memo's entry), which the verdict reads.
/// Taken on the copy from before that arrival, the verdict is wrong both ways: "not written"
/// (a second write of the same body) or "unchanged, not behind" (a write skipped: the copy
/// predates partnerkit's write of something else, an admin accepted and then removed). The
/// store is updated before the bookkeeping is dropped, so a second read shows the change.
fn settled<O>(
    lookup: impl Fn() -> Option<O>,
    version: impl Fn(&O) -> Option<u64>,
    judge: impl Fn(Option<&O>) -> InPlace,
) -> (Option<O>, InPlace) {
    let mut seen = lookup();
    for _ in 0..4 {
        let verdict = judge(seen.as_ref());
        let again = lookup();
        if seen.as_ref().map(&version) == again.as_ref().map(&version) {
            return (seen, verdict);
        }
        seen = again;
    }
    // Still moving: write (an apply of the same body changes nothing).
    (seen, InPlace::No)
}

/// [`apply_if_changed`] for a child kept as digests ([`Child`]): the same outcome, reading the
/// object from the API only when something may need stripping first (a `data` key or a
/// partnerkit label someone else added, a foreign owner reference) or `desired` sets fields the
/// digests do not cover.
pub async fn apply_child<K>(
    memo: &Memo,
    api: &Api<K>,
    obj: &K,
    lookup: impl Fn() -> Option<Child>,
) -> Result<bool, Error>
where
    K: Digestible + DeserializeOwned + Clone + Debug,
{
    let unchanged = |o: &Child| {
        let d = Child::of(obj);
        d.meta == o.meta && d.body == o.body && !memo.behind_own_write(obj, o.rv)
    };
    let (observed, verdict) = settled(
        lookup,
        |o| Some(o.rv),
        |o| match o {
            Some(o) if comparable(obj.meta()) && unchanged(o) => InPlace::Unchanged,
            o if memo.written(&key_of::<K>(obj.meta(), ""), obj, o.map(|o| o.rv)) => {
                InPlace::Written
            }
            _ => InPlace::No,
        },
    );
    match verdict {
        InPlace::Unchanged => return Ok(false),
        InPlace::Written => {
            return apply_unless_written(memo, api, obj, observed.map(|o| o.rv)).await;
        }
        InPlace::No => {}
    }
    let Some(o) = observed else {
        return apply_unless_written(memo, api, obj, None).await;
    };
    if comparable(obj.meta()) {
        let d = Child::of(obj);
        if d.meta == o.meta && o.keys_within(&d) {
            // partnerkit's labels, partnerkit's keys: nothing anyone else added to strip.
            return apply_unless_written(memo, api, obj, Some(o.rv)).await;
        }
    }
    let name = obj.name_any();
    let full = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::api("get", kind_of::<K>(), &name, e))?;
    apply_over(memo, api, obj, full.as_ref()).await
}

/// [`apply_if_changed`] for a Namespace, kept as [`Ns`]: its labels compared by digest, and
/// read from the API only when a partnerkit label is on it that `desired` lacks (to strip).
pub async fn apply_namespace(
    memo: &Memo,
    api: &Api<k8s_openapi::api::core::v1::Namespace>,
    desired: &k8s_openapi::api::core::v1::Namespace,
    lookup: impl Fn() -> Option<Ns>,
) -> Result<bool, Error> {
    let d = Ns::of(&desired.metadata);
    let plain = comparable(&desired.metadata);
    let unchanged = |o: &Ns| plain && d.meta == o.meta && !memo.behind_own_write(desired, o.rv);
    let (observed, verdict) = settled(
        lookup,
        |o| Some(o.rv),
        |o| match o {
            Some(o) if unchanged(o) => InPlace::Unchanged,
            o if memo.written(
                &key_of::<k8s_openapi::api::core::v1::Namespace>(&desired.metadata, ""),
                desired,
                o.map(|o| o.rv),
            ) =>
            {
                InPlace::Written
            }
            _ => InPlace::No,
        },
    );
    match verdict {
        InPlace::Unchanged => return Ok(false),
        InPlace::Written => {
            return apply_unless_written(memo, api, desired, observed.map(|o| o.rv)).await;
        }
        InPlace::No => {}
    }
    let mut observed_rv = None;
    if let Some(o) = &observed {
        observed_rv = Some(o.rv);
        if !plain || !o.keys_within(&d) {
            let name = desired.name_any();
            let Some(full) = api
                .get_metadata_opt(&name)
                .await
                .map_err(|e| Error::api("get", "Namespace".into(), &name, e))?
            else {
                return apply_unless_written(memo, api, desired, None).await;
            };
            if meta_matches(&desired.metadata, &full.metadata) {
                return Ok(false);
            }
            strip_if_needed(
                api,
                &name,
                &serde_json::to_value(desired)?,
                &json!({"metadata": full.metadata}),
            )
            .await?;
            observed_rv = rv_of(&full.metadata);
        }
    }
    apply_unless_written(memo, api, desired, observed_rv).await
}

/// Send [`strip_patch`] if there is anything to strip.
pub async fn strip_if_needed<K>(
    api: &Api<K>,
    name: &str,
    desired: &Value,
    observed: &Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    if let Some(patch) = strip_patch(desired, observed) {
        tracing::info!(kind = %kind_of::<K>(), %name, patch = %patch, "removing keys partnerkit owns that someone else added");
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch(name, &pp, &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api("patch", kind_of::<K>(), name, e))?;
    }
    Ok(())
}

/// Server-side apply of `obj` unless this very body was already applied on top of the
/// version `observed_rv` (the store has not caught up yet). Returns whether it wrote.
pub async fn apply_unless_written<K>(
    memo: &Memo,
    api: &Api<K>,
    obj: &K,
    observed_rv: Option<u64>,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = obj.name_any();
    let k = key_of::<K>(obj.meta(), "");
    if memo.written(&k, obj, observed_rv) {
        // Written on top of "absent": the store may not have seen that write yet — or the
        // object was deleted since (drift, a workspace re-created). Only the API can tell.
        let exists = match observed_rv {
            Some(_) => true,
            None => api
                .get_metadata_opt(&name)
                .await
                .map_err(|e| Error::api("get", kind_of::<K>(), &name, e))?
                .is_some(),
        };
        if exists {
            return Ok(false);
        }
    }
    tracing::debug!(kind = %kind_of::<K>(), %name, "applying");
    let written = super::lean::metadata_of(api)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .map_err(|e| Error::api("apply", kind_of::<K>(), &name, e))?;
    memo.echoes.record_meta::<K>(&written.metadata);
    memo.record(&k, obj, observed_rv);
    Ok(true)
}

/// Create `obj` and return it as created; an existing object of that name is left alone
/// (Ok(None)).
pub async fn create_if_missing<K>(api: &Api<K>, obj: &K) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.create(&pp, obj).await {
        Ok(created) => Ok(Some(created)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(Error::api("create", kind_of::<K>(), &obj.name_any(), e)),
    }
}

/// Delete by name; absent is fine.
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    tracing::debug!(kind = %kind_of::<K>(), %name, "deleting");
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::api("delete", kind_of::<K>(), name, e)),
    }
}

/// A merge patch of metadata.finalizers, guarded by the resourceVersion it was computed from
/// (the API server refuses it with 409 if the object changed meanwhile).
async fn patch_finalizers<K>(api: &Api<K>, obj: &K, next: Vec<String>) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let name = obj.name_any();
    let body =
        json!({"metadata": {"resourceVersion": obj.meta().resource_version, "finalizers": next}});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.patch(&name, &pp, &Patch::Merge(&body)).await {
        Ok(o) => Ok(Some(o)),
        // Our copy was stale: the watch brings the current one and with it a new reconcile.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            Err(Error::Stale(format!("{} {name}", kind_of::<K>())))
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(Error::api("patch finalizers of", kind_of::<K>(), &name, e)),
    }
}

/// Add `finalizer` unless present; returns the object as patched, when it wrote.
pub async fn add_finalizer<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    if obj.finalizers().iter().any(|f| f == finalizer) {
        return Ok(None);
    }
    let mut next = obj.finalizers().to_vec();
    next.push(finalizer.to_string());
    patch_finalizers(api, obj, next).await
}

/// Remove `finalizer` if present.
pub async fn remove_finalizer<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    if !obj.finalizers().iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let next: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    patch_finalizers(api, obj, next).await.map(|_| ())
}

/// The Ready condition, keeping `lastTransitionTime` from `previous` unless the status flipped.
pub fn ready_condition(
    previous: &[Condition],
    ready: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    condition(
        previous,
        crate::api::conditions::READY,
        ready,
        reason,
        message,
        generation,
    )
}

/// A condition of `type_`, keeping `lastTransitionTime` from `previous` unless the status
/// flipped.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let prev = previous.iter().find(|c| c.type_ == type_);
    let last_transition_time = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(jiff::Timestamp::now()),
    };
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// `conditions` with `cond` in place of the condition of its type.
pub fn with_condition(conditions: &[Condition], cond: Condition) -> Vec<Condition> {
    let mut out: Vec<Condition> = conditions
        .iter()
        .filter(|c| c.type_ != cond.type_)
        .cloned()
        .collect();
    out.push(cond);
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// A status with conditions and observedGeneration (Partner, Tenant).
pub trait ConditionedStatus: Default + Clone + PartialEq + Serialize {
    /// Whether this status (about to be written, its [`json_digest`] `digest`) says what the
    /// observed one does.
    fn same_as(&self, _digest: u64, observed: &Self) -> bool {
        self == observed
    }
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>);
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

impl ConditionedStatus for crate::api::PartnerStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn set_conditions(&mut self, conditions: Vec<Condition>) {
        self.conditions = conditions;
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
}

impl ConditionedStatus for crate::api::TenantStatus {
    fn same_as(&self, digest: u64, observed: &Self) -> bool {
        self.same_as_digested(digest, observed)
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn set_conditions(&mut self, conditions: Vec<Condition>) {
        self.conditions = conditions;
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
}

/// What the Ready condition should say.
pub struct Readiness<'a> {
    pub ready: bool,
    pub reason: &'a str,
    pub message: String,
}

/// A kind with a status, cached in the [`super::world::World`].
pub trait Cached<S>: Resource<DynamicType = ()> + Sized {
    fn status_of(&self) -> Option<&S>;
    /// The cached copy of the object `meta` names.
    fn cached(
        world: &super::world::World,
        meta: &ObjectMeta,
    ) -> Option<std::sync::Arc<super::lean::Guarded<Self>>>;
}

impl Cached<crate::api::TenantStatus> for crate::api::Tenant {
    fn status_of(&self) -> Option<&crate::api::TenantStatus> {
        self.status.as_ref()
    }
    fn cached(
        world: &super::world::World,
        meta: &ObjectMeta,
    ) -> Option<std::sync::Arc<super::lean::Guarded<Self>>> {
        world.tenant(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }
}

impl Cached<crate::api::PartnerStatus> for crate::api::Partner {
    fn status_of(&self) -> Option<&crate::api::PartnerStatus> {
        self.status.as_ref()
    }
    fn cached(
        world: &super::world::World,
        meta: &ObjectMeta,
    ) -> Option<std::sync::Arc<super::lean::Guarded<Self>>> {
        world.partner(meta.name.as_deref().unwrap_or_default())
    }
}

/// Write `status` (with observedGeneration and the Ready condition) if it differs from the
/// observed one, from partnerkit's last write over the same version, and from a newer cached
/// copy; a Warning Event when Ready turns False or changes its reason.
pub async fn write_status<K, S>(
    ctx: &super::Ctx,
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    mut status: S,
    readiness: Readiness<'_>,
) -> Result<(), Error>
where
    K: Cached<S> + DeserializeOwned + Clone + Debug,
    S: ConditionedStatus,
{
    let Readiness {
        ready,
        reason,
        message,
    } = readiness;
    let current = current.cloned().unwrap_or_default();
    let generation = obj.meta().generation;
    let cond = ready_condition(
        current.conditions(),
        ready,
        reason,
        message.clone(),
        generation,
    );
    status.set_conditions(with_condition(current.conditions(), cond));
    status.set_observed_generation(generation);
    // Trusted even when the cache may be behind a different status write of partnerkit's
    // (A, B, A within one watch lag): the desired status takes its lastTransitionTime from the
    // cached one, so checking the cache against the last write here made two writes of the
    // same condition with different times correct each other for ever (seen under heaptrack,
    // where every event is late). So that case stays open: the status may keep B until the
    // Tenant or something it depends on changes again.
    let digest = json_digest(&status);
    if status.same_as(digest, &current) {
        return Ok(());
    }
    let meta = obj.meta();
    let key = key_of::<K>(meta, "/status");
    if ctx.memo.written_digest(&key, digest, rv_of(meta)) {
        return Ok(());
    }
    // This pass's copy may be older than the cache's: partnerkit wrote this very status in a
    // pass that ended after this one took its copy, and that write's echo, arriving since,
    // dropped the memo entry just checked (the cache is updated before the entry is dropped,
    // so it holds the write now). Seen as one Tenant status in 10,000 written twice in a
    // template change.
    let newer = K::cached(&ctx.world, meta).is_some_and(|c| {
        c.0.as_ref().is_ok_and(|c| {
            c.meta().resource_version != meta.resource_version
                && c.status_of().is_some_and(|s| status.same_as(digest, s))
        })
    });
    if newer {
        return Ok(());
    }
    let prev = current
        .conditions()
        .iter()
        .find(|c| c.type_ == crate::api::conditions::READY);
    if !ready && prev.is_none_or(|p| p.status != "False" || p.reason != reason) {
        ctx.warn(obj, reason, message).await;
    }
    send_status(&ctx.memo, api, meta, &status, &key, digest).await
}

/// Server-side apply of `status` on the status subresource of `obj` (only call when it
/// differs from the observed status).
pub async fn apply_status<K>(
    memo: &Memo,
    api: &Api<K>,
    meta: &ObjectMeta,
    status: &impl Serialize,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let key = key_of::<K>(meta, "/status");
    let digest = json_digest(status);
    if memo.written_digest(&key, digest, rv_of(meta)) {
        return Ok(());
    }
    send_status(memo, api, meta, status, &key, digest).await
}

/// The apply of [`apply_status`], the memo already checked: `key` is the status's memo key
/// and `digest` the [`json_digest`] of `status`.
async fn send_status<K>(
    memo: &Memo,
    api: &Api<K>,
    meta: &ObjectMeta,
    status: &impl Serialize,
    key: &str,
    digest: u64,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    /// The apply body, serialized straight from the status (no JSON tree built and dropped).
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a, S> {
        api_version: &'a str,
        kind: &'a str,
        metadata: Name<'a>,
        status: &'a S,
    }
    #[derive(Serialize)]
    struct Name<'a> {
        name: &'a str,
    }
    impl<S> Debug for Body<'_, S> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "status of {} {}", self.kind, self.metadata.name)
        }
    }
    let name = meta.name.as_deref().unwrap_or_default();
    let body = Body {
        api_version: &K::api_version(&()),
        kind: &K::kind(&()),
        metadata: Name { name },
        status,
    };
    tracing::debug!(kind = %kind_of::<K>(), %name, "writing status");
    let written = super::lean::metadata_of(api)
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| Error::api("apply status of", kind_of::<K>(), name, e))?;
    memo.echoes.record_meta::<K>(&written.metadata);
    memo.record_digest(key, digest, rv_of(meta));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached copy that looks like the desired object is trusted, unless partnerkit last
    /// wrote something else and the copy is not that write (the cache is behind it).
    #[test]
    fn a_cached_copy_behind_partnerkits_own_write_is_not_trusted() {
        let rb = |subject: &str| {
            let mut o = k8s_openapi::api::core::v1::ConfigMap::default();
            o.metadata.name = Some("partnerkit-partner-admins".into());
            o.metadata.namespace = Some("tenant-globex".into());
            o.data = Some([("admins".to_string(), subject.to_string())].into());
            o
        };
        let memo = Memo::new(std::sync::Arc::new(Echoes::default()));
        let (before, with_carol) = (rb("alice"), rb("alice,carol"));
        let before_rv = hash_of("4");
        // Nothing written yet: the cache is trusted.
        assert!(!memo.behind_own_write(&before, before_rv));
        // partnerkit wrote carol in, at version 5; the cache still shows version 4.
        let mut written = with_carol.clone();
        written.metadata.resource_version = Some("5".into());
        memo.echoes.record(&written);
        let k = key::<k8s_openapi::api::core::v1::ConfigMap>(
            Some("tenant-globex"),
            "partnerkit-partner-admins",
            "",
        );
        memo.record(&k, &with_carol, Some(before_rv));
        // carol out again: version 4 looks right but predates the write.
        assert!(memo.behind_own_write(&before, before_rv));
        // Once the cache has the write (version 5), it is trusted again.
        assert!(!memo.behind_own_write(&before, hash_of("5")));
        // Still wanting what was last written: the copy is trusted whatever its version.
        assert!(!memo.behind_own_write(&with_carol, before_rv));
    }

    /// A pass that read the store just before the echo of partnerkit's own write arrived (the
    /// arrival drops the memo's entry) does not write the same body again: it reads the store a
    /// second time and finds the write there. A body the store's copy does not hold is still
    /// written. (The API answers 500 to anything: every request is counted.)
    #[tokio::test]
    async fn a_child_whose_echo_arrives_during_the_pass_is_not_written_again() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (client, requests) = super::super::counting_client();
        let api: Api<ConfigMap> = Api::namespaced(client, "tenant-globex");
        let cm = |value: &str, rv: Option<&str>| {
            let mut o = ConfigMap::default();
            o.metadata.name = Some("partnerkit-bizapps".into());
            o.metadata.namespace = Some("tenant-globex".into());
            o.metadata.resource_version = rv.map(Into::into);
            o.data = Some([("mail".to_string(), value.to_string())].into());
            o
        };
        let memo = Memo::new(std::sync::Arc::new(Echoes::default()));
        let k = key::<ConfigMap>(Some("tenant-globex"), "partnerkit-bizapps", "");
        // partnerkit created it (version 5); the store has not seen that yet.
        let written = cm("true", Some("5"));
        memo.echoes.record(&written);
        memo.record(&k, &cm("true", None), None);
        // The store's first answer: nothing. Then the echo arrives: the store holds version 5,
        // and the memo's entry is gone.
        let reads = AtomicUsize::new(0);
        let lookup = || {
            if reads.fetch_add(1, Ordering::SeqCst) == 0 {
                assert!(memo.echoes.is_echo::<ConfigMap>(&written.metadata));
                None
            } else {
                Some(Child::of(&written))
            }
        };
        let wrote = apply_child(&memo, &api, &cm("true", None), lookup).await;
        assert!(matches!(wrote, Ok(false)), "{wrote:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 0, "nothing sent");
        // None ("written", by the memo), then version 5 (moved: judged again), then version 5
        // again (settled: "unchanged").
        assert_eq!(
            reads.load(Ordering::SeqCst),
            3,
            "the store read until its copy held"
        );
        // The store's copy says false: that is written.
        let wrote = apply_child(&memo, &api, &cm("false", None), || {
            Some(Child::of(&written))
        })
        .await;
        assert!(wrote.is_err(), "the API's 500: {wrote:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 1, "one apply sent");
    }

    /// The other way round: the store's copy looks as desired but predates partnerkit's own
    /// write of something else (an admin added, then removed at once), and that write's echo
    /// arrives while the pass decides, dropping the bookkeeping that said "behind". The pass
    /// must still write: it decides on the copy the store holds after its verdict.
    #[tokio::test]
    async fn a_copy_that_the_echo_of_another_body_overtakes_is_not_trusted() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (client, requests) = super::super::counting_client();
        let api: Api<ConfigMap> = Api::namespaced(client, "tenant-globex");
        let cm = |admins: &str, rv: Option<&str>| {
            let mut o = ConfigMap::default();
            o.metadata.name = Some("partnerkit-admins".into());
            o.metadata.namespace = Some("tenant-globex".into());
            o.metadata.resource_version = rv.map(Into::into);
            o.data = Some([("admins".to_string(), admins.to_string())].into());
            o
        };
        let memo = Memo::new(std::sync::Arc::new(Echoes::default()));
        let k = key::<ConfigMap>(Some("tenant-globex"), "partnerkit-admins", "");
        let (before, with_carol) = (cm("alice", Some("4")), cm("alice,carol", Some("5")));
        // partnerkit wrote carol in (version 5) over version 4; the store still shows 4.
        memo.echoes.record(&with_carol);
        memo.record(&k, &cm("alice,carol", None), Some(hash_of("4")));
        // The first read shows version 4; then the echo of 5 arrives.
        let reads = AtomicUsize::new(0);
        let lookup = || {
            if reads.fetch_add(1, Ordering::SeqCst) == 0 {
                assert!(memo.echoes.is_echo::<ConfigMap>(&with_carol.metadata));
                Some(Child::of(&before))
            } else {
                Some(Child::of(&with_carol))
            }
        };
        // carol removed again: alice alone is desired, which version 4 shows.
        let wrote = apply_child(&memo, &api, &cm("alice", None), lookup).await;
        assert!(wrote.is_err(), "written (the API's 500): {wrote:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 1, "one apply sent");
    }

    /// The echo of a write ends its bookkeeping: the version it produced and the memo's
    /// entries (the object's and its status's) are dropped; another version drops nothing.
    #[test]
    fn an_echo_seen_drops_the_writes_bookkeeping() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let echoes = std::sync::Arc::new(Echoes::default());
        let memo = Memo::new(echoes.clone());
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("partnerkit-bizapps".into());
        cm.metadata.namespace = Some("tenant-globex".into());
        let k = key::<ConfigMap>(Some("tenant-globex"), "partnerkit-bizapps", "");
        let status = key::<ConfigMap>(Some("tenant-globex"), "partnerkit-bizapps", "/status");
        let at = |rv: &str| {
            let mut m = cm.metadata.clone();
            m.resource_version = Some(rv.into());
            m
        };
        memo.record(&k, &cm, None);
        memo.record(&status, &"a status", None);
        echoes.record_meta::<ConfigMap>(&at("7"));
        assert_eq!(echoes.len(), (1, 2));

        // Someone else's version: not the echo, and the write is still in flight.
        assert!(!echoes.is_echo::<ConfigMap>(&at("6")));
        assert_eq!(echoes.len(), (1, 2));
        assert!(memo.written(&k, &cm, None));

        // The echo: the cache has the write now, and nothing is kept for it.
        assert!(echoes.is_echo::<ConfigMap>(&at("7")));
        assert_eq!(echoes.len(), (0, 0));
        assert!(!memo.written(&k, &cm, None));
        // Asked again (a re-delivery), it is no echo: at worst one reconcile that writes nothing.
        assert!(!echoes.is_echo::<ConfigMap>(&at("7")));

        // A deletion forgets a write still in flight.
        memo.record(&k, &cm, None);
        echoes.record_meta::<ConfigMap>(&at("8"));
        echoes.forget::<ConfigMap>(&at("8"));
        assert_eq!(echoes.len(), (0, 0));
    }

    #[test]
    fn subset_ignores_server_defaults_but_not_list_changes() {
        assert!(subset(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!subset(&json!({"a": [1]}), &json!({"a": [1, 2]})));
        assert!(subset(&json!({"a": []}), &json!({})));
        assert!(subset(
            &json!([{"kind": "User", "name": "x"}]),
            &json!([{"kind": "User", "name": "x", "apiGroup": "rbac.authorization.k8s.io"}])
        ));
    }

    #[test]
    fn extra_partnerkit_label_is_a_difference() {
        let d = ObjectMeta {
            labels: Some([("partnerkit.io/tenant".to_string(), "a".to_string())].into()),
            ..Default::default()
        };
        let mut o = d.clone();
        assert!(meta_matches(&d, &o));
        o.labels
            .as_mut()
            .unwrap()
            .insert("other".into(), "x".into());
        assert!(meta_matches(&d, &o));
        o.labels
            .as_mut()
            .unwrap()
            .insert("bizapps.partnerkit.io/crm".into(), "enabled".into());
        assert!(!meta_matches(&d, &o));
    }
}
