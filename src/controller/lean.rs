//! Reading watched objects without their `metadata.managedFields`.
//!
//! Every object the API server sends carries its managedFields: a list of field sets, each a
//! tree of JSON maps, often most of a small object's size. partnerkit never reads them (the
//! stores drop them), yet building them and freeing them again was a fifth of the CPU of a
//! restart over 10,000 tenants (a profile of the list: `ManagedFieldsEntry` decoded, then
//! dropped). [`Lean`] skips them while decoding: the key's value is passed over
//! ([`IgnoredAny`]) and nothing else is touched, so what is decoded is exactly the object
//! without that one field.
//!
//! [`Guarded`] is kube's `DeserializeGuard` (one malformed object is reported on, not a stopped
//! watch) decoding through one JSON tree instead of two copies of a generic one.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::error_boundary::InvalidObject;
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess,
    SeqAccess, Visitor,
};

/// The kind, group, version and plural of the wrapped `K`: a wrapper is read and written at
/// `K`'s URLs.
macro_rules! kind_of_k {
    () => {
        fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::kind(dt)
        }
        fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::group(dt)
        }
        fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::version(dt)
        }
        fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
            K::plural(dt)
        }
    };
}

/// `K` decoded without `metadata.managedFields`. Watch `Lean<K>` and unwrap with `.0`.
#[derive(Clone, Debug)]
pub struct Lean<K>(pub K);

impl<'de, K: Deserialize<'de>> Deserialize<'de> for Lean<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        K::deserialize(Skip {
            inner: d,
            level: Level::Object,
        })
        .map(Lean)
    }
}

impl<K: Resource> Resource for Lean<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;
    kind_of_k!();
    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

/// A `K`, or why it is not one (with the metadata that was readable), as kube's
/// `DeserializeGuard`: decoded once into a JSON tree, then `K` from that tree by reference.
#[derive(Clone, Debug)]
pub struct Guarded<K>(pub Result<K, InvalidObject>);

impl<'de, K: DeserializeOwned> Deserialize<'de> for Guarded<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tree = serde_json::Value::deserialize(d)?;
        let obj = K::deserialize(&tree).map_err(|e| {
            let metadata = tree
                .get("metadata")
                .and_then(|m| ObjectMeta::deserialize(m).ok())
                .unwrap_or_default();
            InvalidObject {
                error: e.to_string(),
                metadata,
            }
        });
        Ok(Guarded(obj))
    }
}

impl<K: Resource> Resource for Guarded<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;
    kind_of_k!();
    fn meta(&self) -> &ObjectMeta {
        self.0.as_ref().map_or_else(|e| &e.metadata, K::meta)
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0
            .as_mut()
            .map_or_else(|e| &mut e.metadata, K::meta_mut)
    }
}

/// Only the metadata of a `K`, without managedFields: the answer to a write of which partnerkit
/// reads nothing but the new resourceVersion (a ConfigMap's data, a Tenant's status and the
/// managedFields of either are passed over, not decoded). Same URLs as `K` ([`metadata_of`]).
#[derive(Clone, Debug)]
pub struct MetaOnly<K> {
    pub metadata: ObjectMeta,
    kind: PhantomData<fn() -> K>,
}

impl<'de, K> Deserialize<'de> for MetaOnly<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            #[serde(default)]
            metadata: ObjectMeta,
        }
        let o = Object::deserialize(Skip {
            inner: d,
            level: Level::Object,
        })?;
        Ok(MetaOnly {
            metadata: o.metadata,
            kind: PhantomData,
        })
    }
}

impl<K: Resource> Resource for MetaOnly<K> {
    type DynamicType = K::DynamicType;
    // The scope is `K`'s; dynamic so that `metadata_of` can build either kind of Api.
    type Scope = kube::core::DynamicResourceScope;
    kind_of_k!();
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `api` (same client, same namespace) answering with [`MetaOnly`] objects.
pub fn metadata_of<K: Resource<DynamicType = ()> + Clone>(
    api: &kube::Api<K>,
) -> kube::Api<MetaOnly<K>> {
    let client = api.clone().into_client();
    match api.namespace() {
        Some(ns) => kube::Api::namespaced_with(client, ns, &()),
        None => kube::Api::all_with(client, &()),
    }
}

/// Where in the object a map is: the object itself (its `metadata` key leads to the metadata)
/// or its metadata (whose `managedFields` key is skipped). Nothing below is wrapped.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    Object,
    Metadata,
}

/// A deserializer that hands its visitor maps with the [`Level`]'s key handling.
struct Skip<D> {
    inner: D,
    level: Level,
}

/// The visitor of a [`Skip`].
struct SkipVisitor<V> {
    inner: V,
    level: Level,
}

/// A map of an object or of its metadata.
struct SkipMap<M> {
    inner: M,
    level: Level,
    next_is_metadata: bool,
}

/// A seed decoding the value of an object's `metadata` key.
struct MetadataSeed<S>(S);

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* SkipVisitor { inner: visitor, level: self.level })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Skip<D> {
    type Error = D::Error;
    forward_deserialize!(
        deserialize_any(),
        deserialize_bool(),
        deserialize_i8(),
        deserialize_i16(),
        deserialize_i32(),
        deserialize_i64(),
        deserialize_i128(),
        deserialize_u8(),
        deserialize_u16(),
        deserialize_u32(),
        deserialize_u64(),
        deserialize_u128(),
        deserialize_f32(),
        deserialize_f64(),
        deserialize_char(),
        deserialize_str(),
        deserialize_string(),
        deserialize_bytes(),
        deserialize_byte_buf(),
        deserialize_option(),
        deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_seq(),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(),
        deserialize_ignored_any(),
    );
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for SkipVisitor<V> {
    type Value = V::Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }
    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Skip {
            inner: d,
            level: self.level,
        })
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Skip {
            inner: d,
            level: self.level,
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(seq)
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(data)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(SkipMap {
            inner: map,
            level: self.level,
            next_is_metadata: false,
        })
    }
}

