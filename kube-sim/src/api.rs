//! Resource requests: get, list, watch, create, update, patch (JSON, merge, strategic,
//! apply), delete and deletecollection, with the API server's object semantics.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::authz::{AdmissionInput, UserInfo};
use crate::kinds::{GroupResource, ResourceInfo};
use crate::meta;
use crate::present::{self, Columns};
use crate::request::{Query, RequestInfo};
use crate::selectors::{FieldLabels, FieldSelector, LabelSelector};
use crate::server::{Reply, field_manager};
use crate::sim::Sim;
use crate::ssa::{self, BuiltinTypeInfo, SsaError, TypeInfo};
use crate::status::{self, ApiError};
use crate::store::{Event, Key, Obj};

pub async fn serve(
    sim: &Arc<Sim>,
    user: &UserInfo,
    info: &RequestInfo,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let ri = sim
        .registry
        .read()
        .expect("registry lock")
        .get(&info.group, &info.version, &info.resource)
        .ok_or_else(ApiError::no_route)?;
    let is_namespaces = ri.group.is_empty() && ri.plural.as_ref() == "namespaces";
    let ns_in_path = !info.namespace.is_empty() && !is_namespaces;
    if ns_in_path && !ri.namespaced {
        return Err(ApiError::no_route());
    }
    let sub = info.subresource.as_str();
    let sub_ok = sub.is_empty()
        || (sub == "status" && ri.has_status)
        || (sub == "finalize" && ri.group.is_empty() && ri.plural.as_ref() == "namespaces");
    if !sub_ok {
        return Err(ApiError::no_route());
    }
    let ctx = Ctx {
        sim,
        ri: ri.clone(),
        user,
        query,
        headers,
        ns: if ri.namespaced {
            info.namespace.clone()
        } else {
            String::new()
        },
        name: info.name.clone(),
        sub: sub.to_string(),
        manager: field_manager(query, headers),
    };
    if ri.virtual_create {
        return match info.verb.as_str() {
            "create" => {
                crate::reviews::create(sim, user, &ri, &info.namespace, &decode(&body, headers)?)
            }
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    if ri.namespaced && info.namespace.is_empty() && !matches!(info.verb.as_str(), "list" | "watch")
    {
        return Err(ApiError::no_route());
    }
    match info.verb.as_str() {
        "get" => ctx.get(),
        "list" => ctx.list(),
        "watch" => crate::watch::watch(&ctx),
        "create" => ctx.create(decode(&body, headers)?),
        "update" => ctx.update(decode(&body, headers)?),
        "patch" => ctx.patch(&body, headers),
        "delete" => ctx.delete(&body),
        "deletecollection" => ctx.delete_collection(&body),
        _ => Err(ApiError::method_not_allowed()),
    }
}

pub struct Ctx<'a> {
    pub sim: &'a Arc<Sim>,
    pub ri: Arc<ResourceInfo>,
    pub user: &'a UserInfo,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    pub ns: String,
    pub name: String,
    pub sub: String,
    pub manager: String,
}

/// A request body: JSON, or YAML for `application/yaml` and apply patches.
pub fn decode(body: &[u8], headers: &HeaderMap) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") {
        return crate::proto::decode(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized: protobuf: {e}"
            ))
        });
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(json_err) if ct.contains("yaml") => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!(
                    "error converting YAML to JSON: {e} (as JSON: {json_err})"
                ))
            })?
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized: {e}"
            )));
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized: not a JSON object",
        ));
    }
    Ok(v)
}

pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',').next().unwrap_or_default().contains("as=Table")
                || (a.contains("as=Table")
                    && !a.contains("application/json,")
                    && !a.ends_with("application/json"))
                || a.starts_with("application/json;as=Table")
        })
}

pub fn type_info(ri: &ResourceInfo) -> Box<dyn TypeInfo + '_> {
    match &ri.crd {
        Some(c) => Box::new(RefTypeInfo(&c.type_info)),
        None => Box::new(BuiltinTypeInfo {
            kind: ri.kind.to_string(),
        }),
    }
}

struct RefTypeInfo<'a>(&'a ssa::SchemaTypeInfo);
impl TypeInfo for RefTypeInfo<'_> {
    fn list_type(&self, path: &[&str]) -> ssa::ListType {
        self.0.list_type(path)
    }
    fn map_is_atomic(&self, path: &[&str]) -> bool {
        self.0.map_is_atomic(path)
    }
    fn smp_merge_key(&self, path: &[&str]) -> Option<String> {
        self.0.smp_merge_key(path)
    }
}

fn ssa_err(ri: &ResourceInfo, name: &str, e: SsaError) -> ApiError {
    match e {
        SsaError::Conflicts(cs) => {
            let msg = SsaError::Conflicts(cs.clone()).to_string();
            ApiError {
                details: Some(
                    json!({"name": name, "group": ri.group.as_ref(), "kind": ri.plural.as_ref(),
                    "causes": cs.iter().map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field})).collect::<Vec<_>>()}),
                ),
                ..ApiError::new(409, "Conflict", msg)
            }
        }
        SsaError::Invalid(m) => ApiError::new(422, "Invalid", m),
    }
}

/// The object as this resource version serves it (custom resources change apiVersion between
/// versions; events.k8s.io Events are converted from the stored core Events).
pub fn render(ri: &ResourceInfo, obj: &Obj) -> Bytes {
    if ri.is_crd() {
        let want = ri.api_version();
        let prefix = format!("\"apiVersion\":\"{want}\"");
        if obj
            .json
            .windows(prefix.len())
            .any(|w| w == prefix.as_bytes())
        {
            return obj.json.clone();
        }
    } else if !crate::convert::converts(ri) {
        return obj.json.clone();
    }
    Bytes::from(serde_json::to_vec(&crate::convert::to_served(ri, obj.value())).unwrap_or_default())
}

fn now() -> String {
    meta::now()
}

enum Op {
    Create,
    Update,
}

