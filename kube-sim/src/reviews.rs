//! authorization.k8s.io and authentication.k8s.io reviews: answered, never stored.

use serde_json::{Value, json};

use crate::authz::{Attributes, Decision, UserInfo};
use crate::kinds::ResourceInfo;
use crate::server::Reply;
use crate::sim::Sim;
use crate::status::ApiError;

fn decide(
    sim: &Sim,
    user: &UserInfo,
    spec: &Value,
    force_ns: Option<&str>,
) -> Result<Value, ApiError> {
    let attrs = if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        Attributes {
            user: user.clone(),
            verb: r["verb"].as_str().unwrap_or_default().into(),
            namespace: force_ns
                .map(String::from)
                .unwrap_or_else(|| r["namespace"].as_str().unwrap_or_default().into()),
            api_group: r["group"].as_str().unwrap_or_default().into(),
            api_version: r["version"].as_str().unwrap_or_default().into(),
            resource: r["resource"].as_str().unwrap_or_default().into(),
            subresource: r["subresource"].as_str().unwrap_or_default().into(),
            name: r["name"].as_str().unwrap_or_default().into(),
            resource_request: true,
            path: String::new(),
        }
    } else if let Some(n) = spec.get("nonResourceAttributes").filter(|r| r.is_object()) {
        Attributes {
            user: user.clone(),
            verb: n["verb"].as_str().unwrap_or_default().into(),
            path: n["path"].as_str().unwrap_or_default().into(),
            ..Default::default()
        }
    } else {
        return Err(ApiError::invalid("authorization.k8s.io", "SelfSubjectAccessReview", "", &[(
            "FieldValueRequired".into(),
            "spec.resourceAttributes".into(),
            "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
        )]));
    };
    if user.groups.iter().any(|g| g == "system:masters") {
        return Ok(json!({"allowed": true}));
    }
    Ok(match sim.rbac().authorize(&attrs) {
        Decision::Allow => json!({"allowed": true}),
        Decision::Deny { reason } => {
            let mut s = json!({"allowed": false});
            if !reason.is_empty() {
                s["reason"] = json!(reason);
            }
            s
        }
    })
}

pub fn create(
    sim: &Sim,
    user: &UserInfo,
    ri: &ResourceInfo,
    ns: &str,
    body: &Value,
) -> Result<Reply, ApiError> {
    let mut out = body.clone();
    out["apiVersion"] = json!(ri.api_version());
    out["kind"] = json!(ri.kind.as_ref());
    if !out.get("metadata").is_some_and(|m| m.is_object()) {
        out["metadata"] = json!({});
    }
    out["metadata"]["creationTimestamp"] = Value::Null;
    let spec = &body["spec"];
    out["status"] = match ri.kind.as_ref() {
        "SelfSubjectAccessReview" => decide(sim, user, spec, None)?,
        "LocalSubjectAccessReview" | "SubjectAccessReview" => {
            let subject = UserInfo {
                name: spec["user"].as_str().unwrap_or_default().into(),
                uid: spec["uid"].as_str().unwrap_or_default().into(),
                groups: crate::meta::strings(&spec["groups"]),
                extra: Default::default(),
            };
            if ri.kind.as_ref() == "LocalSubjectAccessReview"
                && spec["resourceAttributes"]["namespace"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty() && n != ns)
            {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {ns}"
                )));
            }
            decide(
                sim,
                &subject,
                spec,
                (ri.kind.as_ref() == "LocalSubjectAccessReview").then_some(ns),
            )?
        }
        "SelfSubjectRulesReview" => {
            let namespace = spec["namespace"].as_str().unwrap_or_default();
            let (resource_rules, non_resource_rules) =
                if user.groups.iter().any(|g| g == "system:masters") {
                    (
                        vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
                        vec![json!({"verbs": ["*"], "nonResourceURLs": ["*"]})],
                    )
                } else {
                    sim.rbac().rules_for(user, namespace)
                };
            json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
        }
        "SelfSubjectReview" => {
            json!({"userInfo": {"username": user.name, "uid": user.uid, "groups": user.groups}})
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(Reply::value(201, &out))
}
