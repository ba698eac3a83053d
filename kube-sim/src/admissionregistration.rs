//! Validation of ValidatingAdmissionPolicies and their bindings on write (create, update,
//! patch, apply), as kube-apiserver's `pkg/apis/admissionregistration/validation` does it:
//! required fields, supported values, resource rules, label selectors, names, and every CEL
//! expression compiled in the environment upstream compiles it in (see [`crate::cel_check`]
//! for how much of cel-go's check is mirrored). Objects arrive without the v1 defaults
//! (kube-sim does not store them), so absent `failurePolicy`, `matchPolicy`, selectors and
//! `scope` count as their defaults.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::cel_check::{self, Env, Ty, Want};
use crate::schema::{FieldError, FieldErrorKind as K};

/// The field errors of a ValidatingAdmissionPolicy (`old`: the stored one, for an update)
/// or ValidatingAdmissionPolicyBinding; other kinds have none here.
pub fn validate(kind: &str, new: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut v = V(Vec::new());
    match kind {
        "ValidatingAdmissionPolicy" => v.policy(new, old),
        "ValidatingAdmissionPolicyBinding" => v.binding(new),
        _ => {}
    }
    v.0
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    arr(v, key)
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_string())
        .collect()
}

fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// Equal as `equality.Semantic.DeepEqual` sees it: absent, null and empty are alike.
fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let norm = |v: Option<&Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(x) => Some(x.clone()),
    };
    norm(a) == norm(b)
}

struct V(Vec<FieldError>);

impl V {
    fn push(&mut self, field: impl Into<String>, kind: K, value: Option<Value>, detail: &str) {
        self.0.push(FieldError::new(field, kind, value, detail));
    }
    fn required(&mut self, field: impl Into<String>, detail: &str) {
        self.push(field, K::Required, None, detail);
    }
    fn invalid(&mut self, field: impl Into<String>, value: Value, detail: &str) {
        self.push(field, K::Invalid, Some(value), detail);
    }
    fn not_supported(&mut self, field: impl Into<String>, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported
            .iter()
            .map(|v| crate::status::go_quote(v))
            .collect();
        self.push(
            field,
            K::NotSupported,
            Some(json!(value)),
            &format!("supported values: {}", list.join(", ")),
        );
    }
    fn duplicate(&mut self, field: impl Into<String>, value: &str) {
        self.push(field, K::Duplicate, Some(json!(value)), "");
    }
    fn forbidden(&mut self, field: impl Into<String>, detail: &str) {
        self.push(field, K::Forbidden, None, detail);
    }

    /// Compile `expr` and report a failure at `field` with `shown` as the bad value.
    fn cel(&mut self, field: String, expr: &str, shown: &str, env: &Env, want: Want) -> Ty {
        match cel_check::check(expr, env, want) {
            Ok((_, ty)) => ty,
            Err(detail) => {
                self.invalid(field, json!(shown), &detail);
                Ty::Unknown
            }
        }
    }

    // ----------------------------------------------------------------- policy

