//! Presentation layer of the simulator:
//!
//! * server-side `meta.k8s.io/v1` `Table` responses (what `kubectl get` renders), with the
//!   column sets of the real kube-apiserver (`pkg/printers/internalversion/printers.go`, the
//!   default table convertor of `k8s.io/apiserver/pkg/registry/rest/table.go`, and the CRD
//!   table convertor of `apiextensions-apiserver/pkg/registry/customresource/tableconvertor`);
//! * the Kubernetes JSONPath subset used by CRD `additionalPrinterColumns`;
//! * `duration.HumanDuration` from apimachinery;
//! * OpenAPI v3 discovery (`/openapi/v3`) and group-version documents, shaped like the
//!   real server's so that `kubectl explain` and kubectl's `fieldValidation` probe work.
//!
//! Self-contained (serde / serde_json only). The public API is consumed by the HTTP layer; the
//! allow below keeps a not-yet-wired `mod present;` warning-free.

use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Printer columns / tables
// ---------------------------------------------------------------------------------------------

/// One printer column (CRD additionalPrinterColumns shape).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrinterColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: i32,
    pub json_path: String,
}

/// Which column set a table uses.
pub enum Columns<'a> {
    /// A built-in kind (by Kind name); unknown kinds get the default table convertor.
    Builtin(&'a str),
    /// A custom resource with the given additionalPrinterColumns of the served version.
    Custom(&'a [PrinterColumn]),
}

const DESC_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const DESC_CREATION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn coldef(name: &str, type_: &str, format: &str, description: &str, priority: i32) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}
fn col_name() -> Value {
    coldef("Name", "string", "name", DESC_NAME, 0)
}
fn col_age() -> Value {
    coldef("Age", "string", "", DESC_CREATION, 0)
}
fn col(name: &str, type_: &str, description: &str) -> Value {
    coldef(name, type_, "", description, 0)
}
fn col_wide(name: &str, type_: &str, format: &str, description: &str) -> Value {
    coldef(name, type_, format, description, 1)
}

/// Kinds whose server-side table uses the default table convertor (Name / Created At) but
/// which the brief lists explicitly.
const DEFAULT_CONVERTOR_KINDS: &[&str] = &["Role", "ClusterRole", "CustomResourceDefinition"];

/// Column definitions (`columnDefinitions` entries) the real API server sends for a built-in
/// kind. Kinds without a dedicated printer get the default table convertor's
/// `Name` / `Created At` columns, exactly like kube-apiserver.
pub fn builtin_columns(kind: &str) -> Vec<Value> {
    match kind {
        "Namespace" => vec![
            col_name(),
            col("Status", "string", "The status of the namespace"),
            col_age(),
        ],
        "ConfigMap" => vec![
            col_name(),
            col(
                "Data",
                "string",
                "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
            ),
            col_age(),
        ],
        "Secret" => vec![
            col_name(),
            col(
                "Type",
                "string",
                "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
            ),
            col(
                "Data",
                "string",
                "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
            ),
            col_age(),
        ],
        "ServiceAccount" => vec![
            col_name(),
            col(
                "Secrets",
                "string",
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. More info: https://kubernetes.io/docs/concepts/configuration/secret",
            ),
            col_age(),
        ],
        "Event" => vec![
            col(
                "Last Seen",
                "string",
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            col(
                "Type",
                "string",
                "Type of this event (Normal, Warning), new types could be added in the future",
            ),
            col(
                "Reason",
                "string",
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            col("Object", "string", "The object that this event is about."),
            col_wide(
                "Subobject",
                "string",
                "",
                "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
            ),
            col_wide(
                "Source",
                "string",
                "",
                "The component reporting this event. Should be a short machine understandable string.",
            ),
            col(
                "Message",
                "string",
                "A human-readable description of the status of this operation.",
            ),
            col_wide(
                "First Seen",
                "string",
                "",
                "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
            ),
            col_wide(
                "Count",
                "string",
                "",
                "The number of times this event has occurred.",
            ),
            col_wide("Name", "string", "name", DESC_NAME),
        ],
        "Lease" => vec![
            col_name(),
            col(
                "Holder",
                "string",
                "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
            ),
            col_age(),
        ],
        "RoleBinding" | "ClusterRoleBinding" => {
            let what = if kind == "RoleBinding" {
                "roleBinding"
            } else {
                "clusterRoleBinding"
            };
            vec![
                col_name(),
                col(
                    "Role",
                    "string",
                    "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.",
                ),
                col_age(),
                col_wide("Users", "string", "", &format!("Users in the {what}")),
                col_wide("Groups", "string", "", &format!("Groups in the {what}")),
                col_wide(
                    "ServiceAccounts",
                    "string",
                    "",
                    &format!("ServiceAccounts in the {what}"),
                ),
            ]
        }
        "ValidatingAdmissionPolicy" => vec![
            col_name(),
            col(
                "Validations",
                "integer",
                "Validations indicates the number of validation rules defined in this configuration",
            ),
            col(
                "ParamKind",
                "string",
                "ParamKind specifies the kind of resources used to parameterize this policy",
            ),
            col_age(),
        ],
        "ValidatingAdmissionPolicyBinding" => vec![
            col_name(),
            col(
                "PolicyName",
                "string",
                "PolicyName indicates the policy definition which the policy binding binded to",
            ),
            col(
                "ParamRef",
                "string",
                "ParamRef indicates the param resource which sets the configration param",
            ),
            col_age(),
        ],
        _ => default_columns(),
    }
}

/// The default table convertor's columns (`k8s.io/apiserver/pkg/registry/rest/table.go`).
fn default_columns() -> Vec<Value> {
    vec![col_name(), col("Created At", "date", DESC_CREATION)]
}

/// The default table convertor's cells: name and the creation timestamp in RFC3339 UTC.
fn default_row(obj: &Value) -> Vec<Value> {
    let created = get_str(obj, &["metadata", "creationTimestamp"])
        .and_then(parse_rfc3339)
        .map(|(s, _)| format_rfc3339(s))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![
        Value::String(name_of(obj).to_string()),
        Value::String(created),
    ]
}

/// Cells the real API server sends for one object of a built-in kind (always the "wide" set,
/// as the server-side printer runs with `Wide: true`). `None` for kinds without a dedicated
/// printer: the caller (or [`table`]) then uses the default table convertor.
pub fn builtin_table_row(kind: &str, obj: &Value, now_unix: i64) -> Option<Vec<Value>> {
    let name = Value::String(name_of(obj).to_string());
    let age = || {
        Value::String(translate_timestamp_since(
            get_str(obj, &["metadata", "creationTimestamp"]),
            now_unix,
        ))
    };
    let s = |v: &str| Value::String(v.to_string());
    let row = match kind {
        "Namespace" => {
            // The real server always sets status.phase (Active/Terminating) on create.
            let phase = get_str(obj, &["status", "phase"])
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| {
                    if get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
                        "Terminating"
                    } else {
                        "Active"
                    }
                });
            vec![name, s(phase), age()]
        }
        "ConfigMap" => {
            let n = count(get(obj, &["data"])) + count(get(obj, &["binaryData"]));
            vec![name, json!(n), age()]
        }
        "Secret" => {
            let ty = get_str(obj, &["type"])
                .filter(|t| !t.is_empty())
                .unwrap_or("Opaque");
            // stringData is merged into data on write; count keys of both without duplicates.
            let mut keys: Vec<&str> = Vec::new();
            for field in ["data", "stringData"] {
                if let Some(Value::Object(m)) = get(obj, &[field]) {
                    for k in m.keys() {
                        if !keys.contains(&k.as_str()) {
                            keys.push(k);
                        }
                    }
                }
            }
            vec![name, s(ty), json!(keys.len() as i64), age()]
        }
        "ServiceAccount" => vec![name, json!(count(get(obj, &["secrets"]))), age()],
        "Lease" => vec![
            name,
            s(get_str(obj, &["spec", "holderIdentity"]).unwrap_or("")),
            age(),
        ],
        "RoleBinding" | "ClusterRoleBinding" => {
            let role = format!(
                "{}/{}",
                get_str(obj, &["roleRef", "kind"]).unwrap_or(""),
                get_str(obj, &["roleRef", "name"]).unwrap_or("")
            );
            let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
            if let Some(Value::Array(subjects)) = get(obj, &["subjects"]) {
                for sub in subjects {
                    let sname = get_str(sub, &["name"]).unwrap_or("");
                    match get_str(sub, &["kind"]).unwrap_or("") {
                        "ServiceAccount" => sas.push(format!(
                            "{}/{}",
                            get_str(sub, &["namespace"]).unwrap_or(""),
                            sname
                        )),
                        "User" => users.push(sname.to_string()),
                        "Group" => groups.push(sname.to_string()),
                        _ => {}
                    }
                }
            }
            vec![
                name,
                s(&role),
                age(),
                s(&users.join(", ")),
                s(&groups.join(", ")),
                s(&sas.join(", ")),
            ]
        }
        "Event" => event_row(obj, now_unix),
        "ValidatingAdmissionPolicy" => {
            let pk = match get(obj, &["spec", "paramKind"]) {
                Some(v) if v.is_object() => format!(
                    "{}/{}",
                    get_str(v, &["apiVersion"]).unwrap_or(""),
                    get_str(v, &["kind"]).unwrap_or("")
                ),
                _ => "<unset>".to_string(),
            };
            vec![
                name,
                json!(count(get(obj, &["spec", "validations"]))),
                s(&pk),
                age(),
            ]
        }
        "ValidatingAdmissionPolicyBinding" => {
            let mut param = "<unset>".to_string();
            if let Some(pr) = get(obj, &["spec", "paramRef"]).filter(|v| v.is_object()) {
                let pname = get_str(pr, &["name"]).unwrap_or("");
                if !pname.is_empty() {
                    param = match get_str(pr, &["namespace"]).unwrap_or("") {
                        "" => format!("*/{pname}"),
                        ns => format!("{ns}/{pname}"),
                    };
                } else if let Some(sel) = get(pr, &["selector"]).filter(|v| v.is_object()) {
                    param = label_selector_string(sel);
                }
            }
            vec![
                name,
                s(get_str(obj, &["spec", "policyName"]).unwrap_or("")),
                s(&param),
                age(),
            ]
        }
        k if DEFAULT_CONVERTOR_KINDS.contains(&k) => default_row(obj),
        _ => return None,
    };
    Some(row)
}

