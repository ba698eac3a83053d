//! Object-metadata helpers: timestamps, uids, generated names, name validation.

use serde_json::Value;

/// Now as the API server writes timestamps: RFC 3339, whole seconds, UTC.
pub fn now() -> String {
    let secs = now_unix();
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random version-4 UUID.
pub fn uid() -> String {
    let mut b = [0u8; 16];
    fastrand::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 0xf) as usize] as char);
    }
    s
}

/// `generateName` suffix: five characters from the API server's alphabet.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// Errors (field, message) for a name, as apimachinery's validation words them.
pub fn validate_name(name: &str, dns_label: bool) -> Option<String> {
    if dns_label {
        if name.len() > 63 {
            return Some(format!(
                "Invalid value: \"{name}\": must be no more than 63 characters"
            ));
        }
        if !is_label(name) {
            return Some(format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL}')"
            ));
        }
    } else {
        if name.len() > 253 {
            return Some(format!(
                "Invalid value: \"{name}\": must be no more than 253 characters"
            ));
        }
        if !is_subdomain(name) {
            return Some(format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN}')"
            ));
        }
    }
    None
}

/// RBAC and a few other kinds accept any path-segment name.
pub fn validate_path_segment_name(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("Invalid value: \"{name}\": may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return Some(format!(
                "Invalid value: \"{name}\": may not contain '{bad}'"
            ));
        }
    }
    None
}

fn qualified_name_ok(k: &str) -> bool {
    let (prefix, n) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_subdomain)
        && !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Validate labels, annotations and finalizers: (field, message) pairs.
pub fn validate_metadata(meta: &Value) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    if let Some(labels) = meta.get("labels").and_then(|l| l.as_object()) {
        for (k, v) in labels {
            if !qualified_name_ok(k) {
                errs.push(("metadata.labels".into(), format!("Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")));
            }
            let v = v.as_str().unwrap_or_default();
            let ok = v.is_empty()
                || (v.len() <= 63
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                    && v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()));
            if !ok {
                errs.push(("metadata.labels".into(), format!("Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")));
            }
        }
    }
    if let Some(ann) = meta.get("annotations").and_then(|l| l.as_object()) {
        let total: usize = ann
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        for k in ann.keys() {
            if !qualified_name_ok(k) {
                errs.push(("metadata.annotations".into(), format!("Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")));
            }
        }
        if total > 256 * 1024 {
            errs.push((
                "metadata.annotations".into(),
                "Too long: may not be more than 262144 bytes".into(),
            ));
        }
    }
    if let Some(fins) = meta.get("finalizers").and_then(|l| l.as_array()) {
        for (i, f) in fins.iter().enumerate() {
            let f = f.as_str().unwrap_or_default();
            if !qualified_name_ok(f) {
                errs.push((format!("metadata.finalizers[{i}]"), format!("Invalid value: \"{f}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")));
            } else if !f.contains('/')
                && ![
                    "kubernetes",
                    "orphan",
                    "foregroundDeletion",
                    "customresourcecleanup.apiextensions.k8s.io",
                ]
                .contains(&f)
            {
                errs.push((format!("metadata.finalizers[{i}]"), format!("Invalid value: \"{f}\": name is neither a standard finalizer name nor is it fully qualified")));
            }
        }
    }
    errs
}

/// The strings of a JSON array (non-strings skipped; not an array: none).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.namespace` ("" for cluster-scoped) and `metadata.name` of an object.
pub fn namespace_and_name(v: &Value) -> (String, String) {
    let field = |k: &str| v["metadata"][k].as_str().unwrap_or_default().to_string();
    (field("namespace"), field("name"))
}

pub fn finalizers(v: &Value) -> Vec<String> {
    strings(&v["metadata"]["finalizers"])
}

pub fn set_finalizers(v: &mut Value, fins: &[String]) {
    if fins.is_empty() {
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("finalizers");
        }
    } else {
        v["metadata"]["finalizers"] = serde_json::json!(fins);
    }
}

pub fn is_deleting(v: &Value) -> bool {
    v["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc1123() {
        assert!(validate_name("acme", true).is_none());
        assert!(
            validate_name("Acme", true)
                .unwrap()
                .contains("RFC 1123 label")
        );
        assert!(validate_name("a.b", true).is_some());
        assert!(validate_name("a.b", false).is_none());
        assert!(
            validate_name(&"a".repeat(64), true)
                .unwrap()
                .contains("no more than 63")
        );
    }

    #[test]
    fn uid_is_v4() {
        let u = uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uid());
    }

    #[test]
    fn metadata_checks_labels_and_finalizers() {
        let errs = validate_metadata(
            &serde_json::json!({"labels": {"ok": "v", "bad key!": "x"}, "finalizers": ["example.com/x", "plain"]}),
        );
        assert_eq!(errs.len(), 2);
        assert!(errs[1].1.contains("neither a standard finalizer"));
    }
}
