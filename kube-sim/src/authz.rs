//! Authorization (RBAC) and ValidatingAdmissionPolicy evaluation.
//!
//! The RBAC half mirrors `plugin/pkg/auth/authorizer/rbac` (rule resolution
//! in `rule.go`, matching helpers in `rbac/v1/evaluation_helpers.go`), plus
//! the privileged `system:masters` group authorizer that kube-apiserver puts in
//! front of RBAC, and the ClusterRole aggregation controller (done at snapshot
//! construction time instead of by a controller writing `rules`).
//!
//! The admission half mirrors `k8s.io/apiserver/pkg/admission/plugin/policy/validating`
//! (dispatcher, validator, matching) with CEL evaluated by `kube_cel::cel`,
//! including the `authorizer` CEL library (`k8s.io/apiserver/pkg/cel/library/authz.go`)
//! calling back into RBAC and `variables` composition.

// Included as a private `mod authz;` by the server crate: parts of the public
// API it does not (yet) use must not produce dead-code warnings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use kube_cel::KubeCelExt;
use kube_cel::cel;

use cel::objects::{Key, Map as CelMap, Opaque};
use cel::{Context, ExecutionError, Value as CelValue};
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------
// Public request types
// ---------------------------------------------------------------------------

/// An authenticated user (k8s `user.Info`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The user a ServiceAccount authenticates as:
    /// `system:serviceaccount:<ns>:<name>` in groups `system:serviceaccounts`,
    /// `system:serviceaccounts:<ns>` (and `system:authenticated`, added by the
    /// authenticator).
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            uid: String::new(),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_string(),
            ],
            extra: BTreeMap::new(),
        }
    }
}

/// Request attributes (k8s authorizer.Attributes).
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub user: UserInfo,
    /// get list watch create update patch delete deletecollection impersonate escalate bind,
    /// or a custom verb; for non-resource requests the lower-cased HTTP verb.
    pub verb: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub resource_request: bool,
    /// For non-resource requests, e.g. "/version".
    pub path: String,
}

/// Authorization outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    Deny { reason: String },
}

// ---------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------

const SYSTEM_MASTERS: &str = "system:masters";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

#[derive(Debug, Clone, Default, PartialEq)]
struct PolicyRule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

impl PolicyRule {
    fn from_json(v: &Json) -> PolicyRule {
        PolicyRule {
            verbs: str_list(v.get("verbs")),
            api_groups: str_list(v.get("apiGroups")),
            resources: str_list(v.get("resources")),
            resource_names: str_list(v.get("resourceNames")),
            non_resource_urls: str_list(v.get("nonResourceURLs")),
        }
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// `ResourceMatches` from evaluation_helpers.go: `*`, exact
    /// `resource[/subresource]`, or `*/subresource`.
    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        for r in &self.resources {
            if r == "*" || r == combined {
                return true;
            }
            if subresource.is_empty() {
                continue;
            }
            if r.len() == subresource.len() + 2 && r.starts_with("*/") && r.ends_with(subresource) {
                return true;
            }
        }
        false
    }

    fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
        })
    }

    /// `RuleAllows` from rbac.go.
    fn allows(&self, a: &Attributes) -> bool {
        if a.resource_request {
            let combined = if a.subresource.is_empty() {
                a.resource.clone()
            } else {
                format!("{}/{}", a.resource, a.subresource)
            };
            self.verb_matches(&a.verb)
                && self.api_group_matches(&a.api_group)
                && self.resource_matches(&combined, &a.subresource)
                && self.resource_name_matches(&a.name)
        } else {
            self.verb_matches(&a.verb) && self.non_resource_url_matches(&a.path)
        }
    }
}

#[derive(Debug, Clone)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(v: &Json) -> Binding {
        let subjects = v
            .get("subjects")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| Subject {
                        kind: str_at(s, "kind"),
                        name: str_at(s, "name"),
                        namespace: str_at(s, "namespace"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let role_ref = v.get("roleRef").cloned().unwrap_or(Json::Null);
        Binding {
            name: meta_str(v, "name"),
            namespace: meta_str(v, "namespace"),
            role_kind: str_at(&role_ref, "kind"),
            role_name: str_at(&role_ref, "name"),
            subjects,
        }
    }

    /// `appliesTo` from rule.go: index of the first subject matching the user.
    fn applies_to(&self, user: &UserInfo, namespace: &str) -> Option<usize> {
        self.subjects.iter().position(|s| match s.kind.as_str() {
            "User" => user.name == s.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = if s.namespace.is_empty() {
                    namespace
                } else {
                    s.namespace.as_str()
                };
                !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", s.name)
            }
            _ => false,
        })
    }

    /// `clusterRoleBindingDescriber` / `roleBindingDescriber`.
    fn describe(&self, subject: &Subject) -> String {
        let subj = match subject.kind.as_str() {
            "ServiceAccount" => {
                let ns = if subject.namespace.is_empty() {
                    &self.namespace
                } else {
                    &subject.namespace
                };
                format!(
                    "{} {}",
                    subject.kind,
                    crate::status::go_quote(&format!("{}/{}", subject.name, ns))
                )
            }
            _ => format!(
                "{} {}",
                subject.kind,
                crate::status::go_quote(&subject.name)
            ),
        };
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {} of {} {} to {}",
                crate::status::go_quote(&self.name),
                self.role_kind,
                crate::status::go_quote(&self.role_name),
                subj
            )
        } else {
            format!(
                "RoleBinding {} of {} {} to {}",
                crate::status::go_quote(&format!("{}/{}", self.name, self.namespace)),
                self.role_kind,
                crate::status::go_quote(&self.role_name),
                subj
            )
        }
    }
}

/// One namespace's Roles and RoleBindings.
#[derive(Default)]
pub struct NsRbac {
    /// name -> rules
    roles: HashMap<String, Vec<PolicyRule>>,
    /// sorted by name
    bindings: Vec<Binding>,
}

impl NsRbac {
    /// From the namespace's stored Roles and RoleBindings; None when it has neither.
    pub fn new(roles: &[Json], role_bindings: &[Json]) -> Option<NsRbac> {
        if roles.is_empty() && role_bindings.is_empty() {
            return None;
        }
        let mut bindings: Vec<Binding> = role_bindings.iter().map(Binding::from_json).collect();
        bindings.sort_by(|a, b| a.name.cmp(&b.name));
        Some(NsRbac {
            roles: roles
                .iter()
                .map(|r| (meta_str(r, "name"), rules_of(r)))
                .collect(),
            bindings,
        })
    }
}

/// Every namespace's Roles and RoleBindings. Shared by the snapshots and updated one namespace
/// at a time (a RoleBinding written in one workspace costs the same at 10 namespaces as at
/// 100,000), where the cluster-scoped part is rebuilt whole.
pub type Namespaced = Arc<RwLock<HashMap<String, Arc<NsRbac>>>>;

#[derive(Default)]
struct RbacInner {
    /// name -> effective rules (aggregation applied)
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    cluster_role_bindings: Vec<Binding>,
    namespaced: Namespaced,
}

impl fmt::Debug for RbacInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RbacInner")
            .field("cluster_roles", &self.cluster_roles.len())
            .field("cluster_role_bindings", &self.cluster_role_bindings.len())
            .field(
                "namespaces",
                &self.namespaced.read().map(|m| m.len()).unwrap_or(0),
            )
            .finish()
    }
}

enum Visit<'a> {
    Rule {
        binding: &'a Binding,
        subject: &'a Subject,
        rule: &'a PolicyRule,
    },
    Error(RefError),
}

/// Why a binding's role reference did not resolve (`GetRoleReferenceRules`).
#[derive(Debug, Clone, PartialEq)]
enum RefError {
    /// The Role (kind "Role") or ClusterRole does not exist.
    NotFound { kind: String, name: String },
    /// roleRef.kind is neither "Role" nor "ClusterRole".
    UnsupportedKind(String),
}

impl RefError {
    /// As the RBAC authorizer words it (its listers: `role.rbac.authorization.k8s.io "x" not found`).
    fn authorizer_text(&self) -> String {
        match self {
            RefError::NotFound { kind, name } => format!(
                "{}.rbac.authorization.k8s.io {} not found",
                kind.to_ascii_lowercase(),
                crate::status::go_quote(name)
            ),
            RefError::UnsupportedKind(k) => unsupported_kind_text(k),
        }
    }

    /// As the RBAC registry's rule resolver words it: it reads roles through the REST storage
    /// with the request's context, and `Store.Get` names the *request's* resource in its
    /// NotFound (`qualifiedResourceFromContext`), e.g. `rolebindings.rbac.authorization.k8s.io
    /// "missing-role" not found` for a RoleBinding write.
    fn registry_text(&self, request_resource: &str) -> String {
        match self {
            RefError::NotFound { name, .. } => format!(
                "{request_resource}.{RBAC_GROUP} {} not found",
                crate::status::go_quote(name)
            ),
            RefError::UnsupportedKind(k) => unsupported_kind_text(k),
        }
    }
}

fn unsupported_kind_text(kind: &str) -> String {
    format!(
        "unsupported role reference kind: {}",
        crate::status::go_quote(kind)
    )
}

impl RbacInner {
    fn ns(&self, namespace: &str) -> Option<Arc<NsRbac>> {
        self.namespaced
            .read()
            .expect("rbac namespaces")
            .get(namespace)
            .cloned()
    }

    fn role_ref_rules<'a>(
        &'a self,
        b: &Binding,
        ns: Option<&'a NsRbac>,
    ) -> Result<&'a [PolicyRule], RefError> {
        self.role_rules(&b.role_kind, &b.role_name, ns)
    }

    /// The rules of a role reference (`GetRoleReferenceRules`); ClusterRoles with their
    /// aggregated rules, as the aggregation controller would have stored them. `ns`: the
    /// binding's namespace (None for a ClusterRoleBinding).
    fn role_rules<'a>(
        &'a self,
        kind: &str,
        name: &str,
        ns: Option<&'a NsRbac>,
    ) -> Result<&'a [PolicyRule], RefError> {
        let found = match kind {
            "Role" => ns.and_then(|n| n.roles.get(name)).map(Vec::as_slice),
            "ClusterRole" => self.cluster_roles.get(name).map(Vec::as_slice),
            other => return Err(RefError::UnsupportedKind(other.to_string())),
        };
        found.ok_or_else(|| RefError::NotFound {
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }

    /// `VisitRulesFor` from rule.go. The visitor returns false to stop.
    fn visit_rules_for(
        &self,
        user: &UserInfo,
        namespace: &str,
        visitor: &mut dyn FnMut(Visit<'_>) -> bool,
    ) {
        for b in &self.cluster_role_bindings {
            let Some(idx) = b.applies_to(user, "") else {
                continue;
            };
            match self.role_ref_rules(b, None) {
                Err(e) => {
                    if !visitor(Visit::Error(e)) {
                        return;
                    }
                }
                Ok(rules) => {
                    for rule in rules {
                        if !visitor(Visit::Rule {
                            binding: b,
                            subject: &b.subjects[idx],
                            rule,
                        }) {
                            return;
                        }
                    }
                }
            }
        }
        if namespace.is_empty() {
            return;
        }
        let Some(nsr) = self.ns(namespace) else {
            return;
        };
        for b in &nsr.bindings {
            let Some(idx) = b.applies_to(user, namespace) else {
                continue;
            };
            match self.role_ref_rules(b, Some(&nsr)) {
                Err(e) => {
                    if !visitor(Visit::Error(e)) {
                        return;
                    }
                }
                Ok(rules) => {
                    for rule in rules {
                        if !visitor(Visit::Rule {
                            binding: b,
                            subject: &b.subjects[idx],
                            rule,
                        }) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Returns (allowed, reason) like the authorizer chain
    /// (privileged-group authorizer, then RBAC).
    fn check(&self, a: &Attributes) -> (bool, String) {
        if a.user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            return (true, String::new());
        }
        let mut allowed_by: Option<String> = None;
        let mut errors: Vec<String> = Vec::new();
        self.visit_rules_for(&a.user, &a.namespace, &mut |v| match v {
            Visit::Rule {
                binding,
                subject,
                rule,
            } => {
                if rule.allows(a) {
                    allowed_by = Some(format!("RBAC: allowed by {}", binding.describe(subject)));
                    false
                } else {
                    true
                }
            }
            Visit::Error(e) => {
                let e = e.authorizer_text();
                if !errors.contains(&e) {
                    errors.push(e);
                }
                true
            }
        });
        if let Some(reason) = allowed_by {
            return (true, reason);
        }
        let reason = match errors.len() {
            0 => String::new(),
            1 => format!("RBAC: {}", errors[0]),
            _ => format!("RBAC: [{}]", errors.join(", ")),
        };
        (false, reason)
    }
}

/// All RBAC objects, as stored JSON (rbac.authorization.k8s.io/v1 Role,
/// ClusterRole, RoleBinding, ClusterRoleBinding). Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct RbacSnapshot {
    inner: Arc<RbacInner>,
}

impl RbacSnapshot {
    pub fn new(
        roles: &[Json],
        cluster_roles: &[Json],
        role_bindings: &[Json],
        cluster_role_bindings: &[Json],
    ) -> RbacSnapshot {
        let mut by_ns: BTreeMap<String, (Vec<Json>, Vec<Json>)> = BTreeMap::new();
        for r in roles {
            by_ns
                .entry(meta_str(r, "namespace"))
                .or_default()
                .0
                .push(r.clone());
        }
        for b in role_bindings {
            by_ns
                .entry(meta_str(b, "namespace"))
                .or_default()
                .1
                .push(b.clone());
        }
        let namespaced: HashMap<String, Arc<NsRbac>> = by_ns
            .into_iter()
            .filter_map(|(ns, (r, b))| NsRbac::new(&r, &b).map(|n| (ns, Arc::new(n))))
            .collect();
        Self::with_namespaced(
            cluster_roles,
            cluster_role_bindings,
            Arc::new(RwLock::new(namespaced)),
        )
    }

    /// The cluster-scoped part built from these objects; the namespaced part shared.
    pub fn with_namespaced(
        cluster_roles: &[Json],
        cluster_role_bindings: &[Json],
        namespaced: Namespaced,
    ) -> RbacSnapshot {
        let mut inner = RbacInner {
            namespaced,
            ..RbacInner::default()
        };
        // ClusterRole aggregation (clusterroleaggregation_controller), computed
        // transitively; own rules come first, aggregated ones are appended
        // without duplicates.
        let by_name: BTreeMap<String, &Json> = cluster_roles
            .iter()
            .map(|c| (meta_str(c, "name"), c))
            .collect();
        let mut memo: HashMap<String, Vec<PolicyRule>> = HashMap::new();
        for name in by_name.keys() {
            let mut visiting = HashSet::new();
            let rules = effective_cluster_role_rules(name, &by_name, &mut memo, &mut visiting);
            inner.cluster_roles.insert(name.clone(), rules);
        }
        let mut crbs: Vec<Binding> = cluster_role_bindings
            .iter()
            .map(Binding::from_json)
            .collect();
        crbs.sort_by(|a, b| a.name.cmp(&b.name));
        inner.cluster_role_bindings = crbs;
        RbacSnapshot {
            inner: Arc::new(inner),
        }
    }

    /// The namespaced part (shared with later snapshots).
    pub fn namespaced(&self) -> Namespaced {
        self.inner.namespaced.clone()
    }

    /// Kubernetes RBAC decision (with the `system:masters` privileged group).
    pub fn authorize(&self, a: &Attributes) -> Decision {
        match self.inner.check(a) {
            (true, _) => Decision::Allow,
            (false, reason) => Decision::Deny { reason },
        }
    }

    /// Like [`authorize`](Self::authorize) but also returns the reason on
    /// allow (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"`).
    pub fn authorize_with_reason(&self, a: &Attributes) -> (bool, String) {
        self.inner.check(a)
    }

    /// For SelfSubjectRulesReview: (resourceRules, nonResourceRules) as JSON
    /// objects in authorization.k8s.io/v1 shape.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Json>, Vec<Json>) {
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            resource_rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
            non_resource_rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
        }
        self.inner.visit_rules_for(user, namespace, &mut |v| {
            if let Visit::Rule { rule, .. } = v {
                if !rule.resources.is_empty() {
                    let mut o = serde_json::Map::new();
                    o.insert("verbs".into(), json!(rule.verbs));
                    if !rule.api_groups.is_empty() {
                        o.insert("apiGroups".into(), json!(rule.api_groups));
                    }
                    o.insert("resources".into(), json!(rule.resources));
                    if !rule.resource_names.is_empty() {
                        o.insert("resourceNames".into(), json!(rule.resource_names));
                    }
                    resource_rules.push(Json::Object(o));
                }
                if !rule.non_resource_urls.is_empty() {
                    non_resource_rules.push(
                        json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}),
                    );
                }
            }
            true
        });
        (resource_rules, non_resource_rules)
    }
}