fn event_row(obj: &Value, now: i64) -> Vec<Value> {
    // core/v1 field names first, events.k8s.io/v1 names as fallback.
    let pick = |a: &[&str], b: &[&str]| -> Option<&Value> {
        get(obj, a)
            .filter(|v| !v.is_null())
            .or_else(|| get(obj, b).filter(|v| !v.is_null()))
    };
    fn ts(v: Option<&Value>) -> Option<&str> {
        v.and_then(|v| v.as_str()).filter(|s| !s.is_empty())
    }
    let first_ts = ts(pick(&["firstTimestamp"], &["deprecatedFirstTimestamp"]));
    let last_ts = ts(pick(&["lastTimestamp"], &["deprecatedLastTimestamp"]));
    let event_time = ts(get(obj, &["eventTime"]));
    let first = match first_ts {
        Some(t) => translate_timestamp_since(Some(t), now),
        None => translate_timestamp_since(event_time, now),
    };
    let mut last = match last_ts {
        Some(t) => translate_timestamp_since(Some(t), now),
        None => first.clone(),
    };
    let mut cnt = pick(&["count"], &["deprecatedCount"])
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    if let Some(series) = get(obj, &["series"]).filter(|v| v.is_object()) {
        last = translate_timestamp_since(ts(get(series, &["lastObservedTime"])), now);
        cnt = get(series, &["count"])
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
    } else if cnt == 0 {
        cnt = 1;
    }
    let inv = pick(&["involvedObject"], &["regarding"])
        .cloned()
        .unwrap_or(Value::Null);
    let ikind = get_str(&inv, &["kind"]).unwrap_or("").to_lowercase();
    let iname = get_str(&inv, &["name"]).unwrap_or("");
    let target = if iname.is_empty() {
        ikind
    } else {
        format!("{ikind}/{iname}")
    };
    let src = pick(&["source"], &["deprecatedSource"])
        .cloned()
        .unwrap_or(Value::Null);
    let first_non_empty = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(
        get_str(&src, &["component"]).unwrap_or(""),
        pick(&["reportingComponent"], &["reportingController"])
            .and_then(|v| v.as_str())
            .unwrap_or(""),
    );
    let instance = first_non_empty(
        get_str(&src, &["host"]).unwrap_or(""),
        get_str(obj, &["reportingInstance"]).unwrap_or(""),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    let message = pick(&["message"], &["note"])
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .trim()
        .to_string();
    vec![
        Value::String(last),
        Value::String(get_str(obj, &["type"]).unwrap_or("").to_string()),
        Value::String(get_str(obj, &["reason"]).unwrap_or("").to_string()),
        Value::String(target),
        Value::String(get_str(&inv, &["fieldPath"]).unwrap_or("").to_string()),
        Value::String(source),
        Value::String(message),
        Value::String(first),
        json!(cnt),
        Value::String(name_of(obj).to_string()),
    ]
}

/// `metav1.LabelSelector` rendered like `labels.Selector.String()`.
fn label_selector_string(sel: &Value) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(ml)) = get(sel, &["matchLabels"]) {
        for (k, v) in ml {
            parts.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    if let Some(Value::Array(exprs)) = get(sel, &["matchExpressions"]) {
        for e in exprs {
            let key = get_str(e, &["key"]).unwrap_or("").to_string();
            let mut vals: Vec<String> = match get(e, &["values"]) {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            vals.sort();
            let s = match get_str(e, &["operator"]).unwrap_or("") {
                "In" => format!("{key} in ({})", vals.join(",")),
                "NotIn" => format!("{key} notin ({})", vals.join(",")),
                "Exists" => key.clone(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            };
            parts.push((key, s));
        }
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts.into_iter().map(|p| p.1).collect::<Vec<_>>().join(",")
}

/// Build a `meta.k8s.io/v1` Table for a list of objects.
///
/// * `Columns::Builtin(kind)`: the built-in printer of that kind (default convertor otherwise).
/// * `Columns::Custom(cols)`: the CRD convertor: `Name` + the printer columns; a CRD version
///   without printer columns gets a single `Age` (date, `.metadata.creationTimestamp`) column,
///   like apiextensions-apiserver's `serveDefaultColumnsIfEmpty`. `date` cells are sent by the
///   server already rendered as a human duration ("5m"), as the real tableconvertor does.
/// * `include_object`: "None" (object null), "Object" (the full object), anything else
///   ("Metadata" / "") a `meta.k8s.io/v1` `PartialObjectMetadata`.
pub fn table(
    objects: &[Value],
    columns: Columns,
    include_object: &str,
    resource_version: &str,
    continue_token: Option<&str>,
    now_unix: i64,
) -> Value {
    let (defs, rows): (Vec<Value>, Vec<Vec<Value>>) = match columns {
        Columns::Builtin(kind) => {
            let rows = objects
                .iter()
                .map(|o| builtin_table_row(kind, o, now_unix).unwrap_or_else(|| default_row(o)))
                .collect();
            (builtin_columns(kind), rows)
        }
        Columns::Custom(cols) => {
            let default_age;
            let cols: &[PrinterColumn] = if cols.is_empty() {
                default_age = [PrinterColumn {
                    name: "Age".into(),
                    type_: "date".into(),
                    format: String::new(),
                    description: DESC_CREATION.into(),
                    priority: 0,
                    json_path: ".metadata.creationTimestamp".into(),
                }];
                &default_age
            } else {
                cols
            };
            let mut defs = vec![col_name()];
            for c in cols {
                let desc = if c.description.is_empty() {
                    format!(
                        "Custom resource definition column (in JSONPath format): {}",
                        c.json_path
                    )
                } else {
                    c.description.clone()
                };
                defs.push(coldef(&c.name, &c.type_, &c.format, &desc, c.priority));
            }
            let rows = objects
                .iter()
                .map(|o| {
                    let mut cells = vec![Value::String(name_of(o).to_string())];
                    for c in cols {
                        cells.push(custom_cell(o, c, now_unix));
                    }
                    cells
                })
                .collect();
            (defs, rows)
        }
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .zip(objects)
        .map(|(cells, obj)| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    let mut meta = Map::new();
    meta.insert(
        "resourceVersion".into(),
        Value::String(resource_version.to_string()),
    );
    if let Some(c) = continue_token.filter(|c| !c.is_empty()) {
        meta.insert("continue".into(), Value::String(c.to_string()));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

/// One CRD printer-column cell, as `tableconvertor.go` computes it.
fn custom_cell(obj: &Value, c: &PrinterColumn, now: i64) -> Value {
    let results = match json_path(obj, &c.json_path) {
        Ok(r) => r,
        Err(_) => return Value::Null,
    };
    let Some(value) = results.into_iter().next() else {
        return Value::Null;
    };
    if c.type_ == "string" {
        return Value::String(print_value(&value));
    }
    match (c.type_.as_str(), &value) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            None => n.as_f64().map(|f| json!(f as i64)).unwrap_or(Value::Null),
        },
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => {
            if s.is_empty() || s == "null" {
                return Value::String("<unknown>".into());
            }
            match parse_rfc3339(s) {
                Some(_) => Value::String(translate_timestamp_since(Some(s), now)),
                None => Value::String("<invalid>".into()),
            }
        }
        _ => Value::Null,
    }
}

/// Text of a JSONPath result as `jsonpath.PrintResults` renders it (maps/arrays as JSON).
fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{}", f as i128)
                } else {
                    format!("{f}")
                }
            }
        }
        Value::Array(_) | Value::Object(_) => serde_json::to_string(v).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Time helpers
// ---------------------------------------------------------------------------------------------

/// HumanDuration exactly as apimachinery's `duration.HumanDuration`, for a whole number of seconds.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds;
    if s < -1 {
        return "<invalid>".into();
    } else if s < 0 {
        return "0s".into();
    } else if s < 60 * 2 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        let sec = s % 60;
        return if sec == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{sec}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// `translateTimestampSince`: "<unknown>" for a zero/missing timestamp, else HumanDuration.
fn translate_timestamp_since(ts: Option<&str>, now: i64) -> String {
    match ts.filter(|s| !s.is_empty()).and_then(parse_rfc3339) {
        None => "<unknown>".into(),
        Some((secs, nanos)) => {
            let d =
                (now as i128) * 1_000_000_000 - ((secs as i128) * 1_000_000_000 + nanos as i128);
            human_duration((d / 1_000_000_000) as i64)
        }
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parse an RFC3339 timestamp into (unix seconds, nanoseconds).
fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 9)];
        nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32);
    }
    let offset = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *c == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    Some((secs, nanos))
}

fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Small JSON accessors
// ---------------------------------------------------------------------------------------------

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.as_object()?.get(*p)?;
    }
    Some(cur)
}
fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)?.as_str()
}
fn name_of(obj: &Value) -> &str {
    get_str(obj, &["metadata", "name"]).unwrap_or("")
}
fn count(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// JSONPath (k8s.io/client-go/util/jsonpath semantics, missing keys allowed)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Seg {
    Field(String),
    Keys(Vec<String>),
    Wildcard,
    Recursive,
    Slices(Vec<SliceSpec>),
    Filter(Box<FilterExpr>),
}

#[derive(Debug, Clone, Copy)]
struct SliceSpec {
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
    /// A plain `[n]` index (end derived as n+1).
    index: bool,
}

#[derive(Debug, Clone)]
enum Operand {
    Rel(Vec<Seg>),
    Abs(Vec<Seg>),
    Lit(Value),
}

#[derive(Debug, Clone)]
struct FilterExpr {
    left: Operand,
    op: Option<String>,
    right: Option<Operand>,
}

