//! `/openapi/v2`: the aggregated Swagger 2.0 document of every served resource, as JSON
//! (`Accept: application/json`) or as the gnostic `openapi_v2.Document` protobuf
//! (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), which is what
//! kubectl up to 1.28 downloads for `apply`/`create` (field-validation support check,
//! strategic-merge metadata) and `explain`.
//!
//! The document carries the same information as the per-group-version OpenAPI v3 documents
//! of [`crate::present`]: it is built from them, converted to Swagger 2.0 (`$ref`s into
//! `#/definitions/...`, request bodies as `in: body` parameters, parameter schemas flattened),
//! merged, and the custom resource definitions are rebuilt from the CRD schemas the way the
//! apiextensions server publishes them in v2 (`ToStructuralOpenAPIV2`: no `allOf`/`oneOf`/
//! `anyOf`/`not`, `nullable` and `x-kubernetes-preserve-unknown-fields` nodes lose their
//! type, items and properties, a root that preserves unknown fields becomes a bare
//! `{"type": "object"}`).
//!
//! ## Why a hand-written protobuf encoder
//!
//! kubectl only *reads* a handful of gnostic messages (Document, Paths/PathItem/Operation/
//! Parameter, Definitions/Schema, NamedAny/Any), and only needs them *encoded*, never decoded.
//! Protobuf's wire format for that is two constructs: varints (field keys, lengths, bools and
//! integers) and length-delimited fields (strings and nested messages), plus fixed64 for the
//! few `double`s. The [`Writer`] below is ~40 lines; generated code (prost + a build script +
//! protoc or a vendored descriptor of the 60-message OpenAPIv2.proto) would be far larger than
//! the handful of message layouts written out here, and would add a build step for one
//! endpoint. Field numbers are those of github.com/google/gnostic-models
//! `openapiv2/OpenAPIv2.proto`; every vendor extension and `default`/`enum`/`example` value is
//! an `Any` whose `yaml` holds the JSON text (JSON is YAML, which is what kube-openapi parses).
//!
//! Generation walks every schema, so the rendered bytes are cached per registry state: a
//! registry is identified by the exact `Arc<ResourceInfo>` entries it holds (a CRD change
//! replaces its entries), and holding those `Arc`s in the cache keeps the identity sound.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::kinds::{Registry, ResourceInfo};
use crate::present::{ApiResource, openapi_v3_group_version};
use crate::server::Reply;

/// The media type of the protobuf encoding (gnostic `openapi_v2.Document`).
pub const PROTOBUF_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

const V3_PREFIX: &str = "#/components/schemas/";
const V2_PREFIX: &str = "#/definitions/";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

// ---------------------------------------------------------------------------------------------
// Serving and caching
// ---------------------------------------------------------------------------------------------

/// The document of one registry state, in both encodings.
pub struct Rendered {
    pub json: Bytes,
    pub protobuf: Bytes,
}

type CacheEntry = (Vec<Arc<ResourceInfo>>, Arc<Rendered>);

static CACHE: Mutex<Vec<CacheEntry>> = Mutex::new(Vec::new());
/// Several simulators may run in one process (tests); keep a few registry states.
const CACHE_SIZE: usize = 8;

fn same_state(a: &[Arc<ResourceInfo>], b: &[Arc<ResourceInfo>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

/// The rendered document for this registry state (cached).
pub fn rendered(registry: &Registry) -> Arc<Rendered> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pos) = cache
        .iter()
        .position(|(k, _)| same_state(k, registry.all()))
    {
        let entry = cache.remove(pos);
        let r = entry.1.clone();
        cache.push(entry);
        return r;
    }
    let doc = swagger(registry);
    let r = Arc::new(Rendered {
        json: Bytes::from(serde_json::to_vec(&doc).unwrap_or_default()),
        protobuf: Bytes::from(encode_document(&doc)),
    });
    if cache.len() >= CACHE_SIZE {
        cache.remove(0);
    }
    cache.push((registry.all().to_vec(), r.clone()));
    r
}

