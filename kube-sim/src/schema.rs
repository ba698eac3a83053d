//! CRD structural schema support: defaulting, pruning, OpenAPI v3 validation and
//! `x-kubernetes-validations` (CEL) rules, mirroring k8s.io/apiextensions-apiserver.
//!
//! Fidelity notes (what the real API server does and what this module reproduces):
//!
//! * OpenAPI errors are produced like kube-openapi's validator and converted like
//!   apiextensions-apiserver `kubeOpenAPIResultToFieldErrors`:
//!   `Required` -> `Required value`, `enum` -> `Unsupported value: ...: supported values: ...`,
//!   `maxLength` -> `Too long: may not be more than N bytes`, `maxItems`/`maxProperties` ->
//!   `Too many: n: must have at most N items`, wrong type / format -> `Invalid value: "<type>": <path> in body must be of type <t>: "<type>"`,
//!   everything else -> `Invalid value: <v>: <path> in body should ...`.
//!   OpenAPI error paths use kube-openapi's naming: `spec.items[0].name`, map keys as `spec.labels.key`.
//! * `x-kubernetes-list-type` set/map uniqueness errors and CEL errors use `field.Path` naming:
//!   `spec.items[1]`, map keys as `spec.bizApps[crm]`.
//! * An error on the object root has field `<nil>` (the API server passes a nil `*field.Path`).
//! * CEL rules are skipped (replaced by one `<nil>: Invalid value: null: some validation rules were not checked ...`
//!   error) when an OpenAPI error of type NotSupported/Required/TooLong/TooMany/TypeInvalid was found, as in
//!   the customresource strategy's `hasBlockingErr`.

// Part of the API may be unused by the rest of the crate (e.g. `new_at`, `validate_status`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel;
use regex::Regex;
use serde_json::{Map, Value};

/// One field error, as the API server reports it (k8s.io/apimachinery field.Error).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    /// The bad value; `None` means the value is omitted from the message.
    pub value: Option<Value>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    NotSupported,
    TypeInvalid,
    TooLong,
    /// Not produced by CRD validation in Kubernetes (minLength is reported as Invalid); kept for API completeness.
    TooShort,
    TooMany,
    Duplicate,
    Forbidden,
}

impl FieldErrorKind {
    /// The StatusCause `reason` for this kind of error.
    pub fn reason(&self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooShort => "FieldValueInvalid",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
        }
    }

    /// The text the API server prints for this kind (field.ErrorType.String()).
    pub fn type_string(&self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid | FieldErrorKind::TooShort => {
                "Invalid value"
            }
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Forbidden => "Forbidden",
        }
    }
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        kind: FieldErrorKind,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind,
            value,
            detail: detail.into(),
        }
    }

    /// The full text the API server prints: `<field>: <body>`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.cause_message())
    }

    /// The error body without the leading `field: ` (field.Error.ErrorBody(); what goes in details.causes[].message).
    pub fn cause_message(&self) -> String {
        let t = self.kind.type_string();
        let mut s = match self.kind {
            FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong => {
                t.to_string()
            }
            _ => match &self.value {
                None => t.to_string(),
                Some(v) => format!("{}: {}", t, format_bad_value(v)),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Format a bad value the way field.Error.ErrorBody does: strings `%q`, numbers/bools `%v`,
/// a nil value as `null`; composite values are rendered as JSON.
fn format_bad_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(n),
        Value::String(s) => crate::status::go_quote(s),
        // encoding/json escapes HTML characters.
        other => serde_json::to_string(other)
            .unwrap_or_default()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    }
}

fn format_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Go's `%v` for float64 (strconv 'g' with shortest precision).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let e = format!("{:e}", f); // e.g. "1.5e6", "-2e-7"
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // strconv.FormatFloat(f, 'g', -1, 64): exponent form when exp < -4 || exp >= 6 (e.g. 1e+06).
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, exp.abs())
    } else {
        // Rust's Display prints the shortest round-trip digits without exponent.
        format!("{}", f)
    }
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Seg {
    Prop(String),
    Index(usize),
    Key(String),
}

/// Path in field.Path syntax (`a.b[0][key]`); `<nil>` for the root.
fn field_path(segs: &[Seg]) -> String {
    if segs.is_empty() {
        return "<nil>".into();
    }
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Prop(p) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(p);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
            Seg::Key(k) => s.push_str(&format!("[{k}]")),
        }
    }
    s
}

/// Path as kube-openapi names it (`a.b[0].key`), i.e. the error name without the leading dot.
fn openapi_path(segs: &[Seg]) -> String {
    if segs.is_empty() {
        return "<nil>".into();
    }
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Prop(p) | Seg::Key(p) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(p);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Path as the pruning algorithm reports it (`.spec.items[0].bar`).
fn prune_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Prop(p) | Seg::Key(p) => {
                s.push('.');
                s.push_str(p);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn with<T>(segs: &mut Vec<Seg>, seg: Seg, f: impl FnOnce(&mut Vec<Seg>) -> T) -> T {
    segs.push(seg);
    let r = f(segs);
    segs.pop();
    r
}

// ---------------------------------------------------------------------------
// Compiled schema
// ---------------------------------------------------------------------------

/// Formats kube-openapi validates for CRDs (apiextensions `supportedFormats`, normalized: no dashes).
const SUPPORTED_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

/// ObjectMeta fields kept when pruning `metadata`.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

const VALID_REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

struct Rule {
    rule: String,
    message: String,
    reason: Option<String>,
    field_path: Option<String>,
    optional_old_self: bool,
    program: cel::Program,
    message_program: Option<cel::Program>,
    uses_old_self: bool,
}

enum Additional {
    Absent,
    Bool(bool),
    Schema(Box<Node>),
}

#[derive(Default)]
struct Node {
    ty: String,
    nullable: bool,
    /// Format as written, only when it is one kube-openapi validates.
    format: Option<String>,
    raw_format: Option<String>,
    int_or_string: bool,
    preserve_unknown: bool,
    embedded: bool,
    properties: BTreeMap<String, Node>,
    additional: Option<Additional>,
    items: Option<Box<Node>>,
    required: Vec<String>,
    enum_values: Option<Vec<Value>>,
    pattern: Option<(String, Regex)>,
    max_length: Option<u64>,
    min_length: Option<u64>,
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    multiple_of: Option<f64>,
    max_items: Option<u64>,
    min_items: Option<u64>,
    unique_items: bool,
    max_properties: Option<u64>,
    min_properties: Option<u64>,
    list_type: Option<String>,
    list_map_keys: Vec<String>,
    default: Option<Value>,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Box<Node>>,
    rules: Vec<Rule>,
    /// The fields that every rule here only selects from `self` and `oldSelf`: only they are
    /// converted for the rules (an object's whole tree is not, for `self.metadata.name`
    /// checks); none: the rules need the whole value.
    rule_fields: Option<BTreeSet<String>>,
}

impl Node {
    fn additional_schema(&self) -> Option<&Node> {
        match &self.additional {
            Some(Additional::Schema(n)) => Some(n),
            _ => None,
        }
    }
    fn has_additional(&self) -> bool {
        matches!(
            self.additional,
            Some(Additional::Schema(_)) | Some(Additional::Bool(true))
        )
    }
    fn has_rules(&self) -> bool {
        !self.rules.is_empty()
            || self.properties.values().any(Node::has_rules)
            || self.additional_schema().is_some_and(Node::has_rules)
            || self.items.as_ref().is_some_and(|n| n.has_rules())
    }
}

fn get_u64(v: &Value, key: &str) -> Option<u64> {
    v.get(key)
        .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f as u64)))
}

fn compile_node(schema: &Value, path: &mut Vec<Seg>, errs: &mut Vec<FieldError>) -> Node {
    let mut n = Node::default();
    let Some(obj) = schema.as_object() else {
        return n;
    };
    let b = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    n.ty = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    n.nullable = b("nullable");
    n.int_or_string = b("x-kubernetes-int-or-string");
    n.preserve_unknown = b("x-kubernetes-preserve-unknown-fields");
    n.embedded = b("x-kubernetes-embedded-resource");
    if let Some(f) = obj.get("format").and_then(Value::as_str) {
        n.raw_format = Some(f.to_string());
        if SUPPORTED_FORMATS.contains(&f.replace('-', "").as_str()) {
            n.format = Some(f.to_string());
        }
    }
    n.required = obj
        .get("required")
        .map(crate::meta::strings)
        .unwrap_or_default();
    n.enum_values = obj.get("enum").and_then(Value::as_array).cloned();
    if let Some(p) = obj.get("pattern").and_then(Value::as_str) {
        match Regex::new(p) {
            Ok(re) => n.pattern = Some((p.to_string(), re)),
            Err(e) => errs.push(FieldError::new(
                format!("{}.pattern", field_path(path)),
                FieldErrorKind::Invalid,
                Some(Value::String(p.to_string())),
                format!("must be a valid regular expression, but isn't: {e}"),
            )),
        }
    }
    n.max_length = get_u64(schema, "maxLength");
    n.min_length = get_u64(schema, "minLength");
    n.maximum = obj.get("maximum").and_then(Value::as_f64);
    n.minimum = obj.get("minimum").and_then(Value::as_f64);
    n.exclusive_maximum = b("exclusiveMaximum");
    n.exclusive_minimum = b("exclusiveMinimum");
    n.multiple_of = obj.get("multipleOf").and_then(Value::as_f64);
    n.max_items = get_u64(schema, "maxItems");
    n.min_items = get_u64(schema, "minItems");
    n.unique_items = b("uniqueItems");
    n.max_properties = get_u64(schema, "maxProperties");
    n.min_properties = get_u64(schema, "minProperties");
    n.list_type = obj
        .get("x-kubernetes-list-type")
        .and_then(Value::as_str)
        .map(String::from);
    n.list_map_keys = obj
        .get("x-kubernetes-list-map-keys")
        .map(crate::meta::strings)
        .unwrap_or_default();
    n.default = obj.get("default").cloned();

    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            path.push(Seg::Prop("properties".into()));
            path.push(Seg::Key(k.clone()));
            let child = compile_node(v, path, errs);
            path.pop();
            path.pop();
            n.properties.insert(k.clone(), child);
        }
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(bv)) => n.additional = Some(Additional::Bool(*bv)),
        Some(v @ Value::Object(_)) => {
            let child = with(path, Seg::Prop("additionalProperties".into()), |p| {
                compile_node(v, p, errs)
            });
            n.additional = Some(Additional::Schema(Box::new(child)));
        }
        _ => n.additional = Some(Additional::Absent),
    }
    if let Some(items) = obj.get("items") {
        // JSONSchemaPropsOrArray: only the single-schema form is structural.
        let items = if let Some(a) = items.as_array() {
            a.first().unwrap_or(&Value::Null)
        } else {
            items
        };
        if items.is_object() {
            let child = with(path, Seg::Prop("items".into()), |p| {
                compile_node(items, p, errs)
            });
            n.items = Some(Box::new(child));
        }
    }
    for (key, target) in [
        ("allOf", &mut n.all_of),
        ("anyOf", &mut n.any_of),
        ("oneOf", &mut n.one_of),
    ] {
        if let Some(arr) = obj.get(key).and_then(Value::as_array) {
            for (i, s) in arr.iter().enumerate() {
                path.push(Seg::Prop(key.into()));
                path.push(Seg::Index(i));
                target.push(compile_node(s, path, errs));
                path.pop();
                path.pop();
            }
        }
    }
    if let Some(s) = obj.get("not") {
        n.not = Some(Box::new(with(path, Seg::Prop("not".into()), |p| {
            compile_node(s, p, errs)
        })));
    }

    if let Some(rules) = obj
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for (i, raw) in rules.iter().enumerate() {
            path.push(Seg::Prop("x-kubernetes-validations".into()));
            path.push(Seg::Index(i));
            if let Some(r) = compile_rule(raw, &n, path, errs) {
                n.rules.push(r);
            }
            path.pop();
            path.pop();
        }
        let mut fields = BTreeSet::new();
        let vars = ["self", "oldSelf"];
        let selected = n.rules.iter().all(|r| {
            crate::cel_check::fields_selected(r.program.expression(), &vars, &mut fields)
                && r.message_program.as_ref().is_none_or(|m| {
                    crate::cel_check::fields_selected(m.expression(), &vars, &mut fields)
                })
        });
        n.rule_fields = selected.then_some(fields);
    }
    n
}