/// Evaluate a Kubernetes JSONPath expression (as used by printer columns, e.g.
/// `.status.conditions[?(@.type=="Ready")].status`; the surrounding `{}` is optional) against
/// `obj`. Missing keys yield no values (the API server evaluates printer columns with
/// `AllowMissingKeys(true)`); structural errors (index out of bounds, filtering a non-list) are errors.
pub fn json_path(obj: &Value, path: &str) -> Result<Vec<Value>, String> {
    let segs = parse_path(path)?;
    let out = eval_segs(obj, vec![obj], &segs)?;
    Ok(out.into_iter().cloned().collect())
}

fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let mut p = path.trim();
    if p.starts_with('{') && p.ends_with('}') {
        p = p[1..p.len() - 1].trim();
    }
    if let Some(rest) = p.strip_prefix('$') {
        p = rest;
    }
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let segs = parse_segments(&chars, &mut i, false)?;
    if i != chars.len() {
        return Err(format!(
            "unexpected {:?} in JSONPath {path:?}",
            chars[i..].iter().collect::<String>()
        ));
    }
    Ok(segs)
}

fn is_terminator(c: char) -> bool {
    matches!(
        c,
        '.' | '[' | ']' | ',' | ' ' | '$' | '@' | '{' | '}' | '(' | ')' | '=' | '!' | '<' | '>'
    )
}

/// Parse segments starting at `i`. When `in_filter`, stop at a character that cannot
/// continue a path (operators, ')').
fn parse_segments(c: &[char], i: &mut usize, in_filter: bool) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    while *i < c.len() {
        match c[*i] {
            '.' => {
                *i += 1;
                if *i < c.len() && c[*i] == '.' {
                    *i += 1;
                    segs.push(Seg::Recursive);
                }
                if *i < c.len() && c[*i] == '*' {
                    *i += 1;
                    segs.push(Seg::Wildcard);
                    continue;
                }
                let name = parse_name(c, i);
                if !name.is_empty() {
                    segs.push(Seg::Field(name));
                }
            }
            '[' => {
                *i += 1;
                segs.push(parse_bracket(c, i)?);
            }
            ch if in_filter && (ch == ')' || ch == ' ' || "=!<>".contains(ch)) => break,
            ch if !is_terminator(ch) && segs.is_empty() && !in_filter => {
                // Be lenient about a missing leading dot ("metadata.name").
                let name = parse_name(c, i);
                segs.push(Seg::Field(name));
            }
            ch => return Err(format!("unrecognized character in JSONPath: {ch:?}")),
        }
    }
    Ok(segs)
}

fn parse_name(c: &[char], i: &mut usize) -> String {
    let mut name = String::new();
    while *i < c.len() {
        let ch = c[*i];
        if ch == '\\' && *i + 1 < c.len() {
            name.push(c[*i + 1]);
            *i += 2;
            continue;
        }
        if is_terminator(ch) {
            break;
        }
        name.push(ch);
        *i += 1;
    }
    name
}

fn parse_quoted(c: &[char], i: &mut usize) -> Result<String, String> {
    let q = c[*i];
    *i += 1;
    let mut s = String::new();
    while *i < c.len() && c[*i] != q {
        if c[*i] == '\\' && *i + 1 < c.len() {
            *i += 1;
        }
        s.push(c[*i]);
        *i += 1;
    }
    if *i >= c.len() {
        return Err("unterminated quoted string in JSONPath".into());
    }
    *i += 1;
    Ok(s)
}

fn skip_ws(c: &[char], i: &mut usize) {
    while *i < c.len() && c[*i] == ' ' {
        *i += 1;
    }
}

fn parse_bracket(c: &[char], i: &mut usize) -> Result<Seg, String> {
    skip_ws(c, i);
    let close = |c: &[char], i: &mut usize| -> Result<(), String> {
        skip_ws(c, i);
        if *i < c.len() && c[*i] == ']' {
            *i += 1;
            Ok(())
        } else {
            Err("expected ']' in JSONPath".into())
        }
    };
    if *i >= c.len() {
        return Err("unterminated '[' in JSONPath".into());
    }
    match c[*i] {
        '?' => {
            *i += 1;
            skip_ws(c, i);
            if *i >= c.len() || c[*i] != '(' {
                return Err("expected '(' after '?' in JSONPath filter".into());
            }
            *i += 1;
            skip_ws(c, i);
            let left = parse_operand(c, i)?;
            skip_ws(c, i);
            let mut op = None;
            let mut right = None;
            if *i < c.len() && c[*i] != ')' {
                let mut o = String::new();
                while *i < c.len() && "=!<>".contains(c[*i]) {
                    o.push(c[*i]);
                    *i += 1;
                }
                if !["==", "!=", "<", ">", "<=", ">="].contains(&o.as_str()) {
                    return Err(format!("unrecognized filter operator {o:?}"));
                }
                skip_ws(c, i);
                right = Some(parse_operand(c, i)?);
                op = Some(o);
                skip_ws(c, i);
            }
            if *i >= c.len() || c[*i] != ')' {
                return Err("expected ')' in JSONPath filter".into());
            }
            *i += 1;
            close(c, i)?;
            Ok(Seg::Filter(Box::new(FilterExpr { left, op, right })))
        }
        '\'' | '"' => {
            let mut keys = Vec::new();
            loop {
                skip_ws(c, i);
                if *i < c.len() && (c[*i] == '\'' || c[*i] == '"') {
                    keys.push(parse_quoted(c, i)?);
                } else {
                    return Err("expected quoted key in JSONPath".into());
                }
                skip_ws(c, i);
                if *i < c.len() && c[*i] == ',' {
                    *i += 1;
                    continue;
                }
                break;
            }
            close(c, i)?;
            Ok(if keys.len() == 1 {
                Seg::Field(keys.remove(0))
            } else {
                Seg::Keys(keys)
            })
        }
        '*' => {
            *i += 1;
            close(c, i)?;
            Ok(Seg::Wildcard)
        }
        _ => {
            let mut specs = Vec::new();
            loop {
                let mut parts: Vec<Option<i64>> = vec![None];
                loop {
                    skip_ws(c, i);
                    let start = *i;
                    if *i < c.len() && c[*i] == '-' {
                        *i += 1;
                    }
                    while *i < c.len() && c[*i].is_ascii_digit() {
                        *i += 1;
                    }
                    if *i > start {
                        let t: String = c[start..*i].iter().collect();
                        *parts.last_mut().unwrap() = Some(
                            t.parse()
                                .map_err(|_| format!("invalid array index {t:?}"))?,
                        );
                    }
                    skip_ws(c, i);
                    if *i < c.len() && c[*i] == ':' {
                        *i += 1;
                        parts.push(None);
                        if parts.len() > 3 {
                            return Err("too many ':' in JSONPath slice".into());
                        }
                        continue;
                    }
                    break;
                }
                let spec = if parts.len() == 1 {
                    let n = parts[0].ok_or("empty array index in JSONPath")?;
                    SliceSpec {
                        start: Some(n),
                        end: None,
                        step: None,
                        index: true,
                    }
                } else {
                    SliceSpec {
                        start: parts[0],
                        end: parts[1],
                        step: parts.get(2).copied().flatten(),
                        index: false,
                    }
                };
                specs.push(spec);
                skip_ws(c, i);
                if *i < c.len() && c[*i] == ',' {
                    *i += 1;
                    continue;
                }
                break;
            }
            close(c, i)?;
            Ok(Seg::Slices(specs))
        }
    }
}

fn parse_operand(c: &[char], i: &mut usize) -> Result<Operand, String> {
    if *i >= c.len() {
        return Err("missing operand in JSONPath filter".into());
    }
    match c[*i] {
        '@' => {
            *i += 1;
            Ok(Operand::Rel(parse_segments(c, i, true)?))
        }
        '$' => {
            *i += 1;
            Ok(Operand::Abs(parse_segments(c, i, true)?))
        }
        '\'' | '"' => Ok(Operand::Lit(Value::String(parse_quoted(c, i)?))),
        _ => {
            let start = *i;
            while *i < c.len() && !matches!(c[*i], ' ' | ')' | '=' | '!' | '<' | '>') {
                *i += 1;
            }
            let t: String = c[start..*i].iter().collect();
            if t == "true" || t == "false" {
                return Ok(Operand::Lit(Value::Bool(t == "true")));
            }
            if let Ok(n) = t.parse::<i64>() {
                return Ok(Operand::Lit(json!(n)));
            }
            if let Ok(f) = t.parse::<f64>() {
                return Ok(Operand::Lit(json!(f)));
            }
            Err(format!("unrecognized filter operand {t:?}"))
        }
    }
}