/// `GET /openapi/v2`: protobuf when the client accepts it, JSON otherwise.
pub fn reply(registry: &Registry, accept: &str) -> Reply {
    let r = rendered(registry);
    if accept.contains(PROTOBUF_TYPE) || accept.contains("com.github.proto-openapi.spec.v2") {
        // kube-openapi answers the deprecated `@v1.0` Accept with the `.v1.0` type: client-go
        // parses Content-Type with mime.ParseMediaType, which rejects the `@`.
        Reply {
            code: 200,
            body: r.protobuf.clone().into(),
            content_type: "application/com.github.proto-openapi.spec.v2.v1.0+protobuf".into(),
            warnings: Vec::new(),
        }
    } else {
        Reply::json(200, r.json.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// The Swagger 2.0 document
// ---------------------------------------------------------------------------------------------

/// The definition name of a custom kind: reversed group, version, kind (`io.partnerkit.v1alpha1.Partner`).
fn crd_definition_name(group: &str, version: &str, kind: &str) -> String {
    let rev: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", rev.join("."))
}

/// The aggregated Swagger 2.0 document (uncached).
pub fn swagger(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let resources = registry.resources_of(&group, &version);
            let served: Vec<&Arc<ResourceInfo>> =
                resources.iter().filter(|r| !r.virtual_create).collect();
            if served.is_empty() {
                continue;
            }
            let api: Vec<ApiResource> = served
                .iter()
                .map(|r| ApiResource {
                    group: &r.group,
                    version: &r.version,
                    kind: &r.kind,
                    plural: &r.plural,
                    namespaced: r.namespaced,
                    schema: r.crd.as_ref().map(|c| &c.raw_schema),
                    has_status: r.has_status,
                })
                .collect();
            let custom = served.iter().any(|r| r.is_crd());
            let v3 = openapi_v3_group_version(&api);
            if let Some(ps) = v3["paths"].as_object() {
                for (p, item) in ps {
                    paths.insert(p.clone(), path_item_v2(item, custom));
                }
            }
            let schemas = v3["components"]["schemas"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (name, s) in &schemas {
                if !definitions.contains_key(name) {
                    definitions.insert(name.clone(), builtin_definition_v2(s));
                }
            }
            for r in served {
                if let Some(crd) = &r.crd {
                    let name = crd_definition_name(&r.group, &r.version, &r.kind);
                    let v3_def = schemas.get(&name).cloned().unwrap_or(Value::Null);
                    definitions.insert(name, crd_kind_definition(r, &crd.raw_schema, &v3_def));
                }
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-kube-sim"},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"}},
        "security": [{"BearerToken": []}],
    })
}

/// A built-in kind served with a permissive schema becomes a bare object in v2 (kubectl's
/// client-side validation, used for `kind: List` files, then accepts any field of it, as it
/// would with the real schema); other schemas convert as they are.
fn builtin_definition_v2(s: &Value) -> Value {
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        let mut bare = Map::new();
        for k in ["description", "type", "x-kubernetes-group-version-kind"] {
            if let Some(v) = s.get(k) {
                bare.insert(k.to_string(), v.clone());
            }
        }
        return Value::Object(bare);
    }
    schema_v2(s)
}

fn ref_v2(r: &Value) -> Value {
    match r.as_str() {
        Some(s) => Value::String(
            s.strip_prefix(V3_PREFIX)
                .map(|n| format!("{V2_PREFIX}{n}"))
                .unwrap_or_else(|| s.to_string()),
        ),
        None => r.clone(),
    }
}

