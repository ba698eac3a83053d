//! Non-resource endpoints: version, health, discovery (legacy and aggregated), OpenAPI v3.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::kinds::{Registry, ResourceInfo};
use crate::present::{ApiResource, openapi_v3_group_version, openapi_v3_root};
use crate::server::Reply;
use crate::sim::Sim;
use crate::status::ApiError;

const AGGREGATED: &str = "as=APIGroupDiscoveryList";

fn accept(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The aggregated-discovery version the client asks for first (v2 or v2beta1).
fn aggregated_version(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        if part.contains(AGGREGATED) && part.contains("g=apidiscovery.k8s.io") {
            if part.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if part.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

pub fn non_resource(sim: &Arc<Sim>, path: &str, headers: &HeaderMap) -> Result<Reply, ApiError> {
    let registry = sim.registry.read().expect("registry lock").clone();
    let accept = accept(headers);
    let path = path.trim_end_matches('/');
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["version"] => Ok(Reply::value(
            200,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-sim", "gitCommit": "kube-sim", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "rust", "compiler": "rustc", "platform": "linux/amd64"}),
        )),
        ["healthz"] | ["livez"] | ["readyz"] => {
            Ok(Reply::json(200, "ok").with_type("text/plain; charset=utf-8"))
        }
        ["api"] => match aggregated_version(&accept) {
            Some(v) => Ok(aggregated(&registry, true, v)),
            None => Ok(Reply::value(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            )),
        },
        ["apis"] => match aggregated_version(&accept) {
            Some(v) => Ok(aggregated(&registry, false, v)),
            None => Ok(Reply::value(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": registry.groups().into_iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_json(&g, &vs)).collect::<Vec<_>>()}),
            )),
        },
        ["apis", g] => {
            let groups = registry.groups();
            let (g, vs) = groups
                .iter()
                .find(|(name, _)| name == g)
                .ok_or_else(ApiError::no_route)?;
            let mut v = group_json(g, vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            Ok(Reply::value(200, &v))
        }
        ["api", v] => resource_list(&registry, "", v),
        ["apis", g, v] => resource_list(&registry, g, v),
        ["openapi", "v2"] => Ok(crate::openapi_v2::reply(&registry, &accept)),
        ["openapi", "v3"] => {
            let gvs: Vec<(String, String)> = group_versions(&registry)
                .into_iter()
                .map(|(g, v)| (gv_path(&g, &v), hash(&openapi_doc(&registry, &g, &v))))
                .collect();
            Ok(Reply::value(200, &openapi_v3_root(&gvs)))
        }
        ["openapi", "v3", "api", v] => openapi_reply(&registry, "", v),
        ["openapi", "v3", "apis", g, v] => openapi_reply(&registry, g, v),
        _ => Err(ApiError::no_route()),
    }
}

fn gv_path(g: &str, v: &str) -> String {
    if g.is_empty() {
        format!("api/{v}")
    } else {
        format!("apis/{g}/{v}")
    }
}

fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    registry
        .groups()
        .into_iter()
        .flat_map(|(g, vs)| vs.into_iter().map(move |v| (g.clone(), v)))
        .collect()
}

fn openapi_doc(registry: &Registry, group: &str, version: &str) -> Value {
    let resources = registry.resources_of(group, version);
    let schemas: Vec<Option<Value>> = resources
        .iter()
        .map(|r| r.crd.as_ref().map(|c| c.raw_schema.clone()))
        .collect();
    let api: Vec<ApiResource> = resources
        .iter()
        .zip(schemas.iter())
        .filter(|(r, _)| !r.virtual_create)
        .map(|(r, s)| ApiResource {
            group: &r.group,
            version: &r.version,
            kind: &r.kind,
            plural: &r.plural,
            namespaced: r.namespaced,
            schema: s.as_ref(),
            has_status: r.has_status,
        })
        .collect();
    openapi_v3_group_version(&api)
}

fn openapi_reply(registry: &Registry, group: &str, version: &str) -> Result<Reply, ApiError> {
    if registry.resources_of(group, version).is_empty() {
        return Err(ApiError::no_route());
    }
    Ok(Reply::value(200, &openapi_doc(registry, group, version)))
}

fn hash(v: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

fn group_json(g: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": g, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

fn subresources(r: &ResourceInfo) -> Vec<&'static str> {
    let mut subs = Vec::new();
    if r.has_status {
        subs.push("status");
    }
    if r.group.is_empty() && r.plural.as_ref() == "namespaces" {
        subs.push("finalize");
    }
    subs
}

fn resource_list(registry: &Registry, group: &str, version: &str) -> Result<Reply, ApiError> {
    let resources = registry.resources_of(group, version);
    if resources.is_empty() {
        return Err(ApiError::no_route());
    }
    let mut list = Vec::new();
    for r in &resources {
        let mut entry = json!({"name": r.plural.as_ref(), "singularName": r.singular.as_ref(), "namespaced": r.namespaced, "kind": r.kind.as_ref(), "verbs": r.verbs});
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for s in subresources(r) {
            let verbs: &[&str] = if s == "finalize" {
                &["update"]
            } else {
                &["get", "patch", "update"]
            };
            list.push(json!({"name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind.as_ref(), "verbs": verbs}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(Reply::value(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    ))
}

fn aggregated(registry: &Registry, core: bool, api_version: &str) -> Reply {
    let mut items = Vec::new();
    for (g, versions) in registry.groups() {
        if g.is_empty() != core {
            continue;
        }
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = registry
                    .resources_of(&g, v)
                    .iter()
                    .map(|r| {
                        let mut e = json!({
                            "resource": r.plural.as_ref(),
                            "responseKind": {"group": g, "version": v, "kind": r.kind.as_ref()},
                            "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": r.singular.as_ref(),
                            "verbs": r.verbs,
                        });
                        if !r.short_names.is_empty() {
                            e["shortNames"] = json!(r.short_names);
                        }
                        if !r.categories.is_empty() {
                            e["categories"] = json!(r.categories);
                        }
                        let subs: Vec<Value> = subresources(r)
                            .into_iter()
                            .map(|s| {
                                let verbs: &[&str] = if s == "finalize" { &["update"] } else { &["get", "patch", "update"] };
                                json!({"subresource": s, "responseKind": {"group": g, "version": v, "kind": r.kind.as_ref()}, "verbs": verbs})
                            })
                            .collect();
                        if !subs.is_empty() {
                            e["subresources"] = json!(subs);
                        }
                        e
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(json!({"metadata": {"name": g}, "versions": vs}));
    }
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{api_version}"), "metadata": {}, "items": items});
    Reply::value(200, &body).with_type(&format!(
        "application/json;g=apidiscovery.k8s.io;v={api_version};as=APIGroupDiscoveryList"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_version_follows_accept_order() {
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2")
        );
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2beta1")
        );
        assert_eq!(aggregated_version("application/json"), None);
    }

    #[test]
    fn core_resources_list_subresources() {
        let r = Registry::builtin();
        let reply = resource_list(&r, "", "v1").unwrap();
        assert_eq!(reply.code, 200);
        let agg = aggregated(&r, false, "v2");
        assert!(agg.content_type.contains("v=v2"));
    }
}
