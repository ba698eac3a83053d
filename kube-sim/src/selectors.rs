//! Label and field selectors, with the grammar and error texts of k8s.io/apimachinery.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector (`a=b,c!=d,e in (x,y),!f`): every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, Op)>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { reqs })
    }

    /// From a `metav1.LabelSelector` object (matchLabels, matchExpressions).
    pub fn from_object(sel: &serde_json::Value) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(|m| m.as_object()) {
            for (k, v) in m {
                reqs.push((
                    k.clone(),
                    Op::Eq(v.as_str().unwrap_or_default().to_string()),
                ));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(|m| m.as_array()) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(|k| k.as_str())
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = match e
                    .get("operator")
                    .and_then(|o| o.as_str())
                    .unwrap_or_default()
                {
                    "In" => Op::In(values),
                    "NotIn" => Op::NotIn(values),
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                };
                reqs.push((key, op));
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &impl LabelLookup) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = labels.label(k);
            match op {
                Op::Eq(want) => v == Some(want.as_str()),
                Op::NotEq(want) => v != Some(want.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

/// Something with labels to select on.
pub trait LabelLookup {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelLookup for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// An object's labels in a single allocation (`k1 \0 v1 \0 k2 \0 v2`, keys sorted): a
/// stored object carries them beside its JSON for selectors, so they must be small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Option<Box<str>>);

impl Labels {
    pub fn from_json(labels: Option<&serde_json::Map<String, serde_json::Value>>) -> Labels {
        let Some(m) = labels.filter(|m| !m.is_empty()) else {
            return Labels(None);
        };
        let mut pairs: Vec<(&str, &str)> = m
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
            .collect();
        pairs.sort_unstable();
        let mut s = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                s.push('\0');
            }
            s.push_str(k);
            s.push('\0');
            s.push_str(v);
        }
        Labels(Some(s.into_boxed_str()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.0.as_deref().into_iter().flat_map(|s| s.split('\0'));
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }
}

impl LabelLookup for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Split on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> Result<(), String> {
    let re_ok = !k.is_empty()
        && k.split('/').count() <= 2
        && k.rsplit('/').next().is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 63
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        });
    if re_ok {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label key \"{k}\""
        ))
    }
}

fn valid_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label value: \"{v}\""
        ))
    }
}

fn parse_requirement(p: &str) -> Result<(String, Op), String> {
    if let Some(k) = p.strip_prefix('!') {
        let k = k.trim();
        valid_key(k)?;
        return Ok((k.to_string(), Op::DoesNotExist));
    }
    for (sym, ctor) in [("!=", 0), ("==", 1), ("=", 1), (">", 2), ("<", 3)] {
        if let Some(i) = p.find(sym) {
            let (k, v) = (p[..i].trim(), p[i + sym.len()..].trim());
            valid_key(k)?;
            let op = match ctor {
                0 => {
                    valid_value(v)?;
                    Op::NotEq(v.to_string())
                }
                1 => {
                    valid_value(v)?;
                    Op::Eq(v.to_string())
                }
                2 | 3 => {
                    let n: i64 = v.parse().map_err(|_| "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer".to_string())?;
                    if ctor == 2 { Op::Gt(n) } else { Op::Lt(n) }
                }
                _ => unreachable!(),
            };
            return Ok((k.to_string(), op));
        }
    }
    let words: Vec<&str> = p.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let k = words[0].trim();
        let rest = words[1].trim();
        let (neg, list) = if let Some(l) = rest.strip_prefix("notin") {
            (true, l)
        } else if let Some(l) = rest.strip_prefix("in") {
            (false, l)
        } else {
            return Err(format!(
                "unable to parse requirement: found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
            ));
        };
        let list = list.trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| format!("unable to parse requirement: found '{list}', expected: '('"))?;
        valid_key(k)?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        for v in &values {
            valid_value(v)?;
        }
        return Ok((
            k.to_string(),
            if neg {
                Op::NotIn(values)
            } else {
                Op::In(values)
            },
        ));
    }
    valid_key(p)?;
    Ok((p.to_string(), Op::Exists))
}

/// A field selector (`metadata.name=x,metadata.namespace!=y`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    pub reqs: Vec<(String, bool, String)>, // (field, equals, value)
}

