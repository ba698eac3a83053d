//! Server-side apply (managedFields bookkeeping) and strategic merge patch.
//!
//! This is a port of the semantics of `sigs.k8s.io/structured-merge-diff` (merge/update.go,
//! typed/merge.go, typed/compare.go, fieldpath/serialize.go), of the apiserver field manager
//! (`stripmeta`, `managedfieldsupdater`, conflict messages, managedFields encoding/sorting)
//! and of `k8s.io/apimachinery/pkg/util/strategicpatch`, working directly on
//! `serde_json::Value` objects.
//!
//! Field sets are kept as a tree keyed by the fieldsV1 path-element strings
//! (`f:name`, `k:{"name":"x"}`, `v:"value"`, `i:0`), which is exactly the wire format.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// How a list (or map) at a path merges, from the schema (`x-kubernetes-list-type`,
/// `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Type information for a kind. `path` is the field names from the object root, list positions
/// omitted: `["spec","admins"]`, `["metadata","ownerReferences"]`.
pub trait TypeInfo {
    /// Default for unknown lists: `Atomic`.
    fn list_type(&self, path: &[&str]) -> ListType;
    /// `x-kubernetes-map-type: atomic` (default granular).
    fn map_is_atomic(&self, path: &[&str]) -> bool;
    /// strategic-merge-patch: `Some(key)` if the list at path has patchStrategy merge with
    /// patchMergeKey; `Some("")` for a merge-strategy list of primitives; `None` = replace.
    fn smp_merge_key(&self, path: &[&str]) -> Option<String>;
    /// The zero-valued object of this kind (what the real server decodes an empty object to),
    /// used as the "old" side of an Update on create. It only decides whether freshly created
    /// structs get a `".": {}` entry (e.g. built-in `f:spec` has none, a CR's `f:spec` has one).
    fn zero_object(&self) -> Value {
        json!({})
    }
}