fn compile_rule(
    raw: &Value,
    node: &Node,
    path: &mut [Seg],
    errs: &mut Vec<FieldError>,
) -> Option<Rule> {
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(String::from);
    let rule = s("rule").unwrap_or_default();
    let sub = |p: &[Seg], name: &str| format!("{}.{}", field_path(p), name);
    if rule.trim().is_empty() {
        errs.push(FieldError::new(
            sub(path, "rule"),
            FieldErrorKind::Required,
            None,
            "rule is not specified",
        ));
        return None;
    }
    let mut ok = true;
    // The bad value of a compilation error is the rule itself, rendered as the real server
    // renders its internal Go struct; it is put in the detail (FieldError values are JSON).
    let bad_rule = go_validation_rule_json(raw);
    let program = match cel::Program::compile(&rule) {
        Ok(p) => Some(p),
        Err(e) => {
            errs.push(FieldError::new(
                sub(path, "rule"),
                FieldErrorKind::Invalid,
                None,
                format!(
                    "{bad_rule}: compilation failed: {}",
                    crate::cel_check::render_parse_errors(&rule, &e)
                ),
            ));
            ok = false;
            None
        }
    };
    let message = s("message").unwrap_or_default();
    if message.contains('\n') {
        errs.push(FieldError::new(
            sub(path, "message"),
            FieldErrorKind::Invalid,
            Some(Value::String(message.clone())),
            "message must not contain line breaks",
        ));
        ok = false;
    }
    let message_program = match s("messageExpression") {
        Some(me) if !me.trim().is_empty() => match cel::Program::compile(&me) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(FieldError::new(
                    sub(path, "messageExpression"),
                    FieldErrorKind::Invalid,
                    None,
                    format!(
                        "{bad_rule}: messageExpression compilation failed: {}",
                        crate::cel_check::render_parse_errors(&me, &e)
                    ),
                ));
                ok = false;
                None
            }
        },
        _ => None,
    };
    let reason = s("reason");
    if let Some(r) = &reason
        && !VALID_REASONS.contains(&r.as_str())
    {
        errs.push(FieldError::new(
            sub(path, "reason"),
            FieldErrorKind::NotSupported,
            Some(Value::String(r.clone())),
            format!(
                "supported values: {}",
                VALID_REASONS
                    .iter()
                    .map(|v| crate::status::go_quote(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        ok = false;
    }
    let field_path_raw = s("fieldPath").filter(|f| !f.is_empty());
    let normalized = match &field_path_raw {
        Some(fp) => match normalize_field_path(fp).filter(|_| valid_field_path(node, fp)) {
            Some(n) => Some(n),
            None => {
                errs.push(FieldError::new(
                    sub(path, "fieldPath"),
                    FieldErrorKind::Invalid,
                    Some(Value::String(fp.clone())),
                    "must be a valid path",
                ));
                ok = false;
                None
            }
        },
        None => None,
    };
    let program = program?;
    if !ok {
        return None;
    }
    let uses_old_self = program.references().has_variable("oldSelf");
    Some(Rule {
        rule,
        message,
        reason,
        field_path: normalized,
        optional_old_self: raw
            .get("optionalOldSelf")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        program,
        message_program,
        uses_old_self,
    })
}

/// A `x-kubernetes-validations` rule as Go's encoding/json renders the internal
/// `apiextensions.ValidationRule` struct (fields in declaration order, unset pointers `null`,
/// `<`, `>` and `&` escaped): `{"Rule":"self.a \u003e","Message":"",...}`.
fn go_validation_rule_json(raw: &Value) -> String {
    let s = |k: &str| Value::String(raw.get(k).and_then(Value::as_str).unwrap_or("").into());
    let ptr = |k: &str| match raw.get(k) {
        Some(v @ (Value::String(_) | Value::Bool(_))) => v.clone(),
        _ => Value::Null,
    };
    let fields = [
        ("Rule", s("rule")),
        ("Message", s("message")),
        ("MessageExpression", s("messageExpression")),
        ("Reason", ptr("reason")),
        ("FieldPath", s("fieldPath")),
        ("OptionalOldSelf", ptr("optionalOldSelf")),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\":{}", serde_json::to_string(v).unwrap_or_default()))
        .collect();
    format!("{{{}}}", body.join(","))
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Upstream's `ValidFieldPath` (apiextensions `schema/cel/validation.go`): a rule's `fieldPath`
/// is `.name` and `['key']` steps, each a property the schema declares (where the node has
/// properties) or a map key (where it has an additionalProperties schema). So
/// `.metadata.name` is valid at a resource's root only if the schema declares
/// `metadata.name` — the real server refuses the CRD otherwise.
fn valid_field_path(node: &Node, fp: &str) -> bool {
    // Split as upstream's scanner does: '.', '[' and ']' are tokens of their own; a quoted
    // string runs to the next unescaped quote.
    let b = fp.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'\'' {
            i += 1;
            while i < b.len() && !(b[i] == b'\'' && b[i - 1] != b'\\') {
                i += 1;
            }
            if i >= b.len() {
                return false;
            }
            i += 1;
        } else if matches!(b[i], b'.' | b'[' | b']') {
            i += 1;
        } else {
            while i < b.len() && !matches!(b[i], b'.' | b'[' | b']') {
                i += 1;
            }
        }
        tokens.push(&fp[start..i]);
    }
    fn step<'a>(cur: &'a Node, name: &str) -> Option<&'a Node> {
        if !cur.properties.is_empty() {
            cur.properties.get(name)
        } else if let Some(Additional::Schema(a)) = &cur.additional {
            Some(a)
        } else {
            None
        }
    }
    let mut cur: &Node = node;
    let mut it = tokens.into_iter();
    while let Some(t) = it.next() {
        let name = match t {
            "[" => {
                let Some(q) = it.next() else { return false };
                if q.len() < 2 || !q.starts_with('\'') || !q.ends_with('\'') {
                    return false;
                }
                let key = q[1..q.len() - 1].replace("\\'", "'").replace("\\\\", "\\");
                if it.next() != Some("]") {
                    return false;
                }
                key
            }
            "." => match it.next() {
                Some(name) => name.to_string(),
                None => return false,
            },
            _ => return false,
        };
        match step(cur, &name) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    true
}

/// Normalize a rule `fieldPath` (`.spec.foo['bar'][0]`) into field.Path syntax relative to the node (`spec.foo[bar][0]`).
fn normalize_field_path(fp: &str) -> Option<String> {
    let mut out = String::new();
    let chars: Vec<char> = fp.chars().collect();
    let mut i = 0;
    if chars.first() != Some(&'.') && chars.first() != Some(&'[') {
        // Kubernetes requires a leading '.' but tolerate a bare name.
        out.push_str("");
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.extend(&chars[start..i]);
            }
            '[' => {
                i += 1;
                if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
                    let q = chars[i];
                    i += 1;
                    let start = i;
                    while i < chars.len() && chars[i] != q {
                        i += 1;
                    }
                    if i >= chars.len() {
                        return None;
                    }
                    let key: String = chars[start..i].iter().collect();
                    i += 1;
                    if chars.get(i) != Some(&']') {
                        return None;
                    }
                    i += 1;
                    out.push_str(&format!("[{key}]"));
                } else {
                    let start = i;
                    while i < chars.len() && chars[i] != ']' {
                        i += 1;
                    }
                    if i >= chars.len() {
                        return None;
                    }
                    let idx: String = chars[start..i].iter().collect();
                    idx.parse::<usize>().ok()?;
                    i += 1;
                    out.push_str(&format!("[{idx}]"));
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.extend(&chars[start..i]);
            }
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// A CRD version's compiled schema (spec.versions[].schema.openAPIV3Schema).
pub struct CrdSchema {
    root: Node,
    has_rules: bool,
}

impl std::fmt::Debug for CrdSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrdSchema")
            .field("has_rules", &self.has_rules)
            .finish_non_exhaustive()
    }
}

impl CrdSchema {
    /// Compile a schema. Errors are reported under `spec.validation.openAPIV3Schema`
    /// (use [`CrdSchema::new_at`] to report them under e.g. `spec.versions[0].schema.openAPIV3Schema`).
    pub fn new(open_api_v3_schema: &Value) -> Result<CrdSchema, Vec<FieldError>> {
        Self::new_at(open_api_v3_schema, "spec.validation.openAPIV3Schema")
    }

    /// Compile a schema, reporting errors under the given field path prefix.
    pub fn new_at(
        open_api_v3_schema: &Value,
        path_prefix: &str,
    ) -> Result<CrdSchema, Vec<FieldError>> {
        let mut errs = Vec::new();
        let mut path: Vec<Seg> = path_prefix
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| Seg::Prop(s.to_string()))
            .collect();
        if !open_api_v3_schema.is_object() {
            return Err(vec![FieldError::new(
                field_path(&path),
                FieldErrorKind::Required,
                None,
                "must not be empty for specified object fields",
            )]);
        }
        let root = compile_node(open_api_v3_schema, &mut path, &mut errs);
        if !errs.is_empty() {
            return Err(errs);
        }
        let has_rules = root.has_rules();
        Ok(CrdSchema { root, has_rules })
    }

    /// Whether any `x-kubernetes-validations` rule exists in the schema.
    pub fn has_validation_rules(&self) -> bool {
        self.has_rules
    }

    // ------------------------------------------------------------------ defaulting

    /// Apply `default`s the way the API server does: first non-nullable `null`s without a default are
    /// dropped (PruneNonNullableNullsWithoutDefaults), then defaults are applied to missing properties
    /// (and to non-nullable nulls), recursing into existing objects/arrays and into applied defaults.
    pub fn apply_defaults(&self, obj: &mut Value) {
        prune_non_nullable_nulls(obj, &self.root);
        default_value(obj, &self.root);
    }

    // ------------------------------------------------------------------ pruning

    /// Prune fields not specified in the schema; returns the pruned paths (`.spec.foo`, `.spec.items[0].bar`).
    /// Top-level `apiVersion`, `kind` and `metadata` are kept; `metadata` (at the root and in embedded
    /// resources) is reduced to ObjectMeta's fields.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut pruned = Vec::new();
        let mut path = Vec::new();
        prune_value(obj, Some(&self.root), true, &mut path, &mut pruned);
        if let Some(meta) = obj.get_mut("metadata") {
            with(&mut path, Seg::Prop("metadata".into()), |p| {
                prune_object_meta(meta, p, &mut pruned)
            });
        }
        // The API server reports them in map-iteration order; sort for determinism.
        pruned.sort();
        pruned.dedup();
        pruned
    }

    // ------------------------------------------------------------------ validation

    /// Validate the whole object (after defaulting and pruning). `old` is the previously stored object on updates.
    /// Order as in the customresource strategy: OpenAPI schema errors, list-type set/map errors, then CEL
    /// rules (skipped with a single `<nil>` error when a blocking schema error exists).
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut path = Vec::new();
        validate_openapi(obj, &self.root, &mut path, &mut errs);
        validate_list_types(obj, &self.root, &mut path, &mut errs);
        if self.has_rules {
            let blocking = errs.iter().any(|e| {
                matches!(
                    e.kind,
                    FieldErrorKind::NotSupported
                        | FieldErrorKind::Required
                        | FieldErrorKind::TooLong
                        | FieldErrorKind::TooMany
                        | FieldErrorKind::TypeInvalid
                )
            });
            if blocking {
                errs.push(FieldError::new(
                    "<nil>",
                    FieldErrorKind::Invalid,
                    Some(Value::Null),
                    "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                ));
            } else {
                BASE_CTX.with(|base| {
                    validate_cel(base, obj, old, &self.root, true, &mut path, &mut errs);
                });
            }
        }
        errs
    }

    /// Validation for the `/status` subresource. The real API server validates the whole object on status
    /// updates (its spec is reset to the stored spec first); this runs [`CrdSchema::validate`] on the whole
    /// object and keeps only the errors located under `status` plus root-level (`<nil>`) errors.
    pub fn validate_status(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        self.validate(obj, old)
            .into_iter()
            .filter(|e| {
                e.field == "<nil>"
                    || e.field == "status"
                    || e.field.starts_with("status.")
                    || e.field.starts_with("status[")
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------

fn prune_non_nullable_nulls(x: &mut Value, s: &Node) {
    match x {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child_schema = s.properties.get(&k).or_else(|| s.additional_schema());
                let Some(cs) = child_schema else { continue };
                let is_null = m.get(&k).is_some_and(Value::is_null);
                if is_null {
                    if cs.default.is_none() && !cs.nullable {
                        m.remove(&k);
                    }
                } else if let Some(v) = m.get_mut(&k) {
                    prune_non_nullable_nulls(v, cs);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = &s.items {
                for v in a.iter_mut() {
                    prune_non_nullable_nulls(v, items);
                }
            }
        }
        _ => {}
    }
}

fn default_value(x: &mut Value, s: &Node) {
    match x {
        Value::Object(m) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                let apply = match m.get(k) {
                    None => true,
                    Some(Value::Null) => !prop.nullable,
                    Some(_) => false,
                };
                if apply {
                    m.insert(k.clone(), d.clone());
                }
            }
            for (k, v) in m.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    default_value(v, prop);
                } else if let Some(a) = s.additional_schema() {
                    default_value(v, a);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = &s.items {
                for v in a.iter_mut() {
                    // null items of a non-nullable item schema get the item default
                    if v.is_null()
                        && !items.nullable
                        && let Some(d) = &items.default
                    {
                        *v = d.clone();
                    }
                    default_value(v, items);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Pruning
// ---------------------------------------------------------------------------

const META_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

fn prune_value(
    x: &mut Value,
    s: Option<&Node>,
    is_root: bool,
    path: &mut Vec<Seg>,
    pruned: &mut Vec<String>,
) {
    if let Some(s) = s
        && s.preserve_unknown
    {
        skip_prune(x, s, path, pruned);
        return;
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    with(path, Seg::Prop(k.clone()), |p| pruned.push(prune_path(p)));
                    m.remove(&k);
                }
                return;
            };
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if s.embedded && is_embedded_meta(&k, m.get(&k)) {
                    continue;
                }
                // At the root, apiVersion, kind and metadata are never pruned by the schema,
                // even when it declares `metadata` (to restrict name and generateName):
                // metadata is reduced to ObjectMeta's fields below.
                if is_root && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(prop) = s.properties.get(&k) {
                    let v = m.get_mut(&k).expect("key exists");
                    with(path, Seg::Prop(k.clone()), |p| {
                        prune_value(v, Some(prop), false, p, pruned)
                    });
                } else if s.has_additional() {
                    let v = m.get_mut(&k).expect("key exists");
                    // additionalProperties: true keeps everything.
                    if let Some(a) = s.additional_schema() {
                        with(path, Seg::Key(k.clone()), |p| {
                            prune_value(v, Some(a), false, p, pruned)
                        });
                    }
                } else {
                    with(path, Seg::Prop(k.clone()), |p| pruned.push(prune_path(p)));
                    m.remove(&k);
                }
            }
            if s.embedded
                && let Some(meta) = m.get_mut("metadata")
            {
                with(path, Seg::Prop("metadata".into()), |p| {
                    prune_object_meta(meta, p, pruned)
                });
            }
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            for (i, v) in a.iter_mut().enumerate() {
                with(path, Seg::Index(i), |p| {
                    prune_value(v, items, false, p, pruned)
                });
            }
        }
        _ => {}
    }
}

fn is_embedded_meta(k: &str, v: Option<&Value>) -> bool {
    match k {
        "apiVersion" | "kind" => v.is_some_and(Value::is_string),
        "metadata" => v.is_some_and(Value::is_object),
        _ => false,
    }
}

fn skip_prune(x: &mut Value, s: &Node, path: &mut Vec<Seg>, pruned: &mut Vec<String>) {
    match x {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if s.embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let v = m.get_mut(&k).expect("key exists");
                if let Some(prop) = s.properties.get(&k) {
                    with(path, Seg::Prop(k.clone()), |p| {
                        prune_value(v, Some(prop), false, p, pruned)
                    });
                } else if let Some(a) = s.additional_schema() {
                    with(path, Seg::Key(k.clone()), |p| {
                        prune_value(v, Some(a), false, p, pruned)
                    });
                }
            }
            if s.embedded
                && let Some(meta) = m.get_mut("metadata")
            {
                with(path, Seg::Prop("metadata".into()), |p| {
                    prune_object_meta(meta, p, pruned)
                });
            }
        }
        Value::Array(a) => {
            if let Some(items) = &s.items {
                for (i, v) in a.iter_mut().enumerate() {
                    with(path, Seg::Index(i), |p| skip_prune(v, items, p, pruned));
                }
            }
        }
        _ => {}
    }
}

fn prune_object_meta(meta: &mut Value, path: &mut Vec<Seg>, pruned: &mut Vec<String>) {
    if let Some(m) = meta.as_object_mut() {
        let keys: Vec<String> = m
            .keys()
            .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in keys {
            with(path, Seg::Prop(k.clone()), |p| pruned.push(prune_path(p)));
            m.remove(&k);
        }
    }
}

// ---------------------------------------------------------------------------
// OpenAPI validation (kube-openapi semantics)
// ---------------------------------------------------------------------------

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integral(f: f64) -> bool {
    f.is_finite() && f.fract() == 0.0
}

/// The `%v` rendering of a schema limit; integral limits print as integers (MaximumInt & co).
fn fmt_limit(f: f64, value_is_int: bool) -> String {
    if value_is_int && is_integral(f) && f.abs() < 9.2e18 {
        format!("{}", f as i64)
    } else {
        go_float(f)
    }
}

fn push_invalid(errs: &mut Vec<FieldError>, path: &[Seg], value: Value, msg: String) {
    errs.push(FieldError::new(
        openapi_path(path),
        FieldErrorKind::Invalid,
        Some(value),
        msg,
    ));
}

/// The kube-openapi error name (`spec.x`), used inside messages; the root is `` (empty).
fn body_name(path: &[Seg]) -> String {
    if path.is_empty() {
        String::new()
    } else {
        openapi_path(path)
    }
}

fn validate_openapi(x: &Value, s: &Node, path: &mut Vec<Seg>, errs: &mut Vec<FieldError>) {
    let name = body_name(path);
    let types: Vec<&str> = if s.int_or_string {
        vec!["integer", "string"]
    } else if s.ty.is_empty() {
        vec![]
    } else {
        vec![s.ty.as_str()]
    };

    // type validator
    if x.is_null() {
        if !types.is_empty() && !s.nullable {
            errs.push(FieldError::new(
                openapi_path(path),
                FieldErrorKind::TypeInvalid,
                Some(Value::String("null".into())),
                format!(
                    "{} in body must be of type {}: \"null\"",
                    name,
                    types.join(",")
                ),
            ));
        }
        validate_enum(x, s, path, errs);
        return;
    }
    let sch_type = json_type(x);
    if !types.is_empty() {
        let float_int = sch_type == "number"
            && x.as_f64().is_some_and(is_integral)
            && types.contains(&"integer");
        let int_float = sch_type == "integer" && types.contains(&"number");
        if !(types.contains(&sch_type) || float_int || int_float) {
            errs.push(FieldError::new(
                openapi_path(path),
                FieldErrorKind::TypeInvalid,
                Some(Value::String(sch_type.into())),
                format!(
                    "{} in body must be of type {}: {}",
                    name,
                    types.join(","),
                    crate::status::go_quote(sch_type)
                ),
            ));
        }
    }

    // schema props validator (allOf / anyOf / oneOf / not)
    for sub in &s.all_of {
        validate_openapi(x, sub, path, errs);
    }
    if !s.any_of.is_empty() {
        let mut any_ok = false;
        let mut collected = Vec::new();
        for sub in &s.any_of {
            let mut e = Vec::new();
            validate_openapi(x, sub, path, &mut e);
            if e.is_empty() {
                any_ok = true;
                break;
            }
            collected.extend(e);
        }
        if !any_ok {
            push_invalid(
                errs,
                path,
                Value::String(String::new()),
                format!(
                    "{} must validate at least one schema (anyOf)",
                    crate::status::go_quote(&name)
                ),
            );
            errs.extend(collected);
        }
    }
    if !s.one_of.is_empty() {
        let mut ok_count = 0;
        let mut collected = Vec::new();
        for sub in &s.one_of {
            let mut e = Vec::new();
            validate_openapi(x, sub, path, &mut e);
            if e.is_empty() {
                ok_count += 1;
            } else {
                collected.extend(e);
            }
        }
        if ok_count != 1 {
            let extra = if ok_count > 1 {
                format!("Found {ok_count} valid alternatives")
            } else {
                String::new()
            };
            push_invalid(
                errs,
                path,
                Value::String(String::new()),
                format!(
                    "{} must validate one and only one schema (oneOf). {}",
                    crate::status::go_quote(&name),
                    extra
                ),
            );
            if ok_count == 0 {
                errs.extend(collected);
            }
        }
    }
    if let Some(not) = &s.not {
        let mut e = Vec::new();
        validate_openapi(x, not, path, &mut e);
        if e.is_empty() {
            push_invalid(
                errs,
                path,
                Value::String(String::new()),
                format!(
                    "{} must not validate the schema (not)",
                    crate::status::go_quote(&name)
                ),
            );
        }
    }

    match x {
        Value::String(st) => {
            // string validator
            let runes = st.chars().count() as u64;
            if let Some(max) = s.max_length
                && runes > max
            {
                // field.TooLong (the count is in runes, the text says bytes, as upstream).
                errs.push(FieldError::new(
                    openapi_path(path),
                    FieldErrorKind::TooLong,
                    Some(x.clone()),
                    format!(
                        "may not be more than {max} {}",
                        if max == 1 { "byte" } else { "bytes" }
                    ),
                ));
            }
            if let Some(min) = s.min_length
                && runes < min
            {
                push_invalid(
                    errs,
                    path,
                    x.clone(),
                    format!("{name} in body should be at least {min} chars long"),
                );
            }
            if let Some((p, re)) = &s.pattern
                && !re.is_match(st)
            {
                push_invalid(
                    errs,
                    path,
                    x.clone(),
                    format!("{name} in body should match '{p}'"),
                );
            }
            // format validator
            if let Some(f) = &s.format
                && !format_ok(f, st)
            {
                errs.push(FieldError::new(
                    openapi_path(path),
                    FieldErrorKind::TypeInvalid,
                    Some(x.clone()),
                    format!(
                        "{} in body must be of type {}: {}",
                        name,
                        f,
                        crate::status::go_quote(st)
                    ),
                ));
            }
        }
        Value::Number(num) => validate_number(x, num, s, &name, path, errs),
        _ => {}
    }

    if let Value::Array(a) = x {
        // slice validator
        if let Some(items) = &s.items {
            for (i, v) in a.iter().enumerate() {
                with(path, Seg::Index(i), |p| validate_openapi(v, items, p, errs));
            }
        }
        let size = a.len() as u64;
        if let Some(min) = s.min_items
            && size < min
        {
            push_invalid(
                errs,
                path,
                Value::from(size),
                format!("{name} in body should have at least {min} items"),
            );
        }
        if let Some(max) = s.max_items
            && size > max
        {
            errs.push(FieldError::new(
                openapi_path(path),
                FieldErrorKind::TooMany,
                Some(Value::from(size)),
                format!(
                    "must have at most {max} {}",
                    if max == 1 { "item" } else { "items" }
                ),
            ));
        }
        if s.unique_items {
            let mut seen = HashSet::new();
            if a.iter().any(|v| !seen.insert(canonical(v))) {
                push_invalid(
                    errs,
                    path,
                    Value::String(String::new()),
                    format!("{name} in body shouldn't contain duplicates"),
                );
            }
        }
    }

    // common validator
    validate_enum(x, s, path, errs);

    // object validator
    if let Value::Object(m) = x {
        let n = m.len() as u64;
        if let Some(min) = s.min_properties
            && n < min
        {
            push_invalid(
                errs,
                path,
                Value::from(n),
                format!("{name} in body should have at least {min} properties"),
            );
            return;
        }
        if let Some(max) = s.max_properties
            && n > max
        {
            errs.push(FieldError::new(
                openapi_path(path),
                FieldErrorKind::TooMany,
                Some(Value::from(n)),
                format!(
                    "must have at most {max} {}",
                    if max == 1 { "item" } else { "items" }
                ),
            ));
            return;
        }
        match &s.additional {
            Some(Additional::Bool(false)) => {
                for k in m.keys() {
                    if !s.properties.contains_key(k) {
                        push_invalid(
                            errs,
                            path,
                            Value::String(k.clone()),
                            format!("{name}.{k} in body is a forbidden property"),
                        );
                    }
                }
            }
            Some(Additional::Schema(a)) => {
                for (k, v) in m {
                    if !s.properties.contains_key(k) {
                        with(path, Seg::Key(k.clone()), |p| {
                            validate_openapi(v, a, p, errs)
                        });
                    }
                }
            }
            _ => {}
        }
        for (k, prop) in &s.properties {
            if let Some(v) = m.get(k) {
                with(path, Seg::Prop(k.clone()), |p| {
                    validate_openapi(v, prop, p, errs)
                });
            }
        }
        for k in &s.required {
            if !m.contains_key(k) {
                let f = with(path, Seg::Prop(k.clone()), |p| openapi_path(p));
                errs.push(FieldError::new(f, FieldErrorKind::Required, None, ""));
            }
        }
    }
}

fn validate_number(
    x: &Value,
    num: &serde_json::Number,
    s: &Node,
    name: &str,
    path: &[Seg],
    errs: &mut Vec<FieldError>,
) {
    let is_int = num.is_i64() || num.is_u64();
    let f = num.as_f64().unwrap_or(f64::NAN);
    if let Some(m) = s.multiple_of {
        let bad = if is_int && is_integral(m) && m != 0.0 {
            match num.as_i64() {
                Some(i) => i % (m as i64) != 0,
                None => !is_integral(f / m),
            }
        } else {
            let mult = if m < 1.0 { 1.0 / m * f } else { f / m };
            (mult - mult.trunc()).abs() > 1e-9
        };
        if bad {
            push_invalid(
                errs,
                path,
                x.clone(),
                format!(
                    "{} in body should be a multiple of {}",
                    name,
                    fmt_limit(m, is_int)
                ),
            );
        }
    }
    if let Some(max) = s.maximum {
        let bad = if s.exclusive_maximum {
            f >= max
        } else {
            f > max
        };
        if bad {
            let word = if s.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            push_invalid(
                errs,
                path,
                x.clone(),
                format!(
                    "{} in body should be {} {}",
                    name,
                    word,
                    fmt_limit(max, is_int)
                ),
            );
        }
    }
    if let Some(min) = s.minimum {
        let bad = if s.exclusive_minimum {
            f <= min
        } else {
            f < min
        };
        if bad {
            let word = if s.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            push_invalid(
                errs,
                path,
                x.clone(),
                format!(
                    "{} in body should be {} {}",
                    name,
                    word,
                    fmt_limit(min, is_int)
                ),
            );
        }
    }
}

fn validate_enum(x: &Value, s: &Node, path: &[Seg], errs: &mut Vec<FieldError>) {
    let Some(values) = &s.enum_values else { return };
    if values.is_empty() || values.iter().any(|v| json_eq(v, x)) {
        return;
    }
    let supported: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => crate::status::go_quote(s),
            other => crate::status::go_quote(&serde_json::to_string(other).unwrap_or_default()),
        })
        .collect();
    errs.push(FieldError::new(
        openapi_path(path),
        FieldErrorKind::NotSupported,
        Some(x.clone()),
        format!("supported values: {}", supported.join(", ")),
    ));
}