/// Which field labels a resource accepts, as its scheme's field-label conversion does it.
#[derive(Debug, Clone, Copy)]
pub enum FieldLabels<'a> {
    /// No kind-specific conversion registered (`runtime.DefaultMetaV1FieldSelectorConversion`,
    /// e.g. ConfigMaps, RBAC): `metadata.name` and `metadata.namespace`; anything else is
    /// `"x" is not a known field selector: only "metadata.name", "metadata.namespace"`.
    Default,
    /// A kind-specific conversion (Secrets, Namespaces, Events, custom resources):
    /// `metadata.name`, `metadata.namespace` if the resource is namespaced, and `extra`;
    /// anything else is `field label not supported: x`.
    Kind {
        namespaced: bool,
        extra: &'a [&'a str],
    },
}

impl FieldLabels<'_> {
    fn check(&self, field: &str) -> Result<(), String> {
        match self {
            FieldLabels::Default => match field {
                "metadata.name" | "metadata.namespace" => Ok(()),
                _ => Err(format!(
                    "\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )),
            },
            FieldLabels::Kind { namespaced, extra } => {
                if field == "metadata.name"
                    || (*namespaced && field == "metadata.namespace")
                    || extra.contains(&field)
                {
                    Ok(())
                } else {
                    Err(format!("field label not supported: {field}"))
                }
            }
        }
    }
}

impl FieldSelector {
    /// Parse, accepting only the field labels the resource supports.
    pub fn parse(s: &str, labels: FieldLabels<'_>) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, eq, value) = if let Some(i) = part.find("!=") {
                (&part[..i], false, &part[i + 2..])
            } else if let Some(i) = part.find("==") {
                (&part[..i], true, &part[i + 2..])
            } else if let Some(i) = part.find('=') {
                (&part[..i], true, &part[i + 1..])
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            labels.check(field)?;
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The one name this selector pins, if it has `metadata.name=x`.
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, obj: &serde_json::Value) -> bool {
        self.reqs.iter().all(|(field, eq, want)| {
            let mut cur = obj;
            for seg in field.split('.') {
                cur = cur.get(seg).unwrap_or(&serde_json::Value::Null);
            }
            let got = match cur {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_grammar() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("missing!=x", true),
            ("n>4", true),
            ("n<5", false),
            ("app=web,tier in (back)", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("-bad=1").is_err());
    }

    #[test]
    fn compact_labels_answer_like_a_map() {
        let m = serde_json::json!({"b": "2", "a": "1", "empty": ""});
        let l = Labels::from_json(m.as_object());
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![("a", "1"), ("b", "2"), ("empty", "")]
        );
        assert_eq!(l.label("b"), Some("2"));
        assert_eq!(l.label("empty"), Some(""));
        assert_eq!(l.label("c"), None);
        assert!(LabelSelector::parse("a=1,empty,!c").unwrap().matches(&l));
        assert_eq!(Labels::from_json(None).iter().count(), 0);
    }

    #[test]
    fn label_selector_from_object() {
        let sel = LabelSelector::from_object(&serde_json::json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "In", "values": ["x"]}]})).unwrap();
        assert!(sel.matches(&labels(&[("a", "1"), ("b", "x")])));
        assert!(!sel.matches(&labels(&[("a", "1")])));
    }

    #[test]
    fn field_selector_rejects_unknown_fields() {
        let f = FieldSelector::parse(
            "metadata.name=x,metadata.namespace!=y",
            FieldLabels::Default,
        )
        .unwrap();
        assert_eq!(f.pinned_name(), Some("x"));
        let obj = serde_json::json!({"metadata": {"name": "x", "namespace": "z"}});
        assert!(f.matches(&obj));
        assert_eq!(
            FieldSelector::parse("spec.x=1", FieldLabels::Default).unwrap_err(),
            r#""spec.x" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        let secrets = FieldLabels::Kind {
            namespaced: true,
            extra: &["type"],
        };
        assert!(FieldSelector::parse("type=Opaque,metadata.namespace=a", secrets).is_ok());
        assert_eq!(
            FieldSelector::parse("spec.x=1", secrets).unwrap_err(),
            "field label not supported: spec.x"
        );
        let namespaces = FieldLabels::Kind {
            namespaced: false,
            extra: &["status.phase"],
        };
        assert_eq!(
            FieldSelector::parse("metadata.namespace=a", namespaces).unwrap_err(),
            "field label not supported: metadata.namespace"
        );
    }
}