fn eval_segs<'a>(
    root: &'a Value,
    mut cur: Vec<&'a Value>,
    segs: &[Seg],
) -> Result<Vec<&'a Value>, String> {
    for seg in segs {
        let mut next = Vec::new();
        match seg {
            Seg::Field(name) => {
                for v in cur {
                    if let Value::Object(m) = v
                        && let Some(x) = m.get(name)
                    {
                        next.push(x);
                    }
                }
            }
            Seg::Keys(keys) => {
                for k in keys {
                    for v in &cur {
                        if let Value::Object(m) = v
                            && let Some(x) = m.get(k)
                        {
                            next.push(x);
                        }
                    }
                }
            }
            Seg::Wildcard => {
                for v in cur {
                    match v {
                        Value::Object(m) => next.extend(m.values()),
                        Value::Array(a) => next.extend(a.iter()),
                        _ => {}
                    }
                }
            }
            Seg::Recursive => {
                fn walk<'b>(v: &'b Value, out: &mut Vec<&'b Value>) {
                    out.push(v);
                    match v {
                        Value::Object(m) => m.values().for_each(|x| walk(x, out)),
                        Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                        _ => {}
                    }
                }
                for v in cur {
                    walk(v, &mut next);
                }
            }
            Seg::Slices(specs) => {
                for spec in specs {
                    for v in &cur {
                        let arr = match v {
                            Value::Null => continue,
                            Value::Array(a) => a,
                            other => {
                                return Err(format!("{} is not array or slice", type_name(other)));
                            }
                        };
                        next.extend(eval_slice(arr, spec)?);
                    }
                }
            }
            Seg::Filter(f) => {
                for v in cur {
                    let Value::Array(arr) = v else {
                        return Err(format!("{v} is not array or slice and cannot be filtered"));
                    };
                    for el in arr {
                        if filter_pass(root, el, f)? {
                            next.push(el);
                        }
                    }
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn eval_slice<'a>(arr: &'a [Value], spec: &SliceSpec) -> Result<Vec<&'a Value>, String> {
    let len = arr.len() as i64;
    let mut start = spec.start.unwrap_or(0);
    if start < 0 {
        start += len;
    }
    let mut end = if spec.index {
        start + 1
    } else {
        spec.end.unwrap_or(len)
    };
    if !spec.index && spec.end.is_some() && end < 0 {
        end += len;
    }
    if end == start {
        return Ok(Vec::new());
    }
    if start >= len || start < 0 {
        return Err(format!(
            "array index out of bounds: index {start}, length {len}"
        ));
    }
    if end > len || end < 0 {
        return Err(format!(
            "array index out of bounds: index {}, length {len}",
            end - 1
        ));
    }
    if start > end {
        return Err(format!(
            "starting index {start} is greater than ending index {end}"
        ));
    }
    let step = spec.step.unwrap_or(1);
    if step <= 0 {
        return Err("step must be > 0".into());
    }
    Ok(arr[start as usize..end as usize]
        .iter()
        .step_by(step as usize)
        .collect())
}

fn eval_operand<'a>(
    root: &'a Value,
    el: &'a Value,
    o: &'a Operand,
) -> Result<Vec<&'a Value>, String> {
    match o {
        Operand::Rel(segs) => eval_segs(root, vec![el], segs),
        Operand::Abs(segs) => eval_segs(root, vec![root], segs),
        Operand::Lit(v) => Ok(vec![v]),
    }
}

fn filter_pass(root: &Value, el: &Value, f: &FilterExpr) -> Result<bool, String> {
    let lefts = eval_operand(root, el, &f.left);
    let (Some(op), Some(right)) = (&f.op, &f.right) else {
        return Ok(lefts.map(|l| !l.is_empty()).unwrap_or(false));
    };
    let lefts = lefts?;
    if lefts.is_empty() {
        return Ok(false);
    }
    if lefts.len() > 1 {
        return Err("can only compare one element at a time".into());
    }
    let rights = eval_operand(root, el, right)?;
    if rights.is_empty() {
        return Ok(false);
    }
    if rights.len() > 1 {
        return Err("can only compare one element at a time".into());
    }
    let (l, r) = (lefts[0], rights[0]);
    let ord = match (l, r) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) if op == "==" || op == "!=" => Some(a.cmp(b)),
        (Value::Null, Value::Null) if op == "==" || op == "!=" => Some(std::cmp::Ordering::Equal),
        _ => None,
    };
    let Some(ord) = ord else {
        return Err("incompatible types for comparison".into());
    };
    use std::cmp::Ordering::*;
    Ok(match op.as_str() {
        "==" => ord == Equal,
        "!=" => ord != Equal,
        "<" => ord == Less,
        ">" => ord == Greater,
        "<=" => ord != Greater,
        ">=" => ord != Less,
        _ => false,
    })
}

// ---------------------------------------------------------------------------------------------
// OpenAPI v3
// ---------------------------------------------------------------------------------------------

/// One served resource of a group-version, for building its OpenAPI document.
pub struct ApiResource<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub plural: &'a str,
    pub namespaced: bool,
    /// The CRD version's `openAPIV3Schema`; `None` for built-in kinds.
    pub schema: Option<&'a Value>,
    pub has_status: bool,
}

/// The `/openapi/v3` discovery document:
/// `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}`.
pub fn openapi_v3_root(group_versions: &[(String, String)]) -> Value {
    let mut paths = Map::new();
    for (gv, hash) in group_versions {
        let gv = gv.trim_matches('/');
        paths.insert(
            gv.to_string(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}),
        );
    }
    json!({ "paths": paths })
}