/// An OpenAPI v3 schema as Swagger 2.0: `$ref`s into `#/definitions/`, `allOf: [{$ref}]`
/// wrappers (v3's way to describe a reference) lifted to a plain `$ref`, no `nullable`/
/// `oneOf`/`anyOf`/`not`.
pub fn schema_v2(s: &Value) -> Value {
    let Value::Object(m) = s else {
        return s.clone();
    };
    let mut out = Map::new();
    let single_ref = match m.get("allOf") {
        Some(Value::Array(all)) if all.len() == 1 && all[0].get("$ref").is_some() => {
            Some(ref_v2(&all[0]["$ref"]))
        }
        _ => None,
    };
    for (k, v) in m {
        match k.as_str() {
            "$ref" => {
                out.insert(k.clone(), ref_v2(v));
            }
            "allOf" if single_ref.is_some() => {}
            "default" if single_ref.is_some() => {}
            "allOf" => {
                out.insert(
                    k.clone(),
                    Value::Array(
                        v.as_array()
                            .map(|a| a.iter().map(schema_v2).collect())
                            .unwrap_or_default(),
                    ),
                );
            }
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .map(|p| p.iter().map(|(n, ps)| (n.clone(), schema_v2(ps))).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(k.clone(), schema_v2(v));
            }
            "nullable" | "oneOf" | "anyOf" | "not" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(r) = single_ref {
        out.insert("$ref".into(), r);
    }
    Value::Object(out)
}

/// apiextensions' `ToStructuralOpenAPIV2`, applied to a CRD schema in place.
fn to_structural_v2(s: &mut Value) {
    let Value::Object(m) = s else { return };
    for k in ["allOf", "oneOf", "anyOf", "not"] {
        m.remove(k);
    }
    let truthy = |m: &Map<String, Value>, k: &str| m.get(k) == Some(&Value::Bool(true));
    let nullable = truthy(m, "nullable");
    m.remove("nullable");
    if nullable {
        m.remove("type");
        m.remove("items");
        m.remove("properties");
    }
    let preserve = truthy(m, "x-kubernetes-preserve-unknown-fields");
    if preserve {
        m.remove("items");
        m.remove("properties");
    }
    if m.get("type").and_then(Value::as_str) == Some("array") && !m.contains_key("items") {
        m.remove("type");
    }
    if preserve && m.get("type").and_then(Value::as_str) == Some("object") {
        m.remove("type");
    }
    // Required fields that may be null cannot be required in v2.
    let mut nullable_props: Vec<String> = Vec::new();
    if let Some(Value::Object(props)) = m.get("properties") {
        for (name, p) in props {
            if p.get("nullable") == Some(&Value::Bool(true)) {
                nullable_props.push(name.clone());
            }
        }
    }
    let ap_nullable = m
        .get("additionalProperties")
        .and_then(|a| a.get("nullable"))
        == Some(&Value::Bool(true));
    if let Some(Value::Array(req)) = m.get_mut("required") {
        req.retain(|r| {
            !r.as_str()
                .is_some_and(|r| nullable_props.iter().any(|n| n == r))
        });
        if ap_nullable {
            req.clear();
        }
    }
    if m.get("required")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        m.remove("required");
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for p in props.values_mut() {
            to_structural_v2(p);
        }
    }
    if let Some(items) = m.get_mut("items") {
        to_structural_v2(items);
    }
    if let Some(ap) = m.get_mut("additionalProperties")
        && ap.is_object()
    {
        to_structural_v2(ap);
    }
}

/// apiVersion/kind/metadata on `x-kubernetes-embedded-resource` objects (not on those that
/// preserve unknown fields: kubectl would then reject their unknown fields).
fn add_embedded_v2(s: &mut Value, type_meta: &Map<String, Value>) {
    let Value::Object(m) = s else { return };
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for p in props.values_mut() {
            add_embedded_v2(p, type_meta);
        }
    }
    if let Some(items) = m.get_mut("items") {
        add_embedded_v2(items, type_meta);
    }
    if let Some(ap) = m.get_mut("additionalProperties")
        && ap.is_object()
    {
        add_embedded_v2(ap, type_meta);
    }
    if m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        || m.get("x-kubernetes-embedded-resource") != Some(&Value::Bool(true))
    {
        return;
    }
    let props = m.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(props) = props {
        props.insert("apiVersion".into(), json!({"type": "string", "description": "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
        props.insert("kind".into(), json!({"type": "string", "description": "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
        if let Some(meta) = type_meta.get("metadata") {
            props.insert("metadata".into(), meta.clone());
        }
    }
    let req = m.entry("required").or_insert_with(|| json!([]));
    if let Value::Array(req) = req {
        for f in ["kind", "apiVersion"] {
            if !req.iter().any(|x| x == f) {
                req.push(json!(f));
            }
        }
    }
}

/// The v2 definition of a custom kind, like the apiextensions server's `buildKubeNative` with `V2`.
fn crd_kind_definition(r: &ResourceInfo, raw: &Value, v3_def: &Value) -> Value {
    // apiVersion/kind/metadata exactly as the v3 document has them, converted.
    let mut type_meta = Map::new();
    for f in ["apiVersion", "kind", "metadata"] {
        if let Some(p) = v3_def["properties"].get(f) {
            type_meta.insert(f.to_string(), schema_v2(p));
        }
    }
    if !type_meta.contains_key("metadata") {
        type_meta.insert("metadata".into(), json!({"$ref": format!("{V2_PREFIX}{OBJECT_META}"), "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
    }
    let root_preserves =
        raw.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let mut s = if !raw.is_object() || root_preserves {
        // No properties at all: kubectl would otherwise reject every unknown field.
        json!({"type": "object"})
    } else {
        let mut s = raw.clone();
        to_structural_v2(&mut s);
        add_embedded_v2(&mut s, &type_meta);
        let m = s.as_object_mut().expect("object schema");
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(props) = props {
            for (k, v) in &type_meta {
                props.insert(k.clone(), v.clone());
            }
        }
        s
    };
    s["x-kubernetes-group-version-kind"] = json!([{"group": r.group.as_ref(), "kind": r.kind.as_ref(), "version": r.version.as_ref()}]);
    s
}

/// A v3 parameter as v2: its `schema`'s `type`/`uniqueItems`/... inlined.
fn param_v2(p: &Value) -> Value {
    let Value::Object(m) = p else {
        return p.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        if k == "schema" {
            if let Value::Object(s) = v {
                for (sk, sv) in s {
                    out.insert(sk.clone(), sv.clone());
                }
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn first_content_schema(content: &Value) -> Option<&Value> {
    let c = content.as_object()?;
    c.get("application/json")
        .or_else(|| c.values().next())
        .and_then(|m| m.get("schema"))
}

fn op_v2(method: &str, op: &Value, custom: bool) -> Value {
    let Value::Object(m) = op else {
        return op.clone();
    };
    let mut out = Map::new();
    let mut params: Vec<Value> = Vec::new();
    let mut consumes: Vec<Value> = Vec::new();
    for (k, v) in m {
        match k.as_str() {
            "parameters" => {}
            "requestBody" => {
                let mut body = json!({"name": "body", "in": "body", "required": v["required"].as_bool().unwrap_or(false)});
                if let Some(s) = first_content_schema(&v["content"]) {
                    body["schema"] = schema_v2(s);
                }
                params.push(body);
                if method == "patch" {
                    consumes = v["content"]
                        .as_object()
                        .map(|c| c.keys().map(|t| json!(t)).collect())
                        .unwrap_or_default();
                }
            }
            "responses" => {
                let mut rs = Map::new();
                for (code, r) in v.as_object().into_iter().flatten() {
                    let mut out_r = json!({"description": r["description"].clone()});
                    if let Some(s) = first_content_schema(&r["content"]) {
                        out_r["schema"] = schema_v2(s);
                    }
                    rs.insert(code.clone(), out_r);
                }
                out.insert(k.clone(), Value::Object(rs));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(Value::Array(ps)) = m.get("parameters") {
        params.extend(ps.iter().map(param_v2));
    }
    if consumes.is_empty() {
        consumes.push(json!("*/*"));
    }
    out.insert("consumes".into(), Value::Array(consumes));
    let produces: &[&str] = if custom {
        &["application/json", "application/yaml"]
    } else {
        &[
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ]
    };
    out.insert("produces".into(), json!(produces));
    out.insert("schemes".into(), json!(["https"]));
    out.insert("parameters".into(), Value::Array(params));
    Value::Object(out)
}

fn path_item_v2(item: &Value, custom: bool) -> Value {
    let Value::Object(m) = item else {
        return item.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let v2 = match k.as_str() {
            "parameters" => Value::Array(
                v.as_array()
                    .map(|a| a.iter().map(param_v2).collect())
                    .unwrap_or_default(),
            ),
            "get" | "put" | "post" | "delete" | "patch" | "head" | "options" => op_v2(k, v, custom),
            _ => v.clone(),
        };
        out.insert(k.clone(), v2);
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire encoding
// ---------------------------------------------------------------------------------------------

/// A minimal protobuf encoder: varints, length-delimited fields (strings, nested messages)
/// and fixed64 doubles. Singular scalars at their default value are omitted (proto3);
/// nested messages are always written, since their presence is meaningful.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    /// A singular string (omitted when empty).
    pub fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    /// One element of a repeated string (always written).
    pub fn string_elem(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }
    pub fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }
    /// A bool member of a oneof: written even when false.
    pub fn oneof_bool(&mut self, field: u32, b: bool) {
        self.key(field, 0);
        self.varint(b as u64);
    }
    pub fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }
    pub fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    pub fn message(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        f(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or_default()
}
fn b(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}
fn f(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}
fn i(m: &Map<String, Value>, k: &str) -> i64 {
    m.get(k).and_then(Value::as_i64).unwrap_or(0)
}
fn strs<'a>(m: &'a Map<String, Value>, k: &str) -> impl Iterator<Item = &'a str> {
    m.get(k)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// `Any { yaml = 2 }` holding the value's JSON text.
fn any(w: &mut Writer, field: u32, v: &Value) {
    w.message(field, |w| {
        w.string_elem(2, &serde_json::to_string(v).unwrap_or_default())
    });
}

/// `repeated NamedAny vendor_extension` for every `x-` key.
fn vendor_extensions(w: &mut Writer, field: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        w.message(field, |w| {
            w.string(1, k);
            any(w, 2, v);
        });
    }
}

/// `openapi.v2.Schema`.
fn schema(w: &mut Writer, v: &Value) {
    let Value::Object(m) = v else { return };
    w.string(1, s(m, "$ref"));
    w.string(2, s(m, "format"));
    w.string(3, s(m, "title"));
    w.string(4, s(m, "description"));
    if let Some(d) = m.get("default") {
        any(w, 5, d);
    }
    w.double(6, f(m, "multipleOf"));
    w.double(7, f(m, "maximum"));
    w.bool(8, b(m, "exclusiveMaximum"));
    w.double(9, f(m, "minimum"));
    w.bool(10, b(m, "exclusiveMinimum"));
    w.int64(11, i(m, "maxLength"));
    w.int64(12, i(m, "minLength"));
    w.string(13, s(m, "pattern"));
    w.int64(14, i(m, "maxItems"));
    w.int64(15, i(m, "minItems"));
    w.bool(16, b(m, "uniqueItems"));
    w.int64(17, i(m, "maxProperties"));
    w.int64(18, i(m, "minProperties"));
    for r in strs(m, "required") {
        w.string_elem(19, r);
    }
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        any(w, 20, e);
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(ap)) => w.message(21, |w| w.oneof_bool(2, *ap)),
        Some(ap @ Value::Object(_)) => w.message(21, |w| w.message(1, |w| schema(w, ap))),
        _ => {}
    }
    match m.get("type") {
        Some(Value::String(t)) => w.message(22, |w| w.string_elem(1, t)),
        Some(Value::Array(ts)) => w.message(22, |w| {
            ts.iter()
                .filter_map(Value::as_str)
                .for_each(|t| w.string_elem(1, t))
        }),
        _ => {}
    }
    match m.get("items") {
        Some(Value::Array(items)) => w.message(23, |w| {
            items.iter().for_each(|it| w.message(1, |w| schema(w, it)))
        }),
        Some(it @ Value::Object(_)) => w.message(23, |w| w.message(1, |w| schema(w, it))),
        _ => {}
    }
    for a in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, |w| schema(w, a));
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        w.message(25, |w| {
            for (name, p) in props {
                w.message(1, |w| {
                    w.string_elem(1, name);
                    w.message(2, |w| schema(w, p));
                });
            }
        });
    }
    w.string(26, s(m, "discriminator"));
    w.bool(27, b(m, "readOnly"));
    if let Some(Value::Object(d)) = m.get("externalDocs") {
        w.message(29, |w| {
            w.string(1, s(d, "description"));
            w.string(2, s(d, "url"));
        });
    }
    if let Some(e) = m.get("example") {
        any(w, 30, e);
    }
    vendor_extensions(w, 31, m);
}

/// `openapi.v2.PrimitivesItems`.
fn primitives_items(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, s(m, "type"));
    w.string(2, s(m, "format"));
    if let Some(Value::Object(it)) = m.get("items") {
        w.message(3, |w| primitives_items(w, it));
    }
    w.string(4, s(m, "collectionFormat"));
}

/// The non-body parameter sub-schemas share one layout; the query and formData ones have
/// `allow_empty_value = 5` and every later field one number higher (`shift`).
fn non_body_sub_schema(w: &mut Writer, m: &Map<String, Value>, shift: u32) {
    w.bool(1, b(m, "required"));
    w.string(2, s(m, "in"));
    w.string(3, s(m, "description"));
    w.string(4, s(m, "name"));
    if shift == 1 {
        w.bool(5, b(m, "allowEmptyValue"));
    }
    w.string(5 + shift, s(m, "type"));
    w.string(6 + shift, s(m, "format"));
    if let Some(Value::Object(it)) = m.get("items") {
        w.message(7 + shift, |w| primitives_items(w, it));
    }
    w.string(8 + shift, s(m, "collectionFormat"));
    if let Some(d) = m.get("default") {
        any(w, 9 + shift, d);
    }
    w.double(10 + shift, f(m, "maximum"));
    w.bool(11 + shift, b(m, "exclusiveMaximum"));
    w.double(12 + shift, f(m, "minimum"));
    w.bool(13 + shift, b(m, "exclusiveMinimum"));
    w.int64(14 + shift, i(m, "maxLength"));
    w.int64(15 + shift, i(m, "minLength"));
    w.string(16 + shift, s(m, "pattern"));
    w.int64(17 + shift, i(m, "maxItems"));
    w.int64(18 + shift, i(m, "minItems"));
    w.bool(19 + shift, b(m, "uniqueItems"));
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        any(w, 20 + shift, e);
    }
    w.double(21 + shift, f(m, "multipleOf"));
    vendor_extensions(w, 22 + shift, m);
}

/// `openapi.v2.ParametersItem { parameter = 1 }`.
fn parameters_item(w: &mut Writer, field: u32, p: &Value) {
    let Value::Object(m) = p else { return };
    w.message(field, |w| {
        w.message(1, |w| {
            if s(m, "in") == "body" {
                w.message(1, |w| {
                    w.string(1, s(m, "description"));
                    w.string(2, s(m, "name"));
                    w.string(3, s(m, "in"));
                    w.bool(4, b(m, "required"));
                    if let Some(sc) = m.get("schema") {
                        w.message(5, |w| schema(w, sc));
                    }
                    vendor_extensions(w, 6, m);
                });
            } else {
                w.message(2, |w| match s(m, "in") {
                    "header" => w.message(1, |w| non_body_sub_schema(w, m, 0)),
                    "formData" => w.message(2, |w| non_body_sub_schema(w, m, 1)),
                    "path" => w.message(4, |w| non_body_sub_schema(w, m, 0)),
                    _ => w.message(3, |w| non_body_sub_schema(w, m, 1)),
                });
            }
        });
    });
}

/// `openapi.v2.Operation`.
fn operation(w: &mut Writer, m: &Map<String, Value>) {
    for t in strs(m, "tags") {
        w.string_elem(1, t);
    }
    w.string(2, s(m, "summary"));
    w.string(3, s(m, "description"));
    w.string(5, s(m, "operationId"));
    for t in strs(m, "produces") {
        w.string_elem(6, t);
    }
    for t in strs(m, "consumes") {
        w.string_elem(7, t);
    }
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parameters_item(w, 8, p);
    }
    if let Some(Value::Object(rs)) = m.get("responses") {
        w.message(9, |w| {
            for (code, r) in rs.iter().filter(|(k, _)| !k.starts_with("x-")) {
                let Value::Object(r) = r else { continue };
                w.message(1, |w| {
                    w.string_elem(1, code);
                    w.message(2, |w| {
                        w.message(1, |w| {
                            w.string(1, s(r, "description"));
                            if let Some(sc) = r.get("schema") {
                                w.message(2, |w| w.message(1, |w| schema(w, sc)));
                            }
                            vendor_extensions(w, 5, r);
                        })
                    });
                });
            }
            vendor_extensions(w, 2, rs);
        });
    }
    for t in strs(m, "schemes") {
        w.string_elem(10, t);
    }
    w.bool(11, b(m, "deprecated"));
    vendor_extensions(w, 13, m);
}

/// `openapi.v2.PathItem`.
fn path_item(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, s(m, "$ref"));
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(Value::Object(op)) = m.get(method) {
            w.message(field, |w| operation(w, op));
        }
    }
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parameters_item(w, 9, p);
    }
    vendor_extensions(w, 10, m);
}

/// Encodes a Swagger 2.0 JSON document as a gnostic `openapi.v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    let Value::Object(m) = doc else { return w.buf };
    w.string(1, s(m, "swagger"));
    if let Some(Value::Object(info)) = m.get("info") {
        w.message(2, |w| {
            w.string(1, s(info, "title"));
            w.string(2, s(info, "version"));
            w.string(3, s(info, "description"));
            vendor_extensions(w, 7, info);
        });
    }
    w.string(3, s(m, "host"));
    w.string(4, s(m, "basePath"));
    for (field, k) in [(5, "schemes"), (6, "consumes"), (7, "produces")] {
        for t in strs(m, k) {
            w.string_elem(field, t);
        }
    }
    if let Some(Value::Object(paths)) = m.get("paths") {
        w.message(8, |w| {
            vendor_extensions(w, 1, paths);
            for (p, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
                let Value::Object(item) = item else { continue };
                w.message(2, |w| {
                    w.string_elem(1, p);
                    w.message(2, |w| path_item(w, item));
                });
            }
        });
    }
    if let Some(Value::Object(defs)) = m.get("definitions") {
        w.message(9, |w| {
            for (name, d) in defs {
                w.message(1, |w| {
                    w.string_elem(1, name);
                    w.message(2, |w| schema(w, d));
                });
            }
        });
    }
    for req in m
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Value::Object(req) = req else { continue };
        w.message(12, |w| {
            for (name, scopes) in req {
                w.message(1, |w| {
                    w.string_elem(1, name);
                    w.message(2, |w| {
                        scopes
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .for_each(|sc| w.string_elem(1, sc))
                    });
                });
            }
        });
    }
    if let Some(Value::Object(defs)) = m.get("securityDefinitions") {
        w.message(13, |w| {
            for (name, d) in defs {
                let Value::Object(d) = d else { continue };
                w.message(1, |w| {
                    w.string_elem(1, name);
                    w.message(2, |w| match s(d, "type") {
                        "basic" => w.message(1, |w| {
                            w.string(1, s(d, "type"));
                            w.string(2, s(d, "description"));
                        }),
                        _ => w.message(2, |w| {
                            w.string(1, s(d, "type"));
                            w.string(2, s(d, "name"));
                            w.string(3, s(d, "in"));
                            w.string(4, s(d, "description"));
                        }),
                    });
                });
            }
        });
    }
    vendor_extensions(&mut w, 16, m);
    w.buf
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::CrdVersion;
    use crate::schema::CrdSchema;
    use crate::ssa::SchemaTypeInfo;

    #[test]
    fn varints_and_a_tiny_document_encode_to_known_bytes() {
        let mut w = Writer::default();
        w.varint(300);
        assert_eq!(w.buf, [0xac, 0x02]);
        let doc = json!({"swagger": "2.0", "info": {"title": "K", "version": "v"}});
        // field 1 (swagger) "2.0"; field 2 (info) { 1: "K", 2: "v" }
        assert_eq!(
            encode_document(&doc),
            [
                0x0a, 0x03, b'2', b'.', b'0', 0x12, 0x06, 0x0a, 0x01, b'K', 0x12, 0x01, b'v'
            ]
        );
        // definitions(9) { NamedSchema(1) { name "A", Schema { type(22) { "object" }, vendor_extension(31) { "x-a", Any { yaml "1" } } } } }
        let doc = json!({"definitions": {"A": {"type": "object", "x-a": 1}}});
        let mut expected = vec![
            0x4a, 0x1f, 0x0a, 0x1d, 0x0a, 0x01, b'A', 0x12, 0x18, 0xb2, 0x01, 0x08, 0x0a, 0x06,
        ];
        expected.extend_from_slice(b"object");
        expected.extend_from_slice(&[
            0xfa, 0x01, 0x0a, 0x0a, 0x03, b'x', b'-', b'a', 0x12, 0x03, 0x12, 0x01, b'1',
        ]);
        assert_eq!(encode_document(&doc), expected);
    }

    #[test]
    fn oneof_false_and_doubles_are_written() {
        let mut w = Writer::default();
        schema(
            &mut w,
            &json!({"additionalProperties": false, "maximum": 1.5}),
        );
        // maximum(7, fixed64) then additionalProperties(21) { boolean(2) = 0 }
        let mut expected = vec![0x39];
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0xaa, 0x01, 0x02, 0x10, 0x00]);
        assert_eq!(w.buf, expected);
    }

    fn with_partner() -> Registry {
        let raw = json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "required": ["tier", "note"], "properties": {
                    "tier": {"type": "string", "description": "Commercial tier.", "enum": ["gold", "silver"]},
                    "note": {"type": "string", "nullable": true},
                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}}
                }},
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
            }
        });
        let mut reg = Registry::builtin();
        reg.insert(ResourceInfo {
            group: "partnerkit.io".into(),
            version: "v1alpha1".into(),
            kind: "Partner".into(),
            plural: "partners".into(),
            singular: "partner".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            has_status: true,
            has_generation: true,
            verbs: &["get", "list", "create", "update", "patch", "delete"],
            virtual_create: false,
            crd: Some(Arc::new(CrdVersion {
                schema: CrdSchema::new(&raw).unwrap(),
                type_info: SchemaTypeInfo::new(&raw),
                raw_schema: raw,
                printer_columns: vec![],
                storage: true,
            })),
            extra_field_selectors: &[],
            storage_group: "partnerkit.io".into(),
        });
        reg
    }

    #[test]
    fn document_has_paths_with_gvk_and_crd_definitions() {
        let reg = with_partner();
        let doc = swagger(&reg);
        assert_eq!(doc["swagger"], "2.0");
        let patch = &doc["paths"]["/apis/partnerkit.io/v1alpha1/namespaces/{namespace}/partners/{name}"]
            ["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "partnerkit.io", "kind": "Partner", "version": "v1alpha1"})
        );
        let params = patch["parameters"].as_array().unwrap();
        assert_eq!(params[0]["in"], "body");
        assert!(params.iter().any(|p| p["name"] == "fieldValidation"
            && p["in"] == "query"
            && p["type"] == "string"));
        let cm = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"];
        assert_eq!(cm["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
        assert_eq!(
            cm["responses"]["201"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.ConfigMap"
        );

        let def = &doc["definitions"]["io.partnerkit.v1alpha1.Partner"];
        assert_eq!(
            def["x-kubernetes-group-version-kind"],
            json!([{"group": "partnerkit.io", "kind": "Partner", "version": "v1alpha1"}])
        );
        assert_eq!(
            def["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let spec = &def["properties"]["spec"];
        assert_eq!(
            spec["properties"]["tier"]["enum"],
            json!(["gold", "silver"])
        );
        assert_eq!(
            spec["required"],
            json!(["tier"]),
            "nullable fields are not required in v2"
        );
        assert!(spec["properties"]["note"].get("type").is_none());
        assert!(spec["properties"]["port"].get("anyOf").is_none());
        assert!(
            spec["properties"]["extra"].get("properties").is_none()
                && spec["properties"]["extra"].get("type").is_none()
        );
        assert_eq!(
            spec["properties"]["template"]["required"],
            json!(["kind", "apiVersion"])
        );
        assert!(doc["definitions"]["io.partnerkit.v1alpha1.PartnerList"]["properties"]["items"]["items"]["$ref"].as_str().unwrap().starts_with(V2_PREFIX));
        assert!(
            doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["metadata"]["$ref"]
                .as_str()
                .unwrap()
                .starts_with(V2_PREFIX)
        );
        // every $ref resolves
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r
                .strip_prefix(V2_PREFIX)
                .unwrap_or_else(|| panic!("not a v2 ref: {r}"));
            assert!(doc["definitions"].get(name).is_some(), "dangling {r}");
        }
        // the protobuf carries the names
        let pb = encode_document(&doc);
        let has = |needle: &[u8]| pb.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"io.partnerkit.v1alpha1.Partner"));
        assert!(has(b"x-kubernetes-group-version-kind"));
    }

    #[test]
    fn root_preserving_crd_is_a_bare_object_and_cache_follows_registry() {
        let reg = with_partner();
        let a = rendered(&reg);
        assert!(Arc::ptr_eq(&a, &rendered(&reg.clone())));
        let mut reg2 = reg.clone();
        let raw = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        reg2.insert(ResourceInfo {
            crd: Some(Arc::new(CrdVersion {
                schema: CrdSchema::new(&raw).unwrap(),
                type_info: SchemaTypeInfo::new(&raw),
                raw_schema: raw,
                printer_columns: vec![],
                storage: true,
            })),
            ..(*reg.by_kind("partnerkit.io", "Partner").unwrap()).clone()
        });
        let b = rendered(&reg2);
        assert!(!Arc::ptr_eq(&a, &b));
        let doc: Value = serde_json::from_slice(&b.json).unwrap();
        assert_eq!(
            doc["definitions"]["io.partnerkit.v1alpha1.Partner"],
            json!({"type": "object", "x-kubernetes-group-version-kind": [{"group": "partnerkit.io", "kind": "Partner", "version": "v1alpha1"}]})
        );
        assert_eq!(
            reply(&reg2, PROTOBUF_TYPE).content_type,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        );
        assert_eq!(
            reply(&reg2, "application/json").content_type,
            "application/json"
        );
    }
}
