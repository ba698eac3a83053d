//! The resources kube-sim serves: a table of built-in kinds, plus the kinds that
//! CustomResourceDefinitions bring to life. Adding a built-in kind is one table entry.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::present::PrinterColumn;
use crate::schema::CrdSchema;
use crate::ssa::SchemaTypeInfo;

/// Storage identity of a resource: group and plural (versions share storage).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: Arc<str>,
    pub resource: Arc<str>,
}

/// What the schema of a custom resource version says.
pub struct CrdVersion {
    pub schema: CrdSchema,
    pub raw_schema: Value,
    pub type_info: SchemaTypeInfo,
    pub printer_columns: Vec<PrinterColumn>,
    /// `spec.preserveUnknownFields`-free structural schema: unknown fields are pruned.
    pub storage: bool,
}

/// One served group/version/resource.
#[derive(Clone)]
pub struct ResourceInfo {
    pub group: Arc<str>,
    pub version: Arc<str>,
    pub kind: Arc<str>,
    pub plural: Arc<str>,
    pub singular: Arc<str>,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `status` subresource: main-resource writes ignore `status`, `/status` writes only it.
    pub has_status: bool,
    /// `metadata.generation` is maintained (custom resources and kinds with a spec).
    pub has_generation: bool,
    /// Verbs for discovery.
    pub verbs: &'static [&'static str],
    /// Only `create` is served and nothing is stored (reviews).
    pub virtual_create: bool,
    /// The CRD version's schema; None for built-ins.
    pub crd: Option<Arc<CrdVersion>>,
    /// Field selectors this resource supports besides metadata.name and metadata.namespace.
    pub extra_field_selectors: &'static [&'static str],
    /// The group whose storage this resource shares (events.k8s.io Events are core Events).
    pub storage_group: Arc<str>,
}

impl ResourceInfo {
    /// Where its objects are stored.
    pub fn gr(&self) -> GroupResource {
        GroupResource {
            group: self.storage_group.clone(),
            resource: self.plural.clone(),
        }
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn is_crd(&self) -> bool {
        self.crd.is_some()
    }
}

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
const CREATE_ONLY: &[&str] = &["create"];

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    has_status: bool,
    has_generation: bool,
    virtual_create: bool,
    field_selectors: &'static [&'static str],
    storage_group: Option<&'static str>,
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names: &[],
        categories: &[],
        has_status: false,
        has_generation: false,
        virtual_create: false,
        field_selectors: &[],
        storage_group: None,
    }
}