impl Ctx<'_> {
    fn gr(&self) -> GroupResource {
        self.ri.gr()
    }

    fn current(&self) -> Option<Arc<Obj>> {
        self.sim
            .store
            .read()
            .expect("store lock")
            .get(&self.gr(), &self.ns, &self.name)
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.ri.group, &self.ri.plural, &self.name)
    }

    /// The object's etcd key in a real kube-apiserver, as storage errors print it:
    /// `/registry/<resource>/[<namespace>/]<name>`, with `<group>/<resource>` for custom
    /// resources and for apiextensions-apiserver's own CustomResourceDefinitions.
    fn storage_key(&self) -> String {
        let gr = self.ri.gr();
        let mut key = if self.ri.is_crd() || gr.group.as_ref() == "apiextensions.k8s.io" {
            format!("/registry/{}/{}", gr.group, gr.resource)
        } else {
            format!("/registry/{}", gr.resource)
        };
        if self.ri.namespaced {
            key.push('/');
            key.push_str(&self.ns);
        }
        key.push('/');
        key.push_str(&self.name);
        key
    }

    fn columns(&self) -> Columns<'_> {
        match &self.ri.crd {
            Some(c) => Columns::Custom(&c.printer_columns),
            None => Columns::Builtin(&self.ri.kind),
        }
    }

    fn table_reply(&self, objs: &[Value], rv: &str, cont: Option<&str>) -> Reply {
        let include = self.query.get("includeObject").unwrap_or("Metadata");
        let t = present::table(objs, self.columns(), include, rv, cont, meta::now_unix());
        Reply::value(200, &t).with_type("application/json;as=Table;v=v1;g=meta.k8s.io")
    }

    fn get(&self) -> Result<Reply, ApiError> {
        let obj = self.current().ok_or_else(|| self.not_found())?;
        if wants_table(self.headers) {
            return Ok(self.table_reply(&[obj.value()], &obj.rv.to_string(), None));
        }
        Ok(Reply::json(200, render(&self.ri, &obj)))
    }

    pub fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.query.get("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        // The built-ins with kind-specific field selectors (Secret, Namespace, Event) and custom
        // resources have their own field-label conversion; the rest use the default one.
        let field_labels = if self.ri.is_crd() || !self.ri.extra_field_selectors.is_empty() {
            FieldLabels::Kind {
                namespaced: self.ri.namespaced,
                extra: self.ri.extra_field_selectors,
            }
        } else {
            FieldLabels::Default
        };
        let fields = FieldSelector::parse(
            self.query.get("fieldSelector").unwrap_or_default(),
            field_labels,
        )
        .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    fn list(&self) -> Result<Reply, ApiError> {
        let (labels, fields) = self.selectors()?;
        let limit: usize = match self.query.get("limit") {
            Some(l) => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
                .max(0) as usize,
            None => 0,
        };
        let store = self.sim.store.read().expect("store lock");
        let current = store.current_rv();
        let (at, after): (u64, Option<Key>) = match self.query.get("continue") {
            Some(tok) => {
                let (rv, start) = decode_continue(tok)?;
                if !store.snapshot_available(rv) {
                    return Err(ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ));
                }
                (rv, Some(start))
            }
            None => match (
                self.query.get("resourceVersion"),
                self.query.get("resourceVersionMatch"),
            ) {
                (Some(rv), Some("Exact")) => {
                    let rv: u64 = rv.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version {rv:?}"))
                    })?;
                    if !store.snapshot_available(rv) {
                        return Err(ApiError::gone(format!(
                            "too old resource version: {rv} ({})",
                            current
                        )));
                    }
                    (rv, None)
                }
                (Some(rv), _) if rv != "0" => {
                    let want: u64 = rv.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version {rv:?}"))
                    })?;
                    if want > current {
                        return Err(ApiError::new(
                            504,
                            "Timeout",
                            format!("Too large resource version: {want}, current: {current}"),
                        ));
                    }
                    (current, None)
                }
                _ => (current, None),
            },
        };
        let ns = (!self.ns.is_empty()).then_some(self.ns.as_str());
        let past = if at < current {
            Some(store.changes_since(&self.gr(), at))
        } else {
            None
        };
        // Objects of the snapshot at `at`, in key order.
        let mut items: Vec<Arc<Obj>> = Vec::new();
        let mut remaining = 0usize;
        let mut rest = 0usize;
        let matches = |o: &Obj| -> bool {
            (labels.is_empty() || labels.matches(&o.labels))
                && (fields.is_empty() || fields.matches(&o.value()))
        };
        let mut visit = |_key: &Key, o: &Arc<Obj>, items: &mut Vec<Arc<Obj>>| -> bool {
            if !matches(o) {
                return true;
            }
            if limit > 0 && items.len() >= limit {
                remaining += 1;
                return true;
            }
            items.push(o.clone());
            true
        };
        if let Some(pinned) = fields
            .pinned_name()
            .filter(|_| ns.is_some() || !self.ri.namespaced)
        {
            if let Some(o) = store.get(&self.gr(), &self.ns, pinned) {
                let key: Key = (self.ns.as_str().into(), pinned.into());
                let o = match &past {
                    Some(p) => p.get(&key).cloned().unwrap_or(Some(o)),
                    None => Some(o),
                };
                if let Some(o) = o {
                    visit(&key, &o, &mut items);
                }
            } else if let Some(p) = &past {
                let key: Key = (self.ns.as_str().into(), pinned.into());
                if let Some(Some(o)) = p.get(&key) {
                    visit(&key, o, &mut items);
                }
            }
        } else {
            let mut gone: Vec<(Key, Arc<Obj>)> = Vec::new();
            if let Some(p) = &past {
                for (k, v) in p {
                    if let Some(v) = v
                        && store.get(&self.gr(), &k.0, &k.1).is_none()
                        && ns.is_none_or(|n| k.0.as_ref() == n)
                        && after.as_ref().is_none_or(|a| k > a)
                    {
                        gone.push((k.clone(), v.clone()));
                    }
                }
                gone.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let mut gone = gone.into_iter().peekable();
            // Without selectors or history, all that follows a full page is remaining: count it.
            let count_rest = limit > 0 && past.is_none() && labels.is_empty() && fields.is_empty();
            let mut objs = store.range(&self.gr(), ns, after.as_ref());
            while let Some((k, o)) = objs.next() {
                if count_rest && items.len() >= limit {
                    rest = 1 + objs.by_ref().count();
                    break;
                }
                while let Some((gk, _)) = gone.peek() {
                    if gk < k {
                        let (gk, go) = gone.next().expect("peeked");
                        visit(&gk, &go, &mut items);
                    } else {
                        break;
                    }
                }
                let snap = match &past {
                    Some(p) => match p.get(k) {
                        Some(old) => old.clone(),
                        None => Some(o.clone()),
                    },
                    None => Some(o.clone()),
                };
                if let Some(s) = snap {
                    visit(k, &s, &mut items);
                }
            }
            for (gk, go) in gone {
                visit(&gk, &go, &mut items);
            }
        }
        drop(store);
        let remaining = remaining + rest;
        // The continue key is the last item returned.
        let cont = if remaining > 0 {
            items.last().map(|o| {
                let (ns, name) = meta::namespace_and_name(&o.value());
                encode_continue(at, &(ns.into(), name.into()))
            })
        } else {
            None
        };
        let rv = at.to_string();
        if wants_table(self.headers) {
            let objs: Vec<Value> = items.iter().map(|o| o.value()).collect();
            return Ok(self.table_reply(&objs, &rv, cont.as_deref()));
        }
        let mut meta = json!({"resourceVersion": rv});
        if let Some(c) = &cont {
            meta["continue"] = json!(c);
            if labels.is_empty() && fields.is_empty() {
                meta["remainingItemCount"] = json!(remaining);
            }
        }
        let mut out =
            Vec::with_capacity(items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 256);
        out.extend_from_slice(
            format!(
                "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
                self.ri.kind,
                self.ri.api_version(),
                meta
            )
            .as_bytes(),
        );
        for (i, o) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&render(&self.ri, o));
        }
        out.extend_from_slice(b"]}");
        Ok(Reply::json(200, out))
    }

    /// Decode-time work: typed normalization (built-ins) or pruning and defaulting (custom
    /// resources); unknown fields per `fieldValidation` (Strict, Warn, Ignore).
    fn normalize(&self, v: Value, warnings: &mut Vec<String>) -> Result<Value, ApiError> {
        let (v, unknown) = self.decode(v)?;
        if !unknown.is_empty() {
            match self.query.get("fieldValidation").unwrap_or("Warn") {
                "Strict" => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|u| format!("unknown field \"{}\"", u.trim_start_matches('.')))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                        self.ri.kind,
                        self.ri.version,
                        self.ri.kind,
                        list.join(", ")
                    )));
                }
                "Ignore" => {}
                _ => warnings.extend(
                    unknown
                        .iter()
                        .map(|u| format!("unknown field \"{}\"", u.trim_start_matches('.'))),
                ),
            }
        }
        Ok(v)
    }

    /// Decode a body as the server's typed decoding (built-ins) or structural pruning (custom
    /// resources) does; returns it with unknown fields dropped, and their paths (`.spec.x`).
    fn decode(&self, v: Value) -> Result<(Value, Vec<String>), ApiError> {
        let mut v = v;
        let want_api = self.ri.api_version();
        match v.get("apiVersion").and_then(|a| a.as_str()) {
            None | Some("") => v["apiVersion"] = json!(want_api),
            Some(a) if a != want_api => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({a}) does not match the expected API version ({want_api})"
                )));
            }
            _ => {}
        }
        match v.get("kind").and_then(|a| a.as_str()) {
            None | Some("") => v["kind"] = json!(self.ri.kind.as_ref()),
            Some(k) if k != self.ri.kind.as_ref() => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    self.ri.kind
                )));
            }
            _ => {}
        }
        if !v.get("metadata").is_some_and(|m| m.is_object()) {
            v["metadata"] = json!({});
        }
        let (v, unknown) = match &self.ri.crd {
            Some(c) => {
                let mut meta_only = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": v["metadata"].clone()});
                let (m, meta_unknown) = crate::builtin::normalize("", "ConfigMap", &meta_only)
                    .map_err(|e| {
                        ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: {e}",
                            self.ri.kind, self.ri.version, self.ri.kind
                        ))
                    })?;
                meta_only = m;
                let mut v = v;
                v["metadata"] = meta_only["metadata"].take();
                let mut unknown = meta_unknown;
                unknown.extend(c.schema.prune(&mut v));
                c.schema.apply_defaults(&mut v);
                (v, unknown)
            }
            None => crate::builtin::normalize(&self.ri.group, &self.ri.kind, &v).map_err(|e| {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {e}",
                    self.ri.kind, self.ri.version, self.ri.kind
                ))
            })?,
        };
        let mut v = crate::convert::to_storage(&self.ri, v);
        // Secret: write-only stringData is folded into data (overwriting), as v1 -> internal conversion does.
        if self.ri.group.is_empty()
            && self.ri.kind.as_ref() == "Secret"
            && let Some(Value::Object(sd)) = v.as_object_mut().and_then(|o| o.remove("stringData"))
            && !sd.is_empty()
        {
            if !v["data"].is_object() {
                v["data"] = json!({});
            }
            for (k, s) in sd {
                v["data"][k.as_str()] = json!(
                    base64::engine::general_purpose::STANDARD
                        .encode(s.as_str().unwrap_or_default())
                );
            }
        }
        Ok((v, unknown))
    }

    /// Metadata the server owns, status/spec separation, generation.
    fn server_fields(&self, op: &Op, old: Option<&Value>, new: &mut Value) -> Result<(), ApiError> {
        let m = new["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        for k in [
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(k);
        }
        match op {
            Op::Create => {
                m.insert("uid".into(), json!(meta::uid()));
                m.insert("creationTimestamp".into(), json!(now()));
                m.remove("resourceVersion");
                m.remove("generation");
                if self.ri.has_generation {
                    m.insert("generation".into(), json!(1));
                }
                if self.ri.namespaced {
                    m.insert("namespace".into(), json!(self.ns));
                } else {
                    m.remove("namespace");
                }
                if self.ri.has_status
                    && self.ri.is_crd()
                    && let Some(o) = new.as_object_mut()
                {
                    o.remove("status");
                }
            }
            Op::Update => {
                let old = old.expect("update has an old object");
                for k in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old["metadata"].get(k) {
                        Some(v) => {
                            m.insert(k.into(), v.clone());
                        }
                        None => {
                            m.remove(k);
                        }
                    }
                }
                if self.ri.namespaced {
                    m.insert("namespace".into(), json!(self.ns));
                }
                if self.ri.has_status {
                    if self.sub == "status" {
                        let mut merged = old.clone();
                        match new.get("status") {
                            Some(s) => merged["status"] = s.clone(),
                            None => {
                                merged.as_object_mut().map(|o| o.remove("status"));
                            }
                        }
                        merged["metadata"]["managedFields"] = new["metadata"]
                            .get("managedFields")
                            .cloned()
                            .unwrap_or(Value::Null);
                        if merged["metadata"]["managedFields"].is_null() {
                            merged["metadata"]
                                .as_object_mut()
                                .map(|o| o.remove("managedFields"));
                        }
                        *new = merged;
                    } else {
                        match old.get("status") {
                            Some(s) => new["status"] = s.clone(),
                            None => {
                                new.as_object_mut().map(|o| o.remove("status"));
                            }
                        }
                    }
                }
                if self.ri.has_generation {
                    let strip = |v: &Value| {
                        let mut v = v.clone();
                        if let Some(o) = v.as_object_mut() {
                            o.remove("metadata");
                            if self.ri.has_status {
                                o.remove("status");
                            }
                        }
                        v
                    };
                    if strip(old) != strip(new) {
                        let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                        new["metadata"]["generation"] = json!(g);
                    }
                }
            }
        }
        if self.ri.group.is_empty() && self.ri.plural.as_ref() == "namespaces" {
            let name = new["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if matches!(op, Op::Create) {
                if new["spec"]["finalizers"]
                    .as_array()
                    .is_none_or(|a| a.is_empty())
                {
                    new["spec"]["finalizers"] = json!(["kubernetes"]);
                }
                new["status"] = json!({"phase": "Active"});
            } else if let Some(old) = old {
                if self.sub != "finalize" {
                    new["spec"] = old["spec"].clone();
                }
                if self.sub != "status" {
                    new["status"] = old["status"].clone();
                }
            }
        }
        Ok(())
    }

    fn validate(&self, op: &Op, old: Option<&Value>, new: &Value) -> Result<(), ApiError> {
        let name = new["metadata"]["name"].as_str().unwrap_or_default();
        let mut causes: Vec<(String, String, String)> = Vec::new();
        let rbac = self.ri.group.as_ref() == "rbac.authorization.k8s.io";
        let is_ns = self.ri.group.is_empty() && self.ri.plural.as_ref() == "namespaces";
        let name_err = if rbac {
            meta::validate_path_segment_name(name)
        } else {
            meta::validate_name(name, is_ns)
        };
        if let Some(e) = name_err {
            causes.push(("FieldValueInvalid".into(), "metadata.name".into(), e));
        }
        for (field, msg) in meta::validate_metadata(&new["metadata"]) {
            causes.push(("FieldValueInvalid".into(), field, msg));
        }
        if let Some(refs) = new["metadata"]["ownerReferences"].as_array() {
            for (i, r) in refs.iter().enumerate() {
                for k in ["apiVersion", "kind", "name", "uid"] {
                    if r[k].as_str().is_none_or(str::is_empty) {
                        causes.push((
                            "FieldValueRequired".into(),
                            format!("metadata.ownerReferences[{i}].{k}"),
                            "Required value".into(),
                        ));
                    }
                }
            }
            if refs
                .iter()
                .filter(|r| r["controller"].as_bool() == Some(true))
                .count()
                > 1
            {
                causes.push((
                    "FieldValueInvalid".into(),
                    "metadata.ownerReferences".into(),
                    "Invalid value: \"\": Only one reference can have Controller set to true"
                        .into(),
                ));
            }
        }
        if let (Op::Update, Some(old)) = (op, old) {
            if meta::is_deleting(old) {
                let before = meta::finalizers(old);
                for f in meta::finalizers(new) {
                    if !before.contains(&f) {
                        causes.push(("FieldValueForbidden".into(), "metadata.finalizers".into(), format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{f}\"}}")));
                    }
                }
            }
            if rbac && self.ri.kind.ends_with("Binding") && old.get("roleRef") != new.get("roleRef")
            {
                causes.push((
                    "FieldValueInvalid".into(),
                    "roleRef".into(),
                    format!("Invalid value: {}: cannot change roleRef", new["roleRef"]),
                ));
            }
        }
        if let Some(c) = &self.ri.crd {
            for e in c.schema.validate(new, old) {
                causes.push((e.kind.reason().into(), e.field.clone(), e.cause_message()));
            }
        }
        if self.ri.group.as_ref() == "apiextensions.k8s.io" {
            causes.extend(crate::crd::validate(new, old));
        }
        // A `/status` write validates only the status (upstream's status strategy).
        if self.ri.group.as_ref() == "admissionregistration.k8s.io" && self.sub != "status" {
            for e in crate::admissionregistration::validate(&self.ri.kind, new, old) {
                causes.push((e.kind.reason().into(), e.field.clone(), e.cause_message()));
            }
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                &self.ri.group,
                &self.ri.kind,
                name,
                &causes,
            ))
        }
    }

    /// The RBAC registry's privilege-escalation prevention (kube-apiserver's
    /// `pkg/registry/rbac/*/policybased` storage): a Role, ClusterRole, RoleBinding or
    /// ClusterRoleBinding is stored (or dry-run) only if its writer holds what it grants. Runs
    /// where the registry does: after decoding (and patching), before name generation,
    /// validation and admission. `old`: the stored object, for an update.
    fn escalation_check(
        &self,
        old: Option<&Obj>,
        new: &Value,
        object_name: &str,
    ) -> Result<(), ApiError> {
        if self.ri.group.as_ref() != "rbac.authorization.k8s.io"
            || crate::authz::escalation_allowed(self.user)
        {
            return Ok(());
        }
        let old = old.map(Obj::value);
        let write = crate::authz::RbacWrite {
            user: self.user,
            resource: &self.ri.plural,
            namespace: &self.ns,
            request_name: &self.name,
            object_name,
            new,
            old: old.as_ref(),
        };
        self.sim
            .rbac()
            .check_rbac_write(&write)
            .map_err(|d| ApiError {
                details: d.details,
                ..ApiError::new(d.code, d.reason, d.message)
            })
    }

    fn admit(
        &self,
        operation: &str,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let policies = self.sim.policies();
        if policies.is_empty() {
            return Ok(Vec::new());
        }
        let ns_obj = if self.ri.namespaced {
            self.sim
                .store
                .read()
                .expect("store lock")
                .get(
                    &GroupResource {
                        group: "".into(),
                        resource: "namespaces".into(),
                    },
                    "",
                    &self.ns,
                )
                .map(|o| o.value())
        } else {
            None
        };
        let name = new
            .or(old)
            .and_then(|v| v["metadata"]["name"].as_str())
            .unwrap_or(&self.name)
            .to_string();
        let info = RequestInfo {
            resource_request: true,
            verb: operation.to_ascii_lowercase(),
            group: self.ri.group.to_string(),
            version: self.ri.version.to_string(),
            namespace: self.ns.clone(),
            resource: self.ri.plural.to_string(),
            name,
            subresource: self.sub.clone(),
            path: String::new(),
        };
        let attrs = crate::server::attributes(self.user, &info);
        let input = AdmissionInput {
            operation,
            object: new,
            old_object: old,
            attributes: &attrs,
            kind: (&self.ri.group, &self.ri.version, &self.ri.kind),
            namespace_object: ns_obj.as_ref(),
            dry_run: self.query.dry_run,
        };
        policies.admit_lazy(&input, &|| self.sim.rbac()).map_err(|d| {
            let reason: &'static str = match d.code {
                422 => "Invalid",
                401 => "Unauthorized",
                413 => "RequestEntityTooLarge",
                _ => "Forbidden",
            };
            // admission.NewForbidden(attrs, err) with the policy's reason and code, and the
            // denial repeated as the one cause.
            let resource = crate::status::qualified(&self.ri.group, &self.ri.plural);
            let message = if info.name.is_empty() {
                format!("{resource} is forbidden: {}", d.message)
            } else {
                format!("{resource} \"{}\" is forbidden: {}", info.name, d.message)
            };
            let mut details = serde_json::json!({"kind": self.ri.plural.as_ref(), "causes": [{"message": d.message}]});
            if !info.name.is_empty() {
                details["name"] = serde_json::json!(info.name);
            }
            if !self.ri.group.is_empty() {
                details["group"] = serde_json::json!(self.ri.group.as_ref());
            }
            ApiError { details: Some(details), ..ApiError::new(d.code, reason, message) }
        })
    }

    fn namespace_check(&self) -> Result<(), ApiError> {
        if !self.ri.namespaced {
            return Ok(());
        }
        let ns = self.sim.store.read().expect("store lock").get(
            &GroupResource {
                group: "".into(),
                resource: "namespaces".into(),
            },
            "",
            &self.ns,
        );
        match ns {
            None => Err(ApiError::not_found("", "namespaces", &self.ns)),
            Some(o) => {
                if o.deleting {
                    Err(ApiError {
                        details: Some(
                            json!({"name": self.name, "group": self.ri.group.as_ref(), "kind": self.ri.plural.as_ref(),
                            "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {} is being terminated", self.ns), "field": "metadata.namespace"}]}),
                        ),
                        ..ApiError::forbidden(format!(
                            "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                            status::qualified(&self.ri.group, &self.ri.plural),
                            self.name,
                            self.ns
                        ))
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    fn reply_obj(&self, code: u16, v: &Value, warnings: Vec<String>) -> Reply {
        let mut r = Reply::value(code, &crate::convert::to_served(&self.ri, v.clone()));
        r.warnings = warnings;
        r
    }

    fn create(&self, body: Value) -> Result<Reply, ApiError> {
        let mut warnings = Vec::new();
        let mut new = self.normalize(body, &mut warnings)?;
        self.create_normalized(&mut new, None, &mut warnings)
    }

    /// `applied_fields`: the object already carries the applier's managedFields (server-side apply create).
    fn create_normalized(
        &self,
        new: &mut Value,
        applied: Option<()>,
        warnings: &mut Vec<String>,
    ) -> Result<Reply, ApiError> {
        let body_ns = new["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if self.ri.namespaced && !body_ns.is_empty() && body_ns != self.ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let given_name = new["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if new["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            match new["metadata"]["generateName"].as_str() {
                Some(g) if !g.is_empty() => {
                    let n = format!("{g}{}", meta::name_suffix());
                    new["metadata"]["name"] = json!(n);
                }
                _ => {
                    return Err(ApiError::invalid(
                        &self.ri.group,
                        &self.ri.kind,
                        "",
                        &[(
                            "FieldValueRequired".into(),
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                    ));
                }
            }
        }
        let name = new["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !self.name.is_empty() && self.name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                self.name
            )));
        }
        let ctx = Ctx {
            name: name.clone(),
            sub: String::new(),
            ..self.clone_ctx()
        };
        ctx.namespace_check()?;
        // With the request's own path name (empty for a POST), as the registry sees it.
        self.escalation_check(None, new, &given_name)?;
        ctx.server_fields(&Op::Create, None, new)?;
        if self.ri.group.as_ref() == "apiextensions.k8s.io" {
            crate::crd::on_write(new);
        }
        if applied.is_none() {
            let ti = type_info(&self.ri);
            ssa::update(None, new, &self.manager, None, ti.as_ref(), &now())
                .map_err(|e| ssa_err(&self.ri, &name, e))?;
        }
        ctx.validate(&Op::Create, None, new)?;
        warnings.extend(ctx.admit("CREATE", None, Some(new))?);
        if self.query.dry_run {
            return Ok(ctx.reply_obj(201, new, std::mem::take(warnings)));
        }
        let ev = {
            let mut store = self.sim.store.write().expect("store lock");
            if store.get(&self.gr(), &self.ns, &name).is_some() {
                return Err(ApiError::already_exists(
                    &self.ri.group,
                    &self.ri.plural,
                    &name,
                ));
            }
            // `new` is not used after this: move it instead of cloning it under the lock.
            store
                .commit(&self.gr(), &self.ns, &name, Some(std::mem::take(new)))
                .expect("commit of a value")
        };
        self.committed(&ev);
        Ok(Reply {
            code: 201,
            body: render(&self.ri, &ev.obj).into(),
            content_type: "application/json".into(),
            warnings: std::mem::take(warnings),
        })
    }

    fn clone_ctx(&self) -> Ctx<'_> {
        Ctx {
            sim: self.sim,
            ri: self.ri.clone(),
            user: self.user,
            query: self.query,
            headers: self.headers,
            ns: self.ns.clone(),
            name: self.name.clone(),
            sub: self.sub.clone(),
            manager: self.manager.clone(),
        }
    }

    /// After a commit: side effects of special kinds.
    fn committed(&self, ev: &Event) {
        post_commit(self.sim, ev);
    }

    fn update(&self, body: Value) -> Result<Reply, ApiError> {
        let mut warnings = Vec::new();
        let body_name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !body_name.is_empty() && body_name != self.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                self.name
            )));
        }
        let want_rv = body["metadata"]["resourceVersion"]
            .as_str()
            .map(String::from)
            .filter(|s| !s.is_empty());
        let want_uid = body["metadata"]["uid"]
            .as_str()
            .map(String::from)
            .filter(|s| !s.is_empty());
        let new = self.normalize(body, &mut warnings)?;
        let Some(cur) = self.current() else {
            return Err(self.not_found());
        };
        // A PUT body's uid is a precondition (rest.DefaultUpdatedObjectInfo.Preconditions).
        if let Some(uid) = &want_uid {
            let have = cur.value()["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if *uid != have {
                // Checked by the storage layer (storage.Preconditions.Check), so the message is
                // an etcd StorageError naming the object's key.
                let why = format!(
                    "StorageError: invalid object, Code: 4, Key: {}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {uid}, UID in object meta: {have}",
                    self.storage_key()
                );
                return Err(ApiError::conflict(
                    &self.ri.group,
                    &self.ri.plural,
                    &self.name,
                    &why,
                ));
            }
        }
        let body_name = new["metadata"]["name"].as_str().unwrap_or_default();
        self.escalation_check(Some(&cur), &new, body_name)?;
        if let Some(rv) = &want_rv
            && *rv != cur.rv.to_string()
        {
            return Err(ApiError::stale(&self.ri.group, &self.ri.plural, &self.name));
        }
        self.write_update(cur, new, false, warnings, want_rv.is_some())
    }

    /// Finish an update of `cur` to `new` (managedFields computed unless `applied`), commit
    /// unless nothing changed; `exact_rv`: fail on a concurrent change instead of retrying.
    fn write_update(
        &self,
        cur: Arc<Obj>,
        mut new: Value,
        applied: bool,
        mut warnings: Vec<String>,
        exact_rv: bool,
    ) -> Result<Reply, ApiError> {
        let old = cur.value();
        new["metadata"]["name"] = json!(self.name);
        self.server_fields(&Op::Update, Some(&old), &mut new)?;
        if self.ri.group.as_ref() == "apiextensions.k8s.io" {
            crate::crd::on_write(&mut new);
        }
        if !applied {
            let ti = type_info(&self.ri);
            let sub = (!self.sub.is_empty()).then_some(self.sub.as_str());
            ssa::update(
                Some(&old),
                &mut new,
                &self.manager,
                sub,
                ti.as_ref(),
                &now(),
            )
            .map_err(|e| ssa_err(&self.ri, &self.name, e))?;
        }
        let mut old_cmp = old.clone();
        old_cmp["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        let mut new_cmp = new.clone();
        new_cmp["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        if self.ri.is_crd() {
            // Versions of a custom resource differ only in apiVersion (conversion None): no change.
            old_cmp["apiVersion"] = new_cmp["apiVersion"].clone();
        }
        if old_cmp == new_cmp {
            let mut r = Reply::json(200, render(&self.ri, &cur));
            r.warnings = warnings;
            return Ok(r);
        }
        self.validate(&Op::Update, Some(&old), &new)?;
        warnings.extend(self.admit("UPDATE", Some(&old), Some(&new))?);
        if self.query.dry_run {
            return Ok(self.reply_obj(200, &new, warnings));
        }
        let finished = meta::is_deleting(&new) && ready_to_remove(&self.gr(), &new);
        let ev = {
            let mut store = self.sim.store.write().expect("store lock");
            match store.get(&self.gr(), &self.ns, &self.name) {
                Some(now) if now.rv == cur.rv => {}
                Some(_) if exact_rv => {
                    return Err(ApiError::stale(&self.ri.group, &self.ri.plural, &self.name));
                }
                Some(_) => {
                    return Err(
                        ApiError::stale(&self.ri.group, &self.ri.plural, &self.name).retry()
                    );
                }
                None => return Err(self.not_found()),
            }
            let value = if finished { None } else { Some(new.clone()) };
            store
                .commit(&self.gr(), &self.ns, &self.name, value)
                .expect("object exists")
        };
        self.committed(&ev);
        let mut r = Reply::json(200, render(&self.ri, &ev.obj));
        r.warnings = warnings;
        Ok(r)
    }

    fn patch(&self, body: &[u8], headers: &HeaderMap) -> Result<Reply, ApiError> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ct = ct.split(';').next().unwrap_or_default().trim().to_string();
        let accepted: &[&str] = if self.ri.is_crd() {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]
        } else {
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
                "application/strategic-merge-patch+json",
            ]
        };
        if !accepted.contains(&ct.as_str()) {
            return Err(ApiError::unsupported_media_type(accepted));
        }
        if ct != "application/apply-patch+yaml" && self.query.get("force").is_some() {
            let cause = (
                "FieldValueForbidden".to_string(),
                "force".to_string(),
                "Forbidden: may not be specified for non-apply patch".to_string(),
            );
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                &[cause],
            ));
        }
        if ct == "application/apply-patch+yaml" {
            let force = self.query.flag("force");
            if self.query.get("fieldManager").is_none_or(|m| m.is_empty()) {
                // The server's ValidatePatchOptions: a 422 on PatchOptions, not a 400.
                let cause = (
                    "FieldValueRequired".to_string(),
                    "fieldManager".to_string(),
                    "Required value: is required for apply patch".to_string(),
                );
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    &[cause],
                ));
            }
            let applied = decode(
                body,
                &HeaderMap::from_iter([(
                    header::CONTENT_TYPE,
                    "application/yaml".parse().expect("static"),
                )]),
            )?;
            // Retry on concurrent writes, as the server's patcher does. An apply that found no
            // object and lost the race to create it applies to the one that won (the real
            // server's create-on-update runs in its storage's compare-and-swap loop: no 409).
            for _ in 0..16 {
                match self.apply_once(&applied, force) {
                    Err(e) if e.is_retry() || e.reason == "AlreadyExists" => continue,
                    other => return other,
                }
            }
            return Err(ApiError::stale(&self.ri.group, &self.ri.plural, &self.name));
        }
        let patch: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        for _ in 0..16 {
            let Some(cur) = self.current() else {
                return Err(self.not_found());
            };
            // The patch applies to the object as the request's version serves it.
            let old = crate::convert::to_served(&self.ri, cur.value());
            let patched = match ct.as_str() {
                "application/json-patch+json" => {
                    let p: json_patch::Patch = serde_json::from_value(patch.clone())
                        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                    let mut doc = old.clone();
                    json_patch::patch(&mut doc, &p).map_err(|e| ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {e}")))?;
                    doc
                }
                "application/merge-patch+json" => {
                    let mut doc = old.clone();
                    json_patch::merge(&mut doc, &patch);
                    doc
                }
                _ => {
                    let ti = type_info(&self.ri);
                    ssa::strategic_merge(&old, &patch, ti.as_ref())
                        .map_err(|e| ApiError::bad_request(e.to_string()))?
                }
            };
            let want_rv = patched["metadata"]["resourceVersion"]
                .as_str()
                .map(String::from);
            let mut warnings = Vec::new();
            let new = self.normalize(patched, &mut warnings)?;
            let patched_name = new["metadata"]["name"].as_str().unwrap_or_default();
            self.escalation_check(Some(&cur), &new, patched_name)?;
            if let Some(rv) = &want_rv
                && *rv != cur.rv.to_string()
            {
                return Err(ApiError::stale(&self.ri.group, &self.ri.plural, &self.name));
            }
            match self.write_update(cur, new, false, warnings, false) {
                Err(e) if e.is_retry() => continue,
                other => return other,
            }
        }
        Err(ApiError::stale(&self.ri.group, &self.ri.plural, &self.name))
    }

    fn apply_once(&self, applied: &Value, force: bool) -> Result<Reply, ApiError> {
        let mut warnings = Vec::new();
        let (mut applied, unknown) = self.decode(applied.clone())?;
        if !unknown.is_empty() {
            return Err(self.untyped_apply(&applied, &unknown));
        }
        // Upstream checks the name of the object the apply produced: an applied configuration
        // without metadata.name keeps the stored object's name (kube-lease-manager applies
        // Leases so), but a new object gets none, and fails the check.
        let cur = self.current();
        let applied_name = applied["metadata"]["name"].as_str().unwrap_or_default();
        let result_name = if applied_name.is_empty() && cur.is_some() {
            self.name.as_str()
        } else {
            applied_name
        };
        if result_name.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({} based on URL) was undeterminable: name must be provided",
                self.name
            )));
        }
        if result_name != self.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({result_name}) does not match the name on the URL ({})",
                self.name
            )));
        }
        if self.ri.has_status
            && let Some(o) = applied.as_object_mut()
        {
            if self.sub == "status" {
                let keep: Vec<String> = o
                    .keys()
                    .filter(|k| !["apiVersion", "kind", "metadata", "status"].contains(&k.as_str()))
                    .cloned()
                    .collect();
                for k in keep {
                    o.remove(&k);
                }
                let name = o["metadata"]["name"].clone();
                let ns = o["metadata"].get("namespace").cloned();
                o.insert("metadata".into(), json!({"name": name}));
                if let Some(ns) = ns {
                    o["metadata"]["namespace"] = ns;
                }
            } else {
                o.remove("status");
            }
        }
        let ti = type_info(&self.ri);
        let sub = (!self.sub.is_empty()).then_some(self.sub.as_str());
        let live = cur.as_ref().map(|c| c.value());
        let mut merged = ssa::apply(
            live.as_ref(),
            &applied,
            &self.manager,
            sub,
            force,
            ti.as_ref(),
            &now(),
        )
        .map_err(|e| ssa_err(&self.ri, &self.name, e))?;
        if let Some(c) = &self.ri.crd {
            c.schema.apply_defaults(&mut merged);
        }
        match cur {
            None => {
                if self.sub == "status" {
                    return Err(self.not_found());
                }
                // (create_normalized runs the escalation check.)
                self.create_normalized(&mut merged, Some(()), &mut warnings)
            }
            Some(cur) => {
                self.escalation_check(Some(&cur), &merged, &self.name)?;
                self.write_update(cur, merged, true, warnings, false)
            }
        }
    }

    /// Server-side apply first converts the applied object to its structured-merge-diff type;
    /// a field the type does not declare fails that conversion with a 500 whatever the
    /// `fieldValidation` (the walk reports the first undeclared field of each object).
    fn untyped_apply(&self, applied: &Value, unknown: &[String]) -> ApiError {
        let mut sorted = unknown.to_vec();
        sorted.sort();
        let mut parents = std::collections::HashSet::new();
        let mut errs: Vec<String> = Vec::new();
        for p in sorted {
            let parent = p.rsplit_once('.').map_or("", |(a, _)| a).to_string();
            if parents.insert(parent) {
                errs.push(format!("{p}: field not declared in schema"));
            }
        }
        let body = if errs.len() == 1 {
            errs.remove(0)
        } else {
            format!("errors:\n  {}", errs.join("\n  "))
        };
        let meta = &applied["metadata"];
        ApiError::new(
            500,
            "",
            format!(
                "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {body}",
                meta["namespace"].as_str().unwrap_or_default(),
                meta["name"].as_str().unwrap_or_default(),
                self.ri.group,
                self.ri.version,
                self.ri.kind
            ),
        )
    }

    fn delete(&self, body: &[u8]) -> Result<Reply, ApiError> {
        let opts = delete_options(body, self.query)?;
        let cur = self.current().ok_or_else(|| self.not_found())?;
        let old = cur.value();
        // rest.BeforeDelete checks the preconditions first; its conflict names the kind
        // (`Operation cannot be fulfilled on ConfigMap "x"`), not the resource.
        if let Some(uid) = opts["preconditions"]["uid"].as_str()
            && old["metadata"]["uid"].as_str() != Some(uid)
        {
            return Err(ApiError::conflict(
                &self.ri.storage_group,
                &self.ri.kind,
                &self.name,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    old["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = opts["preconditions"]["resourceVersion"].as_str()
            && rv != cur.rv.to_string()
        {
            return Err(ApiError::conflict(
                &self.ri.storage_group,
                &self.ri.kind,
                &self.name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    cur.rv
                ),
            ));
        }
        let warnings = self.admit("DELETE", Some(&old), None)?;
        let policy = opts["propagationPolicy"]
            .as_str()
            .map(String::from)
            .or_else(|| match opts["orphanDependents"].as_bool() {
                Some(true) => Some("Orphan".into()),
                Some(false) => Some("Background".into()),
                None => None,
            });
        if let Some(p) = &policy
            && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
        {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                &[(
                    "FieldValueNotSupported".into(),
                    "propagationPolicy".into(),
                    format!(
                        "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                    ),
                )],
            ));
        }
        let outcome = delete_object(
            self.sim,
            &self.gr(),
            &self.ns,
            &self.name,
            policy.as_deref(),
            self.query.dry_run,
            Some(cur),
        )?;
        let mut r = match outcome {
            Deleted::Gone(obj) => {
                if self.ri.is_crd() {
                    Reply::json(200, render(&self.ri, &obj))
                } else {
                    Reply::value(
                        200,
                        &status::success(&self.ri.group, &self.ri.plural, &self.name, &obj.uid),
                    )
                }
            }
            Deleted::Pending(obj) => Reply::json(
                if policy.is_some() { 202 } else { 200 },
                render(&self.ri, &obj),
            ),
            Deleted::DryRun(v) => Reply::value(200, &v),
        };
        r.warnings = warnings;
        Ok(r)
    }

    fn delete_collection(&self, body: &[u8]) -> Result<Reply, ApiError> {
        let opts = delete_options(body, self.query)?;
        let (labels, fields) = self.selectors()?;
        let policy = opts["propagationPolicy"].as_str().map(String::from);
        let targets: Vec<Arc<Obj>> = {
            let store = self.sim.store.read().expect("store lock");
            let ns = (!self.ns.is_empty()).then_some(self.ns.as_str());
            store
                .range(&self.gr(), ns, None)
                .map(|(_, o)| o.clone())
                .filter(|o| {
                    labels.matches(&o.labels) && (fields.is_empty() || fields.matches(&o.value()))
                })
                .collect()
        };
        let mut items = Vec::new();
        for o in targets {
            let v = o.value();
            let (ns, name) = meta::namespace_and_name(&v);
            let ctx = Ctx {
                ns: ns.clone(),
                name: name.clone(),
                ..self.clone_ctx()
            };
            ctx.admit("DELETE", Some(&v), None)?;
            match delete_object(
                self.sim,
                &self.gr(),
                &ns,
                &name,
                policy.as_deref(),
                self.query.dry_run,
                None,
            ) {
                Ok(Deleted::Gone(o) | Deleted::Pending(o)) => items.push(o.value()),
                Ok(Deleted::DryRun(v)) => items.push(v),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let rv = self.sim.store.read().expect("store lock").current_rv();
        Ok(Reply::value(
            200,
            &json!({"kind": format!("{}List", self.ri.kind), "apiVersion": self.ri.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        ))
    }
}

fn delete_options(body: &[u8], query: &Query) -> Result<Value, ApiError> {
    let mut opts: Value = if body.iter().all(|b| b.is_ascii_whitespace()) {
        json!({})
    } else if crate::proto::is_protobuf(body) {
        crate::proto::decode(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: protobuf: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(p) = query.get("propagationPolicy") {
        opts["propagationPolicy"] = json!(p);
    }
    if let Some(g) = query.get("gracePeriodSeconds") {
        opts["gracePeriodSeconds"] = json!(g.parse::<i64>().unwrap_or(0));
    }
    if let Some(o) = query.get("orphanDependents") {
        opts["orphanDependents"] = json!(o == "true");
    }
    Ok(opts)
}

impl ApiError {
    fn retry(mut self) -> ApiError {
        self.details = Some(json!({"kube-sim-retry": true}));
        self
    }
    fn is_retry(&self) -> bool {
        self.details
            .as_ref()
            .is_some_and(|d| d.get("kube-sim-retry").is_some())
    }
}

/// Is a deleting object free to go (no finalizers left; namespaces also need an empty spec.finalizers)?
pub fn ready_to_remove(gr: &GroupResource, v: &Value) -> bool {
    let spec_fin = gr.group.is_empty()
        && gr.resource.as_ref() == "namespaces"
        && v["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
    meta::finalizers(v).is_empty() && !spec_fin
}

pub enum Deleted {
    Gone(Arc<Obj>),
    Pending(Arc<Obj>),
    DryRun(Value),
}

/// Delete an object as the API server does: with finalizers (or a Foreground/Orphan policy,
/// which add theirs) it only gets a deletionTimestamp; otherwise it goes at once and the
/// garbage collector deals with its dependents.
pub fn delete_object(
    sim: &Sim,
    gr: &GroupResource,
    ns: &str,
    name: &str,
    policy: Option<&str>,
    dry_run: bool,
    first: Option<Arc<Obj>>,
) -> Result<Deleted, ApiError> {
    let mut cur = first;
    for _ in 0..16 {
        let obj = match cur.take() {
            Some(o) => o,
            None => sim
                .store
                .read()
                .expect("store lock")
                .get(gr, ns, name)
                .ok_or_else(|| ApiError::not_found(&gr.group, &gr.resource, name))?,
        };
        let mut v = obj.value();
        let mut fins = meta::finalizers(&v);
        let deleting = meta::is_deleting(&v);
        let is_ns = gr.group.is_empty() && gr.resource.as_ref() == "namespaces";
        let extra = match policy {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        if let Some(f) = extra
            && !fins.iter().any(|x| x == f)
            && (!deleting || !fins.is_empty())
        {
            fins.retain(|x| x != "foregroundDeletion" && x != "orphan");
            fins.push(f.to_string());
        }
        let pending = !fins.is_empty() || is_ns;
        if dry_run {
            return Ok(Deleted::DryRun(v));
        }
        let new = if pending {
            if deleting && meta::finalizers(&v) == fins {
                return Ok(Deleted::Pending(obj));
            }
            meta::set_finalizers(&mut v, &fins);
            if !deleting {
                v["metadata"]["deletionTimestamp"] = json!(meta::now());
                v["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                if v["metadata"].get("generation").is_some() {
                    v["metadata"]["generation"] =
                        json!(v["metadata"]["generation"].as_i64().unwrap_or(0) + 1);
                }
                if is_ns {
                    v["status"]["phase"] = json!("Terminating");
                }
            }
            Some(v)
        } else {
            None
        };
        let ev = {
            let mut store = sim.store.write().expect("store lock");
            match store.get(gr, ns, name) {
                Some(now) if now.rv == obj.rv => {}
                Some(_) => continue,
                None => return Err(ApiError::not_found(&gr.group, &gr.resource, name)),
            }
            store.commit(gr, ns, name, new).expect("object exists")
        };
        post_commit(sim, &ev);
        return Ok(if pending {
            Deleted::Pending(ev.obj.clone())
        } else {
            Deleted::Gone(ev.obj.clone())
        });
    }
    Err(ApiError::stale(&gr.group, &gr.resource, name))
}

/// Change an object as the system (garbage collector, controllers): `f` returns the new
/// value or None for no change. A deleting object whose last finalizer goes is removed.
pub fn system_update(
    sim: &Sim,
    gr: &GroupResource,
    ns: &str,
    name: &str,
    f: impl Fn(&Value) -> Option<Value>,
) -> Option<Arc<Event>> {
    for _ in 0..16 {
        let obj = sim.store.read().expect("store lock").get(gr, ns, name)?;
        let new = f(&obj.value())?;
        let value = if meta::is_deleting(&new) && ready_to_remove(gr, &new) {
            None
        } else {
            Some(new)
        };
        let ev = {
            let mut store = sim.store.write().expect("store lock");
            match store.get(gr, ns, name) {
                Some(now) if now.rv == obj.rv => {}
                Some(_) => continue,
                None => return None,
            }
            store.commit(gr, ns, name, value)
        };
        if let Some(ev) = &ev {
            post_commit(sim, ev);
        }
        return ev;
    }
    None
}

/// Create an object as the system (namespace defaults).
pub fn system_create(sim: &Sim, gr: &GroupResource, ns: &str, mut v: Value) {
    let name = v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    v["metadata"]["uid"] = json!(meta::uid());
    v["metadata"]["creationTimestamp"] = json!(meta::now());
    let ev = {
        let mut store = sim.store.write().expect("store lock");
        if store.get(gr, ns, &name).is_some() {
            return;
        }
        store.commit(gr, ns, &name, Some(v))
    };
    if let Some(ev) = ev {
        post_commit(sim, &ev);
    }
}

/// Side effects after any commit.
pub fn post_commit(sim: &Sim, ev: &Event) {
    if ev.gr.group.as_ref() == "apiextensions.k8s.io" {
        crate::crd::sync_registry(
            sim,
            &ev.obj.value(),
            ev.kind == crate::store::EventType::Deleted,
        );
    }
    if ev.gr.group.is_empty()
        && ev.gr.resource.as_ref() == "namespaces"
        && ev.kind == crate::store::EventType::Added
        && sim.config.namespace_defaults
    {
        for (group, resource, obj) in crate::bootstrap::namespace_defaults(&ev.name) {
            system_create(
                sim,
                &GroupResource {
                    group: group.into(),
                    resource: resource.into(),
                },
                &ev.name,
                obj,
            );
        }
    }
    sim.after_commit(&ev.gr, &ev.ns);
}

fn encode_continue(rv: u64, key: &Key) -> String {
    let start = if key.0.is_empty() {
        format!("{}\u{0}", key.1)
    } else {
        format!("{}/{}\u{0}", key.0, key.1)
    };
    let tok = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::STANDARD.encode(tok.to_string())
}

fn decode_continue(tok: &str) -> Result<(u64, Key), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(tok)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"]
        .as_str()
        .ok_or_else(bad)?
        .trim_end_matches('\u{0}');
    let key: Key = match start.split_once('/') {
        Some((ns, name)) => (ns.into(), name.into()),
        None => ("".into(), start.into()),
    };
    Ok((rv, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let k: Key = ("ns".into(), "a".into());
        let (rv, back) = decode_continue(&encode_continue(42, &k)).unwrap();
        assert_eq!((rv, back), (42, k));
        let c: Key = ("".into(), "cluster".into());
        assert_eq!(decode_continue(&encode_continue(1, &c)).unwrap().1, c);
        assert_eq!(decode_continue("!!").unwrap_err().code, 400);
    }

    #[test]
    fn namespaces_wait_for_spec_finalizers() {
        let ns = GroupResource {
            group: "".into(),
            resource: "namespaces".into(),
        };
        assert!(!ready_to_remove(
            &ns,
            &json!({"metadata": {}, "spec": {"finalizers": ["kubernetes"]}})
        ));
        assert!(ready_to_remove(&ns, &json!({"metadata": {}, "spec": {}})));
        let cm = GroupResource {
            group: "".into(),
            resource: "configmaps".into(),
        };
        assert!(!ready_to_remove(
            &cm,
            &json!({"metadata": {"finalizers": ["a/b"]}})
        ));
    }
}
