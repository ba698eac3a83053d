//! Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`).
//!
//! `kubectl` sends the objects of its typed subcommands (`create configmap|secret|role|…`,
//! `auth can-i`, `auth whoami`, `create token`) as protobuf. [`decode`] turns such a body into
//! the JSON the API server's JSON encoding would give for the same object, so the rest of the
//! simulator only ever sees JSON.
//!
//! The envelope is the 4 magic bytes `k8s\0` followed by a `runtime.Unknown` message
//! (1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType); `raw` is the
//! object's own message, chosen by group and kind.
//!
//! There is deliberately no `prost` and no build script: clients only ever send a dozen kinds,
//! so a small wire-format reader driven by a static table of message descriptors (field number,
//! JSON name, type, and how the Go JSON encoding treats an empty value) is far smaller than
//! generated bindings for the whole API, and needs no `.proto` files or `protoc` at build time.
//! Field numbers come from the `generated.proto` files of k8s.io/api and k8s.io/apimachinery.
//! Unknown fields are skipped, as the real decoder does.

use base64::Engine;
use serde_json::{Map, Value};

/// The bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// Does this body carry the Kubernetes protobuf magic?
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Decode a Kubernetes protobuf body (magic + `runtime.Unknown`) into the object's JSON form,
/// with `apiVersion` and `kind` taken from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let Some(rest) = body.strip_prefix(MAGIC) else {
        return Err(
            "not a Kubernetes protobuf body: it does not start with the magic bytes \"k8s\\0\""
                .into(),
        );
    };
    let (mut api_version, mut kind) = (String::new(), String::new());
    let mut raw: &[u8] = &[];
    let mut encoding = String::new();
    let mut content_type = String::new();
    let mut r = Reader::new(rest);
    while let Some((num, wire)) = r.key("runtime.Unknown")? {
        match (num, wire) {
            (1, WIRE_LEN) => {
                let mut tm = Reader::new(r.len_delimited("runtime.Unknown.typeMeta")?);
                while let Some((n, w)) = tm.key("runtime.TypeMeta")? {
                    match (n, w) {
                        (1, WIRE_LEN) => {
                            api_version = utf8(
                                tm.len_delimited("runtime.TypeMeta.apiVersion")?,
                                "runtime.TypeMeta.apiVersion",
                            )?
                        }
                        (2, WIRE_LEN) => {
                            kind = utf8(
                                tm.len_delimited("runtime.TypeMeta.kind")?,
                                "runtime.TypeMeta.kind",
                            )?
                        }
                        _ => tm.skip(w, "runtime.TypeMeta")?,
                    }
                }
            }
            (2, WIRE_LEN) => raw = r.len_delimited("runtime.Unknown.raw")?,
            (3, WIRE_LEN) => {
                encoding = utf8(
                    r.len_delimited("runtime.Unknown.contentEncoding")?,
                    "runtime.Unknown.contentEncoding",
                )?
            }
            (4, WIRE_LEN) => {
                content_type = utf8(
                    r.len_delimited("runtime.Unknown.contentType")?,
                    "runtime.Unknown.contentType",
                )?
            }
            _ => r.skip(wire, "runtime.Unknown")?,
        }
    }
    if !encoding.is_empty() {
        return Err(format!("unsupported contentEncoding {encoding:?}"));
    }
    if !content_type.is_empty() && !content_type.starts_with("application/vnd.kubernetes.protobuf")
    {
        return Err(format!(
            "unsupported contentType {content_type:?} inside the protobuf envelope"
        ));
    }
    if kind.is_empty() {
        return Err("the protobuf envelope has no kind".into());
    }
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let Some(message) = top_level(group, &kind) else {
        return Err(format!(
            "no protobuf decoder for kind {kind:?} of apiVersion {api_version:?}; send it as JSON instead"
        ));
    };
    let Value::Object(fields) = decode_message(message, raw, &kind)? else {
        unreachable!("messages decode to objects")
    };
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version));
    out.insert("kind".into(), Value::String(kind));
    out.extend(fields);
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Descriptors

/// The type of one field (of each element, for repeated fields).
#[derive(Clone, Copy, Debug)]
enum Ty {
    Str,
    /// No message of the table has a plain `bytes` field yet; kept for completeness.
    #[allow(dead_code)]
    Bytes,
    Bool,
    I32,
    I64,
    Msg(&'static str),
    /// metav1.Time {1 seconds, 2 nanos}, RFC 3339 to the second.
    Time,
    /// metav1.MicroTime, RFC 3339 to the microsecond.
    MicroTime,
    /// intstr.IntOrString {1 type, 2 intVal, 3 strVal}; unused by the table so far.
    #[allow(dead_code)]
    IntOrStr,
    /// metav1.FieldsV1 {1 raw}: raw JSON, embedded as is.
    RawJson,
    MapStr,
    MapBytes,
    /// map<string, ExtraValue> where ExtraValue is {1 repeated string items}.
    MapStrList,
}

/// How the Go JSON encoding treats the field, which decides when an empty value appears.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Card {
    /// `omitempty` value: left out when absent or zero.
    Opt,
    /// Pointer (`*T`, `omitempty`): present on the wire exactly when set, kept even if zero.
    Ptr,
    /// No `omitempty`: always there, zero when absent.
    Req,
    /// Repeated, `omitempty`.
    Rep,
    /// Repeated without `omitempty`: `[]` when absent.
    RepReq,
}