    fn policy(&mut self, p: &Value, old: Option<&Value>) {
        let spec = &p["spec"];
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        if let Some(fp) = s(spec, "failurePolicy")
            && !["Fail", "Ignore"].contains(&fp)
        {
            self.not_supported("spec.failurePolicy", fp, &["Fail", "Ignore"]);
        }
        let params = present(spec, "paramKind").is_some();
        if let Some(pk) = present(spec, "paramKind") {
            self.param_kind(pk, "spec.paramKind");
        }
        match present(spec, "matchConstraints") {
            None => self.required("spec.matchConstraints", ""),
            Some(mc) => {
                self.match_resources(mc, "spec.matchConstraints");
                if arr(mc, "resourceRules").is_empty() {
                    self.required("spec.matchConstraints.resourceRules", "");
                }
            }
        }
        // An update that leaves matchConditions and paramKind alone does not recheck them.
        let unchanged = old.is_some_and(|o| {
            semantic_eq(o["spec"].get("paramKind"), spec.get("paramKind"))
                && semantic_eq(
                    o["spec"].get("matchConditions"),
                    spec.get("matchConditions"),
                )
        });
        if !unchanged {
            self.match_conditions(spec, params);
        }

        // Variables compose: each sees the ones before it.
        let mut declared: Vec<(String, Ty)> = Vec::new();
        for (i, v) in arr(spec, "variables").iter().enumerate() {
            let at = format!("spec.variables[{i}]");
            let vname = s(v, "name").unwrap_or_default();
            if vname.trim().is_empty() {
                self.required(format!("{at}.name"), "name is not specified");
            } else if !is_cel_identifier(vname) {
                self.invalid(
                    format!("{at}.name"),
                    json!(vname),
                    "must be a valid CEL identifier",
                );
            }
            let expr = s(v, "expression").unwrap_or_default();
            if expr.trim().is_empty() {
                self.required(format!("{at}.expression"), "expression is not specified");
            } else {
                let env = Env {
                    params,
                    authorizer: true,
                    variables: Some(&declared),
                };
                let ty = self.cel(format!("{at}.expression"), expr, expr, &env, Want::Any);
                declared.push((vname.to_string(), ty));
            }
        }
        let variables = (!arr(spec, "variables").is_empty()).then_some(declared.as_slice());

        let validations = arr(spec, "validations");
        let audit = arr(spec, "auditAnnotations");
        if validations.is_empty() && audit.is_empty() {
            let why = "validations or auditAnnotations must contain at least one item";
            self.required("spec.validations", why);
            self.required("spec.auditAnnotations", why);
            return;
        }
        for (i, v) in validations.iter().enumerate() {
            let at = format!("spec.validations[{i}]");
            let expr = s(v, "expression").unwrap_or_default();
            if expr.trim().is_empty() {
                self.required(format!("{at}.expression"), "expression is not specified");
            } else {
                let env = Env {
                    params,
                    authorizer: true,
                    variables,
                };
                self.cel(format!("{at}.expression"), expr, expr, &env, Want::Bool);
            }
            let me = s(v, "messageExpression").unwrap_or_default();
            if !me.is_empty() && me.trim().is_empty() {
                self.invalid(
                    format!("{at}.messageExpression"),
                    json!(me),
                    "must be non-empty if specified",
                );
            } else if !me.trim().is_empty() {
                // No authorizer in messageExpressions.
                let env = Env {
                    params,
                    authorizer: false,
                    variables,
                };
                self.cel(
                    format!("{at}.messageExpression"),
                    me,
                    me,
                    &env,
                    Want::String,
                );
            }
            let msg = s(v, "message").unwrap_or_default();
            if !msg.is_empty() && msg.trim().is_empty() {
                self.invalid(
                    format!("{at}.message"),
                    json!(msg),
                    "must be non-empty if specified",
                );
            } else if msg.trim().contains(['\n', '\r']) {
                self.invalid(
                    format!("{at}.message"),
                    json!(msg),
                    "must not contain line breaks",
                );
            }
            if let Some(r) = s(v, "reason") {
                let supported = ["Forbidden", "Invalid", "RequestEntityTooLarge"];
                if !supported.contains(&r) {
                    self.not_supported(format!("{at}.reason"), r, &supported);
                }
            }
        }
        if audit.len() > 20 {
            self.invalid(
                "spec.auditAnnotations",
                Value::Array(audit.to_vec()),
                "must not have more than 20 auditAnnotations",
            );
        }
        let mut keys = HashSet::new();
        for (i, a) in audit.iter().enumerate() {
            let at = format!("spec.auditAnnotations[{i}]");
            let key = s(a, "key").unwrap_or_default();
            if name.is_empty() {
                self.invalid(
                    format!("{at}.key"),
                    json!(key),
                    "requires metadata.name be non-empty",
                );
            } else {
                let full = format!("{name}/{key}");
                for m in label_key_errors(&full) {
                    self.invalid(format!("{at}.key"), json!(full), &m);
                }
            }
            let ve = s(a, "valueExpression").unwrap_or_default();
            let trimmed = ve.trim();
            if trimmed.is_empty() {
                self.required(
                    format!("{at}.valueExpression"),
                    "valueExpression is not specified",
                );
            } else if trimmed.len() > 5 * 1024 {
                self.required(
                    format!("{at}.valueExpression"),
                    "must not exceed 5120 bytes in length",
                );
            } else {
                let env = Env {
                    params,
                    authorizer: true,
                    variables,
                };
                let field = format!("{at}.valueExpression");
                self.cel(field, trimmed, ve, &env, Want::StringOrNull);
            }
            if !keys.insert(key) {
                self.duplicate(format!("{at}.key"), key);
            }
        }
    }

