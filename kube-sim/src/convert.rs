//! Conversion between the version a request speaks and the stored form. Custom resources
//! convert with strategy None (only `apiVersion` changes); events.k8s.io/v1 Events are views
//! of the stored core/v1 Events, field by field as the API server's conversion does.

use serde_json::{Map, Value, json};

use crate::kinds::ResourceInfo;

/// (events.k8s.io/v1 name, core/v1 name) for the fields that differ.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn is_events_api(ri: &ResourceInfo) -> bool {
    ri.group.as_ref() == "events.k8s.io" && ri.plural.as_ref() == "events"
}

/// Does serving this resource need more than the stored bytes?
pub fn converts(ri: &ResourceInfo) -> bool {
    is_events_api(ri)
}

fn rename(
    v: Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
    api_version: &str,
) -> Value {
    let Value::Object(mut m) = v else { return v };
    for (from, to) in pairs {
        if let Some(x) = m.remove(from) {
            m.insert(to.to_string(), x);
        }
    }
    m.insert("apiVersion".into(), json!(api_version));
    let mut out = Map::new();
    // apiVersion and kind first, as the API server writes them.
    for k in ["apiVersion", "kind"] {
        if let Some(x) = m.remove(k) {
            out.insert(k.into(), x);
        }
    }
    out.extend(m);
    Value::Object(out)
}

/// The stored form of an object written through `ri`.
pub fn to_storage(ri: &ResourceInfo, v: Value) -> Value {
    if is_events_api(ri) {
        return rename(v, EVENT_FIELDS.iter().copied(), "v1");
    }
    v
}

/// The stored object as `ri` serves it.
pub fn to_served(ri: &ResourceInfo, v: Value) -> Value {
    if is_events_api(ri) {
        return rename(
            v,
            EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)),
            "events.k8s.io/v1",
        );
    }
    if ri.is_crd() {
        let mut v = v;
        v["apiVersion"] = json!(ri.api_version());
        return v;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Registry;

    #[test]
    fn events_round_trip_between_the_two_apis() {
        let r = Registry::builtin();
        let ev = r.get("events.k8s.io", "v1", "events").unwrap();
        let served = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started", "reportingController": "c", "deprecatedCount": 2});
        let stored = to_storage(&ev, served.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "hello");
        assert_eq!(stored["reportingComponent"], "c");
        assert_eq!(stored["count"], 2);
        assert!(stored.get("note").is_none());
        assert_eq!(to_served(&ev, stored), served);
        assert!(converts(&ev));
        assert!(!converts(&r.get("", "v1", "events").unwrap()));
    }
}