#[derive(Debug)]
struct Field {
    num: u32,
    json: &'static str,
    ty: Ty,
    card: Card,
}

const fn o(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        ty,
        card: Card::Opt,
    }
}
const fn p(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        ty,
        card: Card::Ptr,
    }
}
const fn r(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        ty,
        card: Card::Req,
    }
}
const fn rep(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        ty,
        card: Card::Rep,
    }
}
const fn rep_req(num: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        num,
        json,
        ty,
        card: Card::RepReq,
    }
}

use Ty::*;

const META: Field = o(1, "metadata", Msg("ObjectMeta"));

/// Message name → fields, from k8s.io/api and k8s.io/apimachinery `generated.proto`.
static MESSAGES: &[(&str, &[Field])] = &[
    // meta/v1
    (
        "ObjectMeta",
        &[
            o(1, "name", Str),
            o(2, "generateName", Str),
            o(3, "namespace", Str),
            o(4, "selfLink", Str),
            o(5, "uid", Str),
            o(6, "resourceVersion", Str),
            o(7, "generation", I64),
            o(8, "creationTimestamp", Time),
            p(9, "deletionTimestamp", Time),
            p(10, "deletionGracePeriodSeconds", I64),
            o(11, "labels", MapStr),
            o(12, "annotations", MapStr),
            rep(13, "ownerReferences", Msg("OwnerReference")),
            rep(14, "finalizers", Str),
            rep(17, "managedFields", Msg("ManagedFieldsEntry")),
        ],
    ),
    (
        "OwnerReference",
        &[
            r(5, "apiVersion", Str),
            r(1, "kind", Str),
            r(3, "name", Str),
            r(4, "uid", Str),
            p(6, "controller", Bool),
            p(7, "blockOwnerDeletion", Bool),
        ],
    ),
    (
        "ManagedFieldsEntry",
        &[
            o(1, "manager", Str),
            o(2, "operation", Str),
            o(3, "apiVersion", Str),
            o(4, "time", Time),
            o(6, "fieldsType", Str),
            o(7, "fieldsV1", RawJson),
            o(8, "subresource", Str),
        ],
    ),
    (
        "LabelSelector",
        &[
            o(1, "matchLabels", MapStr),
            rep(2, "matchExpressions", Msg("LabelSelectorRequirement")),
        ],
    ),
    (
        "LabelSelectorRequirement",
        &[
            r(1, "key", Str),
            r(2, "operator", Str),
            rep(3, "values", Str),
        ],
    ),
    (
        "DeleteOptions",
        &[
            p(1, "gracePeriodSeconds", I64),
            o(2, "preconditions", Msg("Preconditions")),
            p(3, "orphanDependents", Bool),
            p(4, "propagationPolicy", Str),
            rep(5, "dryRun", Str),
            p(6, "ignoreStoreReadErrorWithClusterBreakingPotential", Bool),
        ],
    ),
    (
        "Preconditions",
        &[p(1, "uid", Str), p(2, "resourceVersion", Str)],
    ),
    // core/v1
    (
        "ConfigMap",
        &[
            META,
            p(4, "immutable", Bool),
            o(2, "data", MapStr),
            o(3, "binaryData", MapBytes),
        ],
    ),
    (
        "Secret",
        &[
            META,
            p(5, "immutable", Bool),
            o(2, "data", MapBytes),
            o(4, "stringData", MapStr),
            o(3, "type", Str),
        ],
    ),
    (
        "Namespace",
        &[
            META,
            o(2, "spec", Msg("NamespaceSpec")),
            o(3, "status", Msg("NamespaceStatus")),
        ],
    ),
    ("NamespaceSpec", &[rep(1, "finalizers", Str)]),
    (
        "NamespaceStatus",
        &[
            o(1, "phase", Str),
            rep(2, "conditions", Msg("NamespaceCondition")),
        ],
    ),
    (
        "NamespaceCondition",
        &[
            r(1, "type", Str),
            r(2, "status", Str),
            o(4, "lastTransitionTime", Time),
            o(5, "reason", Str),
            o(6, "message", Str),
        ],
    ),
    (
        "ServiceAccount",
        &[
            META,
            rep(2, "secrets", Msg("ObjectReference")),
            rep(3, "imagePullSecrets", Msg("LocalObjectReference")),
            p(4, "automountServiceAccountToken", Bool),
        ],
    ),
    (
        "ObjectReference",
        &[
            o(1, "kind", Str),
            o(2, "namespace", Str),
            o(3, "name", Str),
            o(4, "uid", Str),
            o(5, "apiVersion", Str),
            o(6, "resourceVersion", Str),
            o(7, "fieldPath", Str),
        ],
    ),
    ("LocalObjectReference", &[o(1, "name", Str)]),
    (
        "Event",
        &[
            META,
            r(2, "involvedObject", Msg("ObjectReference")),
            o(3, "reason", Str),
            o(4, "message", Str),
            o(5, "source", Msg("EventSource")),
            o(6, "firstTimestamp", Time),
            o(7, "lastTimestamp", Time),
            o(8, "count", I32),
            o(9, "type", Str),
            o(10, "eventTime", MicroTime),
            o(11, "series", Msg("EventSeries")),
            o(12, "action", Str),
            o(13, "related", Msg("ObjectReference")),
            r(14, "reportingComponent", Str),
            r(15, "reportingInstance", Str),
        ],
    ),
    ("EventSource", &[o(1, "component", Str), o(2, "host", Str)]),
    (
        "EventSeries",
        &[o(1, "count", I32), o(2, "lastObservedTime", MicroTime)],
    ),
    // rbac/v1
    ("Role", &[META, rep(2, "rules", Msg("PolicyRule"))]),
    (
        "ClusterRole",
        &[
            META,
            rep(2, "rules", Msg("PolicyRule")),
            o(3, "aggregationRule", Msg("AggregationRule")),
        ],
    ),
    (
        "PolicyRule",
        &[
            rep_req(1, "verbs", Str),
            rep(2, "apiGroups", Str),
            rep(3, "resources", Str),
            rep(4, "resourceNames", Str),
            rep(5, "nonResourceURLs", Str),
        ],
    ),
    (
        "AggregationRule",
        &[rep(1, "clusterRoleSelectors", Msg("LabelSelector"))],
    ),
    (
        "RoleBinding",
        &[
            META,
            rep(2, "subjects", Msg("Subject")),
            r(3, "roleRef", Msg("RoleRef")),
        ],
    ),
    (
        "ClusterRoleBinding",
        &[
            META,
            rep(2, "subjects", Msg("Subject")),
            r(3, "roleRef", Msg("RoleRef")),
        ],
    ),
    (
        "Subject",
        &[
            r(1, "kind", Str),
            o(2, "apiGroup", Str),
            r(3, "name", Str),
            o(4, "namespace", Str),
        ],
    ),
    (
        "RoleRef",
        &[r(1, "apiGroup", Str), r(2, "kind", Str), r(3, "name", Str)],
    ),
    // authorization/v1
    (
        "SelfSubjectAccessReview",
        &[
            META,
            r(2, "spec", Msg("SelfSubjectAccessReviewSpec")),
            o(3, "status", Msg("SubjectAccessReviewStatus")),
        ],
    ),
    (
        "SelfSubjectAccessReviewSpec",
        &[
            o(1, "resourceAttributes", Msg("ResourceAttributes")),
            o(2, "nonResourceAttributes", Msg("NonResourceAttributes")),
        ],
    ),
    (
        "SubjectAccessReview",
        &[
            META,
            r(2, "spec", Msg("SubjectAccessReviewSpec")),
            o(3, "status", Msg("SubjectAccessReviewStatus")),
        ],
    ),
    (
        "LocalSubjectAccessReview",
        &[
            META,
            r(2, "spec", Msg("SubjectAccessReviewSpec")),
            o(3, "status", Msg("SubjectAccessReviewStatus")),
        ],
    ),
    (
        "SubjectAccessReviewSpec",
        &[
            o(1, "resourceAttributes", Msg("ResourceAttributes")),
            o(2, "nonResourceAttributes", Msg("NonResourceAttributes")),
            o(3, "user", Str),
            rep(4, "groups", Str),
            o(5, "extra", MapStrList),
            o(6, "uid", Str),
        ],
    ),
    (
        "ResourceAttributes",
        &[
            o(1, "namespace", Str),
            o(2, "verb", Str),
            o(3, "group", Str),
            o(4, "version", Str),
            o(5, "resource", Str),
            o(6, "subresource", Str),
            o(7, "name", Str),
            o(8, "fieldSelector", Msg("FieldSelectorAttributes")),
            o(9, "labelSelector", Msg("LabelSelectorAttributes")),
        ],
    ),
    (
        "FieldSelectorAttributes",
        &[
            o(1, "rawSelector", Str),
            rep(2, "requirements", Msg("FieldSelectorRequirement")),
        ],
    ),
    (
        "FieldSelectorRequirement",
        &[
            r(1, "key", Str),
            r(2, "operator", Str),
            rep(3, "values", Str),
        ],
    ),
    (
        "LabelSelectorAttributes",
        &[
            o(1, "rawSelector", Str),
            rep(2, "requirements", Msg("LabelSelectorRequirement")),
        ],
    ),
    (
        "NonResourceAttributes",
        &[o(1, "path", Str), o(2, "verb", Str)],
    ),
    (
        "SubjectAccessReviewStatus",
        &[
            r(1, "allowed", Bool),
            o(4, "denied", Bool),
            o(2, "reason", Str),
            o(3, "evaluationError", Str),
        ],
    ),
    (
        "SelfSubjectRulesReview",
        &[
            META,
            r(2, "spec", Msg("SelfSubjectRulesReviewSpec")),
            o(3, "status", Msg("SubjectRulesReviewStatus")),
        ],
    ),
    ("SelfSubjectRulesReviewSpec", &[o(1, "namespace", Str)]),
    (
        "SubjectRulesReviewStatus",
        &[
            rep_req(1, "resourceRules", Msg("ResourceRule")),
            rep_req(2, "nonResourceRules", Msg("NonResourceRule")),
            r(3, "incomplete", Bool),
            o(4, "evaluationError", Str),
        ],
    ),
    (
        "ResourceRule",
        &[
            rep_req(1, "verbs", Str),
            rep(2, "apiGroups", Str),
            rep(3, "resources", Str),
            rep(4, "resourceNames", Str),
        ],
    ),
    (
        "NonResourceRule",
        &[rep_req(1, "verbs", Str), rep(2, "nonResourceURLs", Str)],
    ),
    // authentication/v1 (v1beta1, v1alpha1 alike)
    (
        "SelfSubjectReview",
        &[META, o(2, "status", Msg("SelfSubjectReviewStatus"))],
    ),
    (
        "SelfSubjectReviewStatus",
        &[o(1, "userInfo", Msg("UserInfo"))],
    ),
    (
        "UserInfo",
        &[
            o(1, "username", Str),
            o(2, "uid", Str),
            rep(3, "groups", Str),
            o(4, "extra", MapStrList),
        ],
    ),
    (
        "TokenRequest",
        &[
            META,
            r(2, "spec", Msg("TokenRequestSpec")),
            o(3, "status", Msg("TokenRequestStatus")),
        ],
    ),
    (
        "TokenRequestSpec",
        &[
            rep_req(1, "audiences", Str),
            p(4, "expirationSeconds", I64),
            o(3, "boundObjectRef", Msg("BoundObjectReference")),
        ],
    ),
    (
        "BoundObjectReference",
        &[
            o(1, "kind", Str),
            o(2, "apiVersion", Str),
            o(3, "name", Str),
            o(4, "uid", Str),
        ],
    ),
    (
        "TokenRequestStatus",
        &[o(1, "token", Str), o(2, "expirationTimestamp", Time)],
    ),
    // coordination/v1
    ("Lease", &[META, o(2, "spec", Msg("LeaseSpec"))]),
    (
        "LeaseSpec",
        &[
            p(1, "holderIdentity", Str),
            p(2, "leaseDurationSeconds", I32),
            p(3, "acquireTime", MicroTime),
            p(4, "renewTime", MicroTime),
            p(5, "leaseTransitions", I32),
            p(6, "strategy", Str),
            p(7, "preferredHolder", Str),
        ],
    ),
];