fn rules_of(v: &Json) -> Vec<PolicyRule> {
    v.get("rules")
        .and_then(Json::as_array)
        .map(|a| a.iter().map(PolicyRule::from_json).collect())
        .unwrap_or_default()
}

fn effective_cluster_role_rules(
    name: &str,
    by_name: &BTreeMap<String, &Json>,
    memo: &mut HashMap<String, Vec<PolicyRule>>,
    visiting: &mut HashSet<String>,
) -> Vec<PolicyRule> {
    if let Some(r) = memo.get(name) {
        return r.clone();
    }
    let Some(cr) = by_name.get(name) else {
        return Vec::new();
    };
    let mut rules = rules_of(cr);
    let selectors = cr
        .get("aggregationRule")
        .and_then(|a| a.get("clusterRoleSelectors"))
        .and_then(Json::as_array);
    let Some(selectors) = selectors else {
        memo.insert(name.to_string(), rules.clone());
        return rules;
    };
    if !visiting.insert(name.to_string()) {
        // Cycle: use the stored rules only.
        return rules;
    }
    for sel in selectors {
        for (other, ocr) in by_name {
            if other == name {
                continue;
            }
            let labels = ocr
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .cloned()
                .unwrap_or(Json::Null);
            if !label_selector_matches(Some(sel), &labels) {
                continue;
            }
            for r in effective_cluster_role_rules(other, by_name, memo, visiting) {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
    }
    visiting.remove(name);
    memo.insert(name.to_string(), rules.clone());
    rules
}

/// The 403 message of the real API server: `forbiddenMessage` from
/// k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go wrapped by
/// `apierrors.NewForbidden(GroupResource{group, resource}, name, err)`; the
/// reason is appended after `": "` when non-empty.
pub fn forbidden_message(a: &Attributes, reason: &str) -> String {
    let user = crate::status::go_quote(&a.user.name);
    let msg = if !a.resource_request {
        format!(
            "User {user} cannot {} path {}",
            a.verb,
            crate::status::go_quote(&a.path)
        )
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        if !a.namespace.is_empty() {
            format!(
                "User {user} cannot {} resource {} in API group {} in the namespace {}",
                a.verb,
                crate::status::go_quote(&resource),
                crate::status::go_quote(&a.api_group),
                crate::status::go_quote(&a.namespace)
            )
        } else {
            format!(
                "User {user} cannot {} resource {} in API group {} at the cluster scope",
                a.verb,
                crate::status::go_quote(&resource),
                crate::status::go_quote(&a.api_group)
            )
        }
    };
    let err = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    let (group, resource) = if a.resource_request {
        (a.api_group.as_str(), a.resource.as_str())
    } else {
        ("", "")
    };
    if group.is_empty() && resource.is_empty() {
        return format!("forbidden: {err}");
    }
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if a.name.is_empty() || !a.resource_request {
        format!("{qualified} is forbidden: {err}")
    } else {
        format!(
            "{qualified} {} is forbidden: {err}",
            crate::status::go_quote(&a.name)
        )
    }
}

// ---------------------------------------------------------------------------
// RBAC privilege-escalation prevention
// ---------------------------------------------------------------------------
//
// The RBAC REST storage of kube-apiserver (`pkg/registry/rbac/{role,clusterrole,rolebinding,
// clusterrolebinding}/policybased/storage.go`, `pkg/registry/rbac/escalation_check.go`)
// refuses to store a role granting, or a binding to a role holding, permissions the writer
// does not hold itself (`ConfirmNoEscalation` in `pkg/registry/rbac/validation/rule.go`, with
// `Covers` from `k8s.io/component-helpers/auth/rbac/validation/policy_comparator.go`), unless
// the writer is in `system:masters` or may `escalate` the role / `bind` the referenced role.

/// `Covers`: whether `owner` rules cover every one-verb/one-resource/one-name piece of
/// `servant` rules (`BreakdownRule`), and the pieces that are not covered.
fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let uncovered: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (uncovered.is_empty(), uncovered)
}

/// `BreakdownRule`: one rule per (group, resource, verb[, resourceName]) and per
/// (nonResourceURL, verb). A rule without apiGroups yields no resource pieces, as upstream.
fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let piece = PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: one(verb),
                    ..Default::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(piece);
                } else {
                    for name in &rule.resource_names {
                        out.push(PolicyRule {
                            resource_names: one(name),
                            ..piece.clone()
                        });
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: one(verb),
                ..Default::default()
            });
        }
    }
    out
}

fn has(set: &[String], ele: &str) -> bool {
    set.iter().any(|s| s == ele)
}

fn has_all(set: &[String], contains: &[String]) -> bool {
    contains.iter().all(|c| has(set, c))
}

/// `resourceCoversAll`: `*`, exact names, or `*/sub` for a `resource/sub` piece.
fn resource_covers_all(set: &[String], covers: &[String]) -> bool {
    if has(set, "*") || has_all(set, covers) {
        return true;
    }
    covers.iter().all(|path| {
        if has(set, path) {
            return true;
        }
        match path.split_once('/') {
            None => false,
            Some((_, sub)) => has(set, &format!("*/{sub}")),
        }
    })
}

/// `nonResourceURLCovers`: exact, or a trailing `*` covering what starts with the rest.
fn non_resource_url_covers(owner: &str, sub: &str) -> bool {
    owner == sub || (owner.ends_with('*') && sub.starts_with(owner.trim_end_matches('*')))
}

fn non_resource_urls_cover_all(set: &[String], covers: &[String]) -> bool {
    covers
        .iter()
        .all(|p| set.iter().any(|o| non_resource_url_covers(o, p)))
}

/// `ruleCovers`: whether one owner rule covers one broken-down piece.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = non_resource_urls_cover_all(&owner.non_resource_urls, &sub.non_resource_urls);
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && names && urls
}

/// `CompactRules` (policy_compact.go): pieces naming one group, one resource and at most one
/// resourceName, and nothing else, are merged when they differ only by verb.
fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        if !is_simple {
            compacted.push(rule.clone());
            continue;
        }
        match simple.iter_mut().find(|s| {
            s.api_groups == rule.api_groups
                && s.resources == rule.resources
                && s.resource_names == rule.resource_names
        }) {
            Some(existing) => existing.verbs.extend(rule.verbs.iter().cloned()),
            None => simple.push(rule.clone()),
        }
    }
    compacted.extend(simple);
    compacted
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| crate::status::go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// `CompactString` (pkg/apis/rbac/v1/evaluation_helpers.go):
/// `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`.
fn compact_string(r: &PolicyRule) -> String {
    let mut parts = Vec::new();
    for (label, list) in [
        ("APIGroups", &r.api_groups),
        ("Resources", &r.resources),
        ("NonResourceURLs", &r.non_resource_urls),
        ("ResourceNames", &r.resource_names),
        ("Verbs", &r.verbs),
    ] {
        if !list.is_empty() {
            parts.push(format!("{label}:{}", go_quote_list(list)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

/// `utilerrors.NewAggregate(errs).Error()`: one message as is, several (deduplicated) in brackets.
fn aggregate_text(errors: &[String]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        seen[0].clone()
    } else {
        let items: Vec<&str> = seen.iter().map(|s| s.as_str()).collect();
        format!("[{}]", items.join(", "))
    }
}

/// `var fullAuthority` of the ClusterRole storage: what using an aggregationRule requires.
fn full_authority() -> Vec<PolicyRule> {
    let star = || vec!["*".to_string()];
    vec![
        PolicyRule {
            verbs: star(),
            api_groups: star(),
            resources: star(),
            ..Default::default()
        },
        PolicyRule {
            verbs: star(),
            non_resource_urls: star(),
            ..Default::default()
        },
    ]
}

/// `EscalationAllowed`: members of `system:masters` may grant anything.
pub fn escalation_allowed(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == SYSTEM_MASTERS)
}

/// A write of a Role, ClusterRole, RoleBinding or ClusterRoleBinding, as the RBAC registry
/// sees it (after decoding, before defaulting of generated names, validation and admission).
#[derive(Debug, Clone)]
pub struct RbacWrite<'a> {
    pub user: &'a UserInfo,
    /// The request's resource: `roles`, `clusterroles`, `rolebindings` or `clusterrolebindings`.
    pub resource: &'a str,
    /// The request's namespace (empty for the cluster-scoped kinds).
    pub namespace: &'a str,
    /// The name in the request path (RequestInfo.Name): empty for a POST, so an `escalate`
    /// grant restricted by resourceNames does not cover creating a role by POST.
    pub request_name: &'a str,
    /// The object's own `metadata.name` (empty when it is still to be generated).
    pub object_name: &'a str,
    /// The object to be stored.
    pub new: &'a Json,
    /// For an update (PUT or patch) of an existing object: what is stored now. `None` for a
    /// create, including a create by server-side apply.
    pub old: Option<&'a Json>,
}

/// Outcome of [`RbacSnapshot::check_rbac_write`] when refused: an API `Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct RbacWriteDenial {
    pub code: u16,
    /// `Forbidden`, `NotFound`, `BadRequest`, or empty (`StatusReasonUnknown`).
    pub reason: &'static str,
    pub message: String,
    /// `Status.details`, when the real server sends them.
    pub details: Option<Json>,
}

impl RbacWriteDenial {
    /// `apierrors.NewForbidden(rbac.Resource(resource), name, err)`.
    fn forbidden(resource: &str, name: &str, err: &str) -> RbacWriteDenial {
        let message = if name.is_empty() {
            format!("{resource}.{RBAC_GROUP} is forbidden: {err}")
        } else {
            format!(
                "{resource}.{RBAC_GROUP} {} is forbidden: {err}",
                crate::status::go_quote(name)
            )
        };
        let mut details = json!({"group": RBAC_GROUP, "kind": resource});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        RbacWriteDenial {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(details),
        }
    }

    /// The error `GetRoleReferenceRules` returns for a binding's role, answered as is.
    fn role_ref(e: &RefError, request_resource: &str, namespace: &str) -> RbacWriteDenial {
        match e {
            // GetRole with no namespace (a ClusterRoleBinding naming a Role): the store's
            // NamespaceKeyFunc refuses before looking.
            RefError::NotFound { kind, .. } if kind == "Role" && namespace.is_empty() => {
                RbacWriteDenial {
                    code: 400,
                    reason: "BadRequest",
                    message: "Namespace parameter required.".into(),
                    details: None,
                }
            }
            RefError::NotFound { name, .. } => RbacWriteDenial {
                code: 404,
                reason: "NotFound",
                message: e.registry_text(request_resource),
                details: Some(json!({"name": name, "group": RBAC_GROUP, "kind": request_resource})),
            },
            // A plain error from the storage: a 500 with reason Unknown.
            RefError::UnsupportedKind(_) => RbacWriteDenial {
                code: 500,
                reason: "",
                message: e.registry_text(request_resource),
                details: None,
            },
        }
    }
}

/// `IsOnlyMutatingGCFields` (pkg/registry/rbac/helpers.go): `new` equals `old` once its
/// ownerReferences, finalizers, selfLink and managedFields are taken from `old` (compared
/// semantically: absent and empty are the same, as for Go structs).
fn is_only_mutating_gc_fields(new: &Json, old: &Json) -> bool {
    let mut copied = new.clone();
    if !copied.get("metadata").is_some_and(Json::is_object) {
        copied["metadata"] = json!({});
    }
    for k in ["ownerReferences", "finalizers", "selfLink", "managedFields"] {
        match old.get("metadata").and_then(|m| m.get(k)) {
            Some(v) => copied["metadata"][k] = v.clone(),
            None => {
                if let Some(m) = copied["metadata"].as_object_mut() {
                    m.remove(k);
                }
            }
        }
    }
    semantic(&copied) == semantic(old)
}

/// JSON without null, empty strings, empty lists and empty objects: Go's zero values.
fn semantic(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !is_zero(v))
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn is_zero(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn has_aggregation_rule(cr: &Json) -> bool {
    cr.get("aggregationRule")
        .and_then(|a| a.get("clusterRoleSelectors"))
        .and_then(Json::as_array)
        .is_some_and(|s| !s.is_empty())
}

impl RbacSnapshot {
    /// `RulesFor` of the registry's rule resolver: the user's rules in `namespace` (cluster-wide
    /// ones included) and the texts of the role references that did not resolve.
    fn registry_rules_for(
        &self,
        user: &UserInfo,
        namespace: &str,
        request_resource: &str,
    ) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.inner.visit_rules_for(user, namespace, &mut |v| {
            match v {
                Visit::Rule { rule, .. } => rules.push(rule.clone()),
                Visit::Error(e) => errors.push(e.registry_text(request_resource)),
            }
            true
        });
        (rules, errors)
    }

    /// `ConfirmNoEscalation`: `Err(text)` when the user's rules in `namespace` do not cover `rules`.
    fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
        request_resource: &str,
    ) -> Result<(), String> {
        let (owner, errors) = self.registry_rules_for(user, namespace, request_resource);
        let (covered, missing) = covers(&owner, rules);
        if covered {
            return Ok(());
        }
        let mut descriptions: Vec<String> =
            compact_rules(&missing).iter().map(compact_string).collect();
        descriptions.sort();
        descriptions.dedup();
        let mut msg = format!(
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            crate::status::go_quote(&user.name),
            go_quote_list(&user.groups),
            descriptions.join("\n")
        );
        if !errors.is_empty() {
            msg.push_str(&format!(
                "; resolution errors: [{}]",
                aggregate_text(&errors)
            ));
        }
        Err(msg)
    }

    fn allowed(&self, a: Attributes) -> bool {
        self.inner.check(&a).0
    }

    /// The RBAC registry's privilege-escalation prevention for a write of `w.resource`.
    pub fn check_rbac_write(&self, w: &RbacWrite<'_>) -> Result<(), RbacWriteDenial> {
        if escalation_allowed(w.user) {
            return Ok(());
        }
        match w.resource {
            "roles" | "clusterroles" => self.check_role_write(w),
            "rolebindings" | "clusterrolebindings" => self.check_binding_write(w),
            _ => Ok(()),
        }
    }

    /// role/policybased and clusterrole/policybased `Create` and `Update`.
    fn check_role_write(&self, w: &RbacWrite<'_>) -> Result<(), RbacWriteDenial> {
        // RoleEscalationAuthorized: `escalate` on the request's resource and *path* name.
        let escalate = Attributes {
            user: w.user.clone(),
            verb: "escalate".into(),
            namespace: w.namespace.into(),
            api_group: RBAC_GROUP.into(),
            api_version: "*".into(),
            resource: w.resource.into(),
            name: w.request_name.into(),
            resource_request: true,
            ..Default::default()
        };
        if self.allowed(escalate) {
            return Ok(());
        }
        if let Some(old) = w.old
            && is_only_mutating_gc_fields(w.new, old)
        {
            return Ok(());
        }
        let rules = rules_of(w.new);
        self.confirm_no_escalation(w.user, w.namespace, &rules, w.resource)
            .map_err(|e| RbacWriteDenial::forbidden(w.resource, w.object_name, &e))?;
        // "to set the aggregation rule, since it can gather anything, requires * on *.*"
        let aggregating = w.resource == "clusterroles"
            && (has_aggregation_rule(w.new) || w.old.is_some_and(has_aggregation_rule));
        if aggregating
            && self
                .confirm_no_escalation(w.user, w.namespace, &full_authority(), w.resource)
                .is_err()
        {
            return Err(RbacWriteDenial::forbidden(
                w.resource,
                w.object_name,
                "must have cluster-admin privileges to use the aggregationRule",
            ));
        }
        Ok(())
    }

    /// rolebinding/policybased and clusterrolebinding/policybased `Create` and `Update`.
    fn check_binding_write(&self, w: &RbacWrite<'_>) -> Result<(), RbacWriteDenial> {
        if let Some(old) = w.old
            && is_only_mutating_gc_fields(w.new, old)
        {
            return Ok(());
        }
        let role_ref = w.new.get("roleRef").cloned().unwrap_or(Json::Null);
        let kind = str_at(&role_ref, "kind");
        let name = str_at(&role_ref, "name");
        // The API server defaults roleRef.apiGroup before the registry sees it.
        let group = Some(str_at(&role_ref, "apiGroup"))
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| RBAC_GROUP.to_string());
        // BindingAuthorized: `bind` on the referenced role, in the binding's namespace.
        let role_resource = match kind.as_str() {
            "ClusterRole" => Some("clusterroles"),
            "Role" => Some("roles"),
            _ => None,
        };
        if let Some(resource) = role_resource {
            let bind = Attributes {
                user: w.user.clone(),
                verb: "bind".into(),
                namespace: w.namespace.into(),
                api_group: group,
                api_version: "*".into(),
                resource: resource.into(),
                name: name.clone(),
                resource_request: true,
                ..Default::default()
            };
            if self.allowed(bind) {
                return Ok(());
            }
        }
        let nsr = self.inner.ns(w.namespace);
        let rules = self
            .inner
            .role_rules(&kind, &name, nsr.as_deref())
            .map_err(|e| RbacWriteDenial::role_ref(&e, w.resource, w.namespace))?
            .to_vec();
        self.confirm_no_escalation(w.user, w.namespace, &rules, w.resource)
            .map_err(|e| RbacWriteDenial::forbidden(w.resource, w.object_name, &e))
    }
}

