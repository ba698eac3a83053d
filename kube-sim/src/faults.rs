//! Measurement (request counters) and fault injection (latency, in-flight cap, write
//! errors, dropped watches, lagging watches), settable by flag and at run time over HTTP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Fault-injection knobs. All zero = none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every API request before it is served.
    pub latency_ms: u64,
    /// Requests served at once; more are refused with 429 (0 = no cap).
    pub max_in_flight: usize,
    /// Fraction (0..=1) of writes (create, update, patch, delete) that fail.
    pub write_error_rate: f64,
    /// 500 or 429 (429 carries `Retry-After: retryAfterSeconds`).
    pub write_error_code: u16,
    pub retry_after_seconds: u64,
    /// End every open watch every N seconds (0 = never).
    pub drop_watches_every_seconds: u64,
    /// Hold every watch event this long (up to twice: events are sent in batches, each held
    /// this long after it was read) before sending it, as a busy API server's watch cache
    /// lags its writes: a client sees its write answered before its own watch shows it.
    pub watch_lag_ms: u64,
    /// Only watches of these resources (plural names, e.g. `namespaces`) lag; empty: all. Watch
    /// streams of a real API server lag independently of each other.
    pub watch_lag_resources: Vec<String>,
}

impl Faults {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.write_error_rate) {
            return Err(format!(
                "writeErrorRate: must be between 0 and 1, got {}",
                self.write_error_rate
            ));
        }
        if self.write_error_rate > 0.0 && ![500, 429].contains(&self.write_error_code) {
            return Err(format!(
                "writeErrorCode: must be 500 or 429, got {}",
                self.write_error_code
            ));
        }
        Ok(())
    }
}

/// One counter key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestKey {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub field_manager: String,
}

/// Request counters.
#[derive(Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<RequestKey, u64>>,
}

impl Metrics {
    pub fn count(&self, key: RequestKey) {
        *self
            .counts
            .lock()
            .expect("metrics lock")
            .entry(key)
            .or_default() += 1;
    }

    pub fn reset(&self) {
        self.counts.lock().expect("metrics lock").clear();
    }

    /// `{"total": N, "writes": N, "byVerb": {...}, "requests": [{verb, group, resource, subresource, fieldManager, count}]}`
    pub fn snapshot(&self) -> serde_json::Value {
        let counts = self.counts.lock().expect("metrics lock");
        let mut by_verb: BTreeMap<&str, u64> = BTreeMap::new();
        let mut total = 0;
        let mut writes = 0;
        let mut rows = Vec::new();
        for (k, n) in counts.iter() {
            *by_verb.entry(k.verb.as_str()).or_default() += n;
            total += n;
            if is_write(&k.verb) {
                writes += n;
            }
            let mut row = serde_json::to_value(k).unwrap_or_default();
            row["count"] = serde_json::json!(n);
            rows.push(row);
        }
        serde_json::json!({"total": total, "writes": writes, "byVerb": by_verb, "requests": rows})
    }
}

pub fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// Ends every watch every `dropWatchesEverySeconds` while that knob is set.
pub fn spawn_watch_dropper(sim: Arc<crate::sim::Sim>) {
    let weak = Arc::downgrade(&sim);
    drop(sim);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Some(sim) = weak.upgrade() else { return };
            let every = sim
                .faults
                .read()
                .map(|f| f.drop_watches_every_seconds)
                .unwrap_or(0);
            if every == 0 {
                continue;
            }
            drop(sim);
            tokio::time::sleep(Duration::from_secs(every)).await;
            let Some(sim) = weak.upgrade() else { return };
            if sim
                .faults
                .read()
                .map(|f| f.drop_watches_every_seconds)
                .unwrap_or(0)
                > 0
            {
                sim.drop_watches.send_modify(|v| *v += 1);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_checked() {
        assert!(
            Faults {
                write_error_rate: 1.5,
                ..Default::default()
            }
            .validate()
            .unwrap_err()
            .contains("writeErrorRate")
        );
        assert!(
            Faults {
                write_error_rate: 0.5,
                write_error_code: 404,
                ..Default::default()
            }
            .validate()
            .unwrap_err()
            .contains("writeErrorCode")
        );
        assert!(
            Faults {
                write_error_rate: 0.5,
                write_error_code: 429,
                ..Default::default()
            }
            .validate()
            .is_ok()
        );
        assert!(serde_json::from_str::<Faults>(r#"{"latencyMS": 1}"#).is_err());
    }

    #[test]
    fn counters_sum_by_verb() {
        let m = Metrics::default();
        let key = |verb: &str, fm: &str| RequestKey {
            verb: verb.into(),
            group: "".into(),
            resource: "configmaps".into(),
            subresource: "".into(),
            field_manager: fm.into(),
        };
        m.count(key("create", "a"));
        m.count(key("create", "a"));
        m.count(key("get", ""));
        let s = m.snapshot();
        assert_eq!(s["total"], 3);
        assert_eq!(s["writes"], 2);
        assert_eq!(s["byVerb"]["create"], 2);
        m.reset();
        assert_eq!(m.snapshot()["total"], 0);
    }
}