/// The message of a top-level object, by API group and kind. `None` for unknown kinds.
fn top_level(group: &str, kind: &str) -> Option<&'static str> {
    let known = match group {
        "" => &[
            "ConfigMap",
            "Secret",
            "Namespace",
            "ServiceAccount",
            "Event",
            "DeleteOptions",
        ][..],
        "meta.k8s.io" => &["DeleteOptions"],
        "rbac.authorization.k8s.io" => {
            &["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]
        }
        "authorization.k8s.io" => &[
            "SelfSubjectAccessReview",
            "SubjectAccessReview",
            "LocalSubjectAccessReview",
            "SelfSubjectRulesReview",
        ],
        "authentication.k8s.io" => &["SelfSubjectReview", "TokenRequest"],
        "coordination.k8s.io" => &["Lease"],
        _ => &[],
    };
    known.iter().copied().find(|k| *k == kind)
}

fn message(name: &str) -> Option<&'static [Field]> {
    MESSAGES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

// ---------------------------------------------------------------------------------------------
// Wire format

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_I32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("{what}: truncated varint at byte {}", self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "{what}: varint longer than 10 bytes at byte {}",
            self.pos
        ))
    }

    fn fixed(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(format!(
                "{what}: truncated: a {n}-byte value but only {left} bytes left"
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn len_delimited(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = self.varint(what)?;
        let left = self.buf.len() - self.pos;
        if len > left as u64 {
            return Err(format!(
                "{what}: truncated: length {len} but only {left} bytes left"
            ));
        }
        self.fixed(len as usize, what)
    }

    /// The next field key (number, wire type), or `None` at the end of the message.
    fn key(&mut self, what: &str) -> Result<Option<(u32, u8)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let k = self.varint(what)?;
        let (num, wire) = (k >> 3, (k & 7) as u8);
        if num == 0 || num > u64::from(u32::MAX >> 3) {
            return Err(format!("{what}: invalid field number {num}"));
        }
        Ok(Some((num as u32, wire)))
    }

    fn skip(&mut self, wire: u8, what: &str) -> Result<(), String> {
        match wire {
            WIRE_VARINT => self.varint(what).map(drop),
            WIRE_I64 => self.fixed(8, what).map(drop),
            WIRE_LEN => self.len_delimited(what).map(drop),
            WIRE_I32 => self.fixed(4, what).map(drop),
            w => Err(format!("{what}: unsupported wire type {w}")),
        }
    }
}

fn utf8(b: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("{what}: string is not valid UTF-8"))
}

