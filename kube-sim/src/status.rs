//! API errors rendered as `meta.k8s.io/v1` `Status` objects, the way the real API server does.

use serde_json::{Value, json};

/// A failed request: HTTP code, `Status.reason`, message and details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Extra response headers (e.g. `Retry-After`).
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A resource or kind qualified by its group, for messages: `configmaps` or `partners.partnerkit.io`.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(group: &str, resource: &str, name: &str) -> Value {
    let mut d = json!({"kind": resource});
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(details(group, resource, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", qualified(group, resource)),
            )
        }
    }
    /// 404 for a path that names no known resource.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(details(group, resource, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(group, resource)),
            )
        }
    }
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(details(group, resource, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    qualified(group, resource)
                ),
            )
        }
    }
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            details: Some(json!({"retryAfterSeconds": retry_after})),
            ..Self::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            )
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }
    /// 422 Invalid with one cause per field error: `The Partner "acme" is invalid: spec.x: Invalid value: ...`.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        causes: &[(String, String, String)],
    ) -> Self {
        // causes: (reason, field, message-without-field)
        let texts: Vec<String> = causes
            .iter()
            .map(|(_, field, msg)| {
                if field.is_empty() {
                    msg.clone()
                } else {
                    format!("{field}: {msg}")
                }
            })
            .collect();
        let body = if texts.len() == 1 {
            texts[0].clone()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let mut d = json!({"name": name, "kind": kind, "causes": causes.iter().map(|(reason, field, msg)| json!({"reason": reason, "message": msg, "field": field})).collect::<Vec<_>>()});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        ApiError {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                format!("{} \"{name}\" is invalid: {body}", qualified(group, kind)),
            )
        }
    }
    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            // `reason` is omitempty (e.g. the 500 of a failed server-side apply conversion).
            s.as_object_mut().map(|o| o.remove("reason"));
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// Go's `%q` (strconv.Quote; printable unicode kept verbatim), as API messages quote values.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `Status` of success, as returned by DELETE of objects that are gone at once.
pub fn success(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let mut d = details(group, resource, name);
    d["uid"] = json!(uid);
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_group_and_resource() {
        let e = ApiError::not_found("partnerkit.io", "partners", "acme");
        assert_eq!(e.message, "partners.partnerkit.io \"acme\" not found");
        assert_eq!(e.to_status()["details"]["group"], "partnerkit.io");
        assert_eq!(
            ApiError::not_found("", "configmaps", "x").message,
            "configmaps \"x\" not found"
        );
    }

    #[test]
    fn invalid_lists_every_cause() {
        let one = ApiError::invalid(
            "",
            "ConfigMap",
            "x",
            &[(
                "FieldValueInvalid".into(),
                "metadata.name".into(),
                "Invalid value: \"X\": bad".into(),
            )],
        );
        assert_eq!(
            one.message,
            "ConfigMap \"x\" is invalid: metadata.name: Invalid value: \"X\": bad"
        );
        let two = ApiError::invalid(
            "partnerkit.io",
            "Partner",
            "acme",
            &[
                (
                    "FieldValueRequired".into(),
                    "spec.displayName".into(),
                    "Required value".into(),
                ),
                (
                    "FieldValueInvalid".into(),
                    "spec.x".into(),
                    "Invalid value: 1: no".into(),
                ),
            ],
        );
        assert_eq!(
            two.message,
            "Partner.partnerkit.io \"acme\" is invalid: [spec.displayName: Required value, spec.x: Invalid value: 1: no]"
        );
        assert_eq!(two.to_status()["details"]["causes"][1]["field"], "spec.x");
    }
}