/// JSON equality treating 1 and 1.0 as equal.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || (x.as_f64().is_some() && x.as_f64() == y.as_f64())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn canonical(v: &Value) -> String {
    // serde_json maps are sorted (no preserve_order), so this is canonical.
    serde_json::to_string(v).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Formats (kube-openapi strfmt default registry)
// ---------------------------------------------------------------------------

fn re(p: &str) -> Regex {
    Regex::new(p).expect("static regex")
}

fn format_ok(format: &str, s: &str) -> bool {
    use std::sync::OnceLock;
    static RX: OnceLock<HashMap<&'static str, Regex>> = OnceLock::new();
    let rx = RX.get_or_init(|| {
        let mut m = HashMap::new();
        m.insert("uuid", re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
        m.insert("uuid3", re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
        m.insert("uuid4", re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
        m.insert("uuid5", re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"));
        m.insert("hexcolor", re(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
        m.insert(
            "rgbcolor",
            re(r"^rgb\(\s*([01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])\s*,\s*([01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])\s*,\s*([01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])\s*\)$"),
        );
        m.insert("ssn", re(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"));
        m.insert("bsonobjectid", re(r"^[0-9a-fA-F]{24}$"));
        m.insert(
            "hostname",
            re(r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$"),
        );
        m.insert("datetime_time", re(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"));
        m.insert("isbn10", re(r"^(?:[0-9]{9}X|[0-9]{10})$"));
        m.insert("isbn13", re(r"^(?:[0-9]{13})$"));
        m.insert(
            "creditcard",
            re(r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11})$"),
        );
        m.insert("mac", re(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{2}[:-]){7}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{2}[:-]){19}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{4}\.){2}[0-9a-fA-F]{4}$|^([0-9a-fA-F]{4}\.){3}[0-9a-fA-F]{4}$|^([0-9a-fA-F]{4}\.){9}[0-9a-fA-F]{4}$"));
        m.insert("duration_go", re(r"^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$"));
        m.insert(
            "duration_human",
            re(r"^(\d+)\s*(ns|us|µs|μs|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?|sec|secs|min|mins|hr|hrs)$"),
        );
        m
    });
    let norm = format.replace('-', "");
    match norm.as_str() {
        "password" => true,
        "date" => is_date(s),
        "datetime" => {
            if s.len() < 4 {
                return false;
            }
            let lower = s.to_lowercase();
            let parts: Vec<&str> = lower.split('t').collect();
            if parts.len() < 2 || !is_date(parts[0]) {
                return false;
            }
            match rx["datetime_time"].captures(parts[1]) {
                Some(c) => &c[1] <= "23" && &c[2] <= "59" && &c[3] <= "59",
                None => false,
            }
        }
        "byte" => base64_decode(s).is_some(),
        "email" => is_email(s),
        "uri" => is_request_uri(s),
        "ipv4" => s.parse::<std::net::IpAddr>().is_ok() && s.contains('.'),
        "ipv6" => s.parse::<std::net::IpAddr>().is_ok() && s.contains(':'),
        "cidr" => is_cidr(s),
        "duration" => s == "0" || rx["duration_go"].is_match(s) || rx["duration_human"].is_match(s),
        "hostname" => s.len() <= 255 && rx["hostname"].is_match(s),
        "isbn" => {
            let c: String = s.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
            rx["isbn10"].is_match(&c) || rx["isbn13"].is_match(&c)
        }
        "isbn10" | "isbn13" => {
            let c: String = s.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
            rx[norm.as_str()].is_match(&c)
        }
        "creditcard" => {
            let c: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
            rx["creditcard"].is_match(&c)
        }
        other => rx.get(other).is_none_or(|r| r.is_match(s)),
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|x| x.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|x| x.parse::<u32>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= days[(m - 1) as usize]
}

fn is_email(s: &str) -> bool {
    // net/mail.ParseAddress accepts "Name <local@domain>" and "local@domain".
    let addr = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b && b == s.len() - 1 => &s[a + 1..b],
        _ => s.trim(),
    };
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !addr.contains(char::is_whitespace)
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        }
        None => false,
    }
}

fn is_request_uri(s: &str) -> bool {
    // net/url.ParseRequestURI: absolute URI or absolute path; no spaces / control chars.
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    let scheme_re = {
        use std::sync::OnceLock;
        static R: OnceLock<Regex> = OnceLock::new();
        R.get_or_init(|| re(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:.+"))
    };
    scheme_re.is_match(s)
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Strict standard base64 (Go's base64.StdEncoding).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (ci, chunk) in b.chunks(4).enumerate() {
        let last = ci == b.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(c)? };
            n = (n << 6) | v;
        }
        out.push((n >> 16) as u8);
        if pad < 2 {
            out.push((n >> 8) as u8);
        }
        if pad < 1 {
            out.push(n as u8);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// x-kubernetes-list-type validation
// ---------------------------------------------------------------------------

fn validate_list_types(x: &Value, s: &Node, path: &mut Vec<Seg>, errs: &mut Vec<FieldError>) {
    match x {
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(prop) = s.properties.get(k) {
                    with(path, Seg::Prop(k.clone()), |p| {
                        validate_list_types(v, prop, p, errs)
                    });
                } else if let Some(a) = s.additional_schema() {
                    with(path, Seg::Key(k.clone()), |p| {
                        validate_list_types(v, a, p, errs)
                    });
                }
            }
        }
        Value::Array(a) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    let mut seen = HashSet::new();
                    for (i, v) in a.iter().enumerate() {
                        if !seen.insert(canonical(v)) {
                            let f = with(path, Seg::Index(i), |p| field_path(p));
                            errs.push(FieldError::new(
                                f,
                                FieldErrorKind::Duplicate,
                                Some(v.clone()),
                                "",
                            ));
                        }
                    }
                }
                Some("map") => validate_list_map(a, s, path, errs),
                _ => {}
            }
            if let Some(items) = &s.items {
                for (i, v) in a.iter().enumerate() {
                    with(path, Seg::Index(i), |p| {
                        validate_list_types(v, items, p, errs)
                    });
                }
            }
        }
        _ => {}
    }
}

fn validate_list_map(a: &[Value], s: &Node, path: &mut Vec<Seg>, errs: &mut Vec<FieldError>) {
    for (i, x) in a.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            let f = with(path, Seg::Index(i), |p| field_path(p));
            errs.push(FieldError::new(
                f,
                FieldErrorKind::Invalid,
                Some(x.clone()),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    if a.len() <= 1 {
        return;
    }
    let mut seen = HashSet::new();
    for (i, x) in a.iter().enumerate() {
        let Some(m) = x.as_object() else { continue };
        let mut key = Map::new();
        for k in &s.list_map_keys {
            let v = m.get(k).cloned().or_else(|| {
                s.items
                    .as_ref()
                    .and_then(|it| it.properties.get(k))
                    .and_then(|p| p.default.clone())
            });
            if let Some(v) = v {
                key.insert(k.clone(), v);
            }
        }
        let key = Value::Object(key);
        if !seen.insert(canonical(&key)) {
            let f = with(path, Seg::Index(i), |p| field_path(p));
            errs.push(FieldError::new(f, FieldErrorKind::Duplicate, Some(key), ""));
        }
    }
}

// ---------------------------------------------------------------------------
// CEL (x-kubernetes-validations)
// ---------------------------------------------------------------------------

thread_local! {
    static BASE_CTX: cel::Context<'static> = {
        let mut ctx = cel::Context::default().with_all();
        crate::cel_check::with_cached_matches(&mut ctx);
        ctx
    };
}

/// Words CEL reserves: properties so named are reached as `__word__`.
pub(crate) const CEL_RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Escape a property name the way Kubernetes exposes it to CEL; `None` if it cannot be accessed.
fn escape_cel_name(name: &str) -> Option<String> {
    if CEL_RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok_first = first.is_ascii_alphabetic() || matches!(first, '_' | '.' | '-' | '/');
    if !ok_first
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return None;
    }
    let mut out = String::new();
    let mut rest = name;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("__") {
            out.push_str("__underscores__");
            rest = r;
            continue;
        }
        let c = rest.chars().next().expect("non-empty");
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

fn cel_str(s: &str) -> cel::Value {
    cel::Value::String(Arc::new(s.to_string()))
}

/// Convert JSON data to a CEL value the way apiextensions' UnstructuredToVal does.
fn to_cel(x: &Value, s: Option<&Node>, is_root: bool) -> cel::Value {
    to_cel_fields(x, s, is_root, None)
}

/// [`to_cel`], of an object's fields only those in `only` (CEL names) when given.
fn to_cel_fields(
    x: &Value,
    s: Option<&Node>,
    is_root: bool,
    only: Option<&BTreeSet<String>>,
) -> cel::Value {
    match x {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => {
            if s.is_some_and(|s| s.ty == "number") {
                return cel::Value::Float(n.as_f64().unwrap_or(f64::NAN));
            }
            if let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                cel::Value::UInt(u)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(st) => {
            if let Some(s) = s
                && !s.int_or_string
            {
                match s.raw_format.as_deref() {
                    Some("date-time") | Some("datetime") => {
                        if let Ok(v) = cel::functions::timestamp(Arc::new(st.clone())) {
                            return v;
                        }
                    }
                    Some("duration") => {
                        if let Ok(v) = cel::functions::duration(Arc::new(st.clone())) {
                            return v;
                        }
                    }
                    Some("byte") => {
                        if let Some(b) = base64_decode(st) {
                            return cel::Value::Bytes(Arc::new(b));
                        }
                    }
                    _ => {}
                }
            }
            cel_str(st)
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.items.as_deref());
            cel::Value::List(Arc::new(
                a.iter().map(|v| to_cel(v, items, false)).collect(),
            ))
        }
        Value::Object(m) => {
            let mut out: HashMap<cel::objects::Key, cel::Value> = HashMap::with_capacity(m.len());
            let is_map = s.is_some_and(|s| s.properties.is_empty() && s.has_additional());
            for (k, v) in m {
                if let Some(only) = only {
                    let visible = if is_map {
                        only.contains(k)
                    } else {
                        escape_cel_name(k).is_some_and(|n| only.contains(&n))
                    };
                    if !visible {
                        continue;
                    }
                }
                if is_root && k == "metadata" {
                    // Only metadata.name and metadata.generateName are visible to rules on the root.
                    let mut meta = HashMap::new();
                    if let Some(mo) = v.as_object() {
                        for f in ["name", "generateName"] {
                            if let Some(Value::String(sv)) = mo.get(f) {
                                meta.insert(
                                    cel::objects::Key::String(Arc::new(f.to_string())),
                                    cel_str(sv),
                                );
                            }
                        }
                    }
                    out.insert(
                        cel::objects::Key::String(Arc::new("metadata".into())),
                        cel::Value::Map(cel::objects::Map {
                            map: Arc::new(meta),
                        }),
                    );
                    continue;
                }
                let child = s.and_then(|s| s.properties.get(k).or_else(|| s.additional_schema()));
                let key = if is_map {
                    Some(k.clone())
                } else {
                    escape_cel_name(k)
                };
                if let Some(key) = key {
                    out.insert(
                        cel::objects::Key::String(Arc::new(key)),
                        to_cel(v, child, false),
                    );
                }
            }
            if s.is_some_and(|s| s.embedded) {
                for (f, d) in [("apiVersion", cel_str("")), ("kind", cel_str(""))] {
                    out.entry(cel::objects::Key::String(Arc::new(f.into())))
                        .or_insert(d);
                }
            }
            cel::Value::Map(cel::objects::Map { map: Arc::new(out) })
        }
    }
}

fn validate_cel(
    base: &cel::Context<'static>,
    x: &Value,
    old: Option<&Value>,
    s: &Node,
    is_root: bool,
    path: &mut Vec<Seg>,
    errs: &mut Vec<FieldError>,
) {
    if x.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !s.rules.is_empty() {
        eval_rules(base, x, old, s, is_root, path, errs);
    }
    match x {
        Value::Object(m) => {
            let old_m = old.and_then(Value::as_object);
            for (k, v) in m {
                let ov = old_m.and_then(|o| o.get(k));
                if let Some(prop) = s.properties.get(k) {
                    with(path, Seg::Prop(k.clone()), |p| {
                        validate_cel(base, v, ov, prop, false, p, errs)
                    });
                } else if let Some(a) = s.additional_schema() {
                    with(path, Seg::Key(k.clone()), |p| {
                        validate_cel(base, v, ov, a, false, p, errs)
                    });
                }
            }
        }
        Value::Array(a) => {
            let Some(items) = &s.items else { return };
            // Old items are correlated only for x-kubernetes-list-type: map (by key).
            let old_arr = old.and_then(Value::as_array);
            for (i, v) in a.iter().enumerate() {
                let ov = if s.list_type.as_deref() == Some("map") && !s.list_map_keys.is_empty() {
                    old_arr.and_then(|oa| {
                        oa.iter().find(|o| {
                            s.list_map_keys
                                .iter()
                                .all(|k| o.get(k).is_some() && o.get(k) == v.get(k))
                        })
                    })
                } else {
                    None
                };
                with(path, Seg::Index(i), |p| {
                    validate_cel(base, v, ov, items, false, p, errs)
                });
            }
        }
        _ => {}
    }
}

fn eval_rules(
    base: &cel::Context<'static>,
    x: &Value,
    old: Option<&Value>,
    s: &Node,
    is_root: bool,
    path: &[Seg],
    errs: &mut Vec<FieldError>,
) {
    let only = s.rule_fields.as_ref();
    let self_val = to_cel_fields(x, Some(s), is_root, only);
    let old_val = old.map(|o| to_cel_fields(o, Some(s), is_root, only));
    let mut ctx = base.new_inner_scope();
    ctx.add_variable_from_value("self", self_val);
    match &old_val {
        Some(o) => ctx.add_variable_from_value("oldSelf", o.clone()),
        None => ctx.add_variable_from_value("oldSelf", cel::Value::Null),
    }
    let type_name = Value::String(s.ty.clone());
    // A failed rule reports the value it checked, omitted for objects and arrays.
    let bad_value = match s.ty.as_str() {
        "object" | "array" => None,
        _ => Some(x.clone()),
    };
    let here = field_path(path);
    for rule in &s.rules {
        if rule.uses_old_self && old_val.is_none() && !rule.optional_old_self {
            continue;
        }
        let rule_str = rule.rule.trim();
        match rule.program.execute(&ctx) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => {
                let field = match &rule.field_path {
                    Some(fp) if path.is_empty() => fp.clone(),
                    Some(fp) if fp.starts_with('[') => format!("{here}{fp}"),
                    Some(fp) => format!("{here}.{fp}"),
                    None => here.clone(),
                };
                let default_msg = if rule.message.trim().is_empty() {
                    format!("failed rule: {rule_str}")
                } else {
                    rule.message.trim().to_string()
                };
                let detail = match &rule.message_program {
                    Some(mp) => match mp.execute(&ctx) {
                        Ok(cel::Value::String(m)) if !m.trim().is_empty() && !m.contains('\n') => {
                            m.to_string()
                        }
                        _ => default_msg,
                    },
                    None => default_msg,
                };
                let e = match rule.reason.as_deref() {
                    Some("FieldValueForbidden") => {
                        FieldError::new(field, FieldErrorKind::Forbidden, None, detail)
                    }
                    Some("FieldValueRequired") => {
                        FieldError::new(field, FieldErrorKind::Required, None, detail)
                    }
                    Some("FieldValueDuplicate") => {
                        FieldError::new(field, FieldErrorKind::Duplicate, bad_value.clone(), "")
                    }
                    _ => FieldError::new(field, FieldErrorKind::Invalid, bad_value.clone(), detail),
                };
                errs.push(e);
            }
            Ok(_) => errs.push(FieldError::new(
                here.clone(),
                FieldErrorKind::Invalid,
                Some(type_name.clone()),
                format!("rule did not evaluate to a boolean: {rule_str}"),
            )),
            Err(e) => {
                let msg = e.to_string();
                let detail = if msg.to_lowercase().contains("no such overload")
                    || msg.contains("Unsupported")
                {
                    format!(
                        "'{msg}': call arguments did not match a supported operator, function or macro signature for rule: {rule_str}"
                    )
                } else {
                    format!("{msg} evaluating rule: {rule_str}")
                };
                errs.push(FieldError::new(
                    here.clone(),
                    FieldErrorKind::Invalid,
                    Some(type_name.clone()),
                    detail,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> CrdSchema {
        CrdSchema::new(&v).expect("schema compiles")
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    fn root(spec_props: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": spec_props}}})
    }

    fn obj(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
    }

    #[test]
    fn crd_schema_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CrdSchema>();
    }

    // ----------------------------------------------------------- messages

    #[test]
    fn field_error_message_formats() {
        let e = FieldError::new(
            "spec.color",
            FieldErrorKind::Invalid,
            Some(json!("red")),
            "spec.color in body should match '^#[0-9a-fA-F]{6}$'",
        );
        assert_eq!(
            e.message(),
            r#"spec.color: Invalid value: "red": spec.color in body should match '^#[0-9a-fA-F]{6}$'"#
        );
        assert_eq!(
            e.cause_message(),
            r#"Invalid value: "red": spec.color in body should match '^#[0-9a-fA-F]{6}$'"#
        );
        let e = FieldError::new("spec.displayName", FieldErrorKind::Required, None, "");
        assert_eq!(e.message(), "spec.displayName: Required value");
        let e = FieldError::new(
            "spec.x",
            FieldErrorKind::TooLong,
            Some(json!("abc")),
            "may not be more than 2 bytes",
        );
        assert_eq!(
            e.message(),
            "spec.x: Too long: may not be more than 2 bytes"
        );
        let e = FieldError::new("spec.x", FieldErrorKind::Forbidden, None, "nope");
        assert_eq!(e.message(), "spec.x: Forbidden: nope");
        let e = FieldError::new("spec.x", FieldErrorKind::Invalid, Some(json!(1.5)), "d");
        assert_eq!(e.message(), "spec.x: Invalid value: 1.5: d");
        let e = FieldError::new("spec.x", FieldErrorKind::Invalid, Some(Value::Null), "d");
        assert_eq!(e.message(), r#"spec.x: Invalid value: null: d"#);
        assert_eq!(
            FieldErrorKind::TypeInvalid.reason(),
            "FieldValueTypeInvalid"
        );
        assert_eq!(
            FieldErrorKind::NotSupported.reason(),
            "FieldValueNotSupported"
        );
        assert_eq!(FieldErrorKind::TooShort.reason(), "FieldValueInvalid");
        assert_eq!(crate::status::go_quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(go_float(1000000.0), "1e+06");
        assert_eq!(go_float(255.0), "255");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    // ----------------------------------------------------------- defaulting

    #[test]
    fn defaults_applied_nested_and_in_arrays() {
        let s = schema(root(json!({
            "replicas": {"type": "integer", "default": 1},
            "config": {"type": "object", "default": {}, "properties": {
                "mode": {"type": "string", "default": "fast"},
                "level": {"type": "integer"}
            }},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"},
                "protocol": {"type": "string", "default": "TCP"}
            }}},
            "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "v": {"type": "string", "default": "x"}
            }}}
        })));
        let mut o = obj(
            json!({"ports": [{"name": "http"}, {"name": "dns", "protocol": "UDP"}], "labels": {"a": {}}}),
        );
        s.apply_defaults(&mut o);
        assert_eq!(
            o["spec"],
            json!({
                "replicas": 1,
                "config": {"mode": "fast"},
                "ports": [{"name": "http", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}],
                "labels": {"a": {"v": "x"}}
            })
        );
        // Existing values are not overwritten; missing spec gets nothing (no default on spec).
        let mut o2 = json!({"metadata": {"name": "x"}});
        s.apply_defaults(&mut o2);
        assert_eq!(o2, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn defaults_replace_non_nullable_nulls_and_drop_nulls_without_default() {
        let s = schema(root(json!({
            "a": {"type": "string", "default": "d"},
            "b": {"type": "string"},
            "c": {"type": "string", "nullable": true, "default": "d"},
            "e": {"type": "string", "nullable": true}
        })));
        let mut o = obj(json!({"a": null, "b": null, "c": null, "e": null}));
        s.apply_defaults(&mut o);
        assert_eq!(o["spec"], json!({"a": "d", "c": null, "e": null}));
    }

    // ----------------------------------------------------------- pruning

    #[test]
    fn prune_unknown_nested_fields() {
        let s = schema(root(json!({
            "name": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "nested": {"type": "object", "properties": {"x": {"type": "integer"}}}
        })));
        let mut o = obj(json!({
            "name": "n", "foo": 1,
            "items": [{"a": "1", "bar": 2}, {"a": "2"}],
            "nested": {"x": 1, "y": {"z": 1}}
        }));
        o["status"] = json!({"phase": "x"});
        o["extra"] = json!(true);
        let pruned = s.prune(&mut o);
        assert_eq!(
            pruned,
            vec![
                ".extra",
                ".spec.foo",
                ".spec.items[0].bar",
                ".spec.nested.y",
                ".status"
            ]
        );
        assert_eq!(
            o["spec"],
            json!({"name": "n", "items": [{"a": "1"}, {"a": "2"}], "nested": {"x": 1}})
        );
        assert_eq!(o["apiVersion"], "example.com/v1");
        assert_eq!(o["kind"], "Widget");
        assert_eq!(o["metadata"], json!({"name": "w"}));
    }

    #[test]
    fn prune_respects_preserve_unknown_fields_and_metadata() {
        let s = schema(json!({"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "known": {"type": "object", "properties": {"a": {"type": "string"}}}
            }},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}
        }}));
        let mut o = json!({
            "apiVersion": "v1", "kind": "K",
            "metadata": {"name": "x", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"anything": {"deep": 1}, "known": {"a": "x", "b": "y"}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1}, "spec": {"c": 1}, "other": 1}
        });
        let pruned = s.prune(&mut o);
        assert_eq!(
            pruned,
            vec![
                ".metadata.bogus",
                ".spec.known.b",
                ".template.metadata.junk",
                ".template.other"
            ]
        );
        assert_eq!(o["metadata"], json!({"name": "x", "labels": {"a": "b"}}));
        assert_eq!(
            o["spec"],
            json!({"anything": {"deep": 1}, "known": {"a": "x"}})
        );
        assert_eq!(
            o["template"],
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"c": 1}})
        );
    }

    // ----------------------------------------------------------- OpenAPI validation

    #[test]
    fn type_errors() {
        let s = schema(root(json!({
            "replicas": {"type": "integer"},
            "ratio": {"type": "number"},
            "on": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "name": {"type": "string"},
            "n": {"type": "string", "nullable": true}
        })));
        let errs = s.validate(&obj(json!({"replicas": "string", "ratio": 3, "on": "yes", "tags": ["a", 1], "name": null, "n": null})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.name: Invalid value: "null": spec.name in body must be of type string: "null""#,
                r#"spec.on: Invalid value: "string": spec.on in body must be of type boolean: "string""#,
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
                r#"spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer""#,
            ]
        );
        assert!(errs.iter().all(|e| e.kind == FieldErrorKind::TypeInvalid));
        // 2.0 is an acceptable integer; 2.5 is not.
        assert!(s.validate(&obj(json!({"replicas": 2.0})), None).is_empty());
        assert_eq!(
            messages(&s.validate(&obj(json!({"replicas": 2.5})), None)),
            vec![
                r#"spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number""#
            ]
        );
    }

    #[test]
    fn required_fields() {
        let s = schema(
            json!({"type": "object", "required": ["spec"], "properties": {"spec": {
            "type": "object", "required": ["displayName", "size"], "properties": {
                "displayName": {"type": "string"}, "size": {"type": "integer"}
            }}}}),
        );
        let errs = s.validate(&obj(json!({"size": 1})), None);
        assert_eq!(messages(&errs), vec!["spec.displayName: Required value"]);
        assert_eq!(errs[0].kind.reason(), "FieldValueRequired");
        let errs = s.validate(&json!({"metadata": {"name": "a"}}), None);
        assert_eq!(messages(&errs), vec!["spec: Required value"]);
    }

    #[test]
    fn enum_values() {
        let s = schema(root(json!({
            "deletionPolicy": {"type": "string", "enum": ["Retain", "Delete"]},
            "level": {"type": "integer", "enum": [1, 2]}
        })));
        let errs = s.validate(&obj(json!({"deletionPolicy": "Foo", "level": 3})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.deletionPolicy: Unsupported value: "Foo": supported values: "Retain", "Delete""#,
                r#"spec.level: Unsupported value: 3: supported values: "1", "2""#,
            ]
        );
        assert_eq!(errs[0].kind, FieldErrorKind::NotSupported);
        assert!(
            s.validate(&obj(json!({"deletionPolicy": "Delete", "level": 2})), None)
                .is_empty()
        );
    }

    #[test]
    fn pattern_and_string_lengths() {
        let s = schema(root(json!({
            "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
            "name": {"type": "string", "maxLength": 5, "minLength": 2}
        })));
        let errs = s.validate(&obj(json!({"color": "red", "name": "abcdef"})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.color: Invalid value: "red": spec.color in body should match '^#[0-9a-fA-F]{6}$'"#,
                "spec.name: Too long: may not be more than 5 bytes",
            ]
        );
        assert_eq!(errs[1].kind, FieldErrorKind::TooLong);
        let errs = s.validate(&obj(json!({"name": "a"})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#
            ]
        );
        // lengths count runes, not bytes
        assert!(s.validate(&obj(json!({"name": "ééééé"})), None).is_empty());
    }

    #[test]
    fn numeric_bounds_and_multiple_of() {
        let s = schema(root(json!({
            "x": {"type": "integer", "minimum": 0, "maximum": 255},
            "y": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": true},
            "z": {"type": "integer", "multipleOf": 5},
            "f": {"type": "number", "maximum": 1.5}
        })));
        let errs = s.validate(&obj(json!({"x": 300, "y": 0, "z": 7, "f": 2.25})), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.f: Invalid value: 2.25: spec.f in body should be less than or equal to 1.5",
                "spec.x: Invalid value: 300: spec.x in body should be less than or equal to 255",
                "spec.y: Invalid value: 0: spec.y in body should be greater than 0",
                "spec.z: Invalid value: 7: spec.z in body should be a multiple of 5",
            ]
        );
        let errs = s.validate(&obj(json!({"x": -1, "y": 10})), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.x: Invalid value: -1: spec.x in body should be greater than or equal to 0",
                "spec.y: Invalid value: 10: spec.y in body should be less than 10",
            ]
        );
        assert!(
            s.validate(&obj(json!({"x": 255, "y": 9, "z": 10, "f": 1.5})), None)
                .is_empty()
        );
    }

    #[test]
    fn array_and_object_sizes() {
        let s = schema(root(json!({
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
            "u": {"type": "array", "items": {"type": "integer"}, "uniqueItems": true},
            "m": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2, "minProperties": 1}
        })));
        let errs = s.validate(&obj(json!({"tags": ["a", "b", "c", "d"], "u": [1, 2, 1], "m": {"a": "1", "b": "2", "c": "3"}})), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.m: Too many: 3: must have at most 2 items",
                "spec.tags: Too many: 4: must have at most 3 items",
                r#"spec.u: Invalid value: "": spec.u in body shouldn't contain duplicates"#,
            ]
        );
        let errs = s.validate(&obj(json!({"tags": ["a"], "m": {}})), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.m: Invalid value: 0: spec.m in body should have at least 1 properties",
                "spec.tags: Invalid value: 1: spec.tags in body should have at least 2 items",
            ]
        );
    }

    #[test]
    fn nested_paths_and_additional_properties() {
        let s = schema(root(json!({
            "admins": {"type": "array", "items": {"type": "object", "properties": {
                "email": {"type": "string", "format": "email"}, "level": {"type": "integer", "maximum": 3}
            }}},
            "bizApps": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}
        })));
        let errs = s.validate(&obj(json!({"admins": [{"email": "a@b.c"}, {"email": "nope", "level": 4}], "bizApps": {"crm": 0}})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.admins[1].email: Invalid value: "nope": spec.admins[1].email in body must be of type email: "nope""#,
                "spec.admins[1].level: Invalid value: 4: spec.admins[1].level in body should be less than or equal to 3",
                "spec.bizApps.crm: Invalid value: 0: spec.bizApps.crm in body should be greater than or equal to 1",
            ]
        );
    }

    #[test]
    fn formats_validated_only_when_supported() {
        let s = schema(root(json!({
            "ts": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "date"},
            "b": {"type": "string", "format": "byte"},
            "id": {"type": "string", "format": "uuid"},
            "ip": {"type": "string", "format": "ipv4"},
            "custom": {"type": "string", "format": "my-own-format"},
            "i32": {"type": "integer", "format": "int32"}
        })));
        assert!(
            s.validate(
                &obj(json!({"ts": "2024-01-02T03:04:05Z", "d": "2024-02-29", "b": "aGVsbG8=", "id": "123e4567-e89b-12d3-a456-426614174000", "ip": "10.0.0.1", "custom": "whatever", "i32": 5})),
                None
            )
            .is_empty()
        );
        let errs = s.validate(
            &obj(json!({"ts": "yesterday", "d": "2023-02-29", "b": "***", "id": "x", "ip": "::1"})),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.b: Invalid value: "***": spec.b in body must be of type byte: "***""#,
                r#"spec.d: Invalid value: "2023-02-29": spec.d in body must be of type date: "2023-02-29""#,
                r#"spec.id: Invalid value: "x": spec.id in body must be of type uuid: "x""#,
                r#"spec.ip: Invalid value: "::1": spec.ip in body must be of type ipv4: "::1""#,
                r#"spec.ts: Invalid value: "yesterday": spec.ts in body must be of type date-time: "yesterday""#,
            ]
        );
    }

    #[test]
    fn int_or_string() {
        let s = schema(root(
            json!({"port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}),
        ));
        assert!(s.validate(&obj(json!({"port": 80})), None).is_empty());
        assert!(s.validate(&obj(json!({"port": "http"})), None).is_empty());
        let errs = s.validate(&obj(json!({"port": true})), None);
        assert_eq!(
            errs[0].message(),
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        );
    }

    #[test]
    fn list_type_set_and_map_duplicates() {
        let s = schema(root(json!({
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}
        })));
        let errs = s.validate(&obj(json!({"tags": ["a", "b", "a"], "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.ports[1]: Duplicate value: {"name":"http"}"#,
                r#"spec.tags[2]: Duplicate value: "a""#
            ]
        );
        assert!(errs.iter().all(
            |e| e.kind == FieldErrorKind::Duplicate && e.kind.reason() == "FieldValueDuplicate"
        ));
    }

    // ----------------------------------------------------------- CEL

    #[test]
    fn cel_rule_with_message_and_default_message() {
        let s = schema(json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
            {"rule": "self.maxReplicas < 100"}
        ],
        "properties": {
            "minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
            "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('x')"}]}
        }}}}));
        let errs = s.validate(
            &obj(json!({"minReplicas": 200, "maxReplicas": 150, "name": "abc"})),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec: Invalid value: minReplicas must not exceed maxReplicas"#,
                r#"spec: Invalid value: failed rule: self.maxReplicas < 100"#,
                r#"spec.name: Invalid value: "abc": failed rule: self.startsWith('x')"#,
            ]
        );
        assert!(
            s.validate(
                &obj(json!({"minReplicas": 1, "maxReplicas": 2, "name": "xyz"})),
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn cel_root_rule_and_metadata_visibility() {
        let s = schema(json!({"type": "object",
            "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('ok-')", "message": "bad name"}],
            "properties": {"spec": {"type": "object"}}}));
        let errs = s.validate(&json!({"metadata": {"name": "x"}, "spec": {}}), None);
        assert_eq!(messages(&errs), vec![r#"<nil>: Invalid value: bad name"#]);
        assert!(
            s.validate(&json!({"metadata": {"name": "ok-x"}, "spec": {}}), None)
                .is_empty()
        );
    }

    #[test]
    fn cel_transition_rule_immutability() {
        let s = schema(root(json!({"name": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]}})));
        // create: transition rules are not evaluated
        assert!(s.validate(&obj(json!({"name": "a"})), None).is_empty());
        // update with same value: OK
        assert!(
            s.validate(&obj(json!({"name": "a"})), Some(&obj(json!({"name": "a"}))))
                .is_empty()
        );
        // update changing the value
        let errs = s.validate(&obj(json!({"name": "b"})), Some(&obj(json!({"name": "a"}))));
        assert_eq!(
            messages(&errs),
            vec![r#"spec.name: Invalid value: "b": Value is immutable"#]
        );
        // old object without the field: rule not evaluated
        assert!(
            s.validate(&obj(json!({"name": "b"})), Some(&obj(json!({}))))
                .is_empty()
        );
    }

    #[test]
    fn cel_transition_rule_in_list_map_items_correlates_by_key() {
        let s = schema(root(
            json!({"ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.port >= oldSelf.port", "message": "port may not decrease"}]}}}),
        ));
        let old = obj(json!({"ports": [{"name": "a", "port": 10}, {"name": "b", "port": 10}]}));
        let new = obj(
            json!({"ports": [{"name": "b", "port": 5}, {"name": "a", "port": 11}, {"name": "c", "port": 1}]}),
        );
        assert_eq!(
            messages(&s.validate(&new, Some(&old))),
            vec![r#"spec.ports[0]: Invalid value: port may not decrease"#]
        );
    }

    #[test]
    fn cel_message_expression_field_path_and_reason() {
        let s = schema(root(json!({"cfg": {"type": "object",
        "properties": {"size": {"type": "integer"}, "mode": {"type": "string"}, "items": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": [
            {"rule": "self.size < 10", "messageExpression": "'size is ' + string(self.size) + ', must be < 10'", "fieldPath": ".size"},
            {"rule": "self.mode != 'bad'", "message": "mode bad", "reason": "FieldValueForbidden", "fieldPath": ".mode"},
            {"rule": "has(self.items)", "message": "items required", "reason": "FieldValueRequired", "fieldPath": ".items"},
            {"rule": "self.size != 42", "reason": "FieldValueDuplicate"},
            {"rule": "self.size != 43", "message": "fallback msg", "messageExpression": "''"}
        ]}})));
        let errs = s.validate(&obj(json!({"cfg": {"size": 42, "mode": "bad"}})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.cfg.size: Invalid value: size is 42, must be < 10"#,
                "spec.cfg.mode: Forbidden: mode bad",
                "spec.cfg.items: Required value: items required",
                r#"spec.cfg: Duplicate value"#,
            ]
        );
        assert_eq!(errs[1].kind.reason(), "FieldValueForbidden");
        let errs = s.validate(
            &obj(json!({"cfg": {"size": 43, "mode": "ok", "items": []}})),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.cfg.size: Invalid value: size is 43, must be < 10"#,
                r#"spec.cfg: Invalid value: fallback msg"#,
            ]
        );
    }

    #[test]
    fn cel_map_key_paths_and_escaping() {
        let s = schema(root(json!({
            "bizApps": {"type": "object", "additionalProperties": {"type": "object",
                "properties": {"x-tier": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "self.x__dash__tier == 'gold'", "message": "must be gold"}]}}
        })));
        let errs = s.validate(
            &obj(json!({"bizApps": {"crm": {"x-tier": "silver"}, "erp": {"x-tier": "gold"}}})),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![r#"spec.bizApps[crm]: Invalid value: must be gold"#]
        );
    }

    /// Rules that only select fields see just those fields, and answer as with the whole
    /// value; a rule that uses `self` whole on the same node makes every field visible.
    #[test]
    fn cel_rules_that_select_fields_answer_as_on_the_whole_value() {
        let props = json!({
            "a": {"type": "integer"},
            "big": {"type": "array", "items": {"type": "string"}},
            "b": {"type": "string"}
        });
        let selecting = schema(json!({"type": "object", "properties": {"spec": {
            "type": "object", "properties": props.clone(),
            "x-kubernetes-validations": [
                {"rule": "self.a > 0 && !has(self.b)", "message": "a must be positive, b unset"},
                {"rule": "self.a == oldSelf.a", "message": "a is immutable"}
            ]
        }}}));
        assert_eq!(
            selecting.root.properties["spec"].rule_fields,
            Some(BTreeSet::from(["a".to_string(), "b".to_string()]))
        );
        let big: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let good = obj(json!({"a": 1, "big": big}));
        assert!(selecting.validate(&good, Some(&good)).is_empty());
        let bad = obj(json!({"a": 0, "big": big, "b": "x"}));
        assert_eq!(
            messages(&selecting.validate(&bad, Some(&good))),
            vec![
                "spec: Invalid value: a must be positive, b unset",
                "spec: Invalid value: a is immutable",
            ]
        );
        let whole = schema(json!({"type": "object", "properties": {"spec": {
            "type": "object", "properties": props,
            "x-kubernetes-validations": [
                {"rule": "self.a > 0", "message": "a must be positive"},
                {"rule": "size(self) == 3", "message": "three fields"}
            ]
        }}}));
        assert_eq!(whole.root.properties["spec"].rule_fields, None);
        assert!(
            whole
                .validate(&obj(json!({"a": 1, "big": [], "b": "x"})), None)
                .is_empty(),
            "size(self) counts every field"
        );
        assert_eq!(
            messages(&whole.validate(&obj(json!({"a": 1})), None)),
            vec!["spec: Invalid value: three fields"]
        );
    }

    #[test]
    fn cel_list_rules_and_formats() {
        let s = schema(root(json!({
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [{"rule": "self.all(t, t.size() <= 3)", "message": "tags too long"}]},
            "start": {"type": "string", "format": "date-time", "x-kubernetes-validations": [{"rule": "self > timestamp('2020-01-01T00:00:00Z')", "message": "too early"}]},
            "ratio": {"type": "number", "x-kubernetes-validations": [{"rule": "self <= 1.0", "message": "ratio > 1"}]}
        })));
        let errs = s.validate(
            &obj(json!({"tags": ["abcd"], "start": "2019-01-01T00:00:00Z", "ratio": 2})),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.ratio: Invalid value: 2: ratio > 1"#,
                r#"spec.start: Invalid value: "2019-01-01T00:00:00Z": too early"#,
                r#"spec.tags: Invalid value: tags too long"#,
            ]
        );
        assert!(
            s.validate(
                &obj(json!({"tags": ["abc"], "start": "2021-01-01T00:00:00Z", "ratio": 1})),
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn cel_skipped_when_blocking_schema_error() {
        let s = schema(root(
            json!({"n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 100", "message": "too small"}]},
            "m": {"type": "string", "maxLength": 1}}),
        ));
        let errs = s.validate(&obj(json!({"n": 1, "m": "long"})), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.m: Too long: may not be more than 1 byte",
                r#"<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
            ]
        );
        // Non-blocking errors (e.g. pattern) do not stop CEL.
        let s2 = schema(root(
            json!({"n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 100", "message": "too small"}]},
            "p": {"type": "string", "pattern": "^a$"}}),
        ));
        let errs = s2.validate(&obj(json!({"n": 1, "p": "b"})), None);
        assert_eq!(
            messages(&errs),
            vec![
                r#"spec.p: Invalid value: "b": spec.p in body should match '^a$'"#,
                r#"spec.n: Invalid value: 1: too small"#
            ]
        );
    }

    #[test]
    fn cel_runtime_error_reported() {
        let s = schema(root(
            json!({"cfg": {"type": "object", "properties": {"a": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self.a == 'x'"}]}}),
        ));
        let errs = s.validate(&obj(json!({"cfg": {}})), None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.cfg");
        assert!(
            errs[0].detail.ends_with("evaluating rule: self.a == 'x'"),
            "{}",
            errs[0].detail
        );
    }

    #[test]
    fn validate_status_only_reports_status_errors() {
        let s = schema(json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string", "enum": ["Ready"]}}}
        }}));
        let o = json!({"spec": {"a": "x"}, "status": {"phase": "Nope"}});
        assert_eq!(s.validate(&o, None).len(), 2);
        assert_eq!(
            messages(&s.validate_status(&o, None)),
            vec![r#"status.phase: Unsupported value: "Nope": supported values: "Ready""#]
        );
    }

    // ----------------------------------------------------------- compile errors

    #[test]
    fn new_rejects_uncompilable_rule() {
        let bad = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.x ==", "message": "m"}]}}});
        let errs = CrdSchema::new(&bad).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].field,
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
        );
        assert_eq!(errs[0].kind, FieldErrorKind::Invalid);
        assert!(
            errs[0].message().starts_with(
                r#"spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {"Rule":"self.x ==","Message":"m","MessageExpression":"","Reason":null,"FieldPath":"","OptionalOldSelf":null}: compilation failed: "#
            ),
            "{}",
            errs[0].message()
        );

        let errs = CrdSchema::new_at(
            &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string", "pattern": "([a-z"}}}}}}),
            "spec.versions[0].schema.openAPIV3Schema",
        )
        .unwrap_err();
        assert_eq!(
            errs[0].field,
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[a].items.pattern"
        );

        let errs = CrdSchema::new(&json!({"type": "object", "x-kubernetes-validations": [{"rule": "true", "reason": "Bogus"}]})).unwrap_err();
        assert_eq!(
            errs[0].message(),
            r#"spec.validation.openAPIV3Schema.x-kubernetes-validations[0].reason: Unsupported value: "Bogus": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired""#
        );
    }
}