fn wire_of(ty: Ty) -> u8 {
    match ty {
        Bool | I32 | I64 => WIRE_VARINT,
        _ => WIRE_LEN,
    }
}

/// One value of a field's type, from a field of the given wire type.
fn scalar(ty: Ty, wire: u8, r: &mut Reader, path: &str) -> Result<Value, String> {
    if wire != wire_of(ty) {
        return Err(format!(
            "{path}: wire type {wire} where {ty:?} needs {}",
            wire_of(ty)
        ));
    }
    Ok(match ty {
        Bool => Value::Bool(r.varint(path)? != 0),
        I32 => Value::from(r.varint(path)? as i64 as i32),
        I64 => Value::from(r.varint(path)? as i64),
        Str => Value::String(utf8(r.len_delimited(path)?, path)?),
        Bytes => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(r.len_delimited(path)?))
        }
        Msg(name) => decode_message(name, r.len_delimited(path)?, path)?,
        Time | MicroTime => time(ty, r.len_delimited(path)?, path)?,
        IntOrStr => int_or_string(r.len_delimited(path)?, path)?,
        RawJson => raw_json(r.len_delimited(path)?, path)?,
        MapStr | MapBytes | MapStrList => unreachable!("maps are decoded entry by entry"),
    })
}

fn time(ty: Ty, b: &[u8], path: &str) -> Result<Value, String> {
    let (mut secs, mut nanos) = (0i64, 0i32);
    let mut r = Reader::new(b);
    while let Some((n, w)) = r.key(path)? {
        match (n, w) {
            (1, WIRE_VARINT) => secs = r.varint(path)? as i64,
            (2, WIRE_VARINT) => nanos = r.varint(path)? as i64 as i32,
            _ => r.skip(w, path)?,
        }
    }
    if secs == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let ts =
        jiff::Timestamp::new(secs, nanos).map_err(|e| format!("{path}: time out of range: {e}"))?;
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S");
    Ok(Value::String(match ty {
        MicroTime => format!("{base}.{:06}Z", ts.subsec_nanosecond() / 1000),
        _ => format!("{base}Z"),
    }))
}

