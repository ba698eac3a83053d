//! Watches: from "now" with synthetic ADDED events for what exists, from a retained
//! resourceVersion, or with `sendInitialEvents` (streaming lists); bookmarks, timeouts,
//! 410 Gone for versions older than the retained history, and objects moving in and out of
//! a label selector.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::SinkExt;
use serde_json::json;

use crate::api::{Ctx, render, wants_table};
use crate::kinds::ResourceInfo;
use crate::present::{self, Columns};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Reply;
use crate::status::ApiError;
use crate::store::{Event, EventType, Obj, Since};

struct Filter {
    ri: Arc<ResourceInfo>,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
    include_object: String,
}

impl Filter {
    fn matches(&self, o: &Obj) -> bool {
        (self.labels.is_empty() || self.labels.matches(&o.labels))
            && (self.fields.is_empty() || self.fields.matches(&o.value()))
    }

    fn frame(&self, kind: &str, o: &Obj) -> Bytes {
        let obj = if self.table {
            let columns = match &self.ri.crd {
                Some(c) => Columns::Custom(&c.printer_columns),
                None => Columns::Builtin(&self.ri.kind),
            };
            let t = present::table(
                &[o.value()],
                columns,
                &self.include_object,
                &o.rv.to_string(),
                None,
                crate::meta::now_unix(),
            );
            Bytes::from(serde_json::to_vec(&t).unwrap_or_default())
        } else {
            render(&self.ri, o)
        };
        let mut out = Vec::with_capacity(obj.len() + 32);
        out.extend_from_slice(format!("{{\"type\":\"{kind}\",\"object\":").as_bytes());
        out.extend_from_slice(&obj);
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    /// The event as this watcher sees it (selector transitions turn MODIFIED into ADDED or DELETED).
    fn translate(&self, e: &Event) -> Option<Bytes> {
        if e.gr != self.ri.gr() {
            return None;
        }
        if let Some(ns) = &self.ns
            && e.ns.as_ref() != ns
        {
            return None;
        }
        let now = self.matches(&e.obj);
        let before = e.prev.as_ref().is_some_and(|p| self.matches(p));
        let kind = match e.kind {
            EventType::Added if now => "ADDED",
            EventType::Deleted if before || now => "DELETED",
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => {
                // Leaving the selector: like the watch cache, the last state that matched, at this
                // event's resourceVersion.
                let p = e.prev.as_ref()?;
                let mut v = p.value();
                v["metadata"]["resourceVersion"] = json!(e.rv.to_string());
                let json = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
                let o = Obj {
                    json,
                    rv: e.rv,
                    uid: p.uid.clone(),
                    labels: p.labels.clone(),
                    owners: p.owners.clone(),
                    deleting: p.deleting,
                };
                return Some(self.frame("DELETED", &o));
            }
            _ => return None,
        };
        Some(self.frame(kind, &e.obj))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.ri.kind.as_ref(), "apiVersion": self.ri.api_version(), "metadata": meta});
        Bytes::from(format!("{}\n", json!({"type": "BOOKMARK", "object": obj})))
    }
}

fn error_frame(e: &ApiError) -> Bytes {
    Bytes::from(format!(
        "{}\n",
        json!({"type": "ERROR", "object": e.to_status()})
    ))
}

pub fn watch(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (labels, fields) = ctx.selectors()?;
    let q = ctx.query;
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.get("sendInitialEvents").map(|s| s == "true");
    if send_initial == Some(true) && q.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", &[(
            "FieldValueForbidden".into(),
            "resourceVersionMatch".into(),
            "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
        )]));
    }
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let rv_param = q.get("resourceVersion").map(String::from);
    let filter = Arc::new(Filter {
        ri: ctx.ri.clone(),
        ns: (!ctx.ns.is_empty()).then(|| ctx.ns.clone()),
        labels,
        fields,
        table: wants_table(ctx.headers),
        include_object: q.get("includeObject").unwrap_or("Metadata").to_string(),
    });
    let sim = ctx.sim.clone();
    let initial_list =
        send_initial == Some(true) || matches!(rv_param.as_deref(), None | Some("0"));
    let start_rv: Option<u64> = if initial_list {
        None
    } else {
        let rv = rv_param.as_deref().unwrap_or("0");
        Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
        )
    };
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(256);
    let bookmark_every = sim.config.bookmark_interval;
    tokio::spawn(async move {
        let mut changed = sim.changed.subscribe();
        let mut dropped = sim.drop_watches.subscribe();
        dropped.mark_unchanged();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        // Initial state.
        let mut last = match start_rv {
            Some(rv) => rv,
            None => {
                let (frames, rv) = {
                    let store = sim.store.read().expect("store lock");
                    let ns = filter.ns.as_deref();
                    let frames: Vec<Bytes> = store
                        .range(&filter.ri.gr(), ns, None)
                        .filter(|(_, o)| filter.matches(o))
                        .map(|(_, o)| filter.frame("ADDED", o))
                        .collect();
                    (frames, store.current_rv())
                };
                for f in frames {
                    if tx.send(Ok(f)).await.is_err() {
                        return;
                    }
                }
                if send_initial == Some(true)
                    && bookmarks
                    && tx.send(Ok(filter.bookmark(rv, true))).await.is_err()
                {
                    return;
                }
                rv
            }
        };
        let mut next_bookmark = tokio::time::Instant::now() + bookmark_every;
        loop {
            changed.mark_unchanged();
            let pending = match sim.store.read().expect("store lock").since(last) {
                Since::TooOld { oldest } => Err(oldest),
                Since::Events(evs) => Ok(evs),
            };
            match pending {
                Err(oldest) => {
                    let e = ApiError::gone(format!(
                        "too old resource version: {last} ({})",
                        oldest.saturating_sub(1)
                    ));
                    let _ = tx.send(Ok(error_frame(&e))).await;
                    return;
                }
                Ok(evs) => {
                    let lag = sim
                        .faults
                        .read()
                        .map(|f| {
                            let lags = f.watch_lag_resources.is_empty()
                                || f.watch_lag_resources
                                    .iter()
                                    .any(|r| *r == *filter.ri.plural);
                            if lags { f.watch_lag_ms } else { 0 }
                        })
                        .unwrap_or(0);
                    if lag > 0 && !evs.is_empty() {
                        tokio::time::sleep(Duration::from_millis(lag)).await;
                    }
                    for e in evs {
                        last = e.rv;
                        if let Some(frame) = filter.translate(&e)
                            && tx.send(Ok(frame)).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let sleep_until = match deadline {
                Some(d) if d < next_bookmark => d,
                _ => next_bookmark,
            };
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = dropped.changed() => return,
                _ = tokio::time::sleep_until(sleep_until) => {
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        return;
                    }
                    if tx.is_closed() {
                        return;
                    }
                    // Every event up to `last` has been looked at: the bookmark claims just that.
                    if bookmarks && tx.send(Ok(filter.bookmark(last, false))).await.is_err() {
                        return;
                    }
                    next_bookmark = tokio::time::Instant::now() + bookmark_every;
                }
            }
        }
    });
    Ok(Reply {
        code: 200,
        body: Body::from_stream(rx),
        content_type: "application/json".into(),
        warnings: Vec::new(),
    })
}