/// A map key, borrowed from the input where it can be.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> Key<'de> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
    fn into_key<S: DeserializeSeed<'de>, E: de::Error>(self, seed: S) -> Result<S::Value, E> {
        match self {
            Key::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::<E>::new(s)),
            Key::Owned(s) => seed.deserialize(StringDeserializer::<E>::new(s)),
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'de>(PhantomData<&'de ()>);
        impl<'de> Visitor<'de> for KeyVisitor<'de> {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

impl<'de, M: MapAccess<'de>> MapAccess<'de> for SkipMap<M> {
    type Error = M::Error;
    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, M::Error> {
        loop {
            let Some(key) = self.inner.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            match (self.level, key.as_str()) {
                (Level::Metadata, "managedFields") => {
                    self.inner.next_value::<IgnoredAny>()?;
                    continue;
                }
                (Level::Object, "metadata") => self.next_is_metadata = true,
                _ => self.next_is_metadata = false,
            }
            return key.into_key(seed).map(Some);
        }
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, M::Error> {
        if std::mem::take(&mut self.next_is_metadata) {
            self.inner.next_value_seed(MetadataSeed(seed))
        } else {
            self.inner.next_value_seed(seed)
        }
    }
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for MetadataSeed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Skip {
            inner: d,
            level: Level::Metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::core::WatchEvent;
    use serde_json::json;

    fn with_managed_fields() -> serde_json::Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "profile-wifi",
                "namespace": "tenant-globex",
                "labels": {"managedFields": "a label, kept"},
                "managedFields": [{
                    "manager": "partnerkit", "operation": "Apply", "apiVersion": "v1",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:security": {}}}
                }],
                "resourceVersion": "42"
            },
            "data": {"security": "wpa3", "managedFields": "a data key, kept"}
        })
    }

    /// managedFields is gone from the metadata, and only from there: a label and a data key
    /// of that name stay, as does everything else.
    #[test]
    fn only_metadata_managed_fields_are_skipped() {
        let text = with_managed_fields().to_string();
        let lean: Lean<ConfigMap> = serde_json::from_str(&text).unwrap();
        let full: ConfigMap = serde_json::from_str(&text).unwrap();
        assert!(full.metadata.managed_fields.is_some());
        assert_eq!(lean.0.metadata.managed_fields, None);
        let mut expected = full;
        expected.metadata.managed_fields = None;
        assert_eq!(lean.0, expected);
        assert_eq!(
            lean.0.data.unwrap()["managedFields"],
            "a data key, kept".to_string()
        );
    }

    /// A watch event whose object comes before its type is decoded through serde's buffered
    /// form, not the JSON text: the skipping works there too.
    #[test]
    fn a_watch_event_in_either_key_order_is_decoded_without_managed_fields() {
        let obj = with_managed_fields();
        for text in [
            format!(r#"{{"type":"ADDED","object":{obj}}}"#),
            format!(r#"{{"object":{obj},"type":"MODIFIED"}}"#),
        ] {
            let ev: WatchEvent<Lean<ConfigMap>> = serde_json::from_str(&text).unwrap();
            let (WatchEvent::Added(cm) | WatchEvent::Modified(cm)) = ev else {
                panic!("not an object event: {text}");
            };
            assert_eq!(cm.0.metadata.managed_fields, None);
            assert_eq!(cm.0.metadata.resource_version.as_deref(), Some("42"));
            assert_eq!(cm.0.data.unwrap().len(), 2);
        }
    }

    /// A write's answer is read for its metadata alone, at the kind's own URLs.
    #[test]
    fn a_write_answer_is_read_for_its_metadata_only() {
        let m: MetaOnly<ConfigMap> = serde_json::from_value(with_managed_fields()).unwrap();
        assert_eq!(m.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(m.metadata.managed_fields, None);
        assert_eq!(
            MetaOnly::<ConfigMap>::url_path(&(), Some("tenant-globex")),
            ConfigMap::url_path(&(), Some("tenant-globex"))
        );
        assert_eq!(MetaOnly::<ConfigMap>::kind(&()), "ConfigMap");
    }

    /// A malformed object still names itself (its metadata is read), through one JSON tree.
    #[test]
    fn a_guarded_object_that_does_not_fit_its_type_keeps_its_metadata() {
        let mut bad = with_managed_fields();
        bad["data"] = json!("not a map");
        let g: Lean<Guarded<ConfigMap>> = serde_json::from_value(bad).unwrap();
        let err = g.0.0.as_ref().unwrap_err();
        assert!(err.error.contains("invalid type"), "{}", err.error);
        assert_eq!(g.meta().name.as_deref(), Some("profile-wifi"));
        assert_eq!(g.meta().managed_fields, None);
        let good: Lean<Guarded<ConfigMap>> = serde_json::from_value(with_managed_fields()).unwrap();
        let cm = good.0.0.unwrap();
        assert_eq!(cm.metadata.managed_fields, None);
        assert_eq!(cm.data.unwrap()["security"], "wpa3");
    }
}