fn int_or_string(b: &[u8], path: &str) -> Result<Value, String> {
    let (mut is_str, mut int, mut s) = (false, 0i32, String::new());
    let mut r = Reader::new(b);
    while let Some((n, w)) = r.key(path)? {
        match (n, w) {
            (1, WIRE_VARINT) => is_str = r.varint(path)? == 1,
            (2, WIRE_VARINT) => int = r.varint(path)? as i64 as i32,
            (3, WIRE_LEN) => s = utf8(r.len_delimited(path)?, path)?,
            _ => r.skip(w, path)?,
        }
    }
    Ok(if is_str {
        Value::String(s)
    } else {
        Value::from(int)
    })
}

fn raw_json(b: &[u8], path: &str) -> Result<Value, String> {
    let mut raw: &[u8] = b"{}";
    let mut r = Reader::new(b);
    while let Some((n, w)) = r.key(path)? {
        match (n, w) {
            (1, WIRE_LEN) => raw = r.len_delimited(path)?,
            _ => r.skip(w, path)?,
        }
    }
    serde_json::from_slice(raw).map_err(|e| format!("{path}: raw JSON is invalid: {e}"))
}

/// One map entry {1 key, 2 value}.
fn map_entry(ty: Ty, b: &[u8], path: &str) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut value = match ty {
        MapStrList => Value::Array(vec![]),
        _ => Value::String(String::new()),
    };
    let mut r = Reader::new(b);
    while let Some((n, w)) = r.key(path)? {
        match (n, w) {
            (1, WIRE_LEN) => key = utf8(r.len_delimited(path)?, path)?,
            (2, WIRE_LEN) => {
                let v = r.len_delimited(path)?;
                value = match ty {
                    MapStr => Value::String(utf8(v, path)?),
                    MapBytes => Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
                    _ => {
                        let mut items = vec![];
                        let mut er = Reader::new(v);
                        while let Some((n, w)) = er.key(path)? {
                            match (n, w) {
                                (1, WIRE_LEN) => {
                                    items.push(Value::String(utf8(er.len_delimited(path)?, path)?))
                                }
                                _ => er.skip(w, path)?,
                            }
                        }
                        Value::Array(items)
                    }
                };
            }
            _ => r.skip(w, path)?,
        }
    }
    Ok((key, value))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
    }
}

fn zero(ty: Ty, path: &str) -> Result<Value, String> {
    Ok(match ty {
        Str | Bytes => Value::String(String::new()),
        Bool => Value::Bool(false),
        I32 | I64 | IntOrStr => Value::from(0),
        Msg(name) => decode_message(name, &[], path)?,
        Time | MicroTime => Value::Null,
        RawJson | MapStr | MapBytes | MapStrList => Value::Object(Map::new()),
    })
}