// ---------------------------------------------------------------------------
// JSON helpers and label selectors
// ---------------------------------------------------------------------------

fn str_at(v: &Json, key: &str) -> String {
    v.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn meta_str(v: &Json, key: &str) -> String {
    v.get("metadata")
        .map(|m| str_at(m, key))
        .unwrap_or_default()
}

fn str_list(v: Option<&Json>) -> Vec<String> {
    v.and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// metav1.LabelSelector matching. `None`/null matches everything (as in
/// admission selectors); `{}` matches everything. Unknown operators never match.
fn label_selector_matches(selector: Option<&Json>, labels: &Json) -> bool {
    let Some(sel) = selector else { return true };
    if sel.is_null() {
        return true;
    }
    let label = |k: &str| labels.get(k).and_then(Json::as_str);
    if let Some(ml) = sel.get("matchLabels").and_then(Json::as_object) {
        for (k, v) in ml {
            if label(k) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Json::as_array) {
        for e in exprs {
            let key = str_at(e, "key");
            let values = str_list(e.get("values"));
            let cur = label(&key);
            let ok = match str_at(e, "operator").as_str() {
                "In" => cur.is_some_and(|c| values.iter().any(|v| v == c)),
                "NotIn" => cur.is_none_or(|c| !values.iter().any(|v| v == c)),
                "Exists" => cur.is_some(),
                "DoesNotExist" => cur.is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

fn labels_of(obj: Option<&Json>) -> Json {
    obj.and_then(|o| o.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned()
        .unwrap_or(Json::Null)
}

// ---------------------------------------------------------------------------
// CEL plumbing
// ---------------------------------------------------------------------------

fn cel_str(s: &str) -> CelValue {
    CelValue::String(Arc::new(s.to_string()))
}

fn cel_map(entries: Vec<(&str, CelValue)>) -> CelValue {
    let map: HashMap<Key, CelValue> = entries
        .into_iter()
        .map(|(k, v)| (Key::from(k), v))
        .collect();
    CelValue::Map(CelMap { map: Arc::new(map) })
}

fn cel_str_list(v: &[String]) -> CelValue {
    CelValue::List(Arc::new(v.iter().map(|s| cel_str(s)).collect()))
}

/// JSON -> CEL. Object keys are kept verbatim (so `labels['a.b/c']` works);
/// keys that are CEL reserved words are also reachable as `__word__`.
fn json_to_cel(v: &Json) -> CelValue {
    match v {
        Json::Null => CelValue::Null,
        Json::Bool(b) => CelValue::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => cel_str(s),
        Json::Array(a) => CelValue::List(Arc::new(a.iter().map(json_to_cel).collect())),
        Json::Object(o) => {
            let mut map = HashMap::with_capacity(o.len());
            for (k, v) in o {
                let cv = json_to_cel(v);
                if crate::schema::CEL_RESERVED.contains(&k.as_str()) {
                    map.insert(Key::from(format!("__{k}__")), cv.clone());
                }
                map.insert(Key::from(k.as_str()), cv);
            }
            CelValue::Map(CelMap { map: Arc::new(map) })
        }
    }
}

/// Authorizer bound to a user (the CEL `Authorizer` type).
struct AuthzHandle {
    rbac: Arc<RbacInner>,
    user: UserInfo,
}

impl fmt::Debug for AuthzHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authorizer({})", self.user.name)
    }
}

impl PartialEq for AuthzHandle {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.rbac, &o.rbac) && self.user == o.user
    }
}
impl Eq for AuthzHandle {}

impl Opaque for AuthzHandle {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Authorizer"
    }
}

/// `GroupCheck` / `ResourceCheck` / `PathCheck` (distinguished by `kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthzCheck {
    az: Arc<AuthzHandle>,
    kind: CheckKind,
    group: String,
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
    path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckKind {
    Group,
    Resource,
    Path,
}

impl Opaque for AuthzCheck {
    fn runtime_type_name(&self) -> &str {
        match self.kind {
            CheckKind::Group => "kubernetes.authorization.GroupCheck",
            CheckKind::Resource => "kubernetes.authorization.ResourceCheck",
            CheckKind::Path => "kubernetes.authorization.PathCheck",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthzDecision {
    allowed: bool,
    reason: String,
}

impl Opaque for AuthzDecision {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Decision"
    }
}

const AUTHZ_KEY: &str = "__kube_sim_authorizer__";

fn authorizer_value(az: Arc<AuthzHandle>, request_resource: Option<AuthzCheck>) -> CelValue {
    let mut entries = vec![(AUTHZ_KEY, CelValue::Opaque(az))];
    if let Some(rr) = request_resource {
        entries.push(("requestResource", CelValue::Opaque(Arc::new(rr))));
    }
    cel_map(entries)
}

fn fn_err(name: &str, msg: impl ToString) -> ExecutionError {
    ExecutionError::function_error(name, msg)
}

fn this_authorizer(fname: &str, this: &CelValue) -> Result<Arc<AuthzHandle>, ExecutionError> {
    if let CelValue::Map(m) = this
        && let Some(CelValue::Opaque(o)) = m.map.get(&Key::from(AUTHZ_KEY))
        && let Some(h) = o.downcast_ref::<AuthzHandle>()
    {
        return Ok(Arc::new(AuthzHandle {
            rbac: h.rbac.clone(),
            user: h.user.clone(),
        }));
    }
    Err(fn_err(fname, "receiver is not an Authorizer"))
}

fn this_check(fname: &str, this: &CelValue) -> Result<AuthzCheck, ExecutionError> {
    if let CelValue::Opaque(o) = this
        && let Some(c) = o.downcast_ref::<AuthzCheck>()
    {
        return Ok(c.clone());
    }
    Err(fn_err(fname, "unexpected receiver type"))
}

fn this_decision(fname: &str, this: &CelValue) -> Result<AuthzDecision, ExecutionError> {
    if let CelValue::Opaque(o) = this
        && let Some(d) = o.downcast_ref::<AuthzDecision>()
    {
        return Ok(d.clone());
    }
    Err(fn_err(fname, "receiver is not an authorization Decision"))
}

fn arg_str(fname: &str, v: &CelValue) -> Result<String, ExecutionError> {
    match v {
        CelValue::String(s) => Ok(s.as_ref().clone()),
        other => Err(fn_err(
            fname,
            format!("expected string argument, got {other:?}"),
        )),
    }
}

fn set_check_field(
    fname: &'static str,
    this: CelValue,
    arg: CelValue,
) -> Result<CelValue, ExecutionError> {
    let mut c = this_check(fname, &this)?;
    let s = arg_str(fname, &arg)?;
    match (fname, c.kind) {
        ("resource", CheckKind::Group) => {
            c.resource = s;
            c.kind = CheckKind::Resource;
        }
        ("subresource", CheckKind::Resource) => c.subresource = s,
        ("namespace", CheckKind::Resource) => c.namespace = s,
        ("name", CheckKind::Resource) => c.name = s,
        _ => {
            return Err(fn_err(
                fname,
                format!("not supported on {}", c.runtime_type_name()),
            ));
        }
    }
    Ok(CelValue::Opaque(Arc::new(c)))
}

fn register_authorizer_library(ctx: &mut Context<'static>) {
    use cel::extractors::This;
    ctx.add_function(
        "group",
        |This(this): This<CelValue>, g: CelValue| -> Result<CelValue, ExecutionError> {
            let az = this_authorizer("group", &this)?;
            Ok(CelValue::Opaque(Arc::new(AuthzCheck {
                az,
                kind: CheckKind::Group,
                group: arg_str("group", &g)?,
                resource: String::new(),
                subresource: String::new(),
                namespace: String::new(),
                name: String::new(),
                path: String::new(),
            })))
        },
    );
    ctx.add_function(
        "path",
        |This(this): This<CelValue>, p: CelValue| -> Result<CelValue, ExecutionError> {
            let az = this_authorizer("path", &this)?;
            Ok(CelValue::Opaque(Arc::new(AuthzCheck {
                az,
                kind: CheckKind::Path,
                group: String::new(),
                resource: String::new(),
                subresource: String::new(),
                namespace: String::new(),
                name: String::new(),
                path: arg_str("path", &p)?,
            })))
        },
    );
    ctx.add_function(
        "serviceAccount",
        |This(this): This<CelValue>,
         ns: CelValue,
         name: CelValue|
         -> Result<CelValue, ExecutionError> {
            let az = this_authorizer("serviceAccount", &this)?;
            let user = UserInfo::service_account(
                &arg_str("serviceAccount", &ns)?,
                &arg_str("serviceAccount", &name)?,
            );
            // ServiceAccountInfo.UserInfo() does not add system:authenticated.
            let user = UserInfo {
                groups: user.groups[..2].to_vec(),
                ..user
            };
            Ok(authorizer_value(
                Arc::new(AuthzHandle {
                    rbac: az.rbac.clone(),
                    user,
                }),
                None,
            ))
        },
    );
    ctx.add_function("resource", |This(this): This<CelValue>, a: CelValue| {
        set_check_field("resource", this, a)
    });
    ctx.add_function("subresource", |This(this): This<CelValue>, a: CelValue| {
        set_check_field("subresource", this, a)
    });
    ctx.add_function("namespace", |This(this): This<CelValue>, a: CelValue| {
        set_check_field("namespace", this, a)
    });
    ctx.add_function("name", |This(this): This<CelValue>, a: CelValue| {
        set_check_field("name", this, a)
    });
    ctx.add_function(
        "check",
        |This(this): This<CelValue>, verb: CelValue| -> Result<CelValue, ExecutionError> {
            let c = this_check("check", &this)?;
            let verb = arg_str("check", &verb)?;
            let attrs = match c.kind {
                CheckKind::Path => Attributes {
                    user: c.az.user.clone(),
                    verb,
                    path: c.path.clone(),
                    resource_request: false,
                    ..Default::default()
                },
                CheckKind::Resource => Attributes {
                    user: c.az.user.clone(),
                    verb,
                    namespace: c.namespace.clone(),
                    api_group: c.group.clone(),
                    api_version: "*".to_string(),
                    resource: c.resource.clone(),
                    subresource: c.subresource.clone(),
                    name: c.name.clone(),
                    resource_request: true,
                    path: String::new(),
                },
                CheckKind::Group => {
                    return Err(fn_err(
                        "check",
                        "check() requires a resource: call .resource() first",
                    ));
                }
            };
            let (allowed, reason) = c.az.rbac.check(&attrs);
            Ok(CelValue::Opaque(Arc::new(AuthzDecision {
                allowed,
                reason,
            })))
        },
    );
    ctx.add_function(
        "allowed",
        |This(this): This<CelValue>| -> Result<CelValue, ExecutionError> {
            Ok(CelValue::Bool(this_decision("allowed", &this)?.allowed))
        },
    );
    ctx.add_function(
        "reason",
        |This(this): This<CelValue>| -> Result<CelValue, ExecutionError> {
            Ok(cel_str(&this_decision("reason", &this)?.reason))
        },
    );
    ctx.add_function(
        "errored",
        |This(this): This<CelValue>| -> Result<CelValue, ExecutionError> {
            this_decision("errored", &this)?;
            Ok(CelValue::Bool(false))
        },
    );
    ctx.add_function(
        "error",
        |This(this): This<CelValue>| -> Result<CelValue, ExecutionError> {
            this_decision("error", &this)?;
            Ok(cel_str(""))
        },
    );
}

/// Root CEL context holding all functions (standard, Kubernetes extension
/// libraries, authorizer library); per-request variables live in child scopes.
fn root_context() -> &'static Context<'static> {
    static ROOT: OnceLock<Context<'static>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mut ctx = Context::default().with_all();
        crate::cel_check::with_cached_matches(&mut ctx);
        register_authorizer_library(&mut ctx);
        ctx
    })
}

// ---------------------------------------------------------------------------
// ValidatingAdmissionPolicy
// ---------------------------------------------------------------------------

/// Input of one admission request.
pub struct AdmissionInput<'a> {
    /// CREATE UPDATE DELETE (CONNECT)
    pub operation: &'a str,
    pub object: Option<&'a Json>,
    pub old_object: Option<&'a Json>,
    /// gvr, subresource, name, namespace, user
    pub attributes: &'a Attributes,
    /// (group, version, kind)
    pub kind: (&'a str, &'a str, &'a str),
    pub namespace_object: Option<&'a Json>,
    pub dry_run: bool,
}

/// A denial by a ValidatingAdmissionPolicy.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionDenial {
    pub policy: String,
    pub binding: String,
    /// `ValidatingAdmissionPolicy 'p' with binding 'b' denied request: <message>`
    pub message: String,
    /// Forbidden | Invalid | Unauthorized | RequestEntityTooLarge
    pub reason: String,
    /// 403 | 422 | 401 | 413
    pub code: u16,
}

struct CompiledExpr {
    source: String,
    /// Parsed as the API server parses it (optional syntax on); policies are validated
    /// on write (`crate::admissionregistration`), so an error here is rare.
    program: Result<cel::parser::Expression, String>,
}

impl CompiledExpr {
    fn new(source: &str) -> CompiledExpr {
        CompiledExpr {
            source: source.to_string(),
            program: crate::cel_check::parse(source)
                .map_err(|e| crate::cel_check::render_parse_errors(source, &e)),
        }
    }

    fn eval(&self, ctx: &Context<'_>) -> Result<CelValue, String> {
        match &self.program {
            Err(e) => Err(format!("compilation error: {e}")),
            Ok(p) => ctx
                .resolve(p)
                .map_err(|e| format!("expression '{}' resulted in error: {e}", self.source.trim())),
        }
    }

    fn eval_bool(&self, ctx: &Context<'_>) -> Result<bool, String> {
        match self.eval(ctx)? {
            CelValue::Bool(b) => Ok(b),
            other => Err(format!(
                "expression '{}' resulted in error: expected boolean, got {}",
                self.source.trim(),
                other.type_of()
            )),
        }
    }
}

struct CompiledValidation {
    expr: CompiledExpr,
    message: String,
    message_expr: Option<CompiledExpr>,
    reason: String,
}

struct CompiledPolicy {
    fail: bool,
    match_constraints: Option<Json>,
    match_conditions: Vec<(String, CompiledExpr)>,
    variables: Vec<(String, CompiledExpr)>,
    validations: Vec<CompiledValidation>,
    has_param_kind: bool,
}

impl CompiledPolicy {
    fn compile(spec: &Json) -> CompiledPolicy {
        let named = |key: &str, expr_key: &str| -> Vec<(String, CompiledExpr)> {
            spec.get(key)
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .map(|c| (str_at(c, "name"), CompiledExpr::new(&str_at(c, expr_key))))
                        .collect()
                })
                .unwrap_or_default()
        };
        let validations = spec
            .get("validations")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| CompiledValidation {
                        expr: CompiledExpr::new(&str_at(v, "expression")),
                        message: str_at(v, "message"),
                        message_expr: v
                            .get("messageExpression")
                            .and_then(Json::as_str)
                            .filter(|s| !s.is_empty())
                            .map(CompiledExpr::new),
                        reason: str_at(v, "reason"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        CompiledPolicy {
            fail: spec.get("failurePolicy").and_then(Json::as_str) != Some("Ignore"),
            match_constraints: spec
                .get("matchConstraints")
                .filter(|m| !m.is_null())
                .cloned(),
            match_conditions: named("matchConditions", "expression"),
            variables: named("variables", "expression"),
            validations,
            has_param_kind: spec.get("paramKind").is_some_and(|p| !p.is_null()),
        }
    }
}

/// Process-wide cache of compiled policies keyed by (name, spec text).
fn compile_cached(name: &str, spec: &Json) -> Arc<CompiledPolicy> {
    type Cache = Mutex<HashMap<(String, String), Arc<CompiledPolicy>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (name.to_string(), spec.to_string());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return p;
    }
    let compiled = Arc::new(CompiledPolicy::compile(spec));
    if let Ok(mut c) = cache.lock() {
        if c.len() > 2048 {
            c.clear();
        }
        c.insert(key, compiled.clone());
    }
    compiled
}

struct PolicyBinding {
    name: String,
    policy_name: String,
    match_resources: Option<Json>,
    actions: Vec<String>,
}

/// Policies and bindings (admissionregistration.k8s.io/v1) with compiled CEL.
pub struct AdmissionPolicies {
    policies: HashMap<String, Arc<CompiledPolicy>>,
    bindings: Vec<PolicyBinding>,
}

/// One decision of one policy/binding pair.
enum PolicyOutcome {
    /// A failed validation or (failurePolicy=Fail) evaluation error; handled
    /// per the binding's validationActions.
    Deny { message: String, reason: String },
    /// A policy/binding configuration error (failurePolicy=Fail): always
    /// denies, whatever the validationActions (dispatcher `addConfigError`).
    ConfigError(String),
}

impl AdmissionPolicies {
    pub fn new(policies: &[Json], bindings: &[Json]) -> AdmissionPolicies {
        let policies: HashMap<String, Arc<CompiledPolicy>> = policies
            .iter()
            .map(|p| {
                let name = meta_str(p, "name");
                let spec = p.get("spec").cloned().unwrap_or(Json::Null);
                let compiled = compile_cached(&name, &spec);
                (name, compiled)
            })
            .collect();
        let mut bs: Vec<PolicyBinding> = bindings
            .iter()
            .map(|b| {
                let spec = b.get("spec").cloned().unwrap_or(Json::Null);
                PolicyBinding {
                    name: meta_str(b, "name"),
                    policy_name: str_at(&spec, "policyName"),
                    match_resources: spec.get("matchResources").filter(|m| !m.is_null()).cloned(),
                    actions: str_list(spec.get("validationActions")),
                }
            })
            .filter(|b| policies.contains_key(&b.policy_name))
            .collect();
        bs.sort_by(|a, b| a.name.cmp(&b.name));
        AdmissionPolicies {
            policies,
            bindings: bs,
        }
    }

    /// True when no binding refers to an existing policy.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Evaluate every matching policy/binding pair. Returns the warnings of
    /// `Warn` bindings, or the first `Deny` denial.
    pub fn admit(
        &self,
        input: &AdmissionInput,
        rbac: &RbacSnapshot,
    ) -> Result<Vec<String>, AdmissionDenial> {
        self.admit_lazy(input, &|| Arc::new(rbac.clone()))
    }

    /// [`AdmissionPolicies::admit`], asking for RBAC only when a policy matches the request
    /// (building the snapshot after an RBAC change costs a pass over every RBAC object).
    pub fn admit_lazy(
        &self,
        input: &AdmissionInput,
        rbac: &dyn Fn() -> Arc<RbacSnapshot>,
    ) -> Result<Vec<String>, AdmissionDenial> {
        let mut warnings = Vec::new();
        if self.bindings.is_empty() || is_exempt_resource(input.attributes) {
            return Ok(warnings);
        }
        let mut denial: Option<AdmissionDenial> = None;
        // Variables shared by every policy; built lazily on first match.
        let mut base: Option<Vec<(&'static str, CelValue)>> = None;
        for b in &self.bindings {
            let Some(policy) = self.policies.get(&b.policy_name) else {
                continue;
            };
            let Some(mc) = &policy.match_constraints else {
                continue;
            };
            if !matches_resources(mc, input) {
                continue;
            }
            if let Some(mr) = &b.match_resources
                && !matches_resources(mr, input)
            {
                continue;
            }
            let base_vars = base.get_or_insert_with(|| base_variables(input, &rbac()));
            let outcomes = evaluate_policy(policy, b, base_vars);
            for outcome in outcomes {
                let (message, reason, actions): (String, String, Vec<&str>) = match outcome {
                    PolicyOutcome::Deny { message, reason } => (
                        message,
                        reason,
                        b.actions.iter().map(String::as_str).collect(),
                    ),
                    PolicyOutcome::ConfigError(message) => (message, String::new(), vec!["Deny"]),
                };
                for action in actions {
                    match action {
                        "Deny" if denial.is_none() => {
                            let reason = if reason.is_empty() { "Invalid".to_string() } else { reason.clone() };
                            denial = Some(AdmissionDenial {
                                policy: b.policy_name.clone(),
                                binding: b.name.clone(),
                                message: format!(
                                    "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {}",
                                    b.policy_name, b.name, message
                                ),
                                code: reason_to_code(&reason),
                                reason,
                            });
                        }
                        "Warn" => warnings.push(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                            b.policy_name, b.name, message
                        )),
                        _ => {} // Audit: audit annotations only.
                    }
                }
            }
        }
        match denial {
            Some(d) => Err(d),
            None => Ok(warnings),
        }
    }
}

fn reason_to_code(reason: &str) -> u16 {
    match reason {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        "Invalid" => 422,
        _ => 422,
    }
}

/// `rules.IsExemptAdmissionConfigurationResource`: admission policies never
/// apply to admission configuration objects.
fn is_exempt_resource(a: &Attributes) -> bool {
    a.api_group == "admissionregistration.k8s.io"
        && matches!(
            a.resource.as_str(),
            "validatingwebhookconfigurations"
                | "mutatingwebhookconfigurations"
                | "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

/// `matching.Matcher.Matches` for a MatchResources object (policy
/// matchConstraints or binding matchResources).
fn matches_resources(mr: &Json, input: &AdmissionInput) -> bool {
    let a = input.attributes;
    // namespaceSelector
    let ns_sel = mr.get("namespaceSelector");
    let is_namespace = a.api_group.is_empty() && a.resource == "namespaces";
    if !a.namespace.is_empty() || is_namespace {
        let labels = if is_namespace {
            labels_of(input.object.or(input.old_object))
        } else {
            labels_of(input.namespace_object)
        };
        if !label_selector_matches(ns_sel, &labels) {
            return false;
        }
    }
    // objectSelector: matches if either the new or the old object matches.
    let obj_sel = mr.get("objectSelector");
    if obj_sel.is_some_and(|s| !s.is_null()) {
        let new_ok = input
            .object
            .is_some_and(|o| label_selector_matches(obj_sel, &labels_of(Some(o))));
        let old_ok = input
            .old_object
            .is_some_and(|o| label_selector_matches(obj_sel, &labels_of(Some(o))));
        if !new_ok && !old_ok {
            return false;
        }
    }
    if let Some(ex) = mr.get("excludeResourceRules").and_then(Json::as_array)
        && ex.iter().any(|r| rule_with_operations_matches(r, input))
    {
        return false;
    }
    match mr.get("resourceRules").and_then(Json::as_array) {
        None => true,
        Some(rules) if rules.is_empty() => true,
        Some(rules) => rules.iter().any(|r| rule_with_operations_matches(r, input)),
    }
}

/// `NamedRuleWithOperations` matching (webhook rules matcher).
fn rule_with_operations_matches(rule: &Json, input: &AdmissionInput) -> bool {
    let a = input.attributes;
    let any_or =
        |key: &str, val: &str| str_list(rule.get(key)).iter().any(|x| x == "*" || x == val);
    // scope
    let is_namespace = a.api_group.is_empty() && a.resource == "namespaces";
    let scope_ok = match rule.get("scope").and_then(Json::as_str) {
        None | Some("*") => true,
        Some("Namespaced") => !is_namespace && !a.namespace.is_empty(),
        Some("Cluster") => is_namespace || a.namespace.is_empty(),
        Some(_) => false,
    };
    if !scope_ok
        || !any_or("operations", input.operation)
        || !any_or("apiGroups", &a.api_group)
        || !any_or("apiVersions", &a.api_version)
    {
        return false;
    }
    let res_ok = str_list(rule.get("resources")).iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        (res == "*" || res == a.resource) && (sub == "*" || sub == a.subresource)
    });
    if !res_ok {
        return false;
    }
    let names = str_list(rule.get("resourceNames"));
    names.is_empty() || names.contains(&a.name)
}

fn base_variables(input: &AdmissionInput, rbac: &RbacSnapshot) -> Vec<(&'static str, CelValue)> {
    let a = input.attributes;
    let user = &a.user;
    let extra: HashMap<Key, CelValue> = user
        .extra
        .iter()
        .map(|(k, v)| (Key::from(k.as_str()), cel_str_list(v)))
        .collect();
    let gvk = cel_map(vec![
        ("group", cel_str(input.kind.0)),
        ("version", cel_str(input.kind.1)),
        ("kind", cel_str(input.kind.2)),
    ]);
    let gvr = cel_map(vec![
        ("group", cel_str(&a.api_group)),
        ("version", cel_str(&a.api_version)),
        ("resource", cel_str(&a.resource)),
    ]);
    let request = cel_map(vec![
        ("uid", cel_str("")),
        ("kind", gvk.clone()),
        ("resource", gvr.clone()),
        ("subResource", cel_str(&a.subresource)),
        ("requestKind", gvk),
        ("requestResource", gvr),
        ("requestSubResource", cel_str(&a.subresource)),
        ("name", cel_str(&a.name)),
        ("namespace", cel_str(&a.namespace)),
        ("operation", cel_str(input.operation)),
        (
            "userInfo",
            cel_map(vec![
                ("username", cel_str(&user.name)),
                ("uid", cel_str(&user.uid)),
                ("groups", cel_str_list(&user.groups)),
                (
                    "extra",
                    CelValue::Map(CelMap {
                        map: Arc::new(extra),
                    }),
                ),
            ]),
        ),
        ("dryRun", CelValue::Bool(input.dry_run)),
    ]);
    let handle = Arc::new(AuthzHandle {
        rbac: rbac.inner.clone(),
        user: user.clone(),
    });
    let request_resource = AuthzCheck {
        az: handle.clone(),
        kind: CheckKind::Resource,
        group: a.api_group.clone(),
        resource: a.resource.clone(),
        subresource: a.subresource.clone(),
        namespace: a.namespace.clone(),
        name: a.name.clone(),
        path: String::new(),
    };
    vec![
        (
            "object",
            input.object.map(json_to_cel).unwrap_or(CelValue::Null),
        ),
        (
            "oldObject",
            input.old_object.map(json_to_cel).unwrap_or(CelValue::Null),
        ),
        ("request", request),
        ("params", CelValue::Null),
        (
            "namespaceObject",
            if a.namespace.is_empty() {
                CelValue::Null
            } else {
                input
                    .namespace_object
                    .map(json_to_cel)
                    .unwrap_or(CelValue::Null)
            },
        ),
        (
            "authorizer",
            authorizer_value(handle, Some(request_resource)),
        ),
    ]
}

/// Evaluate one policy for one binding; returns the failed decisions (action
/// Deny in k8s terms: false validations, and errors when failurePolicy=Fail).
fn evaluate_policy(
    policy: &CompiledPolicy,
    binding: &PolicyBinding,
    base: &[(&'static str, CelValue)],
) -> Vec<PolicyOutcome> {
    let error_outcome = |msg: String| -> Vec<PolicyOutcome> {
        if policy.fail {
            vec![PolicyOutcome::Deny {
                message: msg,
                reason: String::new(),
            }]
        } else {
            Vec::new()
        }
    };
    if policy.has_param_kind {
        // Real servers resolve params through an informer for paramKind;
        // kube-sim does not implement params.
        return if policy.fail {
            vec![PolicyOutcome::ConfigError(format!(
                "failed to configure binding: paramKind/paramRef are not supported by kube-sim (binding '{}')",
                binding.name
            ))]
        } else {
            Vec::new()
        };
    }
    let mut ctx = root_context().new_inner_scope();
    for (k, v) in base {
        ctx.add_variable_from_value(*k, v.clone());
    }
    // variables, in order; later ones may refer to earlier ones. A variable
    // that fails is left unset (so only expressions using it fail).
    let mut vars: HashMap<Key, CelValue> = HashMap::new();
    ctx.add_variable_from_value(
        "variables",
        CelValue::Map(CelMap {
            map: Arc::new(vars.clone()),
        }),
    );
    for (name, expr) in &policy.variables {
        if let Ok(v) = expr.eval(&ctx) {
            vars.insert(Key::from(name.as_str()), v);
            ctx.add_variable_from_value(
                "variables",
                CelValue::Map(CelMap {
                    map: Arc::new(vars.clone()),
                }),
            );
        }
    }
    // matchConditions: any false -> skip; else any error -> failure policy.
    let mut cond_errors: Vec<String> = Vec::new();
    for (_name, expr) in &policy.match_conditions {
        match expr.eval_bool(&ctx) {
            Ok(false) => return Vec::new(),
            Ok(true) => {}
            Err(e) => {
                if !cond_errors.contains(&e) {
                    cond_errors.push(e)
                }
            }
        }
    }
    match cond_errors.len() {
        0 => {}
        1 => return error_outcome(cond_errors.remove(0)),
        _ => return error_outcome(format!("[{}]", cond_errors.join(", "))),
    }
    // messageExpression has no access to `authorizer` (validator.go
    // expressionOptionalVars); using it fails and falls back to `message`.
    let mut msg_ctx = ctx.new_inner_scope();
    msg_ctx.add_variable_from_value("authorizer", CelValue::Null);
    let mut out = Vec::new();
    for v in &policy.validations {
        // Anything but `true` denies (`evalResult.EvalResult != celtypes.True`).
        match v.expr.eval(&ctx).map(|r| matches!(r, CelValue::Bool(true))) {
            Ok(true) => {}
            Ok(false) => {
                let fallback = if !v.message.trim().is_empty() {
                    v.message.trim().to_string()
                } else {
                    format!("failed expression: {}", v.expr.source.trim())
                };
                let message = v
                    .message_expr
                    .as_ref()
                    .and_then(|me| match me.eval(&msg_ctx) {
                        Ok(CelValue::String(s)) => {
                            let s = s.trim();
                            (!s.is_empty() && !s.contains('\n') && s.len() <= 5 * 1024)
                                .then(|| s.to_string())
                        }
                        _ => None,
                    })
                    .unwrap_or(fallback);
                let reason = if v.reason.is_empty() {
                    "Invalid".to_string()
                } else {
                    v.reason.clone()
                };
                out.push(PolicyOutcome::Deny { message, reason });
            }
            Err(e) => out.extend(error_outcome(e)),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn res(
        u: &UserInfo,
        verb: &str,
        ns: &str,
        group: &str,
        resource: &str,
        sub: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            namespace: ns.into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            resource_request: true,
            path: String::new(),
        }
    }

    fn non_res(u: &UserInfo, verb: &str, path: &str) -> Attributes {
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    fn deny() -> Decision {
        Decision::Deny {
            reason: String::new(),
        }
    }

    fn cluster_role(name: &str, rules: Json) -> Json {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
    }

    fn role(ns: &str, name: &str, rules: Json) -> Json {
        json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
    }

    fn crb(name: &str, role: &str, subjects: Json) -> Json {
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": subjects})
    }

    fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Json) -> Json {
        json!({"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
               "subjects": subjects})
    }

    fn user_subject(n: &str) -> Json {
        json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": n}])
    }

    #[test]
    fn cluster_role_binding_allows_everywhere() {
        let s = RbacSnapshot::new(
            &[],
            &[cluster_role(
                "cm-reader",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
            )],
            &[],
            &[crb("bob-reads", "cm-reader", user_subject("bob"))],
        );
        let bob = user("bob", &[]);
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "", "configmaps", "", "c")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "list", "ns2", "", "configmaps", "", "")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "list", "", "", "configmaps", "", "")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "delete", "ns1", "", "configmaps", "", "c")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "apps", "configmaps", "", "c")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "", "secrets", "", "c")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(
                &user("alice", &[]),
                "get",
                "ns1",
                "",
                "configmaps",
                "",
                "c"
            )),
            deny()
        );
        assert_eq!(
            s.authorize_with_reason(&res(&bob, "get", "ns1", "", "configmaps", "", "c")),
            (true, "RBAC: allowed by ClusterRoleBinding \"bob-reads\" of ClusterRole \"cm-reader\" to User \"bob\"".to_string())
        );
    }

    #[test]
    fn role_binding_only_in_its_namespace() {
        let s = RbacSnapshot::new(
            &[
                role(
                    "ns1",
                    "pod-reader",
                    json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
                ),
                role(
                    "ns2",
                    "pod-reader",
                    json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]),
                ),
            ],
            &[],
            &[rb("ns1", "rb", "Role", "pod-reader", user_subject("bob"))],
            &[],
        );
        let bob = user("bob", &[]);
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "", "pods", "", "p")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "delete", "ns1", "", "pods", "", "p")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns2", "", "pods", "", "p")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "get", "", "", "pods", "", "")),
            deny()
        );
        assert_eq!(
            s.authorize_with_reason(&res(&bob, "get", "ns1", "", "pods", "", "p"))
                .1,
            "RBAC: allowed by RoleBinding \"rb/ns1\" of Role \"pod-reader\" to User \"bob\""
        );
    }

    #[test]
    fn role_binding_to_cluster_role_is_namespace_scoped() {
        let s = RbacSnapshot::new(
            &[],
            &[cluster_role(
                "edit",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            )],
            &[rb(
                "team",
                "edit-team",
                "ClusterRole",
                "edit",
                user_subject("bob"),
            )],
            &[],
        );
        let bob = user("bob", &[]);
        assert_eq!(
            s.authorize(&res(&bob, "delete", "team", "apps", "deployments", "", "d")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(
                &bob,
                "delete",
                "other",
                "apps",
                "deployments",
                "",
                "d"
            )),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "list", "", "", "namespaces", "", "")),
            deny()
        );
    }

    #[test]
    fn missing_role_is_reported_in_reason() {
        let s = RbacSnapshot::new(
            &[],
            &[],
            &[rb("ns1", "rb", "Role", "nope", user_subject("bob"))],
            &[],
        );
        assert_eq!(
            s.authorize(&res(&user("bob", &[]), "get", "ns1", "", "pods", "", "p")),
            Decision::Deny {
                reason: "RBAC: role.rbac.authorization.k8s.io \"nope\" not found".into()
            }
        );
    }

    #[test]
    fn resource_names_allow_get_of_one_name_and_deny_list() {
        let s = RbacSnapshot::new(
            &[],
            &[cluster_role(
                "one-cm",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"],
                        "verbs": ["get", "list", "watch", "create", "update", "deletecollection"]}]),
            )],
            &[],
            &[crb("b", "one-cm", user_subject("bob"))],
        );
        let bob = user("bob", &[]);
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "", "configmaps", "", "cfg")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "update", "ns1", "", "configmaps", "", "cfg")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "watch", "ns1", "", "configmaps", "", "cfg")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "", "configmaps", "", "other")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "list", "ns1", "", "configmaps", "", "")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "watch", "ns1", "", "configmaps", "", "")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&bob, "create", "ns1", "", "configmaps", "", "")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(
                &bob,
                "deletecollection",
                "ns1",
                "",
                "configmaps",
                "",
                ""
            )),
            deny()
        );
    }

    #[test]
    fn subresources_and_wildcards() {
        let s = RbacSnapshot::new(
            &[],
            &[
                cluster_role(
                    "status",
                    json!([{"apiGroups": ["partnerkit.io"], "resources": ["partners/status"], "verbs": ["patch", "update"]}]),
                ),
                cluster_role(
                    "any-scale",
                    json!([{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}]),
                ),
                cluster_role(
                    "all",
                    json!([{"apiGroups": ["batch"], "resources": ["*"], "verbs": ["*"]}]),
                ),
                cluster_role(
                    "sub-star",
                    json!([{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}]),
                ),
            ],
            &[],
            &[
                crb("b1", "status", user_subject("bob")),
                crb("b2", "any-scale", user_subject("bob")),
                crb("b3", "all", user_subject("bob")),
                crb("b4", "sub-star", user_subject("bob")),
            ],
        );
        let bob = user("bob", &[]);
        assert_eq!(
            s.authorize(&res(
                &bob,
                "patch",
                "ns1",
                "partnerkit.io",
                "partners",
                "status",
                "p"
            )),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(
                &bob,
                "patch",
                "ns1",
                "partnerkit.io",
                "partners",
                "",
                "p"
            )),
            deny()
        );
        assert_eq!(
            s.authorize(&res(
                &bob,
                "get",
                "ns1",
                "partnerkit.io",
                "partners",
                "status",
                "p"
            )),
            deny()
        );
        assert_eq!(
            s.authorize(&res(
                &bob,
                "get",
                "ns1",
                "apps",
                "deployments",
                "scale",
                "d"
            )),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "apps", "deployments", "", "d")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(
                &bob,
                "get",
                "ns1",
                "apps",
                "deployments",
                "status",
                "d"
            )),
            deny()
        );
        // "*" matches every resource including subresources
        assert_eq!(
            s.authorize(&res(&bob, "create", "ns1", "batch", "jobs", "", "")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "update", "ns1", "batch", "jobs", "status", "j")),
            Decision::Allow
        );
        // "pods/*" is not a wildcard in real RBAC (only "*/sub" is)
        assert_eq!(
            s.authorize(&res(&bob, "get", "ns1", "", "pods", "log", "p")),
            deny()
        );
    }

    #[test]
    fn group_subject_and_masters() {
        let s = RbacSnapshot::new(
            &[],
            &[cluster_role(
                "view",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
            )],
            &[],
            &[crb(
                "devs-view",
                "view",
                json!([{"kind": "Group", "name": "devs"}]),
            )],
        );
        assert_eq!(
            s.authorize(&res(
                &user("carol", &["devs"]),
                "list",
                "x",
                "",
                "pods",
                "",
                ""
            )),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&user("devs", &[]), "list", "x", "", "pods", "", "")),
            deny()
        );
        let admin = user("kubernetes-admin", &["system:masters"]);
        assert_eq!(
            s.authorize(&res(&admin, "delete", "", "", "nodes", "", "n1")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&non_res(&admin, "get", "/metrics")),
            Decision::Allow
        );
        let (r, nr) = s.rules_for(&admin, "x");
        assert_eq!(
            r,
            vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})]
        );
        assert_eq!(nr, vec![json!({"verbs": ["*"], "nonResourceURLs": ["*"]})]);
    }

    #[test]
    fn service_account_subject() {
        let s = RbacSnapshot::new(
            &[role(
                "apps",
                "r",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            )],
            &[cluster_role(
                "ns-lister",
                json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]),
            )],
            &[
                // namespace omitted: defaults to the binding's namespace
                rb(
                    "apps",
                    "sa-local",
                    "Role",
                    "r",
                    json!([{"kind": "ServiceAccount", "name": "builder"}]),
                ),
            ],
            &[
                crb(
                    "sa-ns",
                    "ns-lister",
                    json!([{"kind": "ServiceAccount", "name": "ctrl", "namespace": "kube-system"}]),
                ),
                // a ServiceAccount subject without namespace never matches in a ClusterRoleBinding
                crb(
                    "sa-nons",
                    "ns-lister",
                    json!([{"kind": "ServiceAccount", "name": "builder"}]),
                ),
            ],
        );
        let ctrl = UserInfo::service_account("kube-system", "ctrl");
        assert_eq!(ctrl.name, "system:serviceaccount:kube-system:ctrl");
        assert_eq!(
            s.authorize(&res(&ctrl, "list", "", "", "namespaces", "", "")),
            Decision::Allow
        );
        let builder = UserInfo::service_account("apps", "builder");
        assert_eq!(
            s.authorize(&res(&builder, "get", "apps", "", "secrets", "", "s")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&builder, "get", "other", "", "secrets", "", "s")),
            deny()
        );
        assert_eq!(
            s.authorize(&res(&builder, "list", "", "", "namespaces", "", "")),
            deny()
        );
        assert_eq!(
            s.authorize_with_reason(&res(&builder, "get", "apps", "", "secrets", "", "s"))
                .1,
            "RBAC: allowed by RoleBinding \"sa-local/apps\" of Role \"r\" to ServiceAccount \"builder/apps\""
        );
        // SA group subject
        let s2 = RbacSnapshot::new(
            &[],
            &[cluster_role(
                "ns-lister",
                json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]),
            )],
            &[],
            &[crb(
                "all-sa",
                "ns-lister",
                json!([{"kind": "Group", "name": "system:serviceaccounts:apps"}]),
            )],
        );
        assert_eq!(
            s2.authorize(&res(&builder, "list", "", "", "namespaces", "", "")),
            Decision::Allow
        );
        assert_eq!(
            s2.authorize(&res(&ctrl, "list", "", "", "namespaces", "", "")),
            deny()
        );
    }

    #[test]
    fn non_resource_urls() {
        let s = RbacSnapshot::new(
            &[],
            &[cluster_role(
                "nr",
                json!([{"nonResourceURLs": ["/version", "/healthz/*", "/api*"], "verbs": ["get"]}]),
            )],
            &[],
            &[crb("b", "nr", user_subject("bob"))],
        );
        let bob = user("bob", &[]);
        assert_eq!(
            s.authorize(&non_res(&bob, "get", "/version")),
            Decision::Allow
        );
        assert_eq!(s.authorize(&non_res(&bob, "get", "/version/")), deny());
        assert_eq!(
            s.authorize(&non_res(&bob, "get", "/healthz/etcd")),
            Decision::Allow
        );
        assert_eq!(s.authorize(&non_res(&bob, "get", "/healthz")), deny());
        assert_eq!(
            s.authorize(&non_res(&bob, "get", "/apis/apps")),
            Decision::Allow
        );
        assert_eq!(s.authorize(&non_res(&bob, "post", "/version")), deny());
        // nonResourceURLs rules never grant resource requests
        assert_eq!(
            s.authorize(&res(&bob, "get", "", "", "version", "", "")),
            deny()
        );
        let (r, nr) = s.rules_for(&bob, "");
        assert!(r.is_empty());
        assert_eq!(
            nr,
            vec![json!({"verbs": ["get"], "nonResourceURLs": ["/version", "/healthz/*", "/api*"]})]
        );
    }

    #[test]
    fn aggregation() {
        let mut agg = cluster_role("monitoring", json!([]));
        agg["aggregationRule"] = json!({"clusterRoleSelectors": [
            {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}},
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["metrics"]}]}
        ]});
        let mut a = cluster_role(
            "a",
            json!([{"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}]),
        );
        a["metadata"]["labels"] = json!({"rbac.example.com/aggregate-to-monitoring": "true"});
        let mut b = cluster_role(
            "b",
            json!([{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["list"]}]),
        );
        b["metadata"]["labels"] = json!({"tier": "metrics"});
        let mut c = cluster_role(
            "c",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        );
        c["metadata"]["labels"] = json!({"tier": "web"});
        // nested aggregation: "top" aggregates "monitoring" which is itself aggregated
        let mut top = cluster_role("top", Json::Null);
        top["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"agg": "top"}}]});
        agg["metadata"]["labels"] = json!({"agg": "top"});
        let s = RbacSnapshot::new(
            &[],
            &[agg, a, b, c, top],
            &[],
            &[
                crb("m", "monitoring", user_subject("bob")),
                crb("t", "top", user_subject("tom")),
            ],
        );
        let bob = user("bob", &[]);
        assert_eq!(
            s.authorize(&res(&bob, "get", "x", "", "services", "", "s")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "list", "x", "", "endpoints", "", "")),
            Decision::Allow
        );
        assert_eq!(
            s.authorize(&res(&bob, "get", "x", "", "secrets", "", "s")),
            deny()
        );
        let tom = user("tom", &[]);
        assert_eq!(
            s.authorize(&res(&tom, "list", "x", "", "endpoints", "", "")),
            Decision::Allow
        );
        let (rules, _) = s.rules_for(&bob, "x");
        assert_eq!(
            rules,
            vec![
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["services"]}),
                json!({"verbs": ["list"], "apiGroups": [""], "resources": ["endpoints"]}),
            ]
        );
    }

    #[test]
    fn rules_for_resource_names_and_namespaces() {
        let s = RbacSnapshot::new(
            &[role(
                "ns1",
                "r",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"], "verbs": ["get"]}]),
            )],
            &[cluster_role(
                "v",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
            )],
            &[rb("ns1", "rb", "Role", "r", user_subject("bob"))],
            &[crb("c", "v", user_subject("bob"))],
        );
        let bob = user("bob", &[]);
        let (r, _) = s.rules_for(&bob, "ns1");
        assert_eq!(
            r,
            vec![
                json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}),
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]}),
            ]
        );
        assert_eq!(s.rules_for(&bob, "ns2").0.len(), 1);
    }

    #[test]
    fn forbidden_messages() {
        let bobx = user("bob@x", &[]);
        assert_eq!(
            forbidden_message(&res(&bobx, "get", "ns1", "", "configmaps", "", "cfg"), ""),
            "configmaps \"cfg\" is forbidden: User \"bob@x\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"ns1\""
        );
        let bob = user("bob", &[]);
        assert_eq!(
            forbidden_message(&res(&bob, "list", "", "", "namespaces", "", ""), ""),
            "namespaces is forbidden: User \"bob\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        assert_eq!(
            forbidden_message(
                &res(
                    &bob,
                    "patch",
                    "ns1",
                    "partnerkit.io",
                    "partners",
                    "status",
                    "p1"
                ),
                ""
            ),
            "partners.partnerkit.io \"p1\" is forbidden: User \"bob\" cannot patch resource \"partners/status\" in API group \"partnerkit.io\" in the namespace \"ns1\""
        );
        assert_eq!(
            forbidden_message(&non_res(&bob, "get", "/version"), ""),
            "forbidden: User \"bob\" cannot get path \"/version\""
        );
        assert_eq!(
            forbidden_message(
                &res(&bob, "get", "ns1", "", "pods", "", "p"),
                "RBAC: role.rbac.authorization.k8s.io \"x\" not found"
            ),
            "pods \"p\" is forbidden: User \"bob\" cannot get resource \"pods\" in API group \"\" in the namespace \"ns1\": RBAC: role.rbac.authorization.k8s.io \"x\" not found"
        );
    }

    // ---------------- ValidatingAdmissionPolicy ----------------

    fn partner(name: &str, branding: &str, tier: &str, labels: Json) -> Json {
        json!({"apiVersion": "partnerkit.io/v1", "kind": "Partner",
               "metadata": {"name": name, "namespace": "ns1", "labels": labels},
               "spec": {"branding": branding, "tier": tier}})
    }

    fn binding(name: &str, policy: &str, actions: &[&str]) -> Json {
        json!({"kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
               "spec": {"policyName": policy, "validationActions": actions}})
    }

    fn policy(name: &str, extra: Json) -> Json {
        let mut p = json!({"kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
            {"apiGroups": ["partnerkit.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["partners"]}
        ]}}});
        for (k, v) in extra.as_object().unwrap() {
            p["spec"][k] = v.clone();
        }
        p
    }

    fn partner_attrs(u: &UserInfo, verb: &str, name: &str) -> Attributes {
        res(u, verb, "ns1", "partnerkit.io", "partners", "", name)
    }

    struct Req {
        attrs: Attributes,
        op: &'static str,
        obj: Option<Json>,
        old: Option<Json>,
        ns: Json,
    }

    impl Req {
        fn update(u: &UserInfo, old: Json, new: Json) -> Req {
            Req {
                attrs: partner_attrs(u, "update", new["metadata"]["name"].as_str().unwrap()),
                op: "UPDATE",
                obj: Some(new),
                old: Some(old),
                ns: json!({"metadata": {"name": "ns1", "labels": {"env": "prod"}}}),
            }
        }
        fn create(u: &UserInfo, new: Json) -> Req {
            Req {
                attrs: partner_attrs(u, "create", new["metadata"]["name"].as_str().unwrap()),
                op: "CREATE",
                obj: Some(new),
                old: None,
                ns: json!({"metadata": {"name": "ns1", "labels": {"env": "prod"}}}),
            }
        }
        fn input(&self) -> AdmissionInput<'_> {
            AdmissionInput {
                operation: self.op,
                object: self.obj.as_ref(),
                old_object: self.old.as_ref(),
                attributes: &self.attrs,
                kind: ("partnerkit.io", "v1", "Partner"),
                namespace_object: Some(&self.ns),
                dry_run: false,
            }
        }
    }

    fn branding_policy() -> Json {
        policy(
            "partner-branding-only",
            json!({
                "matchConstraints": {"resourceRules": [
                    {"apiGroups": ["partnerkit.io"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["partners"]}
                ]},
                "validations": [{
                    "expression": "authorizer.group('partnerkit.io').resource('partners').namespace(object.metadata.namespace).name(object.metadata.name).check('manage').allowed() || object.spec.tier == oldObject.spec.tier",
                    "message": "only spec.branding may be changed without the manage verb",
                    "reason": "Forbidden"
                }]
            }),
        )
    }

    fn partner_rbac() -> RbacSnapshot {
        RbacSnapshot::new(
            &[],
            &[cluster_role(
                "partner-manager",
                json!([{"apiGroups": ["partnerkit.io"], "resources": ["partners"], "verbs": ["get", "update", "manage"]}]),
            )],
            &[],
            &[crb(
                "managers",
                "partner-manager",
                json!([{"kind": "Group", "name": "managers"}]),
            )],
        )
    }

    #[test]
    fn vap_authorizer_custom_verb() {
        let pols = AdmissionPolicies::new(
            &[branding_policy()],
            &[binding("bind", "partner-branding-only", &["Deny"])],
        );
        assert!(!pols.is_empty());
        let rbac = partner_rbac();
        let old = partner("acme", "blue", "gold", json!({}));
        let only_branding = partner("acme", "red", "gold", json!({}));
        let tier_change = partner("acme", "blue", "platinum", json!({}));
        let dev = user("dev", &["devs"]);
        let mgr = user("mgr", &["managers"]);
        assert_eq!(
            pols.admit(
                &Req::update(&dev, old.clone(), only_branding.clone()).input(),
                &rbac
            ),
            Ok(vec![])
        );
        let d = pols
            .admit(
                &Req::update(&dev, old.clone(), tier_change.clone()).input(),
                &rbac,
            )
            .unwrap_err();
        assert_eq!(
            d,
            AdmissionDenial {
                policy: "partner-branding-only".into(),
                binding: "bind".into(),
                message: "ValidatingAdmissionPolicy 'partner-branding-only' with binding 'bind' denied request: only spec.branding may be changed without the manage verb".into(),
                reason: "Forbidden".into(),
                code: 403,
            }
        );
        assert_eq!(
            pols.admit(
                &Req::update(&mgr, old.clone(), tier_change.clone()).input(),
                &rbac
            ),
            Ok(vec![])
        );
        // CREATE is not matched by the policy
        assert_eq!(
            pols.admit(&Req::create(&dev, tier_change).input(), &rbac),
            Ok(vec![])
        );
        // masters always allowed by the authorizer
        let admin = user("admin", &["system:masters"]);
        assert_eq!(
            pols.admit(
                &Req::update(&admin, old, partner("acme", "x", "y", json!({}))).input(),
                &rbac
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn vap_authorizer_request_resource_and_reason() {
        let p = policy(
            "rr",
            json!({"validations": [
                {"expression": "authorizer.requestResource.check('manage').allowed()", "message": "static", "messageExpression": "'no manage: ' + authorizer.requestResource.check('manage').reason()"},
                {"expression": "authorizer.requestResource.check('manage').reason() == '' || authorizer.requestResource.check('manage').reason().startsWith('RBAC: allowed by ClusterRoleBinding \"managers\"')"},
                {"expression": "authorizer.serviceAccount('ns1', 'robot').group('partnerkit.io').resource('partners').check('get').allowed() == false"},
                {"expression": "!authorizer.path('/version').check('get').allowed()"}
            ]}),
        );
        let pols = AdmissionPolicies::new(&[p], &[binding("b", "rr", &["Deny"])]);
        let rbac = partner_rbac();
        let dev = user("dev", &[]);
        let d = pols
            .admit(
                &Req::create(&dev, partner("p", "b", "t", json!({}))).input(),
                &rbac,
            )
            .unwrap_err();
        // messageExpression cannot use the authorizer: falls back to message
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'rr' with binding 'b' denied request: static"
        );
        assert_eq!((d.reason.as_str(), d.code), ("Invalid", 422));
        let mgr = user("mgr", &["managers"]);
        assert_eq!(
            pols.admit(
                &Req::create(&mgr, partner("p", "b", "t", json!({}))).input(),
                &rbac
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn vap_failed_expression_message_and_all_denials_first_wins() {
        let p = policy(
            "p",
            json!({"validations": [{"expression": "object.spec.tier != 'banned'"}, {"expression": "false", "message": "second"}]}),
        );
        let pols = AdmissionPolicies::new(&[p], &[binding("b", "p", &["Deny"])]);
        let d = pols
            .admit(
                &Req::create(&user("u", &[]), partner("x", "b", "banned", json!({}))).input(),
                &RbacSnapshot::default(),
            )
            .unwrap_err();
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed expression: object.spec.tier != 'banned'"
        );
        assert_eq!(d.code, 422);
        let d = pols
            .admit(
                &Req::create(&user("u", &[]), partner("x", "b", "ok", json!({}))).input(),
                &RbacSnapshot::default(),
            )
            .unwrap_err();
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: second"
        );
    }

    #[test]
    fn vap_match_conditions_skip() {
        let p = policy(
            "p",
            json!({
                "matchConditions": [
                    {"name": "not-admin", "expression": "!('admins' in request.userInfo.groups)"},
                    {"name": "has-tier", "expression": "has(object.spec.tier)"}
                ],
                "validations": [{"expression": "object.spec.tier == 'free'", "message": "only free tier"}]
            }),
        );
        let pols = AdmissionPolicies::new(&[p], &[binding("b", "p", &["Deny"])]);
        let rbac = RbacSnapshot::default();
        let gold = partner("x", "b", "gold", json!({}));
        assert_eq!(
            pols.admit(
                &Req::create(&user("a", &["admins"]), gold.clone()).input(),
                &rbac
            ),
            Ok(vec![])
        );
        let d = pols
            .admit(&Req::create(&user("u", &[]), gold).input(), &rbac)
            .unwrap_err();
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: only free tier"
        );
        let no_tier = json!({"metadata": {"name": "x", "namespace": "ns1"}, "spec": {}});
        assert_eq!(
            pols.admit(&Req::create(&user("u", &[]), no_tier).input(), &rbac),
            Ok(vec![])
        );
    }

    #[test]
    fn vap_failure_policy_on_runtime_error() {
        let mk = |fp: &str| {
            policy(
                "p",
                json!({"failurePolicy": fp, "validations": [{"expression": "object.spec.missing == 'x'", "message": "m"}]}),
            )
        };
        let rbac = RbacSnapshot::default();
        let req = Req::create(&user("u", &[]), partner("x", "b", "t", json!({})));
        let ignore = AdmissionPolicies::new(&[mk("Ignore")], &[binding("b", "p", &["Deny"])]);
        assert_eq!(ignore.admit(&req.input(), &rbac), Ok(vec![]));
        let fail = AdmissionPolicies::new(&[mk("Fail")], &[binding("b", "p", &["Deny"])]);
        let d = fail.admit(&req.input(), &rbac).unwrap_err();
        assert!(
            d.message.starts_with(
                "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'object.spec.missing == 'x'' resulted in error: "
            ),
            "{}",
            d.message
        );
        assert_eq!(d.code, 422);
        // default failurePolicy is Fail
        let mut dflt = mk("Fail");
        dflt["spec"]
            .as_object_mut()
            .unwrap()
            .remove("failurePolicy");
        assert!(
            AdmissionPolicies::new(&[dflt], &[binding("b", "p", &["Deny"])])
                .admit(&req.input(), &rbac)
                .is_err()
        );
        // a compile error is handled like a runtime error
        let bad = policy(
            "p",
            json!({"failurePolicy": "Ignore", "validations": [{"expression": "object.spec.(("}]}),
        );
        assert_eq!(
            AdmissionPolicies::new(&[bad], &[binding("b", "p", &["Deny"])])
                .admit(&req.input(), &rbac),
            Ok(vec![])
        );
        // paramKind is unsupported -> error per failurePolicy
        let pk = policy(
            "p",
            json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, "validations": [{"expression": "true"}]}),
        );
        // a configuration error denies even for a Warn-only binding
        let d = AdmissionPolicies::new(&[pk], &[binding("b", "p", &["Warn"])])
            .admit(&req.input(), &rbac)
            .unwrap_err();
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed to configure binding: paramKind/paramRef are not supported by kube-sim (binding 'b')"
        );
        // matchCondition error with failurePolicy Fail
        let mc = policy(
            "p",
            json!({"matchConditions": [{"name": "c", "expression": "object.nope"}], "validations": [{"expression": "true"}]}),
        );
        let d = AdmissionPolicies::new(&[mc], &[binding("b", "p", &["Deny"])])
            .admit(&req.input(), &rbac)
            .unwrap_err();
        assert!(d.message.starts_with("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression 'object.nope' resulted in error: "), "{}", d.message);
        // a non-boolean result denies like false
        let nb = policy("p", json!({"validations": [{"expression": "'yes'"}]}));
        let d = AdmissionPolicies::new(&[nb], &[binding("b", "p", &["Deny"])])
            .admit(&req.input(), &rbac)
            .unwrap_err();
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed expression: 'yes'"
        );
    }

    #[test]
    fn vap_message_expression_and_variables() {
        let p = policy(
            "p",
            json!({
                "variables": [
                    {"name": "tier", "expression": "object.spec.tier"},
                    {"name": "allowed", "expression": "['free', 'gold']"},
                    {"name": "ok", "expression": "variables.tier in variables.allowed"}
                ],
                "validations": [{
                    "expression": "variables.ok",
                    "message": "static",
                    "messageExpression": "'tier ' + variables.tier + ' of ' + object.metadata.name + ' is not allowed for ' + request.userInfo.username"
                }, {
                    "expression": "object.metadata.name.size() < 10",
                    "message": "name too long",
                    "messageExpression": "''"
                }]
            }),
        );
        let pols = AdmissionPolicies::new(&[p], &[binding("b", "p", &["Deny"])]);
        let rbac = RbacSnapshot::default();
        assert_eq!(
            pols.admit(
                &Req::create(&user("u", &[]), partner("x", "b", "gold", json!({}))).input(),
                &rbac
            ),
            Ok(vec![])
        );
        let d = pols
            .admit(
                &Req::create(&user("u", &[]), partner("x", "b", "platinum", json!({}))).input(),
                &rbac,
            )
            .unwrap_err();
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: tier platinum of x is not allowed for u"
        );
        // empty messageExpression result falls back to message
        let d = pols
            .admit(
                &Req::create(
                    &user("u", &[]),
                    partner("very-long-name", "b", "gold", json!({})),
                )
                .input(),
                &rbac,
            )
            .unwrap_err();
        assert_eq!(
            d.message,
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: name too long"
        );
    }

    #[test]
    fn vap_object_and_namespace_selectors() {
        let p = policy(
            "p",
            json!({
                "matchConstraints": {
                    "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["partners"]}],
                    "objectSelector": {"matchLabels": {"guarded": "true"}},
                    "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
                },
                "validations": [{"expression": "false", "message": "guarded"}]
            }),
        );
        let pols = AdmissionPolicies::new(&[p], &[binding("b", "p", &["Deny"])]);
        let rbac = RbacSnapshot::default();
        let u = user("u", &[]);
        assert_eq!(
            pols.admit(
                &Req::create(&u, partner("x", "b", "t", json!({}))).input(),
                &rbac
            ),
            Ok(vec![])
        );
        assert!(
            pols.admit(
                &Req::create(&u, partner("x", "b", "t", json!({"guarded": "true"}))).input(),
                &rbac
            )
            .is_err()
        );
        // old object labels also match (label removal is still guarded)
        let r = Req::update(
            &u,
            partner("x", "b", "t", json!({"guarded": "true"})),
            partner("x", "b", "t", json!({})),
        );
        assert!(pols.admit(&r.input(), &rbac).is_err());
        // namespace selector
        let mut r = Req::create(&u, partner("x", "b", "t", json!({"guarded": "true"})));
        r.ns = json!({"metadata": {"name": "ns1", "labels": {"env": "dev"}}});
        assert_eq!(pols.admit(&r.input(), &rbac), Ok(vec![]));
        // binding matchResources narrows further
        let mut bnd = binding("b", "p", &["Deny"]);
        bnd["spec"]["matchResources"] = json!({"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["DELETE"], "resources": ["*"]}]});
        let narrowed = AdmissionPolicies::new(
            &[policy(
                "p",
                json!({"validations": [{"expression": "false"}]}),
            )],
            &[bnd],
        );
        assert_eq!(
            narrowed.admit(
                &Req::create(&u, partner("x", "b", "t", json!({}))).input(),
                &rbac
            ),
            Ok(vec![])
        );
        // excludeResourceRules
        let ex = policy(
            "p",
            json!({"matchConstraints": {
                "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}],
                "excludeResourceRules": [{"apiGroups": ["partnerkit.io"], "apiVersions": ["*"], "operations": ["*"], "resources": ["partners"], "resourceNames": ["x"]}]
            }, "validations": [{"expression": "false"}]}),
        );
        let ex = AdmissionPolicies::new(&[ex], &[binding("b", "p", &["Deny"])]);
        assert_eq!(
            ex.admit(
                &Req::create(&u, partner("x", "b", "t", json!({}))).input(),
                &rbac
            ),
            Ok(vec![])
        );
        assert!(
            ex.admit(
                &Req::create(&u, partner("y", "b", "t", json!({}))).input(),
                &rbac
            )
            .is_err()
        );
    }

    #[test]
    fn vap_warn_action() {
        let p = policy(
            "p",
            json!({"validations": [{"expression": "object.spec.tier != 'legacy'", "message": "legacy tier is deprecated"}]}),
        );
        let pols = AdmissionPolicies::new(&[p], &[binding("warn-b", "p", &["Warn", "Audit"])]);
        let rbac = RbacSnapshot::default();
        assert_eq!(
            pols.admit(&Req::create(&user("u", &[]), partner("x", "b", "legacy", json!({}))).input(), &rbac),
            Ok(vec!["Validation failed for ValidatingAdmissionPolicy 'p' with binding 'warn-b': legacy tier is deprecated".to_string()])
        );
        assert_eq!(
            pols.admit(
                &Req::create(&user("u", &[]), partner("x", "b", "new", json!({}))).input(),
                &rbac
            ),
            Ok(vec![])
        );
        // missing policy -> binding ignored; no bindings -> empty
        assert!(AdmissionPolicies::new(&[], &[binding("b", "nope", &["Deny"])]).is_empty());
    }

    #[test]
    fn vap_request_and_reserved_words() {
        let p = policy(
            "p",
            json!({"validations": [
                {"expression": "request.operation == 'CREATE' && request.kind.kind == 'Partner' && request.resource.resource == 'partners' && request.namespace == 'ns1' && request.name == 'x' && !request.dryRun"},
                {"expression": "object.metadata.__namespace__ == 'ns1' && object.metadata.namespace == 'ns1' && has(object.metadata.labels) && namespaceObject.metadata.labels.env == 'prod' && oldObject == null"}
            ]}),
        );
        let pols = AdmissionPolicies::new(&[p], &[binding("b", "p", &["Deny"])]);
        assert_eq!(
            pols.admit(
                &Req::create(&user("u", &[]), partner("x", "b", "t", json!({}))).input(),
                &RbacSnapshot::default()
            ),
            Ok(vec![])
        );
    }

    // ---------------- privilege-escalation prevention ----------------

    fn pr(v: Json) -> Vec<PolicyRule> {
        v.as_array()
            .expect("rules")
            .iter()
            .map(PolicyRule::from_json)
            .collect()
    }

    /// `escalationTest.test` of policy_comparator_test.go: coverage and the uncovered pieces
    /// (compared as sets).
    fn assert_covers(owner: Json, servant: Json, covered: bool, uncovered: Json) {
        let (c, missing) = covers(&pr(owner.clone()), &pr(servant.clone()));
        let want = pr(uncovered);
        assert_eq!(c, covered, "owner {owner} servant {servant}");
        assert_eq!(missing.len(), want.len(), "{missing:?}");
        for w in &want {
            assert!(missing.contains(w), "{w:?} not in {missing:?}");
        }
    }

    #[test]
    fn covers_ported_from_policy_comparator_test() {
        // TestCoversExactMatch
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["builds"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["builds"]}]),
            true,
            json!([]),
        );
        // TestCoversSubresourceWildcard
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["*/scale"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["foo/scale"]}]),
            true,
            json!([]),
        );
        // ... but `*/scale` does not cover the resource itself, nor another subresource.
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["*/scale"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["foo", "foo/status"]}]),
            false,
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["foo"]},
                   {"apiGroups": ["v1"], "verbs": ["get"], "resources": ["foo/status"]}]),
        );
        // TestCoversMultipleRulesCoveringSingleRule
        assert_covers(
            json!([
                {"apiGroups": ["v1"], "verbs": ["delete"], "resources": ["deployments"]},
                {"apiGroups": ["v1"], "verbs": ["delete"], "resources": ["builds"]},
                {"apiGroups": ["v1"], "verbs": ["update"], "resources": ["builds", "deployments"]}
            ]),
            json!([{"apiGroups": ["v1"], "verbs": ["delete", "update"], "resources": ["builds", "deployments"]}]),
            true,
            json!([]),
        );
        // TestCoversMultipleAPIGroupsCoveringSingleRule
        assert_covers(
            json!([
                {"apiGroups": ["group1"], "verbs": ["delete"], "resources": ["deployments"]},
                {"apiGroups": ["group1"], "verbs": ["delete"], "resources": ["builds"]},
                {"apiGroups": ["group1"], "verbs": ["update"], "resources": ["builds", "deployments"]},
                {"apiGroups": ["group2"], "verbs": ["delete"], "resources": ["deployments"]},
                {"apiGroups": ["group2"], "verbs": ["delete"], "resources": ["builds"]},
                {"apiGroups": ["group2"], "verbs": ["update"], "resources": ["builds", "deployments"]}
            ]),
            json!([{"apiGroups": ["group1", "group2"], "verbs": ["delete", "update"], "resources": ["builds", "deployments"]}]),
            true,
            json!([]),
        );
        // TestCoversSingleAPIGroupsCoveringMultiple
        assert_covers(
            json!([{"apiGroups": ["group1", "group2"], "verbs": ["delete", "update"], "resources": ["builds", "deployments"]}]),
            json!([
                {"apiGroups": ["group1"], "verbs": ["delete"], "resources": ["deployments"]},
                {"apiGroups": ["group2"], "verbs": ["update"], "resources": ["builds", "deployments"]}
            ]),
            true,
            json!([]),
        );
        // TestCoversMultipleRulesMissingSingleVerbResourceCombination
        assert_covers(
            json!([
                {"apiGroups": ["v1"], "verbs": ["delete", "update"], "resources": ["builds", "deployments"]},
                {"apiGroups": ["v1"], "verbs": ["delete"], "resources": ["pods"]}
            ]),
            json!([{"apiGroups": ["v1"], "verbs": ["delete", "update"], "resources": ["builds", "deployments", "pods"]}]),
            false,
            json!([{"apiGroups": ["v1"], "verbs": ["update"], "resources": ["pods"]}]),
        );
        // TestCoversAPIGroupStarCoveringMultiple / StarCoveringStar
        assert_covers(
            json!([{"apiGroups": ["*"], "verbs": ["get"], "resources": ["roles"]}]),
            json!([{"apiGroups": ["group1", "group2", "*"], "verbs": ["get"], "resources": ["roles"]}]),
            true,
            json!([]),
        );
        // TestCoversEnumerationNotCoveringAPIGroupStar
        assert_covers(
            json!([{"apiGroups": ["dummy-group"], "verbs": ["get"], "resources": ["roles"]}]),
            json!([{"apiGroups": ["*"], "verbs": ["get"], "resources": ["roles"]}]),
            false,
            json!([{"apiGroups": ["*"], "verbs": ["get"], "resources": ["roles"]}]),
        );
        // TestCoversVerbStarCoveringMultiple / StarCoveringStar
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["*"], "resources": ["roles"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["watch", "list", "*"], "resources": ["roles"]}]),
            true,
            json!([]),
        );
        // TestCoversEnumerationNotCoveringVerbStar
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get", "list", "watch", "create", "update", "delete", "exec"], "resources": ["roles"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["*"], "resources": ["roles"]}]),
            false,
            json!([{"apiGroups": ["v1"], "verbs": ["*"], "resources": ["roles"]}]),
        );
        // TestCoversResourceStarCoveringMultiple / StarCoveringStar
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["*"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["resourcegroup:deployments", "pods/log", "*"]}]),
            true,
            json!([]),
        );
        // TestCoversEnumerationNotCoveringResourceStar
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["roles", "resourcegroup:deployments"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["*"]}]),
            false,
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["*"]}]),
        );
        // TestCoversResourceNameEmptyCoveringMultiple
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"], "resourceNames": []}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"], "resourceNames": ["foo", "bar"]}]),
            true,
            json!([]),
        );
        // TestCoversEnumerationNotCoveringResourceNameEmpty
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"], "resourceNames": ["foo", "bar"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"], "resourceNames": []}]),
            false,
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"]}]),
        );
        // Named owner, named servant: only the names the owner has.
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"], "resourceNames": ["foo"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"], "resourceNames": ["foo", "bar"]}]),
            false,
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["pods"], "resourceNames": ["bar"]}]),
        );
        // TestCoversNonResourceURLs / Star / StarAfterPrefix
        assert_covers(
            json!([{"nonResourceURLs": ["/apis"], "verbs": ["*"]}]),
            json!([{"nonResourceURLs": ["/apis"], "verbs": ["*"]}]),
            true,
            json!([]),
        );
        assert_covers(
            json!([{"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            json!([{"nonResourceURLs": ["/apis", "/apis/v1", "/"], "verbs": ["*"]}]),
            true,
            json!([]),
        );
        assert_covers(
            json!([{"nonResourceURLs": ["/apis/*"], "verbs": ["*"]}]),
            json!([{"nonResourceURLs": ["/apis/v1/foo", "/apis/v1"], "verbs": ["get"]}]),
            true,
            json!([]),
        );
        // TestCoversNonResourceURLsStarAfterPrefixDoesntCover
        assert_covers(
            json!([{"nonResourceURLs": ["/apis/*"], "verbs": ["*"]}]),
            json!([{"nonResourceURLs": ["/apis", "/apis/v1"], "verbs": ["get"]}]),
            false,
            json!([{"nonResourceURLs": ["/apis"], "verbs": ["get"]}]),
        );
        // TestCoversNonResourceURLsWithOtherFields / ...Failure
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["builds"], "nonResourceURLs": ["/apis"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["builds"], "nonResourceURLs": ["/apis"]}]),
            true,
            json!([]),
        );
        assert_covers(
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["builds"]}]),
            json!([{"apiGroups": ["v1"], "verbs": ["get"], "resources": ["builds"], "nonResourceURLs": ["/apis"]}]),
            false,
            json!([{"nonResourceURLs": ["/apis"], "verbs": ["get"]}]),
        );
        // A resource rule without apiGroups breaks down into nothing: nothing to cover.
        assert_covers(
            json!([]),
            json!([{"verbs": ["get"], "resources": ["secrets"]}]),
            true,
            json!([]),
        );
        // Nothing covers anything for a user without rules.
        assert_covers(
            json!([]),
            json!([{"apiGroups": [""], "verbs": ["get", "list"], "resources": ["secrets"]}]),
            false,
            json!([{"apiGroups": [""], "verbs": ["get"], "resources": ["secrets"]},
                   {"apiGroups": [""], "verbs": ["list"], "resources": ["secrets"]}]),
        );
    }

    #[test]
    fn non_resource_url_covers_table() {
        // TestNonResourceURLCovers
        for (owner, requested, want) in [
            ("*", "", true),
            ("*", "/", true),
            ("*", "/api", true),
            ("/*", "", false),
            ("/*", "/", true),
            ("/*", "/foo", true),
            ("/api", "/api", true),
            ("/apis", "/api", false),
            ("/api/v1", "/api", false),
            ("/api/v1", "/api/v1", true),
            ("/api/*", "/api/v1", true),
            ("/api/*", "/api", false),
            ("/api/*/*", "/api/v1", false),
            ("/*/v1/*", "/api/v1", false),
        ] {
            assert_eq!(
                non_resource_url_covers(owner, requested),
                want,
                "{owner} {requested}"
            );
        }
    }

    #[test]
    fn compact_rules_and_compact_string() {
        // TestCompactRules "simple", as the sorted CompactString texts upstream prints.
        let rules = pr(json!([
            {"verbs": ["get"], "apiGroups": [""], "resources": ["builds"]},
            {"verbs": ["list"], "apiGroups": [""], "resources": ["builds"]},
            {"verbs": ["update", "patch"], "apiGroups": [""], "resources": ["builds"]},
            {"verbs": ["create"], "apiGroups": ["extensions"], "resources": ["daemonsets"]},
            {"verbs": ["delete"], "apiGroups": ["extensions"], "resources": ["daemonsets"]},
            {"verbs": ["patch"], "apiGroups": ["extensions"], "resources": ["daemonsets"], "resourceNames": [""]},
            {"verbs": ["get"], "apiGroups": ["extensions"], "resources": ["daemonsets"], "resourceNames": ["foo"]},
            {"verbs": ["list"], "apiGroups": ["extensions"], "resources": ["daemonsets"], "resourceNames": ["foo"]},
            {"verbs": ["educate"], "apiGroups": [""], "resources": ["dolphins"]},
            {"apiGroups": [""], "resources": ["pirates"]},
            {"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"], "apiGroups": ["", "x"], "resources": ["builds"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}
        ]));
        let mut texts: Vec<String> = compact_rules(&rules).iter().map(compact_string).collect();
        texts.sort();
        assert_eq!(
            texts,
            vec![
                r#"{APIGroups:["" "x"], Resources:["builds"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["builds"], Verbs:["get" "list" "update" "patch"]}"#,
                r#"{APIGroups:[""], Resources:["dolphins"], Verbs:["educate"]}"#,
                r#"{APIGroups:[""], Resources:["pirates"]}"#,
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["create"]}"#,
                r#"{APIGroups:["extensions"], Resources:["daemonsets"], ResourceNames:[""], Verbs:["patch"]}"#,
                r#"{APIGroups:["extensions"], Resources:["daemonsets"], ResourceNames:["foo"], Verbs:["get" "list"]}"#,
                r#"{APIGroups:["extensions"], Resources:["daemonsets"], Verbs:["create" "delete"]}"#,
                r#"{NonResourceURLs:["/healthz"], Verbs:["get"]}"#,
            ]
        );
    }

    fn write<'a>(
        u: &'a UserInfo,
        resource: &'a str,
        ns: &'a str,
        request_name: &'a str,
        new: &'a Json,
        old: Option<&'a Json>,
    ) -> RbacWrite<'a> {
        RbacWrite {
            user: u,
            resource,
            namespace: ns,
            request_name,
            object_name: new["metadata"]["name"].as_str().unwrap_or_default(),
            new,
            old,
        }
    }

    /// bob may create clusterroles and roles, holds `get` on configmaps and secrets in ns1
    /// and `get` on configmaps cluster-wide.
    fn escalation_rbac(extra_cluster_roles: &[Json], extra_crbs: &[Json]) -> RbacSnapshot {
        let mut crs = vec![
            cluster_role(
                "rbac-writer",
                json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["*"], "verbs": ["create", "update", "patch"]}]),
            ),
            cluster_role(
                "cm-getter",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            ),
        ];
        crs.extend_from_slice(extra_cluster_roles);
        let mut crbs = vec![
            crb("w", "rbac-writer", user_subject("bob")),
            crb("g", "cm-getter", user_subject("bob")),
        ];
        crbs.extend_from_slice(extra_crbs);
        RbacSnapshot::new(
            &[role(
                "ns1",
                "secret-getter",
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
            )],
            &crs,
            &[rb("ns1", "s", "Role", "secret-getter", user_subject("bob"))],
            &crbs,
        )
    }

    #[test]
    fn role_writes_need_the_permissions_granted() {
        let s = escalation_rbac(&[], &[]);
        let bob = user("bob", &["system:authenticated"]);
        let secrets =
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]);
        let cr = cluster_role("x", secrets.clone());
        assert_eq!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "", &cr, None)),
            Err(RbacWriteDenial {
                code: 403,
                reason: "Forbidden",
                message: "clusterroles.rbac.authorization.k8s.io \"x\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}".into(),
                details: Some(json!({"group": "rbac.authorization.k8s.io", "kind": "clusterroles", "name": "x"})),
            })
        );
        // A Role in ns1: bob holds get (from ns1) but not list.
        let r = role("ns1", "x", secrets.clone());
        let err = s
            .check_rbac_write(&write(&bob, "roles", "ns1", "", &r, None))
            .unwrap_err();
        assert!(
            err.message.starts_with("roles.rbac.authorization.k8s.io \"x\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"list\"]}"),
            "{}",
            err.message
        );
        // What bob holds, in the namespace and cluster-wide, can be granted.
        let held = role(
            "ns1",
            "x",
            json!([{"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get"]}]),
        );
        assert_eq!(
            s.check_rbac_write(&write(&bob, "roles", "ns1", "", &held, None)),
            Ok(())
        );
        // ... but secrets only in ns1: not in ns2, not cluster-wide.
        let held_ns2 = role(
            "ns2",
            "x",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        );
        assert!(
            s.check_rbac_write(&write(&bob, "roles", "ns2", "", &held_ns2, None))
                .is_err()
        );
        let cr_get = cluster_role(
            "x",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        );
        assert!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "", &cr_get, None))
                .is_err()
        );
        // Several missing pieces: compacted per resource, sorted.
        let many = cluster_role(
            "x",
            json!([
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list", "get"]},
                {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get", "delete"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
            ]),
        );
        let err = s
            .check_rbac_write(&write(&bob, "clusterroles", "", "", &many, None))
            .unwrap_err();
        assert!(
            err.message.ends_with(":\n{APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}\n{APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"list\" \"get\"]}\n{NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"),
            "{}",
            err.message
        );
        // system:masters grants anything.
        let admin = user("root", &["system:masters"]);
        assert_eq!(
            s.check_rbac_write(&write(&admin, "clusterroles", "", "", &many, None)),
            Ok(())
        );
    }

    #[test]
    fn escalate_is_checked_against_the_request_path_name() {
        let s = escalation_rbac(
            &[
                cluster_role(
                    "escalate-x",
                    json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"], "resourceNames": ["x"]}]),
                ),
                cluster_role(
                    "escalate-roles",
                    json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]),
                ),
            ],
            &[
                crb("e", "escalate-x", user_subject("bob")),
                crb("e2", "escalate-roles", user_subject("carol")),
            ],
        );
        let bob = user("bob", &[]);
        let cr = cluster_role(
            "x",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        );
        // A POST carries no name: the resourceNames-restricted grant does not apply.
        assert!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "", &cr, None))
                .is_err()
        );
        // A PUT/PATCH/apply of .../clusterroles/x does.
        assert_eq!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "x", &cr, None)),
            Ok(())
        );
        let y = cluster_role(
            "y",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        );
        assert!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "y", &y, None))
                .is_err()
        );
        // escalate on roles without names: any Role, created by POST too.
        let carol = user("carol", &[]);
        let r = role(
            "ns9",
            "any",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        );
        assert_eq!(
            s.check_rbac_write(&write(&carol, "roles", "ns9", "", &r, None)),
            Ok(())
        );
        assert!(
            s.check_rbac_write(&write(&carol, "clusterroles", "", "", &cr, None))
                .is_err()
        );
    }

    #[test]
    fn aggregation_rule_needs_full_authority() {
        let s = escalation_rbac(
            &[cluster_role(
                "all",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            )],
            &[crb("a", "all", user_subject("alice"))],
        );
        let agg = json!({"kind": "ClusterRole", "metadata": {"name": "agg"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}});
        let bob = user("bob", &[]);
        assert_eq!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "", &agg, None))
                .unwrap_err()
                .message,
            "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
        );
        // `*` verbs on `*.*` include `escalate`: allowed before any rule comparison.
        let alice = user("alice", &[]);
        assert_eq!(
            s.check_rbac_write(&write(&alice, "clusterroles", "", "", &agg, None)),
            Ok(())
        );
        // Removing the aggregationRule of a stored role needs it as well.
        let plain = cluster_role("agg", json!([]));
        assert!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "agg", &plain, Some(&agg)))
                .is_err()
        );
        // An empty selector list is no aggregation rule.
        let empty_sel = json!({"kind": "ClusterRole", "metadata": {"name": "agg"},
            "aggregationRule": {"clusterRoleSelectors": []}});
        assert_eq!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "", &empty_sel, None)),
            Ok(())
        );
    }

    #[test]
    fn binding_writes_need_the_roles_permissions_or_bind() {
        let s = escalation_rbac(
            &[
                cluster_role(
                    "secret-admin",
                    json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]),
                ),
                cluster_role(
                    "bind-secret-admin",
                    json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["secret-admin"]}]),
                ),
            ],
            &[],
        );
        let bob = user("bob", &["system:authenticated"]);
        let b = rb(
            "ns1",
            "b",
            "ClusterRole",
            "secret-admin",
            user_subject("eve"),
        );
        assert_eq!(
            s.check_rbac_write(&write(&bob, "rolebindings", "ns1", "", &b, None)),
            Err(RbacWriteDenial {
                code: 403,
                reason: "Forbidden",
                message: "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"*\"]}".into(),
                details: Some(json!({"group": "rbac.authorization.k8s.io", "kind": "rolebindings", "name": "b"})),
            })
        );
        // A role bob holds in ns1 may be bound there, not elsewhere.
        let ok = rb("ns1", "b", "Role", "secret-getter", user_subject("eve"));
        assert_eq!(
            s.check_rbac_write(&write(&bob, "rolebindings", "ns1", "", &ok, None)),
            Ok(())
        );
        let getter = rb("ns1", "b", "ClusterRole", "cm-getter", user_subject("eve"));
        assert_eq!(
            s.check_rbac_write(&write(&bob, "rolebindings", "ns1", "", &getter, None)),
            Ok(())
        );
        // `bind` on the role, by name, in the binding's namespace (here: cluster-wide).
        let s2 = escalation_rbac(
            &[
                cluster_role(
                    "secret-admin",
                    json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]),
                ),
                cluster_role(
                    "bind-secret-admin",
                    json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["secret-admin"]}]),
                ),
                cluster_role(
                    "deployment-getter",
                    json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]),
                ),
            ],
            &[crb("bind", "bind-secret-admin", user_subject("bob"))],
        );
        assert_eq!(
            s2.check_rbac_write(&write(&bob, "rolebindings", "ns1", "", &b, None)),
            Ok(())
        );
        let c = crb("c", "secret-admin", user_subject("eve"));
        assert_eq!(
            s2.check_rbac_write(&write(&bob, "clusterrolebindings", "", "", &c, None)),
            Ok(())
        );
        // ... only that role.
        let c2 = crb("c", "deployment-getter", user_subject("eve"));
        let err = s2
            .check_rbac_write(&write(&bob, "clusterrolebindings", "", "", &c2, None))
            .unwrap_err();
        assert!(
            err.message.contains(
                "clusterrolebindings.rbac.authorization.k8s.io \"c\" is forbidden: user \"bob\""
            ),
            "{}",
            err.message
        );
        // A ClusterRoleBinding needs the permissions cluster-wide: secrets only in ns1 is not enough.
        let role_secret_getter = cluster_role(
            "sg",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        );
        let s3 = escalation_rbac(&[role_secret_getter], &[]);
        let c3 = crb("c", "sg", user_subject("eve"));
        assert!(
            s3.check_rbac_write(&write(&bob, "clusterrolebindings", "", "", &c3, None))
                .is_err()
        );
        let b3 = rb("ns1", "b", "ClusterRole", "sg", user_subject("eve"));
        assert_eq!(
            s3.check_rbac_write(&write(&bob, "rolebindings", "ns1", "", &b3, None)),
            Ok(())
        );
    }

    #[test]
    fn binding_to_a_missing_role_is_answered_with_the_registrys_not_found() {
        let s = escalation_rbac(&[], &[]);
        let bob = user("bob", &[]);
        let b = rb("ns1", "b", "Role", "nope", user_subject("eve"));
        assert_eq!(
            s.check_rbac_write(&write(&bob, "rolebindings", "ns1", "", &b, None)),
            Err(RbacWriteDenial {
                code: 404,
                reason: "NotFound",
                message: "rolebindings.rbac.authorization.k8s.io \"nope\" not found".into(),
                details: Some(
                    json!({"name": "nope", "group": "rbac.authorization.k8s.io", "kind": "rolebindings"})
                ),
            })
        );
        let c = crb("c", "nope", user_subject("eve"));
        assert_eq!(
            s.check_rbac_write(&write(&bob, "clusterrolebindings", "", "", &c, None))
                .unwrap_err()
                .message,
            "clusterrolebindings.rbac.authorization.k8s.io \"nope\" not found"
        );
        let odd = rb("ns1", "b", "Thing", "nope", user_subject("eve"));
        let err = s
            .check_rbac_write(&write(&bob, "rolebindings", "ns1", "", &odd, None))
            .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (500, "unsupported role reference kind: \"Thing\"")
        );
        // system:masters never looks.
        let admin = user("root", &["system:masters"]);
        assert_eq!(
            s.check_rbac_write(&write(&admin, "rolebindings", "ns1", "", &b, None)),
            Ok(())
        );
    }

    #[test]
    fn own_unresolvable_bindings_are_listed_as_resolution_errors() {
        let s = escalation_rbac(
            &[],
            &[
                crb("m1", "gone1", user_subject("bob")),
                crb("m2", "gone2", user_subject("bob")),
            ],
        );
        let bob = user("bob", &[]);
        let cr = cluster_role(
            "x",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
        );
        let err = s
            .check_rbac_write(&write(&bob, "clusterroles", "", "", &cr, None))
            .unwrap_err();
        assert!(
            err.message.ends_with("Verbs:[\"list\"]}; resolution errors: [[clusterroles.rbac.authorization.k8s.io \"gone1\" not found, clusterroles.rbac.authorization.k8s.io \"gone2\" not found]]"),
            "{}",
            err.message
        );
        let s1 = escalation_rbac(&[], &[crb("m1", "gone1", user_subject("bob"))]);
        let err = s1
            .check_rbac_write(&write(&bob, "clusterroles", "", "", &cr, None))
            .unwrap_err();
        assert!(
            err.message.ends_with(
                "; resolution errors: [clusterroles.rbac.authorization.k8s.io \"gone1\" not found]"
            ),
            "{}",
            err.message
        );
        // Errors are only mentioned when something is missing.
        let held = cluster_role(
            "x",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
        );
        assert_eq!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "", &held, None)),
            Ok(())
        );
    }

    #[test]
    fn updates_touching_only_gc_fields_are_not_checked() {
        let s = escalation_rbac(&[], &[]);
        let bob = user("bob", &[]);
        let mut old = cluster_role(
            "x",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]),
        );
        old["metadata"]["finalizers"] = json!(["example.com/keep"]);
        old["metadata"]["uid"] = json!("u1");
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!([]);
        new["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u2"}]);
        assert_eq!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "x", &new, Some(&old))),
            Ok(())
        );
        // A label is not a GC field.
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(
            s.check_rbac_write(&write(&bob, "clusterroles", "", "x", &new, Some(&old)))
                .is_err()
        );
        // Same for bindings.
        let mut b_old = rb("ns1", "b", "Role", "nope", user_subject("eve"));
        b_old["metadata"]["finalizers"] = json!(["example.com/keep"]);
        let mut b_new = b_old.clone();
        b_new["metadata"]["finalizers"] = json!(null);
        assert_eq!(
            s.check_rbac_write(&write(
                &bob,
                "rolebindings",
                "ns1",
                "b",
                &b_new,
                Some(&b_old)
            )),
            Ok(())
        );
    }

    #[test]
    fn send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RbacSnapshot>();
        assert_send_sync::<AdmissionPolicies>();
    }
}
