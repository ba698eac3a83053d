//! What a request asks for: the k8s RequestInfo (verb, resource, namespace, name,
//! subresource) from the method and path, and the query parameters.

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestInfo {
    pub resource_request: bool,
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub subresource: String,
    pub path: String,
}

const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parse like k8s.io/apiserver's RequestInfoFactory.
pub fn request_info(method: &str, path: &str, query: &Query) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        ..Default::default()
    };
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let rest: &[&str] = match parts.as_slice() {
        ["api", v, rest @ ..] => {
            info.version = v.to_string();
            rest
        }
        ["apis", g, v, rest @ ..] => {
            info.group = g.to_string();
            info.version = v.to_string();
            rest
        }
        _ => {
            info.verb = method.to_ascii_lowercase();
            return info;
        }
    };
    if rest.is_empty() {
        info.verb = method.to_ascii_lowercase();
        return info;
    }
    info.resource_request = true;
    let mut cur: Vec<&str> = rest.to_vec();
    if cur[0] == "namespaces" && cur.len() > 1 {
        info.namespace = cur[1].to_string();
        if cur.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&cur[2]) {
            cur = cur[2..].to_vec();
        }
    }
    info.resource = cur[0].to_string();
    if let Some(n) = cur.get(1) {
        info.name = n.to_string();
    }
    if let Some(s) = cur.get(2) {
        info.subresource = s.to_string();
    }
    info.verb = match method {
        "GET" | "HEAD" if info.name.is_empty() => {
            if query.flag("watch") {
                "watch"
            } else {
                "list"
            }
        }
        "GET" | "HEAD" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if info.name.is_empty() => "deletecollection",
        "DELETE" => "delete",
        other => {
            return RequestInfo {
                verb: other.to_ascii_lowercase(),
                ..info
            };
        }
    }
    .to_string();
    // A list or watch narrowed by `fieldSelector=metadata.name=<n>` is authorized as for that name.
    if matches!(info.verb.as_str(), "list" | "watch")
        && let Some(name) = query.get("fieldSelector").and_then(exact_name)
    {
        info.name = name;
    }
    info
}

/// `fields.Selector.RequiresExactMatch("metadata.name")`, for a name valid as a path segment.
fn exact_name(selector: &str) -> Option<String> {
    if selector.contains('\\') {
        return None;
    }
    let name = selector.split(',').find_map(|term| {
        let term = term.trim();
        if term.contains("!=") {
            return None;
        }
        let (field, value) = term.split_once("==").or_else(|| term.split_once('='))?;
        (field.trim() == "metadata.name").then(|| value.trim().to_string())
    })?;
    let invalid =
        name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('%');
    (!invalid).then_some(name)
}

/// Query parameters (the last value wins; `dryRun` may repeat).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub params: HashMap<String, String>,
    pub dry_run: bool,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Query, String> {
        let mut out = Query::default();
        let pairs: Vec<(String, String)> = match q {
            Some(q) => serde_urlencoded::from_str(q).map_err(|e| format!("invalid query: {e}"))?,
            None => Vec::new(),
        };
        for (k, v) in pairs {
            if k == "dryRun" {
                if v != "All" {
                    return Err(format!("Invalid value: \"{v}\": supported values: \"All\""));
                }
                out.dry_run = true;
            }
            out.params.insert(k, v);
        }
        Ok(out)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ri(method: &str, path: &str) -> RequestInfo {
        request_info(method, path, &Query::parse(None).unwrap())
    }

    #[test]
    fn paths_parse_like_the_api_server() {
        let r = ri("GET", "/api/v1/namespaces/ns1/configmaps/cm1");
        assert_eq!(
            (
                r.verb.as_str(),
                r.namespace.as_str(),
                r.resource.as_str(),
                r.name.as_str()
            ),
            ("get", "ns1", "configmaps", "cm1")
        );
        let r = ri("GET", "/api/v1/namespaces/ns1");
        assert_eq!(
            (r.resource.as_str(), r.name.as_str(), r.namespace.as_str()),
            ("namespaces", "ns1", "ns1")
        );
        let r = ri("PUT", "/api/v1/namespaces/ns1/finalize");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_str(),
                r.subresource.as_str(),
                r.verb.as_str()
            ),
            ("namespaces", "ns1", "finalize", "update")
        );
        let r = ri("PATCH", "/apis/partnerkit.io/v1alpha1/partners/acme/status");
        assert_eq!(
            (
                r.group.as_str(),
                r.resource.as_str(),
                r.subresource.as_str()
            ),
            ("partnerkit.io", "partners", "status")
        );
        let r = ri(
            "DELETE",
            "/apis/partnerkit.io/v1alpha1/namespaces/p/tenants",
        );
        assert_eq!(r.verb, "deletecollection");
        let r = request_info(
            "GET",
            "/api/v1/configmaps",
            &Query::parse(Some("watch=true&labelSelector=a%3Db")).unwrap(),
        );
        assert_eq!(r.verb, "watch");
        let r = ri("GET", "/version");
        assert!(!r.resource_request);
        let r = request_info(
            "GET",
            "/api/v1/namespaces/n/configmaps",
            &Query::parse(Some("fieldSelector=metadata.name%3Dx&watch=1")).unwrap(),
        );
        assert_eq!((r.verb.as_str(), r.name.as_str()), ("watch", "x"));
        let r = request_info(
            "GET",
            "/api/v1/configmaps",
            &Query::parse(Some("fieldSelector=metadata.name%21%3Dx")).unwrap(),
        );
        assert_eq!((r.verb.as_str(), r.name.as_str()), ("list", ""));
    }

    #[test]
    fn dry_run_accepts_only_all() {
        assert!(Query::parse(Some("dryRun=All")).unwrap().dry_run);
        assert!(Query::parse(Some("dryRun=Some")).is_err());
    }
}