/// Decode one message of the table into a JSON object.
fn decode_message(name: &str, b: &[u8], path: &str) -> Result<Value, String> {
    let fields =
        message(name).ok_or_else(|| format!("{path}: no descriptor for message {name}"))?;
    let mut seen: Vec<Option<Value>> = (0..fields.len()).map(|_| None).collect();
    let mut r = Reader::new(b);
    while let Some((num, wire)) = r.key(path)? {
        let Some(i) = fields.iter().position(|f| f.num == num) else {
            r.skip(wire, &format!("{path}.<field {num}>"))?;
            continue;
        };
        let f = &fields[i];
        let fpath = format!("{path}.{}", f.json);
        match f.ty {
            MapStr | MapBytes | MapStrList => {
                if wire != WIRE_LEN {
                    return Err(format!("{fpath}: wire type {wire} for a map entry"));
                }
                let (k, v) = map_entry(f.ty, r.len_delimited(&fpath)?, &fpath)?;
                let slot = seen[i].get_or_insert_with(|| Value::Object(Map::new()));
                slot.as_object_mut().expect("map slot").insert(k, v);
            }
            _ if matches!(f.card, Card::Rep | Card::RepReq) => {
                let slot = seen[i].get_or_insert_with(|| Value::Array(vec![]));
                let arr = slot.as_array_mut().expect("repeated slot");
                if wire == WIRE_LEN && wire_of(f.ty) == WIRE_VARINT {
                    // packed scalars
                    let mut pr = Reader::new(r.len_delimited(&fpath)?);
                    while pr.pos < pr.buf.len() {
                        arr.push(scalar(f.ty, WIRE_VARINT, &mut pr, &fpath)?);
                    }
                } else {
                    arr.push(scalar(f.ty, wire, &mut r, &fpath)?);
                }
            }
            _ => seen[i] = Some(scalar(f.ty, wire, &mut r, &fpath)?),
        }
    }
    let mut out = Map::new();
    for (f, v) in fields.iter().zip(seen) {
        let v = match (v, f.card) {
            (Some(Value::Null), _) => continue, // the zero time: null in JSON, left out here
            (Some(v), Card::Opt | Card::Rep) if is_zero(&v) => continue,
            (Some(v), _) => v,
            (None, Card::Req) => match zero(f.ty, &format!("{path}.{}", f.json))? {
                Value::Null => continue,
                z => z,
            },
            (None, Card::RepReq) => Value::Array(vec![]),
            (None, _) => continue,
        };
        out.insert(f.json.to_string(), v);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `kubectl create configmap cm1 --from-literal=a=b --from-literal=c=d` (kubectl 1.33).
    const KUBECTL_CONFIGMAP: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12%\x0a\x13\x0a\x03cm1\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12\x06\x0a\x01a\x12\x01b\x12\x06\x0a\x01c\x12\x01d\x1a\x00\x22\x00";

    /// `kubectl create rolebinding rb --role=r --user=bob@x --group=g --serviceaccount=default:sa` (kubectl 1.33).
    const KUBECTL_ROLEBINDING: &[u8] = b"k8s\x00\x0a+\x0a\x1crbac.authorization.k8s.io/v1\x12\x0bRoleBinding\x12\xb0\x01\x0a\x12\x0a\x02rb\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12*\x0a\x04User\x12\x19rbac.authorization.k8s.io\x1a\x05bob@x\x22\x00\x12'\x0a\x05Group\x12\x19rbac.authorization.k8s.io\x1a\x01g\x22\x00\x12\x1f\x0a\x0eServiceAccount\x12\x00\x1a\x02sa\x22\x07default\x1a$\x0a\x19rbac.authorization.k8s.io\x12\x04Role\x1a\x01r\x1a\x00\x22\x00";

    /// `kubectl auth can-i get configmaps` (kubectl 1.33).
    const KUBECTL_SSAR: &[u8] = b"k8s\x00\x0a2\x0a\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\x12B\x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12$\x0a\x22\x0a\x07default\x12\x03get\x1a\x00\x22\x00*\x0aconfigmaps2\x00:\x00\x1a\x08\x08\x00\x12\x00\x1a\x00 \x00\x1a\x00\x22\x00";

    /// `kubectl auth can-i --list` (kubectl 1.33).
    const KUBECTL_SSRR: &[u8] = b"k8s\x00\x0a1\x0a\x17authorization.k8s.io/v1\x12\x16SelfSubjectRulesReview\x12#\x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12\x09\x0a\x07default\x1a\x04\x18\x00\x22\x00\x1a\x00\x22\x00";

    /// `kubectl auth whoami` (kubectl 1.33).
    const KUBECTL_SSR: &[u8] = b"k8s\x00\x0a-\x0a\x18authentication.k8s.io/v1\x12\x11SelfSubjectReview\x12\x1a\x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12\x06\x0a\x04\x0a\x00\x12\x00\x1a\x00\x22\x00";

    // A tiny encoder for hand-made messages.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn vi(num: u32, v: u64) -> Vec<u8> {
        let mut out = vec![];
        varint(u64::from(num) << 3, &mut out);
        varint(v, &mut out);
        out
    }
    fn ld(num: u32, b: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        varint(u64::from(num) << 3 | 2, &mut out);
        varint(b.len() as u64, &mut out);
        out.extend_from_slice(b);
        out
    }
    fn st(num: u32, s: &str) -> Vec<u8> {
        ld(num, s.as_bytes())
    }
    fn entry(num: u32, k: &str, v: &[u8]) -> Vec<u8> {
        ld(num, &[st(1, k), ld(2, v)].concat())
    }
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        [
            MAGIC,
            &ld(1, &[st(1, api_version), st(2, kind)].concat()),
            &ld(2, raw),
            &st(3, ""),
            &st(4, ""),
        ]
        .concat()
    }

    #[test]
    fn kubectl_configmap() {
        assert_eq!(
            decode(KUBECTL_CONFIGMAP).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"}, "data": {"a": "b", "c": "d"}})
        );
    }

    #[test]
    fn kubectl_rolebinding() {
        assert_eq!(
            decode(KUBECTL_ROLEBINDING).unwrap(),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
                "subjects": [
                    {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob@x"},
                    {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g"},
                    {"kind": "ServiceAccount", "name": "sa", "namespace": "default"},
                ],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            })
        );
    }

    #[test]
    fn kubectl_reviews() {
        assert_eq!(
            decode(KUBECTL_SSAR).unwrap(),
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
                "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "configmaps"}},
                "status": {"allowed": false},
            })
        );
        assert_eq!(
            decode(KUBECTL_SSRR).unwrap(),
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "metadata": {},
                "spec": {"namespace": "default"},
                "status": {"resourceRules": [], "nonResourceRules": [], "incomplete": false},
            })
        );
        assert_eq!(
            decode(KUBECTL_SSR).unwrap(),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}, "status": {"userInfo": {}}})
        );
    }

    #[test]
    fn role_keeps_the_empty_core_group_and_required_fields() {
        let rule = [st(1, "get"), st(2, ""), st(3, "configmaps"), st(4, "a")].concat();
        let raw = [ld(1, &st(1, "r")), ld(2, &rule), ld(2, &st(5, "/healthz"))].concat();
        assert_eq!(
            decode(&envelope("rbac.authorization.k8s.io/v1", "Role", &raw)).unwrap(),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
                "rules": [
                    {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]},
                    {"verbs": [], "nonResourceURLs": ["/healthz"]},
                ],
            })
        );
        // roleRef is required: there even when the sender left it out.
        let v = decode(&envelope(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            &ld(1, &st(1, "b")),
        ))
        .unwrap();
        assert_eq!(
            v["roleRef"],
            json!({"apiGroup": "", "kind": "", "name": ""})
        );
    }

    #[test]
    fn object_meta_maps_times_owner_references_and_managed_fields() {
        let time = [vi(1, 1_704_164_645), vi(2, 0)].concat(); // 2024-01-02T03:04:05Z
        let owner = [
            st(5, "v1"),
            st(1, "ConfigMap"),
            st(3, "o"),
            st(4, "u-1"),
            vi(6, 1),
            vi(7, 0),
        ]
        .concat();
        let managed = [
            st(1, "kubectl"),
            st(2, "Update"),
            st(3, "v1"),
            ld(4, &time),
            st(6, "FieldsV1"),
            ld(7, &st(1, r#"{"f:data":{}}"#)),
        ]
        .concat();
        let meta = [
            st(1, "c"),
            st(3, "ns"),
            vi(7, 3),
            ld(8, &time),
            entry(11, "app", b"x"),
            entry(11, "tier", b"db"),
            entry(12, "note", b""),
            ld(13, &owner),
            st(14, "example.com/f"),
            ld(17, &managed),
        ]
        .concat();
        let raw = [
            ld(1, &meta),
            vi(4, 0),
            entry(3, "bin", b"\xff\x00"),
            entry(2, "k", b"v"),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("v1", "ConfigMap", &raw)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "c", "namespace": "ns", "generation": 3, "creationTimestamp": "2024-01-02T03:04:05Z",
                    "labels": {"app": "x", "tier": "db"}, "annotations": {"note": ""},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-1", "controller": true, "blockOwnerDeletion": false}],
                    "finalizers": ["example.com/f"],
                    "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}],
                },
                "immutable": false,
                "data": {"k": "v"},
                "binaryData": {"bin": "/wA="},
            })
        );
    }

    #[test]
    fn secrets_namespaces_leases_events_and_delete_options() {
        let secret = [
            ld(1, &st(1, "s")),
            entry(2, "k", b"v"),
            entry(4, "plain", b"text"),
            st(3, "Opaque"),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("v1", "Secret", &secret)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}, "stringData": {"plain": "text"}, "type": "Opaque"})
        );
        let ns = [
            ld(1, &st(1, "n")),
            ld(2, &st(1, "kubernetes")),
            ld(3, &st(1, "Active")),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("v1", "Namespace", &ns)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        );
        let micro = [vi(1, 1_704_164_645), vi(2, 123_456_789)].concat();
        let lease = [
            ld(1, &st(1, "l")),
            ld(
                2,
                &[st(1, "me"), vi(2, 15), ld(4, &micro), vi(5, 0)].concat(),
            ),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("coordination.k8s.io/v1", "Lease", &lease)).unwrap(),
            json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
                "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": "2024-01-02T03:04:05.123456Z", "leaseTransitions": 0},
            })
        );
        let event = [
            ld(1, &st(1, "e")),
            ld(2, &[st(1, "ConfigMap"), st(3, "c")].concat()),
            st(3, "Created"),
            vi(8, 2),
            st(9, "Normal"),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("v1", "Event", &event)).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                "involvedObject": {"kind": "ConfigMap", "name": "c"}, "reason": "Created", "count": 2, "type": "Normal",
                "reportingComponent": "", "reportingInstance": "",
            })
        );
        let opts = [
            vi(1, 0),
            st(4, "Foreground"),
            st(5, "All"),
            ld(2, &st(1, "u-1")),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("v1", "DeleteOptions", &opts)).unwrap(),
            json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "dryRun": ["All"], "preconditions": {"uid": "u-1"}})
        );
    }

    #[test]
    fn subject_access_review_extra_and_negative_numbers() {
        let extra = entry(5, "scopes", &[st(1, "a"), st(1, "b")].concat());
        let spec = [
            ld(2, &[st(1, "/x"), st(2, "get")].concat()),
            st(3, "bob"),
            st(4, "g1"),
            st(4, "g2"),
            extra,
        ]
        .concat();
        assert_eq!(
            decode(&envelope(
                "authorization.k8s.io/v1",
                "SubjectAccessReview",
                &ld(2, &spec)
            ))
            .unwrap(),
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"nonResourceAttributes": {"path": "/x", "verb": "get"}, "user": "bob", "groups": ["g1", "g2"], "extra": {"scopes": ["a", "b"]}},
            })
        );
        // int32 -1 is a 10-byte varint on the wire.
        let lease = [ld(2, &vi(2, (-1i64) as u64))].concat();
        assert_eq!(
            decode(&envelope("coordination.k8s.io/v1", "Lease", &lease)).unwrap()["spec"]["leaseDurationSeconds"],
            json!(-1)
        );
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        // In ObjectMeta: an unknown varint and the removed clusterName (15); in ConfigMap: one field of each wire type.
        let mut raw = ld(
            1,
            &[st(1, "cm"), vi(99, 7), st(15, "old clusterName")].concat(),
        );
        raw.extend(vi(50, 300));
        let mut fixed64 = vec![];
        varint(51 << 3 | 1, &mut fixed64);
        fixed64.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        raw.extend(fixed64);
        let mut fixed32 = vec![];
        varint(52 << 3 | 5, &mut fixed32);
        fixed32.extend([1, 2, 3, 4]);
        raw.extend(fixed32);
        raw.extend(st(53, "unknown"));
        raw.extend(entry(2, "a", b"b"));
        let mut body = envelope("v1", "ConfigMap", &raw);
        body.extend(st(9, "unknown envelope field"));
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn truncated_input_names_what_was_truncated() {
        // Cut inside the raw object: the envelope's length no longer fits.
        let e = decode(&KUBECTL_CONFIGMAP[..30]).unwrap_err();
        assert!(
            e.contains("runtime.Unknown.raw") && e.contains("truncated"),
            "{e}"
        );
        // A nested length that overruns its parent.
        let raw = [vec![0x0a, 0x10], st(1, "cm")].concat();
        let e = decode(&envelope("v1", "ConfigMap", &raw)).unwrap_err();
        assert!(
            e.contains("ConfigMap.metadata") && e.contains("truncated"),
            "{e}"
        );
        // A varint cut short.
        let raw = [ld(1, &st(1, "cm")), vec![0x20, 0x80]].concat();
        let e = decode(&envelope("v1", "ConfigMap", &raw)).unwrap_err();
        assert!(
            e.contains("ConfigMap.immutable") && e.contains("truncated varint"),
            "{e}"
        );
        // No prefix of a real body panics.
        for n in 0..KUBECTL_ROLEBINDING.len() {
            let _ = decode(&KUBECTL_ROLEBINDING[..n]);
        }
    }

    #[test]
    fn wrong_magic_unknown_kinds_and_bad_values_are_errors() {
        assert!(
            decode(b"{\"kind\":\"ConfigMap\"}")
                .unwrap_err()
                .contains("magic")
        );
        assert!(decode(b"k8s").unwrap_err().contains("magic"));
        let e = decode(&envelope("apps/v1", "Deployment", &[])).unwrap_err();
        assert!(e.contains("Deployment") && e.contains("apps/v1"), "{e}");
        // events.k8s.io Event is a different message from the core one.
        assert!(decode(&envelope("events.k8s.io/v1", "Event", &[])).is_err());
        assert!(
            decode(&envelope("", "", &[]))
                .unwrap_err()
                .contains("no kind")
        );
        // A string field sent as a varint.
        let e = decode(&envelope("v1", "ConfigMap", &ld(1, &vi(1, 5)))).unwrap_err();
        assert!(e.contains("ConfigMap.metadata.name"), "{e}");
        // Strings must be UTF-8.
        let e = decode(&envelope("v1", "ConfigMap", &ld(1, &ld(1, b"\xff")))).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        // Compressed or non-protobuf payloads are refused.
        let body = [
            MAGIC,
            &ld(1, &[st(1, "v1"), st(2, "ConfigMap")].concat()),
            &st(3, "gzip"),
        ]
        .concat();
        assert!(decode(&body).unwrap_err().contains("gzip"));
    }

    #[test]
    fn every_message_reference_resolves() {
        for (name, fields) in MESSAGES {
            for f in *fields {
                if let Msg(m) = f.ty {
                    assert!(
                        message(m).is_some(),
                        "{name}.{} refers to unknown message {m}",
                        f.json
                    );
                }
            }
            let mut nums: Vec<u32> = fields.iter().map(|f| f.num).collect();
            nums.sort_unstable();
            nums.dedup();
            assert_eq!(
                nums.len(),
                fields.len(),
                "{name} has a duplicate field number"
            );
        }
        for (group, kinds) in [
            (
                "",
                "ConfigMap Secret Namespace ServiceAccount Event DeleteOptions",
            ),
            (
                "rbac.authorization.k8s.io",
                "Role ClusterRole RoleBinding ClusterRoleBinding",
            ),
        ] {
            for k in kinds.split(' ') {
                assert!(top_level(group, k).and_then(message).is_some(), "{k}");
            }
        }
    }
}
