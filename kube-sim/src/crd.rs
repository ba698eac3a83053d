//! CustomResourceDefinitions: validated on write, established at once (status conditions
//! `NamesAccepted` and `Established`), served at their scope for every served version, and
//! cleaned up through the `customresourcecleanup.apiextensions.k8s.io` finalizer.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::kinds::{CrdVersion, ResourceInfo};
use crate::present::PrinterColumn;
use crate::schema::CrdSchema;
use crate::sim::Sim;
use crate::ssa::SchemaTypeInfo;

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

type Cause = (String, String, String);

fn cause(reason: &str, field: &str, msg: String) -> Cause {
    (reason.into(), field.into(), msg)
}

/// The CRD's own validation (names, scope, versions, schemas).
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        out.push(cause(
            "FieldValueRequired",
            "spec.group",
            "Required value".into(),
        ));
    } else if !group.contains('.') {
        out.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: \"{group}\": should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        out.push(cause(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value".into(),
        ));
    }
    if spec["names"]["kind"].as_str().is_none_or(str::is_empty) {
        out.push(cause(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value".into(),
        ));
    }
    if name != format!("{plural}.{group}") {
        out.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        other => out.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: \"{}\": supported values: \"Cluster\", \"Namespaced\"",
                other.unwrap_or_default()
            ),
        )),
    }
    if let Some(old) = old {
        if old["spec"]["scope"] != spec["scope"] {
            out.push(cause(
                "FieldValueInvalid",
                "spec.scope",
                format!(
                    "Invalid value: \"{}\": field is immutable",
                    spec["scope"].as_str().unwrap_or_default()
                ),
            ));
        }
        if old["spec"]["group"] != spec["group"] {
            out.push(cause(
                "FieldValueInvalid",
                "spec.group",
                format!("Invalid value: \"{group}\": field is immutable"),
            ));
        }
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        out.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: \"null\": must have exactly one version marked as storage version"
                .into(),
        ));
    } else if versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count()
        != 1
    {
        out.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                json!(versions)
            ),
        ));
    }
    let check_schema = |out: &mut Vec<Cause>, s: &Value, at: &str| {
        if let Err(errs) = CrdSchema::new_at(s, at) {
            out.extend(errs.into_iter().map(|e| {
                (
                    e.kind.reason().to_string(),
                    e.field.clone(),
                    e.cause_message(),
                )
            }));
        }
    };
    // As the v1 -> internal conversion does, a schema identical in every version moves to
    // `spec.validation`, and is validated (and its errors named) there, once.
    let hoisted = versions
        .first()
        .and_then(|v0| v0["schema"].get("openAPIV3Schema"))
        .filter(|_| {
            versions
                .iter()
                .all(|v| v["schema"] == versions[0]["schema"])
        });
    if let Some(s) = hoisted {
        check_schema(&mut out, s, "spec.validation.openAPIV3Schema");
    } else {
        for (i, v) in versions.iter().enumerate() {
            let at = format!("spec.versions[{i}].schema.openAPIV3Schema");
            match v["schema"].get("openAPIV3Schema") {
                None => out.push(cause("FieldValueRequired", &at, "Required value".into())),
                Some(s) => check_schema(&mut out, s, &at),
            }
        }
    }
    out
}