/// Field selectors of Events (they select on the stored, core/v1 form).
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The built-in kinds. One entry per kind.
const BUILTINS: &[Builtin] = &[
    Builtin {
        short_names: &["ns"],
        has_status: true,
        field_selectors: &["status.phase"],
        ..kind("", "v1", "Namespace", "namespaces", false)
    },
    Builtin {
        short_names: &["cm"],
        ..kind("", "v1", "ConfigMap", "configmaps", true)
    },
    Builtin {
        field_selectors: &["type"],
        ..kind("", "v1", "Secret", "secrets", true)
    },
    Builtin {
        short_names: &["sa"],
        ..kind("", "v1", "ServiceAccount", "serviceaccounts", true)
    },
    Builtin {
        short_names: &["ev"],
        field_selectors: EVENT_FIELDS,
        ..kind("", "v1", "Event", "events", true)
    },
    Builtin {
        short_names: &["ev"],
        storage_group: Some(""),
        field_selectors: EVENT_FIELDS,
        ..kind("events.k8s.io", "v1", "Event", "events", true)
    },
    kind("coordination.k8s.io", "v1", "Lease", "leases", true),
    kind("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    Builtin {
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        has_status: true,
        has_generation: true,
        ..kind(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
    },
    Builtin {
        categories: &["api-extensions"],
        has_status: true,
        has_generation: true,
        ..kind(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            false,
        )
    },
    Builtin {
        categories: &["api-extensions"],
        has_generation: true,
        ..kind(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
        )
    },
    Builtin {
        virtual_create: true,
        ..kind(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            false,
        )
    },
    Builtin {
        virtual_create: true,
        ..kind(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            false,
        )
    },
    Builtin {
        virtual_create: true,
        ..kind(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            false,
        )
    },
    Builtin {
        virtual_create: true,
        ..kind(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            true,
        )
    },
    Builtin {
        virtual_create: true,
        ..kind(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            false,
        )
    },
];

/// All served resources, built-in and custom.
#[derive(Clone, Default)]
pub struct Registry {
    resources: Vec<Arc<ResourceInfo>>,
    by_gvr: HashMap<(String, String, String), Arc<ResourceInfo>>,
}

impl Registry {
    pub fn builtin() -> Registry {
        let mut r = Registry::default();
        for b in BUILTINS {
            r.insert(ResourceInfo {
                group: b.group.into(),
                version: b.version.into(),
                kind: b.kind.into(),
                plural: b.plural.into(),
                singular: b.kind.to_ascii_lowercase().into(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                has_status: b.has_status,
                has_generation: b.has_generation,
                verbs: if b.virtual_create { CREATE_ONLY } else { CRUD },
                virtual_create: b.virtual_create,
                crd: None,
                extra_field_selectors: b.field_selectors,
                storage_group: b.storage_group.unwrap_or(b.group).into(),
            });
        }
        r
    }

    pub fn insert(&mut self, info: ResourceInfo) {
        let key = (
            info.group.to_string(),
            info.version.to_string(),
            info.plural.to_string(),
        );
        let info = Arc::new(info);
        self.resources.retain(|r| {
            (r.group.as_ref(), r.version.as_ref(), r.plural.as_ref())
                != (key.0.as_str(), key.1.as_str(), key.2.as_str())
        });
        self.resources.push(info.clone());
        self.by_gvr.insert(key, info);
    }

    /// Remove every version of a custom resource.
    pub fn remove_group_resource(&mut self, group: &str, plural: &str) {
        self.resources
            .retain(|r| !(r.group.as_ref() == group && r.plural.as_ref() == plural && r.is_crd()));
        self.by_gvr
            .retain(|(g, _, p), r| !(g == group && p == plural && r.is_crd()));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The preferred (first registered) version of a group/resource.
    pub fn any_version(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.group.as_ref() == group && r.plural.as_ref() == plural)
            .cloned()
    }

    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.group.as_ref() == group && r.kind.as_ref() == kind)
            .cloned()
    }

    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.resources
    }

    /// Groups in registration order, each with its versions in order (first = preferred).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.resources {
            let g = r.group.to_string();
            let idx = match out.iter().position(|(name, _)| *name == g) {
                Some(i) => i,
                None => {
                    out.push((g, Vec::new()));
                    out.len() - 1
                }
            };
            if !out[idx].1.iter().any(|v| v.as_str() == r.version.as_ref()) {
                out[idx].1.push(r.version.to_string());
            }
        }
        for (_, versions) in &mut out {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    pub fn resources_of(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .filter(|r| r.group.as_ref() == group && r.version.as_ref() == version)
            .cloned()
            .collect()
    }
}

/// Kubernetes version ordering: GA > beta > alpha, then by numbers (v2 > v1, v1beta2 > v1beta1).
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    (level, major, num.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_found_by_path_and_kind() {
        let r = Registry::builtin();
        assert!(r.get("", "v1", "configmaps").unwrap().namespaced);
        assert!(
            !r.get("rbac.authorization.k8s.io", "v1", "clusterroles")
                .unwrap()
                .namespaced
        );
        assert_eq!(
            r.by_kind("coordination.k8s.io", "Lease")
                .unwrap()
                .plural
                .as_ref(),
            "leases"
        );
        assert!(r.get("", "v1", "pods").is_none());
    }

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]);
    }
}