    fn match_conditions(&mut self, spec: &Value, params: bool) {
        let conditions = arr(spec, "matchConditions");
        if conditions.len() > 64 {
            self.push(
                "spec.matchConditions",
                K::TooMany,
                Some(json!(conditions.len())),
                "must have at most 64 items",
            );
        }
        let mut names = HashSet::new();
        for (i, m) in conditions.iter().enumerate() {
            let at = format!("spec.matchConditions[{i}]");
            let expr = s(m, "expression").unwrap_or_default().trim();
            if expr.is_empty() {
                self.required(format!("{at}.expression"), "");
            } else {
                // The stateless compiler: no `variables`.
                let env = Env {
                    params,
                    authorizer: true,
                    variables: None,
                };
                self.cel(format!("{at}.expression"), expr, expr, &env, Want::Bool);
            }
            let name = s(m, "name").unwrap_or_default();
            if name.is_empty() {
                self.required(format!("{at}.name"), "");
            } else {
                for msg in label_key_errors(name) {
                    self.invalid(format!("{at}.name"), json!(name), &msg);
                }
                if !names.insert(name) {
                    self.duplicate(format!("{at}.name"), name);
                }
            }
        }
    }

    fn param_kind(&mut self, pk: &Value, at: &str) {
        let api_version = s(pk, "apiVersion").unwrap_or_default();
        if api_version.is_empty() {
            self.required(format!("{at}.apiVersion"), "");
        } else {
            let (group, version) = match api_version.matches('/').count() {
                _ if api_version == "/" => (Some(""), ""),
                0 => (Some(""), api_version),
                1 => {
                    let (g, v) = api_version.split_once('/').unwrap_or_default();
                    (Some(g), v)
                }
                _ => (None, ""),
            };
            match group {
                None => self.invalid(
                    format!("{at}.apiVersion"),
                    json!(api_version),
                    &format!("unexpected GroupVersion string: {api_version}"),
                ),
                Some(group) => {
                    if !group.is_empty() {
                        let errs = dns1123_subdomain_errors(group, "characters");
                        if !errs.is_empty() {
                            self.invalid(format!("{at}.apiVersion"), json!(group), &errs.join(","));
                        }
                    }
                    if version.is_empty() {
                        self.invalid(
                            format!("{at}.apiVersion"),
                            json!(api_version),
                            "version must be specified",
                        );
                    } else {
                        let errs = dns1035_label_errors(version);
                        if !errs.is_empty() {
                            self.invalid(
                                format!("{at}.apiVersion"),
                                json!(version),
                                &errs.join(","),
                            );
                        }
                    }
                }
            }
        }
        let kind = s(pk, "kind").unwrap_or_default();
        if kind.is_empty() {
            self.required(format!("{at}.kind"), "");
        } else {
            let errs = dns1035_label_errors(&kind.to_lowercase());
            if !errs.is_empty() {
                self.invalid(
                    format!("{at}.kind"),
                    json!(kind),
                    &format!(
                        "may have mixed case, but should otherwise match: {}",
                        errs.join(",")
                    ),
                );
            }
        }
    }

    // ------------------------------------------------------------ match rules

    fn match_resources(&mut self, mr: &Value, at: &str) {
        if let Some(mp) = s(mr, "matchPolicy")
            && !["Exact", "Equivalent"].contains(&mp)
        {
            self.not_supported(format!("{at}.matchPolicy"), mp, &["Equivalent", "Exact"]);
        }
        for sel in ["namespaceSelector", "objectSelector"] {
            if let Some(v) = present(mr, sel) {
                self.label_selector(v, &format!("{at}.{sel}"));
            }
        }
        for list in ["resourceRules", "excludeResourceRules"] {
            for (i, r) in arr(mr, list).iter().enumerate() {
                self.named_rule(r, &format!("{at}.{list}[{i}]"));
            }
        }
    }