/// A stable content hash of a document, usable as the `hash` of [`openapi_v3_root`]
/// (upper-case hex, like the real server's; FNV-1a 64 here rather than SHA-512).
pub fn openapi_hash(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const DESC_API_VERSION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const DESC_KIND: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const DESC_METADATA: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const DESC_LIST_METADATA: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const DESC_FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";

fn sref(name: &str) -> String {
    format!("#/components/schemas/{name}")
}
fn ref_prop(name: &str, description: &str) -> Value {
    json!({"allOf": [{"$ref": sref(name)}], "default": {}, "description": description})
}
fn prim(ty: &str, description: &str) -> Value {
    json!({"type": ty, "description": description})
}
fn string_map(description: &str) -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}, "description": description})
}
fn string_list(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string", "default": ""}, "description": description})
}
fn gvk_ext(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// The schema name the real server uses for a kind: built-ins by Go package
/// (`io.k8s.api.core.v1.ConfigMap`), custom resources by reversed group (`io.partnerkit.v1alpha1.Partner`).
fn definition_name(group: &str, version: &str, kind: &str, custom: bool) -> String {
    if custom {
        let rev: Vec<&str> = group.split('.').rev().collect();
        return format!("{}.{version}.{kind}", rev.join("."));
    }
    let pkg = match group {
        "" => "io.k8s.api.core".to_string(),
        "apiextensions.k8s.io" => {
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".to_string()
        }
        "apiregistration.k8s.io" => "io.k8s.kube-aggregator.pkg.apis.apiregistration".to_string(),
        g => format!("io.k8s.api.{}", g.split('.').next().unwrap_or(g)),
    };
    format!("{pkg}.{version}.{kind}")
}

fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let g = group.strip_suffix(".k8s.io").unwrap_or(group);
    g.split(['.', '-'])
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn query_param(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}
fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut v = vec![
        query_param(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        query_param(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        query_param("fieldValidation", "string", DESC_FIELD_VALIDATION),
    ];
    if patch {
        v.push(query_param("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
    }
    v
}

fn list_params() -> Vec<Value> {
    vec![
        query_param(
            "allowWatchBookmarks",
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
        ),
        query_param(
            "continue",
            "string",
            "The continue option should be set when retrieving more results from the server.",
        ),
        query_param(
            "fieldSelector",
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        query_param(
            "labelSelector",
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        query_param(
            "limit",
            "integer",
            "limit is a maximum number of responses to return for a list call.",
        ),
        query_param(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        query_param(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        query_param(
            "sendInitialEvents",
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`.",
        ),
        query_param(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call.",
        ),
        query_param(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
        ),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        query_param(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted.",
        ),
        query_param(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted.",
        ),
        query_param(
            "orphanDependents",
            "boolean",
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7.",
        ),
        query_param(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed.",
        ),
    ]
}

fn json_content(schema_ref: &str) -> Value {
    let s = json!({"schema": {"$ref": sref(schema_ref)}});
    json!({"application/json": s, "application/yaml": s})
}

struct OpSpec<'s> {
    action: &'s str,
    op_id: String,
    description: String,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
}

fn operation(r: &ApiResource, tag: &str, o: OpSpec) -> Value {
    let mut params = vec![query_param(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    )];
    params.extend(o.params);
    let mut op = json!({
        "tags": [tag],
        "description": o.description,
        "operationId": o.op_id,
        "parameters": params,
        "responses": o.responses,
        "x-kubernetes-action": o.action,
        "x-kubernetes-group-version-kind": {"group": r.group, "kind": r.kind, "version": r.version},
    });
    if let Some(b) = o.body {
        op["requestBody"] = b;
    }
    op
}

fn add_resource_paths(
    paths: &mut Map<String, Value>,
    r: &ApiResource,
    kind_def: &str,
    list_def: &str,
) {
    let custom = r.schema.is_some();
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let tag = format!(
        "{}_{}",
        if r.group.is_empty() {
            "core".to_string()
        } else {
            group_camel(r.group)
        },
        r.version
    );
    let gv = format!("{}{}", group_camel(r.group), {
        let mut c = r.version.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    });
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let k = r.kind;
    let ok = |schema: &str| json!({"200": {"description": "OK", "content": json_content(schema)}, "401": {"description": "Unauthorized"}});
    let status = format!("{META}.Status");
    let mut patch_types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    if !custom {
        patch_types.push("application/strategic-merge-patch+json");
    }
    let mut patch_content = Map::new();
    for t in patch_types {
        patch_content.insert(
            t.to_string(),
            json!({"schema": {"$ref": sref(&format!("{META}.Patch"))}}),
        );
    }
    let patch_body = json!({"content": patch_content, "required": true});
    let obj_body = json!({"content": json_content(kind_def), "required": true});
    let article = if "AEIOU".contains(k.chars().next().unwrap_or('x')) {
        "an"
    } else {
        "a"
    };

    let mut collection = Map::new();
    let mut item = Map::new();
    let mut path_params = Vec::new();
    if r.namespaced {
        path_params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
        // list across all namespaces
        let all = json!({
            "get": operation(r, &tag, OpSpec {
                action: "list",
                op_id: format!("list{gv}{k}ForAllNamespaces"),
                description: format!("list or watch objects of kind {k}"),
                params: list_params(),
                body: None,
                responses: ok(list_def),
            })
        });
        paths.insert(format!("{base}/{}", r.plural), all);
    }
    collection.insert(
        "get".into(),
        operation(
            r,
            &tag,
            OpSpec {
                action: "list",
                op_id: format!("list{gv}{ns}{k}"),
                description: format!("list or watch objects of kind {k}"),
                params: list_params(),
                body: None,
                responses: ok(list_def),
            },
        ),
    );
    collection.insert(
        "post".into(),
        operation(
            r,
            &tag,
            OpSpec {
                action: "post",
                op_id: format!("create{gv}{ns}{k}"),
                description: format!("create {article} {k}"),
                params: write_params(false),
                body: Some(obj_body.clone()),
                responses: json!({
                    "200": {"description": "OK", "content": json_content(kind_def)},
                    "201": {"description": "Created", "content": json_content(kind_def)},
                    "202": {"description": "Accepted", "content": json_content(kind_def)},
                    "401": {"description": "Unauthorized"}
                }),
            },
        ),
    );
    let mut dc_params = list_params();
    dc_params.extend(delete_params());
    collection.insert(
        "delete".into(),
        operation(
            r,
            &tag,
            OpSpec {
                action: "deletecollection",
                op_id: format!("deletecollection{gv}{ns}{k}"),
                description: format!("delete collection of {k}"),
                params: dc_params,
                body: Some(json!({"content": json_content(&format!("{META}.DeleteOptions"))})),
                responses: ok(&status),
            },
        ),
    );
    if !path_params.is_empty() {
        collection.insert("parameters".into(), Value::Array(path_params.clone()));
    }
    let coll_path = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };

    let item_ops = |item: &mut Map<String, Value>, sub: &str| {
        let title = if sub.is_empty() {
            String::new()
        } else {
            format!("{}{}", sub[..1].to_uppercase(), &sub[1..])
        };
        let of = if sub.is_empty() {
            String::new()
        } else {
            format!("{sub} of ")
        };
        item.insert(
            "get".into(),
            operation(
                r,
                &tag,
                OpSpec {
                    action: "get",
                    op_id: format!("read{gv}{ns}{k}{title}"),
                    description: format!("read {of}the specified {k}"),
                    params: vec![],
                    body: None,
                    responses: ok(kind_def),
                },
            ),
        );
        item.insert(
            "put".into(),
            operation(
                r,
                &tag,
                OpSpec {
                    action: "put",
                    op_id: format!("replace{gv}{ns}{k}{title}"),
                    description: format!("replace {of}the specified {k}"),
                    params: write_params(false),
                    body: Some(obj_body.clone()),
                    responses: json!({
                        "200": {"description": "OK", "content": json_content(kind_def)},
                        "201": {"description": "Created", "content": json_content(kind_def)},
                        "401": {"description": "Unauthorized"}
                    }),
                },
            ),
        );
        item.insert(
            "patch".into(),
            operation(
                r,
                &tag,
                OpSpec {
                    action: "patch",
                    op_id: format!("patch{gv}{ns}{k}{title}"),
                    description: format!("partially update {of}the specified {k}"),
                    params: write_params(true),
                    body: Some(patch_body.clone()),
                    responses: json!({
                        "200": {"description": "OK", "content": json_content(kind_def)},
                        "201": {"description": "Created", "content": json_content(kind_def)},
                        "401": {"description": "Unauthorized"}
                    }),
                },
            ),
        );
        let mut pp = vec![path_param("name", &format!("name of the {k}"))];
        pp.extend(path_params.iter().cloned());
        item.insert("parameters".into(), Value::Array(pp));
    };
    item_ops(&mut item, "");
    item.insert(
        "delete".into(),
        operation(
            r,
            &tag,
            OpSpec {
                action: "delete",
                op_id: format!("delete{gv}{ns}{k}"),
                description: format!("delete {article} {k}"),
                params: delete_params(),
                body: Some(json!({"content": json_content(&format!("{META}.DeleteOptions"))})),
                responses: json!({
                    "200": {"description": "OK", "content": json_content(&status)},
                    "202": {"description": "Accepted", "content": json_content(&status)},
                    "401": {"description": "Unauthorized"}
                }),
            },
        ),
    );
    paths.insert(coll_path.clone(), Value::Object(collection));
    paths.insert(format!("{coll_path}/{{name}}"), Value::Object(item));
    if r.has_status {
        let mut st = Map::new();
        item_ops(&mut st, "status");
        paths.insert(format!("{coll_path}/{{name}}/status"), Value::Object(st));
    }
}

/// Adds apiVersion/kind/metadata to every `x-kubernetes-embedded-resource` object in a CRD schema.
fn add_embedded_properties(s: &mut Value) {
    let Value::Object(m) = s else { return };
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for v in props.values_mut() {
            add_embedded_properties(v);
        }
    }
    if let Some(items) = m.get_mut("items") {
        add_embedded_properties(items);
    }
    if let Some(ap) = m.get_mut("additionalProperties")
        && ap.is_object()
    {
        add_embedded_properties(ap);
    }
    if m.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(props) = props {
            props.insert("apiVersion".into(), prim("string", "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"));
            props.insert("kind".into(), prim("string", "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"));
            props.insert(
                "metadata".into(),
                ref_prop(&format!("{META}.ObjectMeta"), DESC_METADATA),
            );
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
}

fn kind_schema(r: &ApiResource) -> Value {
    let mut s = match r.schema {
        Some(user) => {
            let mut s = user.clone();
            if !s.is_object() {
                s = json!({});
            }
            add_embedded_properties(&mut s);
            s
        }
        None => builtin_kind_schema(r.group, r.kind),
    };
    let m = s.as_object_mut().expect("schema object");
    m.entry("type").or_insert_with(|| json!("object"));
    let props = m.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(props) = props {
        props.insert("apiVersion".into(), prim("string", DESC_API_VERSION));
        props.insert("kind".into(), prim("string", DESC_KIND));
        props.insert(
            "metadata".into(),
            ref_prop(&format!("{META}.ObjectMeta"), DESC_METADATA),
        );
    }
    m.insert(
        "x-kubernetes-group-version-kind".into(),
        gvk_ext(r.group, r.version, r.kind),
    );
    s
}

fn builtin_kind_schema(group: &str, kind: &str) -> Value {
    match (group, kind) {
        ("", "ConfigMap") => json!({
            "description": "ConfigMap holds configuration data for pods to consume.",
            "type": "object",
            "properties": {
                "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}, "description": "BinaryData contains the binary data. Each key must consist of alphanumeric characters, '-', '_' or '.'. BinaryData can contain byte sequences that are not in the UTF-8 range. The keys stored in BinaryData must not overlap with the ones in the Data field, this is enforced during validation process. Using this field will require 1.10+ apiserver and kubelet."},
                "data": string_map("Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
                "immutable": prim("boolean", "Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated (only object metadata can be modified). If not set to true, the field can be modified at any time. Defaulted to nil."),
            }
        }),
        ("", "Secret") => json!({
            "description": "Secret holds secret data of a certain type. The total bytes of the values in the Data field must be less than MaxSecretSize bytes.",
            "type": "object",
            "properties": {
                "data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}, "description": "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"},
                "immutable": prim("boolean", "Immutable, if set to true, ensures that data stored in the Secret cannot be updated (only object metadata can be modified). If not set to true, the field can be modified at any time. Defaulted to nil."),
                "stringData": string_map("stringData allows specifying non-binary secret data in string form. It is provided as a write-only input field for convenience. All keys and values are merged into the data field on write, overwriting any existing values. The stringData field is never output when reading from the API."),
                "type": prim("string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
            }
        }),
        ("", "Namespace") => json!({
            "description": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
            "type": "object",
            "properties": {
                "spec": ref_prop("io.k8s.api.core.v1.NamespaceSpec", "Spec defines the behavior of the Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
                "status": ref_prop("io.k8s.api.core.v1.NamespaceStatus", "Status describes the current status of a Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
            }
        }),
        _ => json!({
            "description": format!("{kind} is a built-in Kubernetes resource. This simulator serves a permissive schema for it."),
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        }),
    }
}

fn list_schema(group: &str, version: &str, kind: &str, plural: &str, kind_def: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind}"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": prim("string", DESC_API_VERSION),
            "items": {
                "type": "array",
                "description": format!("List of {plural}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"),
                "items": {"$ref": sref(kind_def)},
            },
            "kind": prim("string", DESC_KIND),
            "metadata": ref_prop(&format!("{META}.ListMeta"), DESC_LIST_METADATA),
        },
        "x-kubernetes-group-version-kind": gvk_ext(group, version, &format!("{kind}List")),
    })
}

fn meta_schemas(schemas: &mut Map<String, Value>) {
    let m = |s: &str| format!("{META}.{s}");
    schemas.insert(m("Time"), json!({"type": "string", "format": "date-time", "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers."}));
    schemas.insert(m("FieldsV1"), json!({"type": "object", "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.\n\nEach key is either a '.' representing the field itself, and will always map to an empty set, or a string representing a sub-field or item. The string will follow one of these four formats: 'f:<name>', where <name> is the name of a field in a struct, or key in a map 'v:<value>', where <value> is the exact json formatted value of a list item 'i:<index>', where <index> is position of a item in a list 'k:<keys>', where <keys> is a map of  a list item's key fields to their unique values If a key maps to an empty Fields value, the field that key represents is part of the set.\n\nThe exact format is defined in sigs.k8s.io/structured-merge-diff"}));
    schemas.insert(m("ObjectMeta"), json!({
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "type": "object",
        "properties": {
            "annotations": string_map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations"),
            "creationTimestamp": ref_prop(&m("Time"), DESC_CREATION),
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64", "description": "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system. Only set when deletionTimestamp is also set. May only be shortened. Read-only."},
            "deletionTimestamp": ref_prop(&m("Time"), "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. This field is set by the server when a graceful deletion is requested by the user, and is not directly settable by a client. The resource is expected to be deleted (no longer visible from resource lists, and not reachable by name) after the time in this field, once the finalizers list is empty. As long as the finalizers list contains items, deletion is blocked. Once the deletionTimestamp is set, this value may not be unset or be set further into the future, although it may be shortened or the resource may be deleted prior to this time.\n\nPopulated by the system when a graceful deletion is requested. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "description": "Must be empty before the object is deleted from the registry. Each entry is an identifier for the responsible component that will remove the entry from the list. If the deletionTimestamp of the object is non-nil, entries in this list can only be removed. Finalizers may be processed and removed in any order.  Order is NOT enforced because it introduces significant risk of stuck finalizers. finalizers is a shared field, any actor with permission can reorder it. If the finalizer list is processed in order, then this can lead to a situation in which the component responsible for the first finalizer in the list is waiting for a signal (field value, external system, or other) produced by a component responsible for a finalizer later in the list, resulting in a deadlock. Without enforced ordering finalizers are free to order amongst themselves and are not vulnerable to ordering changes in the list.", "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
            "generateName": prim("string", "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided. If this field is used, the name returned to the client will be different than the name passed. This value will also be combined with a unique suffix. The provided value has the same validation rules as the Name field, and may be truncated by the length of the suffix required to make the value unique on the server.\n\nIf this field is specified and the generated name exists, the server will return a 409.\n\nApplied only if Name is not specified. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#idempotency"),
            "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only."},
            "labels": string_map("Map of string keys and values that can be used to organize and categorize (scope and select) objects. May match selectors of replication controllers and services. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels"),
            "managedFields": {"type": "array", "items": {"allOf": [{"$ref": sref(&m("ManagedFieldsEntry"))}], "default": {}}, "description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow. This is mostly for internal housekeeping, and users typically shouldn't need to set or understand this field. A workflow can be the user's name, a controller's name, or the name of a specific apply path like \"ci-cd\". The set of fields is always in the version that the workflow used when modifying the object.", "x-kubernetes-list-type": "atomic"},
            "name": prim("string", DESC_NAME),
            "namespace": prim("string", "Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the \"default\" namespace, but \"default\" is the canonical representation. Not all objects are required to be scoped to a namespace - the value of this field for those objects will be empty.\n\nMust be a DNS_LABEL. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces"),
            "ownerReferences": {"type": "array", "items": {"allOf": [{"$ref": sref(&m("OwnerReference"))}], "default": {}}, "description": "List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected. If this object is managed by a controller, then an entry in this list will point to this controller, with the controller field set to true. There cannot be more than one managing controller.", "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map", "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"},
            "resourceVersion": prim("string", "An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed. May be used for optimistic concurrency, change detection, and the watch operation on a resource or set of resources. Clients must treat these values as opaque and passed unmodified back to the server. They may only be valid for a particular resource or set of resources.\n\nPopulated by the system. Read-only. Value must be treated as opaque by clients and . More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
            "selfLink": prim("string", "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
            "uid": prim("string", "UID is the unique in time and space value for this object. It is typically generated by the server on successful creation of a resource and is not allowed to change on PUT operations.\n\nPopulated by the system. Read-only. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
        }
    }));
    schemas.insert(m("ManagedFieldsEntry"), json!({
        "description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.",
        "type": "object",
        "properties": {
            "apiVersion": prim("string", "APIVersion defines the version of this resource that this field set applies to. The format is \"group/version\" just like the top-level APIVersion field. It is necessary to track the version of a field set because it cannot be automatically converted."),
            "fieldsType": prim("string", "FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\""),
            "fieldsV1": ref_prop(&m("FieldsV1"), "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type."),
            "manager": prim("string", "Manager is an identifier of the workflow managing these fields."),
            "operation": prim("string", "Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'."),
            "subresource": prim("string", "Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource. The value of this field is used to distinguish between managers, even if they share the same name. For example, a status update will be distinct from a regular update using the same manager name. Note that the APIVersion field is not related to the Subresource field and it always corresponds to the version of the main resource."),
            "time": ref_prop(&m("Time"), "Time is the timestamp of when the ManagedFields entry was added. The timestamp will also be updated if a field is added, the manager changes any of the owned fields value or removes a field. The timestamp does not update when a field is removed from the entry because another manager took it over."),
        }
    }));
    schemas.insert(m("OwnerReference"), json!({
        "description": "OwnerReference contains enough information to let you identify an owning object. An owning object must be in the same namespace as the dependent, or be cluster-scoped, so there is no namespace field.",
        "type": "object",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": {"type": "string", "default": "", "description": "API version of the referent."},
            "blockOwnerDeletion": prim("boolean", "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed. See https://kubernetes.io/docs/concepts/architecture/garbage-collection/#foreground-deletion for how the garbage collector interacts with this field and enforces the foreground deletion. Defaults to false. To set this field, a user needs \"delete\" permission of the owner, otherwise 422 (Unprocessable Entity) will be returned."),
            "controller": prim("boolean", "If true, this reference points to the managing controller."),
            "kind": {"type": "string", "default": "", "description": "Kind of the referent. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
            "name": {"type": "string", "default": "", "description": "Name of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"},
            "uid": {"type": "string", "default": "", "description": "UID of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"},
        },
        "x-kubernetes-map-type": "atomic"
    }));
    schemas.insert(m("ListMeta"), json!({
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects. A resource may have only one of {ObjectMeta, ListMeta}.",
        "type": "object",
        "properties": {
            "continue": prim("string", "continue may be set if the user set a limit on the number of items returned, and indicates that the server has more data available. The value is opaque and may be used to issue another request to the endpoint that served this list to retrieve the next set of available objects. Continuing a consistent list may not be possible if the server configuration has changed or more than a few minutes have passed. The resourceVersion field returned when using this continue value will be identical to the value in the first response, unless you have received this token from an error message."),
            "remainingItemCount": {"type": "integer", "format": "int64", "description": "remainingItemCount is the number of subsequent items in the list which are not included in this list response. If the list request contained label or field selectors, then the number of remaining items is unknown and the field will be left unset and omitted during serialization. If the list is complete (either because it is not chunking or because this is the last chunk), then there are no more remaining items and this field will be left unset and omitted during serialization. Servers older than v1.15 do not set this field. The intended use of the remainingItemCount is *estimating* the size of a collection. Clients should not rely on the remainingItemCount to be set or to be exact."},
            "resourceVersion": prim("string", "String that identifies the server's internal version of this object that can be used by clients to determine when objects have changed. Value must be treated as opaque by clients and passed unmodified back to the server. Populated by the system. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
            "selfLink": prim("string", "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
        }
    }));
    schemas.insert(m("Patch"), json!({"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}));
    schemas.insert(m("Preconditions"), json!({
        "description": "Preconditions must be fulfilled before an operation (update, delete, etc.) is carried out.",
        "type": "object",
        "properties": {
            "resourceVersion": prim("string", "Specifies the target ResourceVersion"),
            "uid": prim("string", "Specifies the target UID."),
        }
    }));
    schemas.insert(m("DeleteOptions"), json!({
        "description": "DeleteOptions may be provided when deleting an API object.",
        "type": "object",
        "properties": {
            "apiVersion": prim("string", DESC_API_VERSION),
            "dryRun": string_list("When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"),
            "gracePeriodSeconds": {"type": "integer", "format": "int64", "description": "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately."},
            "kind": prim("string", DESC_KIND),
            "orphanDependents": prim("boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both."),
            "preconditions": ref_prop(&m("Preconditions"), "Must be fulfilled before a deletion is carried out. If not possible, a 409 Conflict status will be returned."),
            "propagationPolicy": prim("string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground."),
        }
    }));
    schemas.insert(m("StatusCause"), json!({
        "description": "StatusCause provides more information about an api.Status failure, including cases when multiple errors are encountered.",
        "type": "object",
        "properties": {
            "field": prim("string", "The field of the resource that has caused this error, as named by its JSON serialization. May include dot and postfix notation for nested attributes. Arrays are zero-indexed.  Fields may appear more than once in an array of causes due to fields having multiple errors. Optional."),
            "message": prim("string", "A human-readable description of the cause of the error.  This field may be presented as-is to a reader."),
            "reason": prim("string", "A machine-readable description of the cause of the error. If this value is empty there is no information available."),
        }
    }));
    schemas.insert(m("StatusDetails"), json!({
        "description": "StatusDetails is a set of additional properties that MAY be set by the server to provide additional information about a response. The Reason field of a Status object defines what attributes will be set. Clients must ignore fields that do not match the defined type of each attribute, and should assume that any attribute may be empty, invalid, or under defined.",
        "type": "object",
        "properties": {
            "causes": {"type": "array", "items": {"allOf": [{"$ref": sref(&m("StatusCause"))}], "default": {}}, "description": "The Causes array includes more details associated with the StatusReason failure. Not all StatusReasons may provide detailed causes.", "x-kubernetes-list-type": "atomic"},
            "group": prim("string", "The group attribute of the resource associated with the status StatusReason."),
            "kind": prim("string", "The kind attribute of the resource associated with the status StatusReason. On some operations may differ from the requested resource Kind. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
            "name": prim("string", "The name attribute of the resource associated with the status StatusReason (when there is a single name which can be described)."),
            "retryAfterSeconds": {"type": "integer", "format": "int32", "description": "If specified, the time in seconds before the operation should be retried. Some errors may indicate the client must take an alternate action - for those errors this field may indicate how long to wait before taking the alternate action."},
            "uid": prim("string", "UID of the resource. (when there is a single resource which can be described). More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
        }
    }));
    schemas.insert(m("Status"), json!({
        "description": "Status is a return value for calls that don't return other objects.",
        "type": "object",
        "properties": {
            "apiVersion": prim("string", DESC_API_VERSION),
            "code": {"type": "integer", "format": "int32", "description": "Suggested HTTP return code for this status, 0 if not set."},
            "details": {"allOf": [{"$ref": sref(&m("StatusDetails"))}], "description": "Extended data associated with the reason.  Each reason may define its own extended details. This field is optional and the data returned is not guaranteed to conform to any schema except that defined by the reason type.", "x-kubernetes-list-type": "atomic"},
            "kind": prim("string", DESC_KIND),
            "message": prim("string", "A human-readable description of the status of this operation."),
            "metadata": ref_prop(&m("ListMeta"), DESC_LIST_METADATA),
            "reason": prim("string", "A machine-readable description of why this operation is in the \"Failure\" status. If this value is empty there is no information available. A Reason clarifies an HTTP status code but does not override it."),
            "status": prim("string", "Status of the operation. One of: \"Success\" or \"Failure\". More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"),
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}]
    }));
}

fn namespace_support_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert("io.k8s.api.core.v1.NamespaceSpec".into(), json!({
        "description": "NamespaceSpec describes the attributes on a Namespace.",
        "type": "object",
        "properties": {
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "description": "Finalizers is an opaque list of values that must be empty to permanently remove object from storage. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/", "x-kubernetes-list-type": "atomic"},
        }
    }));
    schemas.insert("io.k8s.api.core.v1.NamespaceStatus".into(), json!({
        "description": "NamespaceStatus is information about the current status of a Namespace.",
        "type": "object",
        "properties": {
            "conditions": {"type": "array", "items": {"allOf": [{"$ref": sref("io.k8s.api.core.v1.NamespaceCondition")}], "default": {}}, "description": "Represents the latest available observations of a namespace's current state.", "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-list-type": "map", "x-kubernetes-patch-merge-key": "type", "x-kubernetes-patch-strategy": "merge"},
            "phase": {"type": "string", "description": "Phase is the current lifecycle phase of the namespace. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/\n\nPossible enum values:\n - `\"Active\"` means the namespace is available for use in the system\n - `\"Terminating\"` means the namespace is undergoing graceful termination", "enum": ["Active", "Terminating"]},
        }
    }));
    schemas.insert("io.k8s.api.core.v1.NamespaceCondition".into(), json!({
        "description": "NamespaceCondition contains details about state of namespace.",
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "lastTransitionTime": ref_prop(&format!("{META}.Time"), "Last time the condition transitioned from one status to another."),
            "message": prim("string", "Human-readable message indicating details about last transition."),
            "reason": prim("string", "Unique, one-word, CamelCase reason for the condition's last transition."),
            "status": {"type": "string", "default": "", "description": "Status of the condition, one of True, False, Unknown."},
            "type": {"type": "string", "default": "", "description": "Type of namespace controller condition."},
        }
    }));
}

/// One group-version OpenAPI v3 document (served at `/openapi/v3/api/v1` or
/// `/openapi/v3/apis/<group>/<version>`), with list/get/create/update/patch/delete paths carrying
/// `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter, and
/// `components.schemas` holding one schema per kind (+ its List) and the meta.k8s.io/v1 types.
pub fn openapi_v3_group_version(resources: &[ApiResource]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    meta_schemas(&mut schemas);
    for r in resources {
        let custom = r.schema.is_some();
        let kind_def = definition_name(r.group, r.version, r.kind, custom);
        let list_def = definition_name(r.group, r.version, &format!("{}List", r.kind), custom);
        if !custom && r.group.is_empty() && r.kind == "Namespace" {
            namespace_support_schemas(&mut schemas);
        }
        schemas.insert(kind_def.clone(), kind_schema(r));
        schemas.insert(
            list_def.clone(),
            list_schema(r.group, r.version, r.kind, r.plural, &kind_def),
        );
        add_resource_paths(&mut paths, r, &kind_def, &list_def);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
        "security": [{"BearerToken": []}],
    })
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn ts(ago: i64) -> String {
        format_rfc3339(NOW - ago)
    }

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(format_rfc3339(NOW), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some((NOW, 0)));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some((NOW, 500_000_000))
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(format_rfc3339(-62135596800), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn human_duration_matches_apimachinery() {
        assert_eq!(human_duration(-5), "<invalid>");
        assert_eq!(human_duration(-1), "0s");
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3900), "65m"); // 1h5m is still rendered in minutes (< 3h)
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(human_duration(5 * 3600), "5h");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86400), "3d");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(400 * 86400), "400d");
        assert_eq!(human_duration(800 * 86400), "2y70d");
        assert_eq!(human_duration(3000 * 86400), "8y");
    }

    #[test]
    fn json_path_basics() {
        let o = json!({
            "metadata": {"name": "a", "labels": {"x": "1", "app.kubernetes.io/name": "n"}},
            "spec": {"admins": [{"email": "a@x"}, {"email": "b@x"}], "n": 3, "nil": null},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}
        });
        assert_eq!(json_path(&o, ".metadata.name").unwrap(), vec![json!("a")]);
        assert_eq!(
            json_path(&o, "{.metadata.labels.x}").unwrap(),
            vec![json!("1")]
        );
        assert_eq!(
            json_path(&o, ".spec.admins[0].email").unwrap(),
            vec![json!("a@x")]
        );
        assert_eq!(
            json_path(&o, ".spec.admins[-1].email").unwrap(),
            vec![json!("b@x")]
        );
        assert_eq!(
            json_path(&o, ".spec.admins[*].email").unwrap(),
            vec![json!("a@x"), json!("b@x")]
        );
        assert_eq!(json_path(&o, ".spec.admins[0:2].email").unwrap().len(), 2);
        assert_eq!(
            json_path(&o, r#".status.conditions[?(@.type=="Ready")].status"#).unwrap(),
            vec![json!("True")]
        );
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type == 'Synced')].status").unwrap(),
            vec![json!("False")]
        );
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type!='Synced')].type").unwrap(),
            vec![json!("Ready")]
        );
        assert_eq!(
            json_path(&o, ".metadata.labels['app.kubernetes.io/name']").unwrap(),
            vec![json!("n")]
        );
        assert_eq!(
            json_path(&o, r".metadata.labels.app\.kubernetes\.io/name").unwrap(),
            vec![json!("n")]
        );
        assert_eq!(json_path(&o, "$.spec.n").unwrap(), vec![json!(3)]);
        assert_eq!(
            json_path(&o, "..email").unwrap(),
            vec![json!("a@x"), json!("b@x")]
        );
        assert_eq!(json_path(&o, ".spec.nil").unwrap(), vec![Value::Null]);
        // missing -> empty
        assert!(json_path(&o, ".spec.missing").unwrap().is_empty());
        assert!(json_path(&o, ".spec.missing.deeper[0]").unwrap().is_empty());
        assert!(
            json_path(&o, ".status.missing[?(@.type==\"Ready\")].status")
                .unwrap()
                .is_empty()
        );
        assert!(
            json_path(&o, r#".status.conditions[?(@.type=="Nope")].status"#)
                .unwrap()
                .is_empty()
        );
        // structural errors
        assert!(json_path(&o, ".spec.admins[5].email").is_err());
        assert!(json_path(&o, ".metadata.name[0]").is_err());
        assert!(json_path(&o, ".spec[").is_err());
    }

    #[test]
    fn configmap_row_counts_data_and_binary_data() {
        let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": ts(300)}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(
            builtin_table_row("ConfigMap", &cm, NOW).unwrap(),
            vec![json!("cfg"), json!(3), json!("5m")]
        );
        let empty = json!({"metadata": {"name": "e", "creationTimestamp": ts(10)}});
        assert_eq!(
            builtin_table_row("ConfigMap", &empty, NOW).unwrap(),
            vec![json!("e"), json!(0), json!("10s")]
        );
        let cols: Vec<String> = builtin_columns("ConfigMap")
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(cols, ["Name", "Data", "Age"]);
    }

    #[test]
    fn namespace_and_secret_rows() {
        let ns = json!({"metadata": {"name": "dev", "creationTimestamp": ts(2 * 86400)}, "status": {"phase": "Active"}});
        assert_eq!(
            builtin_table_row("Namespace", &ns, NOW).unwrap(),
            vec![json!("dev"), json!("Active"), json!("2d")]
        );
        let term = json!({"metadata": {"name": "old", "creationTimestamp": ts(60)}, "status": {"phase": "Terminating"}});
        assert_eq!(
            builtin_table_row("Namespace", &term, NOW).unwrap()[1],
            json!("Terminating")
        );
        let sec = json!({"metadata": {"name": "s", "creationTimestamp": ts(1)}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            builtin_table_row("Secret", &sec, NOW).unwrap(),
            vec![
                json!("s"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("1s")
            ]
        );
        let nots = json!({"metadata": {"name": "x"}});
        assert_eq!(
            builtin_table_row("ServiceAccount", &nots, NOW).unwrap(),
            vec![json!("x"), json!(0), json!("<unknown>")]
        );
    }

    #[test]
    fn rolebinding_row() {
        let rb = json!({
            "metadata": {"name": "rb", "namespace": "dev", "creationTimestamp": ts(3600)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}
            ]
        });
        let row = builtin_table_row("RoleBinding", &rb, NOW).unwrap();
        assert_eq!(
            row,
            vec![
                json!("rb"),
                json!("ClusterRole/view"),
                json!("60m"),
                json!("alice, bob"),
                json!("devs"),
                json!("ci/bot")
            ]
        );
        assert_eq!(builtin_columns("ClusterRoleBinding").len(), row.len());
        assert_eq!(builtin_columns("RoleBinding")[3]["priority"], json!(1));
    }

    #[test]
    fn other_builtin_rows() {
        let lease = json!({"metadata": {"name": "l", "creationTimestamp": ts(5)}, "spec": {"holderIdentity": "me"}});
        assert_eq!(
            builtin_table_row("Lease", &lease, NOW).unwrap(),
            vec![json!("l"), json!("me"), json!("5s")]
        );
        let role =
            json!({"metadata": {"name": "r", "creationTimestamp": "2023-11-14T23:13:20+01:00"}});
        assert_eq!(
            builtin_table_row("Role", &role, NOW).unwrap(),
            vec![json!("r"), json!("2023-11-14T22:13:20Z")]
        );
        assert_eq!(builtin_columns("Role")[1]["name"], json!("Created At"));
        assert_eq!(builtin_columns("Role")[1]["type"], json!("date"));
        assert!(builtin_table_row("Widget", &role, NOW).is_none());
        assert_eq!(builtin_columns("Widget").len(), 2);
        let vap = json!({"metadata": {"name": "p", "creationTimestamp": ts(5)}, "spec": {"validations": [{}, {}], "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
        assert_eq!(
            builtin_table_row("ValidatingAdmissionPolicy", &vap, NOW).unwrap(),
            vec![json!("p"), json!(2), json!("v1/ConfigMap"), json!("5s")]
        );
        let vapb = json!({"metadata": {"name": "b", "creationTimestamp": ts(5)}, "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}});
        assert_eq!(
            builtin_table_row("ValidatingAdmissionPolicyBinding", &vapb, NOW).unwrap(),
            vec![json!("b"), json!("p"), json!("*/cfg"), json!("5s")]
        );
        let vapb2 = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}});
        assert_eq!(
            builtin_table_row("ValidatingAdmissionPolicyBinding", &vapb2, NOW).unwrap()[2],
            json!("a=1,b=2")
        );
        let ev = json!({
            "metadata": {"name": "e1"}, "type": "Normal", "reason": "Created", "message": " hi \n",
            "involvedObject": {"kind": "Pod", "name": "web"}, "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ts(600), "lastTimestamp": ts(60), "count": 3
        });
        assert_eq!(
            builtin_table_row("Event", &ev, NOW).unwrap(),
            vec![
                json!("60s"),
                json!("Normal"),
                json!("Created"),
                json!("pod/web"),
                json!(""),
                json!("kubelet, n1"),
                json!("hi"),
                json!("10m"),
                json!(3),
                json!("e1")
            ]
        );
        assert_eq!(builtin_columns("Event").len(), 10);
    }

    fn partner(name: &str, ago: i64, ready: &str) -> Value {
        json!({
            "apiVersion": "partnerkit.io/v1alpha1", "kind": "Partner",
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": ts(ago), "resourceVersion": "7"},
            "spec": {"tier": "gold", "seats": 12, "ratio": 0.5, "active": true, "admins": [{"email": "a@x"}]},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}
        })
    }

    fn cols() -> Vec<PrinterColumn> {
        serde_json::from_value(json!([
            {"name": "Tier", "type": "string", "jsonPath": ".spec.tier"},
            {"name": "Seats", "type": "integer", "jsonPath": ".spec.seats", "description": "seat count"},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
            {"name": "Active", "type": "boolean", "jsonPath": ".spec.active"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Admin", "type": "string", "jsonPath": ".spec.admins[0].email"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]))
        .unwrap()
    }

    #[test]
    fn crd_table_with_printer_columns() {
        let objs = vec![partner("acme", 90, "True"), partner("zeta", 7200, "False")];
        let cols = cols();
        let t = table(&objs, Columns::Custom(&cols), "", "42", Some("tok"), NOW);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "42", "continue": "tok"})
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name", "Tier", "Seats", "Ratio", "Active", "Ready", "Admin", "Missing", "Age"
            ]
        );
        assert_eq!(
            t["columnDefinitions"][0],
            json!({"name": "Name", "type": "string", "format": "name", "description": DESC_NAME, "priority": 0})
        );
        assert_eq!(
            t["columnDefinitions"][1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.tier"
        );
        assert_eq!(t["columnDefinitions"][2]["description"], "seat count");
        assert_eq!(t["columnDefinitions"][3]["priority"], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["acme", "gold", 12, 0.5, true, "True", "a@x", null, "90s"])
        );
        assert_eq!(
            t["rows"][1]["cells"],
            json!(["zeta", "gold", 12, 0.5, true, "False", "a@x", null, "120m"])
        );
        // default includeObject: PartialObjectMetadata
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "acme");
        assert!(t["rows"][0]["object"].get("spec").is_none());
    }

    #[test]
    fn crd_table_without_columns_has_name_and_age() {
        let objs = vec![partner("acme", 4000, "True")];
        let t = table(&objs, Columns::Custom(&[]), "Metadata", "1", None, NOW);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Age"]);
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["acme", "66m"]));
        assert_eq!(t["metadata"], json!({"resourceVersion": "1"}));
    }

    #[test]
    fn include_object_modes() {
        let objs = vec![partner("acme", 1, "True")];
        let none = table(&objs, Columns::Builtin("Partner"), "None", "1", None, NOW);
        assert_eq!(none["rows"][0]["object"], Value::Null);
        let full = table(&objs, Columns::Builtin("Partner"), "Object", "1", None, NOW);
        assert_eq!(full["rows"][0]["object"], objs[0]);
        let meta = table(
            &objs,
            Columns::Builtin("Partner"),
            "Metadata",
            "1",
            None,
            NOW,
        );
        assert_eq!(
            meta["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": objs[0]["metadata"]})
        );
        // unknown kind -> default convertor
        assert_eq!(meta["rows"][0]["cells"], json!(["acme", ts(1)]));
    }

    #[test]
    fn builtin_table() {
        let objs = vec![
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "creationTimestamp": ts(30)}, "data": {"k": "v"}}),
        ];
        let t = table(&objs, Columns::Builtin("ConfigMap"), "", "9", None, NOW);
        assert_eq!(t["rows"][0]["cells"], json!(["c", 1, "30s"]));
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 3);
    }

    fn partner_schema() -> Value {
        json!({
            "type": "object",
            "description": "Partner is a partner organisation.",
            "properties": {
                "spec": {
                    "type": "object",
                    "description": "PartnerSpec defines the desired partner.",
                    "required": ["tier"],
                    "properties": {
                        "tier": {"type": "string", "description": "Commercial tier.", "enum": ["gold", "silver"]},
                        "admins": {"type": "array", "description": "People who administer the partner.", "items": {
                            "type": "object", "properties": {"email": {"type": "string", "description": "Contact email."}}
                        }},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
                    }
                },
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
            }
        })
    }

    #[test]
    fn openapi_documents() {
        let schema = partner_schema();
        let doc = openapi_v3_group_version(&[ApiResource {
            group: "partnerkit.io",
            version: "v1alpha1",
            kind: "Partner",
            plural: "partners",
            namespaced: true,
            schema: Some(&schema),
            has_status: true,
        }]);
        assert_eq!(doc["openapi"], "3.0.0");
        let s = &doc["components"]["schemas"]["io.partnerkit.v1alpha1.Partner"];
        assert_eq!(
            s["x-kubernetes-group-version-kind"],
            json!([{"group": "partnerkit.io", "kind": "Partner", "version": "v1alpha1"}])
        );
        assert_eq!(s["description"], "Partner is a partner organisation.");
        assert_eq!(
            s["properties"]["spec"]["properties"]["tier"]["description"],
            "Commercial tier."
        );
        assert_eq!(
            s["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(
            s["properties"]["spec"]["properties"]["template"]["properties"]["metadata"].is_object()
        );
        assert!(doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"].is_object());
        assert_eq!(
            doc["components"]["schemas"]["io.partnerkit.v1alpha1.PartnerList"]["x-kubernetes-group-version-kind"]
                [0]["kind"],
            "PartnerList"
        );
        let item =
            &doc["paths"]["/apis/partnerkit.io/v1alpha1/namespaces/{namespace}/partners/{name}"];
        let patch = &item["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "partnerkit.io", "kind": "Partner", "version": "v1alpha1"})
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(doc["paths"]["/apis/partnerkit.io/v1alpha1/namespaces/{namespace}/partners"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(doc["paths"]["/apis/partnerkit.io/v1alpha1/partners"]["get"].is_object());
        assert!(doc["paths"]["/apis/partnerkit.io/v1alpha1/namespaces/{namespace}/partners/{name}/status"]["patch"].is_object());
        // every $ref resolves
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if k == "$ref" {
                            out.push(x.as_str().unwrap().to_string());
                        } else {
                            refs(x, out);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let core = openapi_v3_group_version(&[
            ApiResource {
                group: "",
                version: "v1",
                kind: "ConfigMap",
                plural: "configmaps",
                namespaced: true,
                schema: None,
                has_status: false,
            },
            ApiResource {
                group: "",
                version: "v1",
                kind: "Namespace",
                plural: "namespaces",
                namespaced: false,
                schema: None,
                has_status: true,
            },
            ApiResource {
                group: "",
                version: "v1",
                kind: "Secret",
                plural: "secrets",
                namespaced: true,
                schema: None,
                has_status: false,
            },
            ApiResource {
                group: "",
                version: "v1",
                kind: "ServiceAccount",
                plural: "serviceaccounts",
                namespaced: true,
                schema: None,
                has_status: false,
            },
        ]);
        for d in [&doc, &core] {
            let mut out = Vec::new();
            refs(d, &mut out);
            assert!(!out.is_empty());
            for r in out {
                let name = r.strip_prefix("#/components/schemas/").unwrap();
                assert!(
                    d["components"]["schemas"].get(name).is_some(),
                    "dangling {r}"
                );
            }
        }
        let cm = &core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"];
        assert_eq!(
            cm["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "ConfigMap", "version": "v1"}])
        );
        assert!(cm["properties"]["data"].is_object());
        assert_eq!(
            core["components"]["schemas"]["io.k8s.api.core.v1.ServiceAccount"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert!(
            core["paths"]["/api/v1/namespaces/{name}"]["patch"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some());

        let root = openapi_v3_root(&[
            ("api/v1".into(), openapi_hash(&core)),
            ("apis/partnerkit.io/v1alpha1".into(), "ABC".into()),
        ]);
        assert_eq!(
            root["paths"]["apis/partnerkit.io/v1alpha1"]["serverRelativeURL"],
            "/openapi/v3/apis/partnerkit.io/v1alpha1?hash=ABC"
        );
        assert!(
            root["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        assert_eq!(openapi_hash(&core), openapi_hash(&core.clone()));
        assert_ne!(openapi_hash(&core), openapi_hash(&doc));
    }

    #[test]
    fn definition_names() {
        assert_eq!(
            definition_name("", "v1", "ConfigMap", false),
            "io.k8s.api.core.v1.ConfigMap"
        );
        assert_eq!(
            definition_name("rbac.authorization.k8s.io", "v1", "Role", false),
            "io.k8s.api.rbac.v1.Role"
        );
        assert_eq!(
            definition_name("apps", "v1", "Deployment", false),
            "io.k8s.api.apps.v1.Deployment"
        );
        assert_eq!(
            definition_name(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                false
            ),
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
        );
        assert_eq!(
            definition_name("partnerkit.io", "v1alpha1", "Partner", true),
            "io.partnerkit.v1alpha1.Partner"
        );
        assert_eq!(
            definition_name("gateway.networking.k8s.io", "v1", "Gateway", true),
            "io.k8s.networking.gateway.v1.Gateway"
        );
    }
}
