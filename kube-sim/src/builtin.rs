//! Built-in kinds are decoded into their typed Kubernetes structs (k8s-openapi) and
//! encoded again, as the real API server decodes into Go structs: wrong types fail,
//! unknown fields drop out (and are reported for `fieldValidation`).

use serde_json::Value;

macro_rules! roundtrip {
    ($v:expr, $t:ty) => {{
        let typed: $t = serde_json::from_value($v.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(&typed).map_err(|e| e.to_string())?
    }};
}

/// Normalize a built-in object. Returns it with unknown fields dropped, and their paths
/// (`.spec.foo`). Kinds without a typed struct here pass through.
pub fn normalize(group: &str, kind: &str, v: &Value) -> Result<(Value, Vec<String>), String> {
    use k8s_openapi::api::{
        admissionregistration::v1 as adm, coordination::v1 as coord, core::v1 as core,
        events::v1 as events, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let out = match (group, kind) {
        ("", "Namespace") => roundtrip!(v, core::Namespace),
        ("", "ConfigMap") => roundtrip!(v, core::ConfigMap),
        ("", "Secret") => roundtrip!(v, core::Secret),
        ("", "ServiceAccount") => roundtrip!(v, core::ServiceAccount),
        ("", "Event") => roundtrip!(v, core::Event),
        ("events.k8s.io", "Event") => roundtrip!(v, events::Event),
        ("coordination.k8s.io", "Lease") => roundtrip!(v, coord::Lease),
        ("rbac.authorization.k8s.io", "Role") => roundtrip!(v, rbac::Role),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip!(v, rbac::RoleBinding),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip!(v, rbac::ClusterRole),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip!(v, rbac::ClusterRoleBinding)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            roundtrip!(v, ext::CustomResourceDefinition)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            roundtrip!(v, adm::ValidatingAdmissionPolicy)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            roundtrip!(v, adm::ValidatingAdmissionPolicyBinding)
        }
        _ => return Ok((v.clone(), Vec::new())),
    };
    let mut unknown = Vec::new();
    unknown_fields(v, &out, "", &mut unknown);
    Ok((out, unknown))
}

fn unknown_fields(orig: &Value, norm: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, norm) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    None if !va.is_null() && !is_empty_container(va) => out.push(p),
                    Some(vb) => unknown_fields(va, vb, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (va, vb)) in a.iter().zip(b.iter()).enumerate() {
                unknown_fields(va, vb, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn is_empty_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty()) || matches!(v, Value::Array(a) if a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_decode_rejects_wrong_types_and_reports_unknown_fields() {
        let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": 1}});
        assert!(normalize("", "ConfigMap", &bad).is_err());
        let extra = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1}, "data": {"a": "1"}, "spec": {"x": 1}});
        let (v, unknown) = normalize("", "ConfigMap", &extra).unwrap();
        assert_eq!(unknown, vec![".metadata.bogus", ".spec"]);
        assert!(v.get("spec").is_none());
        assert_eq!(v["data"]["a"], "1");
    }
}