    fn named_rule(&mut self, r: &Value, at: &str) {
        let mut seen = HashSet::new();
        for (i, n) in strs(r, "resourceNames").iter().enumerate() {
            for msg in path_segment_name_errors(n) {
                self.invalid(format!("{at}.resourceNames[{i}]"), json!(n), &msg);
            }
            if !seen.insert(n.clone()) {
                self.duplicate(format!("{at}.resourceNames[{i}]"), n);
            }
        }
        let ops = strs(r, "operations");
        if ops.is_empty() {
            self.required(format!("{at}.operations"), "");
        }
        if ops.len() > 1 && ops.iter().any(|o| o == "*") {
            self.invalid(
                format!("{at}.operations"),
                json!(ops),
                "if '*' is present, must not specify other operations",
            );
        }
        let supported = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
        for (i, op) in ops.iter().enumerate() {
            if !supported.contains(&op.as_str()) {
                self.not_supported(format!("{at}.operations[{i}]"), op, &supported);
            }
        }
        for (key, what) in [("apiGroups", "API groups"), ("apiVersions", "API versions")] {
            let list = strs(r, key);
            if list.is_empty() {
                self.required(format!("{at}.{key}"), "");
            }
            if list.len() > 1 && list.iter().any(|g| g == "*") {
                self.invalid(
                    format!("{at}.{key}"),
                    json!(list),
                    &format!("if '*' is present, must not specify other {what}"),
                );
            }
            if key == "apiVersions" {
                for (i, v) in list.iter().enumerate() {
                    if v.is_empty() {
                        self.required(format!("{at}.apiVersions[{i}]"), "");
                    }
                }
            }
        }
        self.resources(&strs(r, "resources"), &format!("{at}.resources"));
        if let Some(scope) = s(r, "scope") {
            let supported = ["*", "Cluster", "Namespaced"];
            if !supported.contains(&scope) {
                self.not_supported(format!("{at}.scope"), scope, &supported);
            }
        }
    }

    /// `validateResources` (subresources allowed).
    fn resources(&mut self, resources: &[String], at: &str) {
        if resources.is_empty() {
            self.required(at, "");
        }
        let mut with_wildcard_sub: HashSet<&str> = HashSet::new();
        let mut sub_with_wildcard_res: HashSet<&str> = HashSet::new();
        let (mut double, mut single, mut plain) = (false, false, false);
        for (i, rs) in resources.iter().enumerate() {
            if rs.is_empty() {
                self.required(format!("{at}[{i}]"), "");
                continue;
            }
            double |= rs == "*/*";
            single |= rs == "*";
            let Some((res, sub)) = rs.split_once('/') else {
                plain = rs != "*";
                continue;
            };
            if with_wildcard_sub.contains(res) {
                self.invalid(
                    format!("{at}[{i}]"),
                    json!(rs),
                    &format!("if '{res}/*' is present, must not specify {rs}"),
                );
            }
            if sub_with_wildcard_res.contains(sub) {
                self.invalid(
                    format!("{at}[{i}]"),
                    json!(rs),
                    &format!("if '*/{sub}' is present, must not specify {rs}"),
                );
            }
            if sub == "*" {
                with_wildcard_sub.insert(res);
            }
            if res == "*" {
                sub_with_wildcard_res.insert(sub);
            }
        }
        if resources.len() > 1 && double {
            self.invalid(
                at,
                json!(resources),
                "if '*/*' is present, must not specify other resources",
            );
        }
        if single && plain {
            self.invalid(
                at,
                json!(resources),
                "if '*' is present, must not specify other resources without subresources",
            );
        }
    }