/// One conflicting field of an apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager's name (`metadata.managedFields[].manager`).
    pub manager: String,
    /// The field path as the real server prints it: `.spec.x`, `.data.key`,
    /// `.spec.admins[email="a@b"]`, `.metadata.finalizers[="x"]`.
    pub field: String,
    /// The `StatusCause.message` of the real server: `conflict with "kubectl" using v1`,
    /// `conflict with "partnerkit"`, `conflict with "kcm" with subresource "status" using apps/v1`.
    /// (The cause's `field` is [`Conflict::field`]; `reason` is `FieldManagerConflict`.)
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SsaError {
    /// 409 Conflict (reason `Conflict`), one entry per conflicting field. Display is the real
    /// server's status message (`Apply failed with 1 conflict: conflict with "m" using v1: .data.k`,
    /// or for several: `Apply failed with 2 conflicts: conflicts with "m":\n- .a\n- .b`).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// 400/422: bad patch or bad managedFields, with a message.
    #[error("{0}")]
    Invalid(String),
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        let c = &conflicts[0];
        return format!("Apply failed with 1 conflict: {}: {}", c.message, c.field);
    }
    // Grouped by manager (sorted by the manager's printed identity), like getConflictMessage.
    let mut by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        let who = c
            .message
            .strip_prefix("conflict with ")
            .unwrap_or(&c.message)
            .to_string();
        by.entry(who).or_default().push(&c.field);
    }
    let mut lines = Vec::new();
    for (who, fields) in by {
        lines.push(format!("conflicts with {who}:"));
        for f in fields {
            lines.push(format!("- {f}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

// ---------------------------------------------------------------------------------------------
// Field sets
// ---------------------------------------------------------------------------------------------

/// A node of a field set. `member` = this path itself is in the set.
#[derive(Debug, Clone, Default, PartialEq)]
struct FSet {
    member: bool,
    children: BTreeMap<String, FSet>,
}

impl FSet {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    fn child(&mut self, k: &str) -> &mut FSet {
        self.children.entry(k.to_string()).or_default()
    }

    fn node_at(&mut self, path: &[String]) -> &mut FSet {
        let mut n = self;
        for p in path {
            n = n.child(p);
        }
        n
    }

    /// Drop nodes that are neither members nor have children.
    fn clean(&mut self) {
        self.children.retain(|_, c| {
            c.clean();
            !c.is_empty()
        });
    }

    fn union_with(&mut self, o: &FSet) {
        self.member |= o.member;
        for (k, c) in &o.children {
            self.child(k).union_with(c);
        }
    }

    fn intersection(&self, o: &FSet) -> FSet {
        let mut out = FSet {
            member: self.member && o.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(oc) = o.children.get(k) {
                let i = c.intersection(oc);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    fn difference(&self, o: &FSet) -> FSet {
        let mut out = FSet {
            member: self.member && !o.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match o.children.get(k) {
                Some(oc) => c.difference(oc),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".to_string(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_json());
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<FSet, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("expected object in fieldsV1, got {v}"))?;
        let mut out = FSet::default();
        for (k, c) in obj {
            if k == "." {
                out.member = true;
                continue;
            }
            if !(k.starts_with("f:")
                || k.starts_with("k:")
                || k.starts_with("v:")
                || k.starts_with("i:"))
            {
                return Err(format!("unexpected path element prefix in fieldsV1: {k:?}"));
            }
            let mut child = FSet::from_json(c)?;
            if child.children.is_empty() {
                child.member = true;
            }
            out.children.insert(k.clone(), child);
        }
        Ok(out)
    }

    /// All member paths, members of a node before its children's paths (fieldpath.Set.Iterate).
    fn paths(&self) -> Vec<Vec<String>> {
        fn rec(s: &FSet, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            for (k, c) in &s.children {
                if c.member {
                    let mut p = prefix.clone();
                    p.push(k.clone());
                    out.push(p);
                }
            }
            for (k, c) in &s.children {
                prefix.push(k.clone());
                rec(c, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        rec(self, &mut Vec::new(), &mut out);
        out
    }
}

/// `value.ToString` of structured-merge-diff (Go-quoted strings, JSON otherwise).
fn value_to_string(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Render a path the way `fieldpath.Path.String()` does.
fn path_string(pes: &[String]) -> String {
    let mut s = String::new();
    for pe in pes {
        if let Some(f) = pe.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            match serde_json::from_str::<Value>(k) {
                Ok(Value::Object(m)) => {
                    let parts: Vec<String> = m
                        .iter()
                        .map(|(n, v)| format!("{n}={}", value_to_string(v)))
                        .collect();
                    s.push('[');
                    s.push_str(&parts.join(","));
                    s.push(']');
                }
                _ => s.push_str(&format!("[{k}]")),
            }
        } else if let Some(v) = pe.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

/// The path element strings of the items of a list, or None when the list is atomic
/// (or its items cannot be keyed, in which case it is handled as atomic).
fn list_pes(items: &[Value], lt: &ListType) -> Option<Vec<String>> {
    match lt {
        ListType::Atomic => None,
        ListType::Set => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                if it.is_object() || it.is_array() {
                    return None;
                }
                out.push(format!("v:{}", value_to_string(it)));
            }
            Some(out)
        }
        ListType::Map(keys) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                let obj = it.as_object()?;
                let mut sorted: Vec<&String> = keys.iter().collect();
                sorted.sort();
                let mut km = Map::new();
                for k in sorted {
                    match obj.get(k) {
                        Some(v) if !v.is_null() => {
                            km.insert(k.clone(), v.clone());
                        }
                        // Built-in schemas default `protocol` to TCP (ports lists).
                        _ if k == "protocol" => {
                            km.insert(k.clone(), json!("TCP"));
                        }
                        _ => {}
                    }
                }
                if km.is_empty() {
                    return None;
                }
                out.push(format!(
                    "k:{}",
                    serde_json::to_string(&Value::Object(km)).unwrap_or_default()
                ));
            }
            Some(out)
        }
    }
}

fn with<'a>(path: &[&'a str], k: &'a str) -> Vec<&'a str> {
    let mut p = path.to_vec();
    p.push(k);
    p
}

/// `TypedValue.ToFieldSet()` for the value at `node`.
fn walk_value(v: &Value, path: &[&str], types: &dyn TypeInfo, node: &mut FSet) {
    match v {
        Value::Object(m) => {
            if (!path.is_empty() && types.map_is_atomic(path)) || m.is_empty() {
                node.member = true;
                return;
            }
            for (k, cv) in m {
                walk_value(cv, &with(path, k), types, node.child(&format!("f:{k}")));
            }
        }
        Value::Array(items) => {
            let lt = types.list_type(path);
            match list_pes(items, &lt) {
                None => node.member = true,
                Some(pes) => {
                    for (pe, it) in pes.iter().zip(items) {
                        let c = node.child(pe);
                        c.member = true;
                        if let (ListType::Map(_), Value::Object(m)) = (&lt, it) {
                            for (k, cv) in m {
                                walk_value(cv, &with(path, k), types, c.child(&format!("f:{k}")));
                            }
                        }
                    }
                }
            }
        }
        _ => node.member = true,
    }
}

fn field_set(obj: &Value, types: &dyn TypeInfo) -> FSet {
    let mut s = FSet::default();
    walk_value(obj, &[], types, &mut s);
    s.member = false;
    s.clean();
    s
}

/// The exact (non-recursive) paths the apiserver strips from a manager's set.
fn strip_meta(set: &FSet) -> FSet {
    let mut s = set.clone();
    for top in ["f:apiVersion", "f:kind"] {
        if let Some(c) = s.children.get_mut(top) {
            c.member = false;
        }
    }
    if let Some(meta) = s.children.get_mut("f:metadata") {
        meta.member = false;
        for f in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            if let Some(c) = meta.children.get_mut(&format!("f:{f}")) {
                c.member = false;
            }
        }
    }
    s.clean();
    s
}

/// The fieldsV1 JSON of an object's fields (the set an apply of `obj` would own), e.g.
/// `{"f:data":{"f:a":{}},"f:metadata":{"f:labels":{"f:app":{}}}}`.
pub fn fields_v1(obj: &Value, types: &dyn TypeInfo) -> Value {
    strip_meta(&field_set(obj, types)).to_json()
}

// ---------------------------------------------------------------------------------------------
// Compare (typed/compare.go)
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Comparison {
    added: FSet,
    modified: FSet,
    removed: FSet,
}

fn compare(lhs: &Value, rhs: &Value, types: &dyn TypeInfo) -> Comparison {
    let mut c = Comparison::default();
    compare_value(lhs, rhs, &[], &mut Vec::new(), types, &mut c);
    c.added.clean();
    c.modified.clean();
    c.removed.clean();
    c
}

fn compare_value(
    l: &Value,
    r: &Value,
    path: &[&str],
    pes: &mut Vec<String>,
    types: &dyn TypeInfo,
    c: &mut Comparison,
) {
    static EMPTY_OBJ: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
    static EMPTY_ARR: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!([]));
    match (l, r) {
        (Value::Null, Value::Null) => {}
        (Value::Null, Value::Object(_)) => compare_value(&EMPTY_OBJ, r, path, pes, types, c),
        (Value::Object(_), Value::Null) => compare_value(l, &EMPTY_OBJ, path, pes, types, c),
        (Value::Null, Value::Array(_)) => compare_value(&EMPTY_ARR, r, path, pes, types, c),
        (Value::Array(_), Value::Null) => compare_value(l, &EMPTY_ARR, path, pes, types, c),
        (Value::Object(lm), Value::Object(rm)) => {
            if !path.is_empty() && types.map_is_atomic(path) {
                if lm != rm {
                    c.modified.node_at(pes).member = true;
                }
                return;
            }
            let mut keys: Vec<&String> = lm.keys().collect();
            keys.extend(rm.keys().filter(|k| !lm.contains_key(*k)));
            for k in keys {
                let p = with(path, k);
                pes.push(format!("f:{k}"));
                match (lm.get(k), rm.get(k)) {
                    (Some(lv), Some(rv)) => compare_value(lv, rv, &p, pes, types, c),
                    (None, Some(rv)) => walk_added(rv, &p, types, c.added.node_at(pes)),
                    (Some(lv), None) => walk_added(lv, &p, types, c.removed.node_at(pes)),
                    (None, None) => {}
                }
                pes.pop();
            }
        }
        (Value::Array(la), Value::Array(ra)) => {
            let lt = types.list_type(path);
            let (lp, rp) = (list_pes(la, &lt), list_pes(ra, &lt));
            let (Some(lp), Some(rp)) = (lp, rp) else {
                if la != ra {
                    c.modified.node_at(pes).member = true;
                }
                return;
            };
            let lidx: HashMap<&String, usize> =
                lp.iter().enumerate().map(|(i, p)| (p, i)).collect();
            let ridx: HashMap<&String, usize> =
                rp.iter().enumerate().map(|(i, p)| (p, i)).collect();
            for (i, pe) in lp.iter().enumerate() {
                pes.push(pe.clone());
                match ridx.get(pe) {
                    Some(&j) => {
                        if matches!(lt, ListType::Map(_)) {
                            compare_value(&la[i], &ra[j], path, pes, types, c);
                        }
                    }
                    None => walk_item(&la[i], path, &lt, types, c.removed.node_at(pes)),
                }
                pes.pop();
            }
            for (j, pe) in rp.iter().enumerate() {
                if !lidx.contains_key(pe) {
                    pes.push(pe.clone());
                    let n = c.added.node_at(pes);
                    walk_item(&ra[j], path, &lt, types, n);
                    pes.pop();
                }
            }
        }
        _ => {
            if l != r {
                c.modified.node_at(pes).member = true;
            }
        }
    }
}

/// Field set of one added/removed list item (the item itself is a member).
fn walk_item(item: &Value, path: &[&str], lt: &ListType, types: &dyn TypeInfo, node: &mut FSet) {
    node.member = true;
    if let (ListType::Map(_), Value::Object(m)) = (lt, item) {
        for (k, cv) in m {
            walk_added(cv, &with(path, k), types, node.child(&format!("f:{k}")));
        }
    }
}

/// Field set of a value absent on the other side of a comparison: like the compare walker,
/// every node of the subtree (maps and lists included) is a member.
fn walk_added(v: &Value, path: &[&str], types: &dyn TypeInfo, node: &mut FSet) {
    node.member = true;
    match v {
        Value::Object(m) if !types.map_is_atomic(path) => {
            for (k, cv) in m {
                walk_added(cv, &with(path, k), types, node.child(&format!("f:{k}")));
            }
        }
        Value::Array(items) => {
            let lt = types.list_type(path);
            if let Some(pes) = list_pes(items, &lt) {
                for (pe, it) in pes.iter().zip(items) {
                    walk_item(it, path, &lt, types, node.child(pe));
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Merge (typed/merge.go)
// ---------------------------------------------------------------------------------------------

fn merge_value(
    l: Option<&Value>,
    r: &Value,
    path: &[&str],
    types: &dyn TypeInfo,
) -> Result<Value, SsaError> {
    match r {
        Value::Object(rm) => {
            if !path.is_empty() && types.map_is_atomic(path) {
                return Ok(strip_nulls(r));
            }
            let mut out = match l {
                Some(Value::Object(lm)) => lm.clone(),
                _ => Map::new(),
            };
            for (k, rv) in rm {
                if rv.is_null() {
                    out.remove(k);
                    continue;
                }
                let nv = merge_value(out.get(k), rv, &with(path, k), types)?;
                out.insert(k.clone(), nv);
            }
            Ok(Value::Object(out))
        }
        Value::Array(ra) => {
            let lt = types.list_type(path);
            let Some(rp) = list_pes(ra, &lt) else {
                return Ok(strip_nulls(r));
            };
            {
                let mut seen = HashSet::new();
                for pe in &rp {
                    if !seen.insert(pe) {
                        let mut ps: Vec<String> = path.iter().map(|f| format!("f:{f}")).collect();
                        ps.push(pe.clone());
                        return Err(SsaError::Invalid(format!(
                            "{}: duplicate entries for key {}",
                            path_string(&ps[..ps.len() - 1]),
                            path_string(std::slice::from_ref(pe))
                        )));
                    }
                }
            }
            let (la, lp) = match l {
                Some(Value::Array(la)) => match list_pes(la, &lt) {
                    Some(lp) => (la.as_slice(), lp),
                    None => return Ok(strip_nulls(r)),
                },
                _ => (&[][..], Vec::new()),
            };
            merge_list(la, &lp, ra, &rp, path, &lt, types).map(Value::Array)
        }
        _ => Ok(r.clone()),
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        _ => v.clone(),
    }
}

/// Port of mergingWalker.visitListItems: the applied order wins for shared items, live-only
/// items keep their relative position.
fn merge_list(
    la: &[Value],
    lpes: &[String],
    ra: &[Value],
    rpes: &[String],
    path: &[&str],
    lt: &ListType,
    types: &dyn TypeInfo,
) -> Result<Vec<Value>, SsaError> {
    let mut observed_l: HashMap<&str, usize> = HashMap::new();
    for (i, p) in lpes.iter().enumerate() {
        observed_l.entry(p.as_str()).or_insert(i);
    }
    let observed_r: HashMap<&str, usize> = rpes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let shared: Vec<&str> = rpes
        .iter()
        .map(|s| s.as_str())
        .filter(|p| observed_l.contains_key(p))
        .collect();
    let mut shared_i = 0usize;
    let mut next_shared: Option<&str> = shared.first().copied();
    if next_shared.is_some() {
        shared_i = 1;
    }
    let mut merged_r: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    let merge_item = |l: Option<&Value>, r: Option<&Value>| -> Result<Value, SsaError> {
        match (l, r) {
            (Some(l), Some(r)) => match lt {
                ListType::Map(_) => merge_value(Some(l), r, path, types),
                _ => Ok(r.clone()),
            },
            (Some(l), None) => Ok(l.clone()),
            (None, Some(r)) => merge_value(None, r, path, types),
            (None, None) => Ok(Value::Null),
        }
    };
    let (l_len, r_len) = (lpes.len(), rpes.len());
    let (mut li, mut ri) = (0usize, 0usize);
    while li < l_len || ri < r_len {
        if li < l_len && ri < r_len {
            let pe = lpes[li].as_str();
            if pe == rpes[ri] {
                merged_r.insert(pe);
                out.push(merge_item(Some(&la[li]), Some(&ra[observed_r[pe]]))?);
                li += 1;
                ri += 1;
                next_shared = shared.get(shared_i).copied();
                if next_shared.is_some() {
                    shared_i += 1;
                }
                continue;
            }
            if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < l_len {
            let pe = lpes[li].as_str();
            if !observed_r.contains_key(pe) {
                out.push(la[li].clone());
                li += 1;
                continue;
            } else if merged_r.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < r_len {
            let pe = rpes[ri].as_str();
            merged_r.insert(pe);
            let l = observed_l.get(pe).map(|&i| &la[i]);
            out.push(merge_item(l, Some(&ra[ri]))?);
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.get(shared_i).copied();
                if next_shared.is_some() {
                    shared_i += 1;
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Prune (merge/update.go prune + addBackOwnedItems + addBackDanglingItems)
// ---------------------------------------------------------------------------------------------

/// Remove from `v` everything the applier previously owned (`last`) that no manager (including
/// the applier's new set) owns any more. A path counts as owned if it, or anything below it, is
/// in some manager's set.
fn prune_value(
    v: &mut Value,
    last: &FSet,
    owners: &[&FSet],
    path: &[&str],
    types: &dyn TypeInfo,
    root: bool,
) {
    match v {
        Value::Object(m) => {
            for (k, lc) in &last.children {
                let Some(name) = k.strip_prefix("f:") else {
                    continue;
                };
                if !m.contains_key(name) {
                    continue;
                }
                let oc: Vec<&FSet> = owners.iter().filter_map(|o| o.children.get(k)).collect();
                let protected = root && matches!(name, "metadata" | "apiVersion" | "kind");
                if oc.is_empty() && !protected {
                    m.remove(name);
                } else if !lc.children.is_empty()
                    && let Some(cv) = m.get_mut(name)
                {
                    prune_value(cv, lc, &oc, &with(path, name), types, false);
                }
            }
        }
        Value::Array(items) => {
            let lt = types.list_type(path);
            let Some(pes) = list_pes(items, &lt) else {
                return;
            };
            let mut remove = vec![false; items.len()];
            for (i, pe) in pes.iter().enumerate() {
                let Some(lc) = last.children.get(pe) else {
                    continue;
                };
                let oc: Vec<&FSet> = owners.iter().filter_map(|o| o.children.get(pe)).collect();
                if oc.is_empty() {
                    remove[i] = true;
                } else if !lc.children.is_empty() {
                    prune_value(&mut items[i], lc, &oc, path, types, false);
                }
            }
            let mut i = 0;
            items.retain(|_| {
                let keep = !remove[i];
                i += 1;
                keep
            });
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// managedFields encoding
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    set: FSet,
}

/// BuildManagerIdentifier: Apply entries are keyed without apiVersion.
type Key = (String, String, String, String);

fn key_of(manager: &str, operation: &str, api_version: &str, subresource: &str) -> Key {
    let av = if operation == "Apply" {
        ""
    } else {
        api_version
    };
    (
        manager.to_string(),
        operation.to_string(),
        av.to_string(),
        subresource.to_string(),
    )
}

impl Entry {
    fn key(&self) -> Key {
        key_of(
            &self.manager,
            &self.operation,
            &self.api_version,
            &self.subresource,
        )
    }

    /// printManager of the apiserver.
    fn printed(&self) -> String {
        let mut s = value_to_string(&json!(self.manager));
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                " with subresource {}",
                value_to_string(&json!(self.subresource))
            ));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

#[derive(Default)]
struct Managers {
    order: Vec<Key>,
    map: HashMap<Key, Entry>,
}

impl Managers {
    fn insert(&mut self, e: Entry) {
        let k = e.key();
        if !self.map.contains_key(&k) {
            self.order.push(k.clone());
        }
        self.map.insert(k, e);
    }

    fn drop_empty(&mut self) {
        self.map.retain(|_, e| !e.set.is_empty());
        let map = &self.map;
        self.order.retain(|k| map.contains_key(k));
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.order.iter().filter_map(|k| self.map.get(k))
    }
}

fn decode_managed(v: Option<&Value>) -> Result<Managers, String> {
    let mut m = Managers::default();
    let items = match v {
        None | Some(Value::Null) => return Ok(m),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(format!("managedFields must be a list, got {other}")),
    };
    for (i, it) in items.iter().enumerate() {
        let o = it
            .as_object()
            .ok_or_else(|| format!("managed fields entry {i} is not an object"))?;
        let s = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let operation = s("operation");
        if operation != "Apply" && operation != "Update" {
            return Err("operation must be `Apply` or `Update`".to_string());
        }
        let api_version = s("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".to_string());
        }
        match s("fieldsType").as_str() {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            t => {
                return Err(format!(
                    "invalid fieldsType {t:?} in managed fields entry {i}"
                ));
            }
        }
        let set = match o.get("fieldsV1") {
            None | Some(Value::Null) => FSet::default(),
            Some(f) => {
                let mut set = FSet::from_json(f)
                    .map_err(|e| format!("error decoding fieldsV1 of entry {i}: {e}"))?;
                set.member = false;
                set
            }
        };
        let time = o.get("time").and_then(|t| t.as_str()).map(str::to_string);
        m.insert(Entry {
            manager: s("manager"),
            operation,
            api_version,
            time,
            subresource: s("subresource"),
            set,
        });
    }
    Ok(m)
}

fn encode_managed(m: &Managers) -> Vec<Value> {
    let mut entries: Vec<&Entry> = m.entries().filter(|e| !e.set.is_empty()).collect();
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| {
                p.time
                    .as_deref()
                    .unwrap_or("")
                    .cmp(q.time.as_deref().unwrap_or(""))
            })
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    entries
        .into_iter()
        .map(|e| {
            let mut o = Map::new();
            o.insert("manager".into(), json!(e.manager));
            o.insert("operation".into(), json!(e.operation));
            o.insert("apiVersion".into(), json!(e.api_version));
            if let Some(t) = &e.time {
                o.insert("time".into(), json!(t));
            }
            o.insert("fieldsType".into(), json!("FieldsV1"));
            o.insert("fieldsV1".into(), e.set.to_json());
            if !e.subresource.is_empty() {
                o.insert("subresource".into(), json!(e.subresource));
            }
            Value::Object(o)
        })
        .collect()
}

fn get_managed(obj: &Value) -> Option<&Value> {
    obj.get("metadata").and_then(|m| m.get("managedFields"))
}

fn remove_managed(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
}

fn set_managed(obj: &mut Value, m: &Managers) {
    let enc = encode_managed(m);
    let Some(o) = obj.as_object_mut() else { return };
    if enc.is_empty() {
        if let Some(meta) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("managedFields".into(), Value::Array(enc));
    }
}

fn api_version_of(obj: &Value) -> String {
    obj.get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Apply / Update
// ---------------------------------------------------------------------------------------------

/// Server-side apply (PATCH with `application/apply-patch+yaml`). `live` is the stored object or
/// None (create). Returns the new object with `metadata.managedFields` updated. When the apply
/// changes nothing, the returned object is equal to `live` (same managedFields and times).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
    types: &dyn TypeInfo,
    now: &str,
) -> Result<Value, SsaError> {
    if !applied.is_object() {
        return Err(SsaError::Invalid(
            "apply patch must be a JSON/YAML object".into(),
        ));
    }
    if get_managed(applied).is_some_and(|v| !v.is_null()) {
        return Err(SsaError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let sub = subresource.unwrap_or("");
    let mut managers = match live {
        Some(l) => decode_managed(get_managed(l))
            .map_err(|e| SsaError::Invalid(format!("failed to decode managed fields: {e}")))?,
        None => Managers::default(),
    };
    let mut live_clean = live.cloned().unwrap_or_else(|| json!({}));
    remove_managed(&mut live_clean);
    let mut applied_clean = applied.clone();
    remove_managed(&mut applied_clean);

    let merged = merge_value(Some(&live_clean), &applied_clean, &[], types)?;
    let set = field_set(&applied_clean, types);
    let key = key_of(manager, "Apply", "", sub);
    let previous = managers.map.get(&key).cloned();
    let last = previous.as_ref().map(|e| e.set.clone());
    managers.insert(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version_of(applied),
        time: previous.as_ref().and_then(|e| e.time.clone()),
        subresource: sub.to_string(),
        set,
    });

    let mut pruned = merged;
    if let Some(last) = last.filter(|l| !l.is_empty()) {
        let owners: Vec<&FSet> = managers.entries().map(|e| &e.set).collect();
        prune_value(&mut pruned, &last, &owners, &[], types, true);
    }

    // Updater.update(live, pruned, ..., workflow = applier, force)
    let cmp = compare(&live_clean, &pruned, types);
    let mut changed_fields = cmp.modified.clone();
    changed_fields.union_with(&cmp.added);
    let mut conflicts: Vec<(Key, FSet)> = Vec::new();
    let mut found = Vec::new();
    for e in managers.entries() {
        if e.key() == key {
            continue;
        }
        let c = e.set.intersection(&changed_fields);
        if !c.is_empty() {
            for p in c.paths() {
                found.push(Conflict {
                    manager: e.manager.clone(),
                    field: path_string(&p),
                    message: format!("conflict with {}", e.printed()),
                });
            }
            conflicts.push((e.key(), c));
        }
    }
    if !force && !found.is_empty() {
        found.sort_by(|a, b| a.message.cmp(&b.message));
        return Err(SsaError::Conflicts(found));
    }
    for (k, c) in conflicts {
        if let Some(e) = managers.map.get_mut(&k) {
            e.set = e.set.difference(&c);
        }
    }
    if !cmp.removed.is_empty() {
        for (k, e) in managers.map.iter_mut() {
            if *k != key {
                e.set = e.set.difference(&cmp.removed);
            }
        }
    }
    if let Some(e) = managers.map.get_mut(&key) {
        e.set = strip_meta(&e.set);
    }
    managers.drop_empty();

    let changed = live_clean != pruned;
    let mut out = if changed { pruned } else { live_clean };
    if changed && let Some(e) = managers.map.get_mut(&key) {
        e.time = Some(now.to_string());
    }
    set_managed(&mut out, &managers);
    Ok(out)
}

/// True when the client asked to reset managedFields (`[]` or `[{}]`).
fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) => {
            a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(|o| o.is_empty()))
        }
        _ => false,
    }
}

/// After a non-apply write (create, update/PUT, JSON/merge/strategic patch) by `manager`:
/// attribute the changed fields to manager's "Update" entry and take them from the others,
/// honouring client-supplied `metadata.managedFields` in `new` (main resource only; `[]` resets).
pub fn update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    types: &dyn TypeInfo,
    now: &str,
) -> Result<(), SsaError> {
    if !new.is_object() {
        return Err(SsaError::Invalid("object must be a JSON object".into()));
    }
    let sub = subresource.unwrap_or("");
    let old_managed = || decode_managed(old.and_then(get_managed)).unwrap_or_default();
    let mut managers = if !sub.is_empty() {
        old_managed()
    } else {
        let nm = get_managed(new);
        if is_reset(nm) {
            Managers::default()
        } else {
            match decode_managed(nm) {
                Ok(m) if !m.map.is_empty() => m,
                _ => old_managed(),
            }
        }
    };
    let mut old_clean = old.cloned().unwrap_or_else(|| types.zero_object());
    remove_managed(&mut old_clean);
    remove_managed(new);

    let cmp = compare(&old_clean, new, types);
    let mut changed_fields = cmp.modified.clone();
    changed_fields.union_with(&cmp.added);
    for e in managers.map.values_mut() {
        let c = e.set.intersection(&changed_fields);
        e.set = e.set.difference(&c).difference(&cmp.removed);
    }
    managers.drop_empty();
    let current = strip_meta(&changed_fields);
    if !current.is_empty() {
        let api_version = api_version_of(new);
        let key = key_of(manager, "Update", &api_version, sub);
        let mut set = current;
        if let Some(prev) = managers.map.get(&key) {
            set.union_with(&prev.set);
        }
        managers.insert(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: Some(now.to_string()),
            subresource: sub.to_string(),
            set,
        });
    }
    set_managed(new, &managers);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch (apimachinery/pkg/util/strategicpatch)
// ---------------------------------------------------------------------------------------------

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    types: &dyn TypeInfo,
) -> Result<Value, SsaError> {
    let (Some(o), Some(p)) = (original.as_object(), patch.as_object()) else {
        return Err(SsaError::Invalid(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    smp_map(o, p, &[], types).map(Value::Object)
}

fn smp_map(
    orig: &Map<String, Value>,
    patch: &Map<String, Value>,
    path: &[&str],
    types: &dyn TypeInfo,
) -> Result<Map<String, Value>, SsaError> {
    if let Some(d) = patch.get(DIRECTIVE) {
        return match d.as_str() {
            Some("replace") => {
                let mut p = patch.clone();
                p.remove(DIRECTIVE);
                smp_map(&Map::new(), &p, path, types)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(SsaError::Invalid(format!(
                "unknown patch type: {} in map: {}",
                d.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| d.to_string()),
                Value::Object(patch.clone())
            ))),
        };
    }
    let mut out = orig.clone();
    if let Some(rk) = patch.get(RETAIN_KEYS) {
        let Some(list) = rk.as_array() else {
            return Err(SsaError::Invalid(format!(
                "invalid $retainKeys directive: {rk}, must be a list"
            )));
        };
        let keep: HashSet<&str> = list.iter().filter_map(|v| v.as_str()).collect();
        for k in patch.keys().filter(|k| !k.starts_with('$')) {
            if !keep.contains(k.as_str()) {
                return Err(SsaError::Invalid(format!(
                    "cannot find key: {k} in $retainKeys list: {rk}"
                )));
            }
        }
        out.retain(|k, _| keep.contains(k.as_str()));
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let Some(del) = v.as_array() else {
                return Err(SsaError::Invalid(format!(
                    "invalid {k} directive: must be a list"
                )));
            };
            if let Some(Value::Array(list)) = out.get_mut(field) {
                list.retain(|x| !del.contains(x));
            }
        }
    }
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        let p = with(path, k);
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        let order = match patch.get(&format!("{SET_ORDER}{k}")) {
            Some(Value::Array(o)) => Some(o.as_slice()),
            Some(_) => {
                return Err(SsaError::Invalid(format!(
                    "invalid {SET_ORDER}{k} directive: must be a list"
                )));
            }
            None => None,
        };
        let nv = match (out.get(k), pv) {
            (Some(Value::Object(om)), Value::Object(pm)) => {
                Value::Object(smp_map(om, pm, &p, types)?)
            }
            (None, Value::Object(pm))
                if pm.get(DIRECTIVE).and_then(|d| d.as_str()) == Some("delete") =>
            {
                continue;
            }
            (_, Value::Object(pm)) => Value::Object(smp_map(&Map::new(), pm, &p, types)?),
            (Some(Value::Array(oa)), Value::Array(pa)) => {
                Value::Array(smp_list(oa, pa, order, &p, types)?)
            }
            (_, Value::Array(pa)) => Value::Array(smp_list(&[], pa, order, &p, types)?),
            (_, v) => v.clone(),
        };
        out.insert(k.clone(), nv);
    }
    // `$setElementOrder` for lists not otherwise in the patch: reorder only.
    for (k, v) in patch {
        let Some(field) = k.strip_prefix(SET_ORDER) else {
            continue;
        };
        if patch.contains_key(field) {
            continue;
        }
        let Some(order) = v.as_array() else {
            return Err(SsaError::Invalid(format!(
                "invalid {k} directive: must be a list"
            )));
        };
        if let Some(Value::Array(list)) = out.get(field).cloned() {
            let p = with(path, field);
            let reordered = smp_list(&list, &[], Some(order), &p, types)?;
            out.insert(field.to_string(), Value::Array(reordered));
        }
    }
    Ok(out)
}

fn smp_list(
    orig: &[Value],
    patch: &[Value],
    set_order: Option<&[Value]>,
    path: &[&str],
    types: &dyn TypeInfo,
) -> Result<Vec<Value>, SsaError> {
    let Some(merge_key) = types.smp_merge_key(path) else {
        // patchStrategy replace (the default): the patch list is the new value.
        return Ok(patch.iter().map(strip_nulls).collect());
    };
    let is_maps = orig.iter().chain(patch.iter()).any(|v| v.is_object());
    if !is_maps {
        // Merge-strategy list of primitives: union, deduplicated.
        let mut merged: Vec<Value> = Vec::new();
        for v in orig.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let order = set_order.unwrap_or(patch);
        return Ok(normalize_order(merged, order, orig, &|v: &Value| {
            Some(v.clone())
        }));
    }
    if merge_key.is_empty() {
        return Err(SsaError::Invalid(format!(
            "cannot merge lists without merge key for {}",
            path.join(".")
        )));
    }
    let key_of = |v: &Value| v.as_object().and_then(|o| o.get(&merge_key)).cloned();
    let mut original: Vec<Value> = orig.to_vec();
    let mut items: Vec<&Map<String, Value>> = Vec::new();
    let mut replace = false;
    for p in patch {
        let Some(pm) = p.as_object() else {
            return Err(SsaError::Invalid(format!(
                "patch item {p} of list {} is not a map",
                path.join(".")
            )));
        };
        if let Some(d) = pm.get(DIRECTIVE) {
            match d.as_str() {
                Some("replace") => replace = true,
                Some("delete") => {
                    let Some(kv) = pm.get(&merge_key) else {
                        return Err(SsaError::Invalid(format!(
                            "delete patch type with no merge key defined: {}",
                            Value::Object(pm.clone())
                        )));
                    };
                    original.retain(|o| o.as_object().and_then(|o| o.get(&merge_key)) != Some(kv));
                }
                Some("merge") => {
                    return Err(SsaError::Invalid(
                        "merging lists cannot yet be specified in the patch".into(),
                    ));
                }
                _ => {
                    return Err(SsaError::Invalid(format!(
                        "unknown patch type: {d} in map: {}",
                        Value::Object(pm.clone())
                    )));
                }
            }
            continue;
        }
        if !pm.contains_key(&merge_key) {
            return Err(SsaError::Invalid(format!(
                "map: {} does not contain declared merge key: {merge_key}",
                Value::Object(pm.clone())
            )));
        }
        items.push(pm);
    }
    if replace {
        return items
            .into_iter()
            .map(|pm| smp_map(&Map::new(), pm, path, types).map(Value::Object))
            .collect();
    }
    let mut merged = original.clone();
    for pm in &items {
        let kv = pm.get(&merge_key);
        match merged
            .iter()
            .position(|o| o.as_object().and_then(|o| o.get(&merge_key)) == kv)
        {
            Some(i) => {
                let om = merged[i].as_object().cloned().unwrap_or_default();
                merged[i] = Value::Object(smp_map(&om, pm, path, types)?);
            }
            None => merged.push(Value::Object(smp_map(&Map::new(), pm, path, types)?)),
        }
    }
    let patch_items: Vec<Value> = items.iter().map(|m| Value::Object((*m).clone())).collect();
    let order = set_order.unwrap_or(&patch_items);
    Ok(normalize_order(merged, order, &original, &key_of))
}

/// normalizeElementOrder + mergeSortedSlice: items named in `order` come in that order; items
/// only on the server keep their original relative order and are interleaved by server order.
fn normalize_order(
    merged: Vec<Value>,
    order: &[Value],
    server: &[Value],
    key: &dyn Fn(&Value) -> Option<Value>,
) -> Vec<Value> {
    let index = |list: &[Value], v: &Value| -> Option<usize> {
        let k = key(v)?;
        list.iter().position(|x| key(x).as_ref() == Some(&k))
    };
    let (mut patch_items, mut server_only): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|v| index(order, v).is_some());
    patch_items.sort_by_key(|v| index(order, v).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index(server, v).unwrap_or(usize::MAX));
    let (left, right) = (server_only, patch_items);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        if i >= left.len() {
            out.push(right[j].clone());
            j += 1;
        } else if j >= right.len() {
            out.push(left[i].clone());
            i += 1;
        } else {
            let less = match (index(server, &left[i]), index(server, &right[j])) {
                (Some(a), Some(b)) => a < b,
                _ => false,
            };
            if less {
                out.push(left[i].clone());
                i += 1;
            } else {
                out.push(right[j].clone());
                j += 1;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Type information
// ---------------------------------------------------------------------------------------------

fn map_keys(keys: &[&str]) -> ListType {
    ListType::Map(keys.iter().map(|s| s.to_string()).collect())
}

/// ObjectMeta built-ins: (ssa list type, smp merge key) for `metadata.*` paths.
fn metadata_list(path: &[&str]) -> Option<(ListType, Option<String>)> {
    match path {
        ["metadata", "finalizers"] => Some((ListType::Set, Some(String::new()))),
        ["metadata", "ownerReferences"] => Some((map_keys(&["uid"]), Some("uid".into()))),
        ["metadata", "managedFields"] => Some((ListType::Atomic, None)),
        ["metadata", ..] => Some((ListType::Atomic, None)),
        _ => None,
    }
}

/// PodSpec-relative lists (path relative to a PodSpec).
fn pod_spec_list(p: &[&str]) -> Option<(ListType, Option<String>)> {
    let name = || Some((map_keys(&["name"]), Some("name".to_string())));
    match p {
        ["containers" | "initContainers" | "ephemeralContainers"] => name(),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "env",
        ] => name(),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "ports",
        ] => Some((
            map_keys(&["containerPort", "protocol"]),
            Some("containerPort".into()),
        )),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "volumeMounts",
        ] => Some((map_keys(&["mountPath"]), Some("mountPath".into()))),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "volumeDevices",
        ] => Some((map_keys(&["devicePath"]), Some("devicePath".into()))),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            "resources",
            "claims",
        ] => Some((map_keys(&["name"]), None)),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => name(),
        ["hostAliases"] => Some((map_keys(&["ip"]), Some("ip".into()))),
        ["topologySpreadConstraints"] => Some((
            map_keys(&["topologyKey", "whenUnsatisfiable"]),
            Some("topologyKey".into()),
        )),
        _ => None,
    }
}

/// Built-in kinds' list semantics: (ssa list type, smp merge key).
fn builtin_list(kind: &str, path: &[&str]) -> (ListType, Option<String>) {
    if let Some(r) = metadata_list(path) {
        return r;
    }
    // Pod templates: the PodSpec is after the last "template","spec" (or "spec" for Pods).
    let pod_spec_start = if kind == "Pod" && path.first() == Some(&"spec") {
        Some(1)
    } else {
        path.windows(2)
            .rposition(|w| w == ["template", "spec"])
            .map(|i| i + 2)
    };
    if let Some(start) = pod_spec_start
        && let Some(r) = pod_spec_list(&path[start..])
    {
        return r;
    }
    let name = || (map_keys(&["name"]), Some("name".to_string()));
    match (kind, path) {
        (_, ["status", "conditions"]) => (map_keys(&["type"]), Some("type".into())),
        ("Pod", ["status", "podIPs" | "hostIPs"]) => (map_keys(&["ip"]), Some("ip".into())),
        ("Pod", ["status", "resourceClaimStatuses"]) => name(),
        ("Service", ["spec", "ports"]) => (map_keys(&["port", "protocol"]), Some("port".into())),
        ("ServiceAccount", ["secrets"]) => name(),
        ("Node", ["spec", "podCIDRs"]) => (ListType::Set, Some(String::new())),
        ("Node", ["status", "addresses"]) => (map_keys(&["type"]), Some("type".into())),
        ("ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration", ["webhooks"]) => name(),
        (
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
            ["webhooks", "matchConditions"],
        ) => name(),
        (
            "ValidatingAdmissionPolicy" | "MutatingAdmissionPolicy",
            ["spec", "matchConditions" | "variables"],
        ) => name(),
        ("ValidatingAdmissionPolicyBinding", ["spec", "validationActions"]) => {
            (ListType::Set, None)
        }
        ("EndpointSlice", ["endpoints", "addresses"]) => (ListType::Set, None),
        ("CSIDriver", ["spec", "volumeLifecycleModes"]) => (ListType::Set, None),
        ("CSINode", ["spec", "drivers"]) => name(),
        ("Job", ["spec", "podFailurePolicy", "rules", "onExitCodes", "values"]) => {
            (ListType::Set, None)
        }
        ("Job", ["status", "uncountedTerminatedPods", "failed" | "succeeded"]) => {
            (ListType::Set, None)
        }
        ("FlowSchema", ["spec", "rules", "resourceRules" | "nonResourceRules", _]) => {
            (ListType::Set, None)
        }
        ("CustomResourceDefinition", [.., "x-kubernetes-validations"]) => {
            (map_keys(&["rule"]), None)
        }
        _ => (ListType::Atomic, None),
    }
}

fn builtin_map_atomic(kind: &str, path: &[&str]) -> bool {
    match path.last() {
        // LabelSelector / NodeSelector are `+structType=atomic`; Service and
        // ReplicationController `spec.selector` and PodSpec `nodeSelector` are atomic maps.
        Some(
            &("selector" | "nodeSelector" | "podSelector" | "namespaceSelector" | "labelSelector"
            | "objectSelector"),
        ) => path.first() != Some(&"metadata"),
        Some(&"roleRef") => matches!(kind, "RoleBinding" | "ClusterRoleBinding"),
        _ => false,
    }
}

/// Type info for built-in kinds from a static table (keyed by kind name).
pub struct BuiltinTypeInfo {
    pub kind: String,
}

impl BuiltinTypeInfo {
    pub fn new(kind: impl Into<String>) -> Self {
        BuiltinTypeInfo { kind: kind.into() }
    }
}

impl TypeInfo for BuiltinTypeInfo {
    fn list_type(&self, path: &[&str]) -> ListType {
        builtin_list(&self.kind, path).0
    }
    fn map_is_atomic(&self, path: &[&str]) -> bool {
        builtin_map_atomic(&self.kind, path)
    }
    fn smp_merge_key(&self, path: &[&str]) -> Option<String> {
        builtin_list(&self.kind, path).1
    }
    fn zero_object(&self) -> Value {
        let meta = json!({"creationTimestamp": null});
        match self.kind.as_str() {
            "Pod" => json!({"metadata": meta, "spec": {"containers": null}, "status": {}}),
            "Deployment" => {
                json!({"metadata": meta, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}, "strategy": {}}, "status": {}})
            }
            "ReplicaSet" | "ReplicationController" => {
                json!({"metadata": meta, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}}, "status": {"replicas": 0}})
            }
            "StatefulSet" => {
                json!({"metadata": meta, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}, "updateStrategy": {}}, "status": {"replicas": 0, "availableReplicas": 0}})
            }
            "DaemonSet" => {
                json!({"metadata": meta, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}, "updateStrategy": {}}, "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}})
            }
            "Job" => {
                json!({"metadata": meta, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}}, "status": {}})
            }
            "CronJob" => {
                json!({"metadata": meta, "spec": {"schedule": "", "jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {"template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}}}}, "status": {}})
            }
            "Service" => json!({"metadata": meta, "spec": {}, "status": {"loadBalancer": {}}}),
            "Namespace"
            | "Node"
            | "PersistentVolumeClaim"
            | "PersistentVolume"
            | "HorizontalPodAutoscaler"
            | "PodDisruptionBudget" => {
                json!({"metadata": meta, "spec": {}, "status": {}})
            }
            "CustomResourceDefinition" => {
                json!({"metadata": meta, "spec": {"group": "", "names": {"plural": "", "kind": ""}, "scope": "", "versions": null}, "status": {"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": null}})
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                json!({"metadata": meta, "roleRef": {"apiGroup": "", "kind": "", "name": ""}})
            }
            "Role" | "ClusterRole" => json!({"metadata": meta, "rules": null}),
            _ => json!({"metadata": meta}),
        }
    }
}