/// Server-side state of a CRD: the cleanup finalizer and established conditions.
pub fn on_write(crd: &mut Value) {
    if !crate::meta::is_deleting(crd) {
        let mut fins = crate::meta::finalizers(crd);
        if !fins.iter().any(|f| f == CLEANUP_FINALIZER) {
            fins.push(CLEANUP_FINALIZER.into());
            crate::meta::set_finalizers(crd, &fins);
        }
    }
    let now = crate::meta::now();
    let prev: Vec<Value> = crd["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let keep_time = |t: &str, status: &str| -> String {
        prev.iter()
            .find(|c| c["type"] == t && c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
            .unwrap_or_else(|| now.clone())
    };
    let terminating = crate::meta::is_deleting(crd);
    let mut conditions = vec![
        json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": keep_time("NamesAccepted", "True")}),
        json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": keep_time("Established", "True")}),
    ];
    if terminating {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": keep_time("Terminating", "True")}));
    }
    let mut names = crd["spec"]["names"].clone();
    if names["singular"].as_str().is_none_or(str::is_empty) {
        names["singular"] = json!(
            names["kind"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
        );
    }
    if names["listKind"].as_str().is_none_or(str::is_empty) {
        names["listKind"] = json!(format!(
            "{}List",
            names["kind"].as_str().unwrap_or_default()
        ));
    }
    let mut stored: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(v) = crd["spec"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"].as_bool() == Some(true)))
        && !stored.contains(&v["name"])
    {
        stored.push(v["name"].clone());
    }
    crd["status"] =
        json!({"conditions": conditions, "acceptedNames": names, "storedVersions": stored});
}

/// Serve (or stop serving) the CRD's resources.
pub fn sync_registry(sim: &Sim, crd: &Value, deleted: bool) {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let mut reg = sim.registry.write().expect("registry lock");
    reg.remove_group_resource(group, plural);
    if deleted {
        return;
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    for v in versions
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
    {
        let raw = v["schema"]["openAPIV3Schema"].clone();
        let Ok(schema) = CrdSchema::new(&raw) else {
            continue;
        };
        let columns: Vec<PrinterColumn> =
            serde_json::from_value(v["additionalPrinterColumns"].clone()).unwrap_or_default();
        let kind = names["kind"].as_str().unwrap_or_default();
        reg.insert(ResourceInfo {
            group: group.into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: names["singular"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
                .unwrap_or_else(|| kind.to_ascii_lowercase())
                .into(),
            namespaced: spec["scope"].as_str() == Some("Namespaced"),
            short_names: crate::meta::strings(&names["shortNames"]),
            categories: crate::meta::strings(&names["categories"]),
            has_status: v["subresources"].get("status").is_some(),
            has_generation: true,
            verbs: CRUD,
            virtual_create: false,
            crd: Some(Arc::new(CrdVersion {
                type_info: SchemaTypeInfo::new(&raw),
                schema,
                raw_schema: raw,
                printer_columns: columns,
                storage: v["storage"].as_bool() == Some(true),
            })),
            extra_field_selectors: &[],
            storage_group: group.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn a_valid_crd_passes_and_gets_established() {
        let mut c = crd();
        assert!(validate(&c, None).is_empty());
        on_write(&mut c);
        assert_eq!(c["status"]["conditions"][1]["type"], "Established");
        assert_eq!(c["status"]["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(c["metadata"]["finalizers"][0], CLEANUP_FINALIZER);
    }

    #[test]
    fn names_scope_and_storage_are_checked() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong");
        c["spec"]["scope"] = json!("Global");
        c["spec"]["versions"][0]["storage"] = json!(false);
        let fields: Vec<String> = validate(&c, None).into_iter().map(|c| c.1).collect();
        assert_eq!(fields, vec!["metadata.name", "spec.scope", "spec.versions"]);
    }

    #[test]
    fn schema_errors_are_named_where_the_internal_version_keeps_the_schema() {
        let bad = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a >"}]}});
        let mut c = crd();
        c["spec"]["versions"][0]["schema"] = bad.clone();
        let mut v2 = c["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        v2["storage"] = json!(false);
        c["spec"]["versions"].as_array_mut().unwrap().push(v2);
        // The same schema in every version: validated once, as spec.validation.
        let fields: Vec<String> = validate(&c, None).into_iter().map(|c| c.1).collect();
        assert_eq!(
            fields,
            vec!["spec.validation.openAPIV3Schema.x-kubernetes-validations[0].rule"]
        );
        // Different schemas: each version's own path; a missing one is required.
        c["spec"]["versions"][1]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        let errs = validate(&c, None);
        let fields: Vec<&str> = errs.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule",
                "spec.versions[1].schema.openAPIV3Schema"
            ]
        );
        assert_eq!(errs[1].2, "Required value");
    }
}