    /// `metav1validation.ValidateLabelSelector`.
    fn label_selector(&mut self, sel: &Value, at: &str) {
        if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                for m in label_key_errors(k) {
                    self.invalid(format!("{at}.matchLabels"), json!(k), &m);
                }
                let v = v.as_str().unwrap_or_default();
                for m in label_value_errors(v) {
                    self.invalid(format!("{at}.matchLabels"), json!(v), &m);
                }
            }
        }
        for (i, e) in arr(sel, "matchExpressions").iter().enumerate() {
            let at = format!("{at}.matchExpressions[{i}]");
            let values = strs(e, "values");
            match s(e, "operator").unwrap_or_default() {
                "In" | "NotIn" => {
                    if values.is_empty() {
                        self.required(
                            format!("{at}.values"),
                            "must be specified when `operator` is 'In' or 'NotIn'",
                        );
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        self.forbidden(
                            format!("{at}.values"),
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        );
                    }
                }
                op => self.invalid(
                    format!("{at}.operator"),
                    json!(op),
                    "not a valid selector operator",
                ),
            }
            let key = s(e, "key").unwrap_or_default();
            for m in label_key_errors(key) {
                self.invalid(format!("{at}.key"), json!(key), &m);
            }
            for (j, v) in values.iter().enumerate() {
                for m in label_value_errors(v) {
                    self.invalid(format!("{at}.values[{j}]"), json!(v), &m);
                }
            }
        }
    }

    // ---------------------------------------------------------------- binding

    fn binding(&mut self, b: &Value) {
        let spec = &b["spec"];
        let policy = s(spec, "policyName").unwrap_or_default();
        if policy.is_empty() {
            self.required("spec.policyName", "");
        } else {
            for m in dns1123_subdomain_errors(policy, "characters") {
                self.invalid("spec.policyName", json!(policy), &m);
            }
        }
        if let Some(pr) = present(spec, "paramRef") {
            self.param_ref(pr, "spec.paramRef");
        }
        if let Some(mr) = present(spec, "matchResources") {
            self.match_resources(mr, "spec.matchResources");
        }
        let actions = strs(spec, "validationActions");
        let mut seen = HashSet::new();
        let supported = ["Audit", "Deny", "Warn"];
        for (i, a) in actions.iter().enumerate() {
            let at = format!("spec.validationActions[{i}]");
            if !supported.contains(&a.as_str()) {
                self.not_supported(at.clone(), a, &supported);
            }
            if !seen.insert(a.as_str()) {
                self.duplicate(at, a);
            }
        }
        if seen.contains("Deny") && seen.contains("Warn") {
            self.invalid(
                "spec.validationActions",
                json!(actions),
                "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
            );
        }
        if seen.is_empty() {
            self.required(
                "spec.validationActions",
                "at least one validation action is required",
            );
        }
    }

    fn param_ref(&mut self, pr: &Value, at: &str) {
        let name = s(pr, "name").unwrap_or_default();
        let selector = present(pr, "selector");
        let exclusive = "name and selector are mutually exclusive";
        if !name.is_empty() {
            for m in path_segment_name_errors(name) {
                self.invalid(format!("{at}.name"), json!(name), &m);
            }
            if selector.is_some() {
                self.forbidden(format!("{at}.name"), exclusive);
            }
        }
        if let Some(sel) = selector {
            self.label_selector(sel, &format!("{at}.selector"));
            if !name.is_empty() {
                self.forbidden(format!("{at}.selector"), exclusive);
            }
        }
        if name.is_empty() && selector.is_none() {
            self.required(at, "one of name or selector must be specified");
        }
        match s(pr, "parameterNotFoundAction").unwrap_or_default() {
            "" => self.required(format!("{at}.parameterNotFoundAction"), ""),
            "Deny" | "Allow" => {}
            other => self.not_supported(
                format!("{at}.parameterNotFoundAction"),
                other,
                &["Deny", "Allow"],
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// apimachinery's name formats
// ---------------------------------------------------------------------------

/// `RegexError`: `msg (e.g. 'a',  or 'b', regex used for validation is 're')`.
fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    let eg: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{re}')",
        eg.join(" or ")
    )
}

const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

/// `content.IsLabelKey` (a.k.a. `IsQualifiedName`).
fn label_key_errors(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain_errors(prefix, "bytes") {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    LABEL_KEY_MSG,
                    LABEL_KEY_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 bytes".into());
    }
    if !is_label_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_MSG,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `content.IsLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 bytes".into());
    }
    if !value.is_empty() && !is_label_name(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && ok(&b[0]) && ok(&b[b.len() - 1]) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// `IsDNS1123Subdomain`; `unit`: "bytes" (apimachinery's `content`) or "characters"
/// (`util/validation`).
fn dns1123_subdomain_errors(value: &str, unit: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(format!("must be no more than 253 {unit}"));
    }
    if !value.split('.').all(is_dns1123_label) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    errs
}

/// `util/validation.IsDNS1035Label`.
fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !(is_dns1123_label(value) && value.as_bytes()[0].is_ascii_lowercase()) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `content.IsPathSegmentName`.
fn path_segment_name_errors(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// `isCELIdentifier`: `[_a-zA-Z][_a-zA-Z0-9]*`, not a reserved word.
fn is_cel_identifier(name: &str) -> bool {
    const RESERVED: &[&str] = &[
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
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0] == b'_' || b[0].is_ascii_alphabetic())
        && b.iter().all(|c| *c == b'_' || c.is_ascii_alphanumeric())
        && !RESERVED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    fn policy(spec: Value) -> Value {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "probe-vap"}, "spec": spec})
    }

    fn rules() -> Value {
        json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]})
    }

    fn check(spec: Value) -> Vec<String> {
        messages(&validate("ValidatingAdmissionPolicy", &policy(spec), None))
    }

    // The expected texts below are the real v1.36.3 server's.

    #[test]
    fn cel_compile_errors_name_each_field() {
        assert_eq!(
            check(json!({"matchConstraints": rules(), "validations": [
                {"expression": "true", "messageExpression": "'a 'b' c'"},
                {"expression": "object.x >"}]})),
            vec![
                "spec.validations[0].messageExpression: Invalid value: \"'a 'b' c'\": compilation failed: ERROR: <input>:1:5: Syntax error: extraneous input 'b' c'' expecting <EOF>\n | 'a 'b' c'\n | ....^",
                "spec.validations[1].expression: Invalid value: \"object.x >\": compilation failed: ERROR: <input>:1:11: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | object.x >\n | ..........^",
            ]
        );
    }

    #[test]
    fn required_fields() {
        assert_eq!(
            check(json!({"matchConstraints": rules()})),
            vec![
                "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
                "spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one item",
            ]
        );
        assert_eq!(
            check(json!({"validations": [{"expression": "true"}]})),
            vec!["spec.matchConstraints: Required value"]
        );
        assert_eq!(
            check(json!({"matchConstraints": {}, "validations": [{"expression": "true"}]})),
            vec!["spec.matchConstraints.resourceRules: Required value"]
        );
    }

    #[test]
    fn variables_compose_and_names_are_cel_identifiers() {
        assert_eq!(
            check(json!({"matchConstraints": rules(),
                "variables": [{"name": "1x", "expression": "true"}, {"name": "ok", "expression": "object.("},
                    {"name": "", "expression": ""}, {"name": "in", "expression": "true"}, {"name": "ok", "expression": "1"},
                    {"name": "later", "expression": "variables.after"}, {"name": "after", "expression": "variables.ok"}],
                "validations": [{"expression": "variables.ok"}]})),
            vec![
                "spec.variables[0].name: Invalid value: \"1x\": must be a valid CEL identifier",
                "spec.variables[1].expression: Invalid value: \"object.(\": compilation failed: ERROR: <input>:1:8: Syntax error: no viable alternative at input '.('\n | object.(\n | .......^",
                "spec.variables[2].name: Required value: name is not specified",
                "spec.variables[2].expression: Required value: expression is not specified",
                "spec.variables[3].name: Invalid value: \"in\": must be a valid CEL identifier",
                "spec.variables[5].expression: Invalid value: \"variables.after\": compilation failed: ERROR: <input>:1:10: undefined field 'after'\n | variables.after\n | .........^",
                "spec.validations[0].expression: Invalid value: \"variables.ok\": must evaluate to bool but got int",
            ]
        );
    }

    #[test]
    fn match_conditions_messages_and_audit_annotations() {
        let errs = check(json!({"matchConstraints": rules(),
            "variables": [{"name": "a", "expression": "1"}],
            "matchConditions": [{"name": "", "expression": ""}, {"name": "a b", "expression": "foo"},
                {"name": "ok", "expression": "variables.a == 1"}, {"name": "ok", "expression": "params.x"},
                {"name": "x/y/z", "expression": "true"}],
            "validations": [{"expression": "true", "message": " "},
                {"expression": "true", "message": "a\nb", "reason": "Bogus", "messageExpression": " "},
                {"expression": "  "}],
            "auditAnnotations": [{"key": "a b", "valueExpression": "'x'"}, {"key": "ok", "valueExpression": ""},
                {"key": "ok", "valueExpression": "1"}]}));
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(
            errs,
            vec![
                "spec.matchConditions[0].expression: Required value".to_string(),
                "spec.matchConditions[0].name: Required value".into(),
                "spec.matchConditions[1].expression: Invalid value: \"foo\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo\n | ^".into(),
                format!("spec.matchConditions[1].name: Invalid value: \"a b\": {name_part}"),
                "spec.matchConditions[2].expression: Invalid value: \"variables.a == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'variables' (in container '')\n | variables.a == 1\n | ^".into(),
                "spec.matchConditions[3].expression: Invalid value: \"params.x\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')\n | params.x\n | ^".into(),
                "spec.matchConditions[3].name: Duplicate value: \"ok\"".into(),
                "spec.matchConditions[4].name: Invalid value: \"x/y/z\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
                "spec.validations[0].message: Invalid value: \" \": must be non-empty if specified".into(),
                "spec.validations[1].messageExpression: Invalid value: \" \": must be non-empty if specified".into(),
                "spec.validations[1].message: Invalid value: \"a\\nb\": must not contain line breaks".into(),
                "spec.validations[1].reason: Unsupported value: \"Bogus\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\"".into(),
                "spec.validations[2].expression: Required value: expression is not specified".into(),
                format!("spec.auditAnnotations[0].key: Invalid value: \"probe-vap/a b\": {name_part}"),
                "spec.auditAnnotations[1].valueExpression: Required value: valueExpression is not specified".into(),
                "spec.auditAnnotations[2].valueExpression: Invalid value: \"1\": must evaluate to one of [string null_type] but got int".into(),
                "spec.auditAnnotations[2].key: Duplicate value: \"ok\"".into(),
            ]
        );
    }

    #[test]
    fn unchanged_match_conditions_are_not_rechecked_on_update() {
        let spec = json!({"matchConstraints": rules(), "matchConditions": [{"name": "a", "expression": "foo"}],
            "validations": [{"expression": "true"}]});
        let p = policy(spec.clone());
        assert_eq!(validate("ValidatingAdmissionPolicy", &p, None).len(), 1);
        assert!(validate("ValidatingAdmissionPolicy", &p, Some(&p)).is_empty());
    }

    #[test]
    fn match_constraints_rules() {
        assert_eq!(
            check(
                json!({"failurePolicy": "Bogus", "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                "matchConstraints": {"matchPolicy": "Nope", "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "NOPE"], "resources": ["configmaps"], "scope": "Bad"},
                    {"apiGroups": [], "apiVersions": [], "operations": [], "resources": []}]},
                "validations": [{"expression": "params.x == 1"}]})
            ),
            vec![
                "spec.failurePolicy: Unsupported value: \"Bogus\": supported values: \"Fail\", \"Ignore\"",
                "spec.matchConstraints.matchPolicy: Unsupported value: \"Nope\": supported values: \"Equivalent\", \"Exact\"",
                "spec.matchConstraints.resourceRules[0].operations[1]: Unsupported value: \"NOPE\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
                "spec.matchConstraints.resourceRules[0].scope: Unsupported value: \"Bad\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
                "spec.matchConstraints.resourceRules[1].operations: Required value",
                "spec.matchConstraints.resourceRules[1].apiGroups: Required value",
                "spec.matchConstraints.resourceRules[1].apiVersions: Required value",
                "spec.matchConstraints.resourceRules[1].resources: Required value",
            ]
        );
    }

    #[test]
    fn bindings() {
        let b = |spec: Value| {
            messages(&validate(
                "ValidatingAdmissionPolicyBinding",
                &json!({"metadata": {"name": "probe-vapb"}, "spec": spec}),
                None,
            ))
        };
        assert_eq!(
            b(json!({})),
            vec![
                "spec.policyName: Required value",
                "spec.validationActions: Required value: at least one validation action is required",
            ]
        );
        assert_eq!(
            b(
                json!({"policyName": "Bad_Name", "validationActions": ["Deny", "Warn", "Deny", "Nope"]})
            ),
            vec![
                "spec.policyName: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.validationActions[2]: Duplicate value: \"Deny\"",
                "spec.validationActions[3]: Unsupported value: \"Nope\": supported values: \"Audit\", \"Deny\", \"Warn\"",
                "spec.validationActions: Invalid value: [\"Deny\",\"Warn\",\"Deny\",\"Nope\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
            ]
        );
        assert_eq!(
            b(
                json!({"policyName": "ok", "validationActions": ["Audit"], "paramRef": {},
                "matchResources": {"matchPolicy": "X",
                    "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b c", "operator": "Exists", "values": ["x"]}, {"key": "c", "operator": "Foo"}]},
                    "resourceRules": [{"apiGroups": ["*", "apps"], "apiVersions": ["", "v1"], "operations": ["*", "CREATE"], "resources": ["*/*", "pods"], "resourceNames": ["a", "a", "x/y"]}],
                    "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods/*", "pods/log", "*", "x"]}]}})
            ),
            vec![
                "spec.paramRef: Required value: one of name or selector must be specified",
                "spec.paramRef.parameterNotFoundAction: Required value",
                "spec.matchResources.matchPolicy: Unsupported value: \"X\": supported values: \"Equivalent\", \"Exact\"",
                "spec.matchResources.namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.matchResources.namespaceSelector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.matchResources.namespaceSelector.matchExpressions[1].key: Invalid value: \"b c\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "spec.matchResources.namespaceSelector.matchExpressions[2].operator: Invalid value: \"Foo\": not a valid selector operator",
                "spec.matchResources.resourceRules[0].resourceNames[1]: Duplicate value: \"a\"",
                "spec.matchResources.resourceRules[0].resourceNames[2]: Invalid value: \"x/y\": may not contain '/'",
                "spec.matchResources.resourceRules[0].operations: Invalid value: [\"*\",\"CREATE\"]: if '*' is present, must not specify other operations",
                "spec.matchResources.resourceRules[0].apiGroups: Invalid value: [\"*\",\"apps\"]: if '*' is present, must not specify other API groups",
                "spec.matchResources.resourceRules[0].apiVersions[0]: Required value",
                "spec.matchResources.resourceRules[0].resources: Invalid value: [\"*/*\",\"pods\"]: if '*/*' is present, must not specify other resources",
                "spec.matchResources.excludeResourceRules[0].resources[1]: Invalid value: \"pods/log\": if 'pods/*' is present, must not specify pods/log",
                "spec.matchResources.excludeResourceRules[0].resources: Invalid value: [\"pods/*\",\"pods/log\",\"*\",\"x\"]: if '*' is present, must not specify other resources without subresources",
            ]
        );
        assert_eq!(
            b(json!({"policyName": "ok", "validationActions": ["Audit"],
                "paramRef": {"name": "a/b", "selector": {}, "parameterNotFoundAction": "Nope"}})),
            vec![
                "spec.paramRef.name: Invalid value: \"a/b\": may not contain '/'",
                "spec.paramRef.name: Forbidden: name and selector are mutually exclusive",
                "spec.paramRef.selector: Forbidden: name and selector are mutually exclusive",
                "spec.paramRef.parameterNotFoundAction: Unsupported value: \"Nope\": supported values: \"Deny\", \"Allow\"",
            ]
        );
    }

    #[test]
    fn valid_objects_pass() {
        assert!(
            check(json!({"failurePolicy": "Fail", "matchConstraints": rules(),
                "variables": [{"name": "v", "expression": "object.data"}],
                "matchConditions": [{"name": "example.com/cond", "expression": "request.operation == 'CREATE'"}],
                "validations": [{"expression": "!has(object.data) || variables.v.all(k, k != 'x')",
                    "message": "m", "messageExpression": "'bad: ' + object.metadata.name", "reason": "Forbidden"}],
                "auditAnnotations": [{"key": "k", "valueExpression": "'v'"}]}))
            .is_empty()
        );
    }
}