/// Type info that reads an OpenAPI v3 (CRD structural) schema's extensions; `metadata`
/// sub-fields get the ObjectMeta built-ins.
pub struct SchemaTypeInfo {
    schema: Value,
}

impl SchemaTypeInfo {
    pub fn new(open_api_v3_schema: &Value) -> Self {
        SchemaTypeInfo {
            schema: open_api_v3_schema.clone(),
        }
    }

    fn node(&self, path: &[&str]) -> Option<&Value> {
        let mut s = &self.schema;
        for name in path {
            while let Some(items) = s.get("items") {
                s = items;
            }
            s = match s.get("properties").and_then(|p| p.get(*name)) {
                Some(c) => c,
                None => match s.get("additionalProperties") {
                    Some(a) if a.is_object() => a,
                    _ => return None,
                },
            };
        }
        Some(s)
    }
}

impl TypeInfo for SchemaTypeInfo {
    fn list_type(&self, path: &[&str]) -> ListType {
        if let Some((lt, _)) = metadata_list(path) {
            return lt;
        }
        let Some(n) = self.node(path) else {
            return ListType::Atomic;
        };
        match n.get("x-kubernetes-list-type").and_then(|v| v.as_str()) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                n.get("x-kubernetes-list-map-keys")
                    .and_then(|k| k.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        }
    }
    fn map_is_atomic(&self, path: &[&str]) -> bool {
        if path.first() == Some(&"metadata") {
            return false;
        }
        self.node(path)
            .and_then(|n| n.get("x-kubernetes-map-type"))
            .and_then(|v| v.as_str())
            == Some("atomic")
    }
    fn smp_merge_key(&self, path: &[&str]) -> Option<String> {
        metadata_list(path).and_then(|(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2024-01-01T00:00:01Z";
    const T2: &str = "2024-01-01T00:00:02Z";
    const T3: &str = "2024-01-01T00:00:03Z";

    fn cm_types() -> BuiltinTypeInfo {
        BuiltinTypeInfo::new("ConfigMap")
    }

    fn cm(meta_extra: Value, data: Value) -> Value {
        let mut meta = json!({"name": "cm", "namespace": "default"});
        for (k, v) in meta_extra.as_object().unwrap() {
            meta[k] = v.clone();
        }
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    }

    fn mf(obj: &Value) -> Value {
        obj["metadata"]["managedFields"].clone()
    }

    fn crd_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "x": {"type": "string"},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "admins": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["email"],
                            "items": {"type": "object", "properties": {"email": {"type": "string"}, "role": {"type": "string"}}}
                        },
                        "items": {"type": "array", "items": {"type": "integer"}},
                        "sel": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}}
                    }
                }
            }
        })
    }

    fn cr(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Team", "metadata": {"name": "t"}, "spec": spec})
    }

    #[test]
    fn create_via_apply() {
        let applied = cm(json!({"labels": {"app": "x"}}), json!({"a": "1"}));
        let out = apply(None, &applied, "kubectl", None, false, &cm_types(), T1).unwrap();
        let mut expected = applied.clone();
        expected["metadata"]["managedFields"] = json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
        }]);
        assert_eq!(out, expected);
    }

    #[test]
    fn reapply_identical_is_noop() {
        let applied = cm(json!({"labels": {"app": "x"}}), json!({"a": "1"}));
        let r1 = apply(None, &applied, "kubectl", None, false, &cm_types(), T1).unwrap();
        let r2 = apply(Some(&r1), &applied, "kubectl", None, false, &cm_types(), T2).unwrap();
        assert_eq!(
            serde_json::to_string(&r1).unwrap(),
            serde_json::to_string(&r2).unwrap()
        );
    }

    #[test]
    fn apply_rejects_managed_fields() {
        let mut applied = cm(json!({}), json!({"a": "1"}));
        applied["metadata"]["managedFields"] = json!([]);
        let err = apply(None, &applied, "m", None, false, &cm_types(), T1).unwrap_err();
        assert_eq!(err.to_string(), "metadata.managedFields must be nil");
    }

    #[test]
    fn two_managers_share_equal_value() {
        let r1 = apply(
            None,
            &cm(json!({}), json!({"a": "1"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T1,
        )
        .unwrap();
        let r2 = apply(
            Some(&r1),
            &cm(json!({}), json!({"a": "1", "b": "2"})),
            "other",
            None,
            false,
            &cm_types(),
            T2,
        )
        .unwrap();
        assert_eq!(r2["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            mf(&r2),
            json!([
                {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
                {"manager": "other", "operation": "Apply", "apiVersion": "v1", "time": T2, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}}}
            ])
        );
        // An apply that only takes shared ownership changes no value: like the real server, the
        // new entry gets no time.
        let r3 = apply(
            Some(&r1),
            &cm(json!({}), json!({"a": "1"})),
            "third",
            None,
            false,
            &cm_types(),
            T3,
        )
        .unwrap();
        assert_eq!(
            mf(&r3)[0],
            json!({"manager": "third", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}})
        );
    }

    #[test]
    fn conflict_without_force_and_with_force() {
        let r1 = apply(
            None,
            &cm(json!({"labels": {"app": "x"}}), json!({"a": "1"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T1,
        )
        .unwrap();
        let other = cm(json!({}), json!({"a": "2"}));
        let err = apply(
            Some(&r1),
            &other,
            "partnerkit",
            None,
            false,
            &cm_types(),
            T2,
        )
        .unwrap_err();
        match &err {
            SsaError::Conflicts(c) => assert_eq!(
                c,
                &vec![Conflict {
                    manager: "kubectl".into(),
                    field: ".data.a".into(),
                    message: "conflict with \"kubectl\"".into()
                }]
            ),
            e => panic!("unexpected {e:?}"),
        }
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl\": .data.a"
        );

        let r2 = apply(Some(&r1), &other, "partnerkit", None, true, &cm_types(), T2).unwrap();
        assert_eq!(r2["data"], json!({"a": "2"}));
        assert_eq!(
            mf(&r2),
            json!([
                {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}},
                {"manager": "partnerkit", "operation": "Apply", "apiVersion": "v1", "time": T2, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}
            ])
        );
    }

    #[test]
    fn multiple_conflicts_message() {
        let r1 = apply(
            None,
            &cm(json!({}), json!({"a": "1", "b": "1"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T1,
        )
        .unwrap();
        let err = apply(
            Some(&r1),
            &cm(json!({}), json!({"a": "2", "b": "2"})),
            "x",
            None,
            false,
            &cm_types(),
            T2,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl\":\n- .data.a\n- .data.b"
        );
    }

    #[test]
    fn removing_field_from_applied_config_deletes_it() {
        let r1 = apply(
            None,
            &cm(json!({"labels": {"app": "x"}}), json!({"a": "1", "b": "2"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T1,
        )
        .unwrap();
        let r2 = apply(
            Some(&r1),
            &cm(json!({}), json!({"a": "1"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T2,
        )
        .unwrap();
        let mut expected = cm(json!({}), json!({"a": "1"}));
        expected["metadata"]["managedFields"] = json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T2,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}
        }]);
        assert_eq!(r2, expected);
    }

    #[test]
    fn removing_shared_field_keeps_it() {
        let r1 = apply(
            None,
            &cm(json!({}), json!({"a": "1", "b": "2"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T1,
        )
        .unwrap();
        let r2 = apply(
            Some(&r1),
            &cm(json!({}), json!({"a": "1"})),
            "other",
            None,
            false,
            &cm_types(),
            T2,
        )
        .unwrap();
        let r3 = apply(
            Some(&r2),
            &cm(json!({}), json!({"b": "2"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T3,
        )
        .unwrap();
        assert_eq!(r3["data"], json!({"a": "1", "b": "2"}));
        // Nothing changed in the object, so kubectl's time stays at T1; "other" only took shared
        // ownership (no value changed), so its entry has no time and sorts first (time 0).
        assert_eq!(
            mf(&r3),
            json!([
                {"manager": "other", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
                {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}}
            ])
        );
    }

    #[test]
    fn set_and_map_lists_merge_with_other_managers_items() {
        let t = SchemaTypeInfo::new(&crd_schema());
        let a = cr(json!({"tags": ["a", "b"], "admins": [{"email": "a@b", "role": "x"}]}));
        let r1 = apply(None, &a, "alice", None, false, &t, T1).unwrap();
        let b = cr(json!({"tags": ["c"], "admins": [{"email": "c@d", "role": "y"}]}));
        let r2 = apply(Some(&r1), &b, "bob", None, false, &t, T2).unwrap();
        assert_eq!(
            r2["spec"],
            json!({"tags": ["a", "b", "c"], "admins": [{"email": "a@b", "role": "x"}, {"email": "c@d", "role": "y"}]})
        );
        assert_eq!(
            mf(&r2)[1]["fieldsV1"],
            json!({"f:spec": {
                "f:admins": {"k:{\"email\":\"c@d\"}": {".": {}, "f:email": {}, "f:role": {}}},
                "f:tags": {"v:\"c\"": {}}
            }})
        );
        // alice drops tag b and her admin: both are removed, bob's items stay.
        let r3 = apply(
            Some(&r2),
            &cr(json!({"tags": ["a"]})),
            "alice",
            None,
            false,
            &t,
            T3,
        )
        .unwrap();
        assert_eq!(
            r3["spec"],
            json!({"tags": ["a", "c"], "admins": [{"email": "c@d", "role": "y"}]})
        );
        assert_eq!(
            mf(&r3)[1]["fieldsV1"],
            json!({"f:spec": {"f:tags": {"v:\"a\"": {}}}})
        );
        // Conflict inside a map-list item names the item by key.
        let err = apply(
            Some(&r2),
            &cr(json!({"admins": [{"email": "a@b", "role": "z"}]})),
            "bob",
            None,
            false,
            &t,
            T3,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"alice\": .spec.admins[email=\"a@b\"].role"
        );
    }

    #[test]
    fn map_list_order_interleaves() {
        let t = SchemaTypeInfo::new(&crd_schema());
        let live = cr(json!({"admins": [{"email": "1"}, {"email": "2"}, {"email": "3"}]}));
        let merged = merge_value(
            Some(&live),
            &cr(json!({"admins": [{"email": "3"}, {"email": "4"}, {"email": "1"}]})),
            &[],
            &t,
        )
        .unwrap();
        assert_eq!(
            merged["spec"]["admins"],
            json!([{"email": "2"}, {"email": "3"}, {"email": "4"}, {"email": "1"}])
        );
    }

    #[test]
    fn atomic_list_replaced() {
        let t = SchemaTypeInfo::new(&crd_schema());
        let r1 = apply(
            None,
            &cr(json!({"items": [1, 2], "sel": {"a": "1"}})),
            "alice",
            None,
            false,
            &t,
            T1,
        )
        .unwrap();
        assert_eq!(
            mf(&r1)[0]["fieldsV1"],
            json!({"f:spec": {"f:items": {}, "f:sel": {}}})
        );
        let err = apply(
            Some(&r1),
            &cr(json!({"items": [3]})),
            "bob",
            None,
            false,
            &t,
            T2,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"alice\": .spec.items"
        );
        let r2 = apply(
            Some(&r1),
            &cr(json!({"items": [3], "sel": {"b": "2"}})),
            "bob",
            None,
            true,
            &t,
            T2,
        )
        .unwrap();
        assert_eq!(r2["spec"], json!({"items": [3], "sel": {"b": "2"}}));
        assert_eq!(mf(&r2).as_array().unwrap().len(), 1);
        assert_eq!(mf(&r2)[0]["manager"], "bob");
    }

    #[test]
    fn update_takes_ownership_then_apply_conflicts() {
        let r1 = apply(
            None,
            &cm(json!({}), json!({"a": "1", "b": "1"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T1,
        )
        .unwrap();
        let mut edited = r1.clone();
        edited["data"]["a"] = json!("2");
        update(
            Some(&r1),
            &mut edited,
            "kubectl-edit",
            None,
            &cm_types(),
            T2,
        )
        .unwrap();
        assert_eq!(
            mf(&edited),
            json!([
                {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}},
                {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "time": T2, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}
            ])
        );
        let err = apply(
            Some(&edited),
            &cm(json!({}), json!({"a": "1", "b": "1"})),
            "kubectl",
            None,
            false,
            &cm_types(),
            T3,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.a"
        );
        match err {
            SsaError::Conflicts(c) => {
                assert_eq!(c[0].message, "conflict with \"kubectl-edit\" using v1")
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn update_on_create_and_noop_and_reset() {
        let mut obj = cm(json!({"labels": {"app": "x"}}), json!({"a": "1"}));
        update(None, &mut obj, "kubectl-create", None, &cm_types(), T1).unwrap();
        assert_eq!(
            mf(&obj),
            json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}])
        );
        // No change: same managedFields, no time bump.
        let mut same = obj.clone();
        update(
            Some(&obj),
            &mut same,
            "kubectl-create",
            None,
            &cm_types(),
            T2,
        )
        .unwrap();
        assert_eq!(same, obj);
        // Removing a field drops it from the sets.
        let mut removed = obj.clone();
        removed["metadata"]["labels"] = json!({});
        removed.as_object_mut().unwrap().remove("data");
        update(Some(&obj), &mut removed, "other", None, &cm_types(), T2).unwrap();
        assert_eq!(
            mf(&removed),
            json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {}}}}])
        );
        // Client-sent `[]` resets managedFields.
        let mut reset = obj.clone();
        reset["metadata"]["managedFields"] = json!([]);
        update(Some(&obj), &mut reset, "x", None, &cm_types(), T2).unwrap();
        assert!(reset["metadata"].get("managedFields").is_none());
        // Client-sent managedFields are honoured; absent keeps old's.
        let mut custom = obj.clone();
        custom["metadata"]["managedFields"] = json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]);
        update(Some(&obj), &mut custom, "x", None, &cm_types(), T2).unwrap();
        assert_eq!(
            mf(&custom),
            json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}])
        );
        let mut absent = obj.clone();
        absent["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        update(Some(&obj), &mut absent, "x", None, &cm_types(), T2).unwrap();
        assert_eq!(absent, obj);
    }

    #[test]
    fn status_subresource_entry() {
        let t = BuiltinTypeInfo::new("Deployment");
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let mut new = live.clone();
        new["status"] = json!({"conditions": [{"type": "Available", "status": "True"}]});
        update(Some(&live), &mut new, "kcm", Some("status"), &t, T1).unwrap();
        assert_eq!(
            mf(&new),
            json!([{"manager": "kcm", "operation": "Update", "apiVersion": "apps/v1", "time": T1, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {".": {}, "f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {".": {}, "f:status": {}, "f:type": {}}}}},
            "subresource": "status"}])
        );
        let mut again = new.clone();
        again["status"]["conditions"][0]["status"] = json!("False");
        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "status": {"conditions": [{"type": "Available", "status": "False"}]}});
        let err = apply(Some(&new), &applied, "me", Some("status"), false, &t, T2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kcm\" with subresource \"status\" using apps/v1: .status.conditions[type=\"Available\"].status"
        );
    }

    #[test]
    fn fields_v1_shapes() {
        let t = BuiltinTypeInfo::new("Deployment");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "x"}, "finalizers": ["f1"], "ownerReferences": [{"uid": "u1", "name": "o", "kind": "K", "apiVersion": "v1"}]},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        assert_eq!(
            fields_v1(&d, &t),
            json!({
                "f:metadata": {
                    "f:finalizers": {"v:\"f1\"": {}},
                    "f:labels": {"f:app": {}},
                    "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {".": {}, "f:apiVersion": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}}
                },
                "f:spec": {
                    "f:selector": {},
                    "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }}}}
                }
            })
        );
        let c = cm(json!({}), json!({"k": "v"}));
        assert_eq!(fields_v1(&c, &cm_types()), json!({"f:data": {"f:k": {}}}));
    }

    #[test]
    fn update_on_create_deployment_has_no_dot_for_spec() {
        let t = BuiltinTypeInfo::new("Deployment");
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        update(None, &mut d, "kubectl-create", None, &t, T1).unwrap();
        assert_eq!(
            mf(&d)[0]["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        let crt = SchemaTypeInfo::new(&crd_schema());
        let mut c = cr(json!({"x": "1"}));
        update(None, &mut c, "kubectl-create", None, &crt, T1).unwrap();
        assert_eq!(
            mf(&c)[0]["fieldsV1"],
            json!({"f:spec": {".": {}, "f:x": {}}})
        );
    }

    // ---- strategic merge patch ----

    #[test]
    fn smp_owner_references_merge_by_uid() {
        let t = cm_types();
        let orig = json!({"metadata": {"name": "a", "ownerReferences": [{"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}]}});
        let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "y2"}, {"uid": "3", "name": "z"}]}});
        let out = strategic_merge(&orig, &patch, &t).unwrap();
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "1", "name": "x"}, {"uid": "2", "name": "y2"}, {"uid": "3", "name": "z"}])
        );
    }

    #[test]
    fn smp_finalizers_primitive_merge_and_delete() {
        let t = cm_types();
        let orig = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out =
            strategic_merge(&orig, &json!({"metadata": {"finalizers": ["c", "a"]}}), &t).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = strategic_merge(
            &orig,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            &t,
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn smp_patch_delete_list_item_and_null_key() {
        let t = BuiltinTypeInfo::new("Pod");
        let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"containers": [{"name": "a", "$patch": "delete"}]}});
        let out = strategic_merge(&orig, &patch, &t).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"containers": [{"name": "b", "image": "2"}]}})
        );
        let err = strategic_merge(
            &orig,
            &json!({"spec": {"containers": [{"image": "x"}]}}),
            &t,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "map: {\"image\":\"x\"} does not contain declared merge key: name"
        );
    }

    #[test]
    fn smp_set_element_order() {
        let t = BuiltinTypeInfo::new("Pod");
        let orig = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "9"}]}});
        let out = strategic_merge(&orig, &patch, &t).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "3"}, {"name": "a", "image": "9"}, {"name": "b", "image": "2"}])
        );
        // order-only directive
        let out = strategic_merge(&orig, &json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}]}}), &t).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "2"}, {"name": "a", "image": "1"}, {"name": "c", "image": "3"}])
        );
    }

    #[test]
    fn smp_rolebinding_subjects_replaced() {
        let t = BuiltinTypeInfo::new("RoleBinding");
        let orig = json!({"subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}], "roleRef": {"kind": "Role", "name": "r"}});
        let out = strategic_merge(
            &orig,
            &json!({"subjects": [{"kind": "User", "name": "c"}]}),
            &t,
        )
        .unwrap();
        assert_eq!(out["subjects"], json!([{"kind": "User", "name": "c"}]));
        assert_eq!(out["roleRef"], json!({"kind": "Role", "name": "r"}));
    }

    #[test]
    fn smp_map_directives_and_retain_keys() {
        let t = BuiltinTypeInfo::new("Deployment");
        let orig = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "x": {"a": 1, "b": 2}}});
        let out = strategic_merge(
            &orig,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            &t,
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = strategic_merge(
            &orig,
            &json!({"spec": {"x": {"$patch": "replace", "c": 3}}}),
            &t,
        )
        .unwrap();
        assert_eq!(out["spec"]["x"], json!({"c": 3}));
        let out =
            strategic_merge(&orig, &json!({"spec": {"x": {"$patch": "delete"}}}), &t).unwrap();
        assert_eq!(out["spec"]["x"], json!({}));
        let out = strategic_merge(
            &orig,
            &json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "a"}]}}),
            &BuiltinTypeInfo::new("Pod"),
        )
        .unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "a"}]));
    }
}
