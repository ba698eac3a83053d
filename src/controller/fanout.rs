//! Reconcile requests for many tenants at once — every tenant of a partner (its template or
//! its spec changed), or every tenant (this replica took the lead, a watch re-listed) — handed
//! to the Tenant controller a batch at a time.
//!
//! Queued whole, a fan-out over 10,000 tenants put 10,000 requests in the controller's channel
//! and scheduler at once; their tables keep that capacity afterwards (measured: the peak RSS of
//! a template change at 1 × 10,000 tenants, and of a restart over 100,000). Here a fan-out is a
//! cursor into the partner's tenants (a namespace and the last name released), and the feeder
//! releases [`BATCH`] requests, then the next batch each time half a batch of reconciles has
//! finished: the controller's workers never wait, and at most about 1.5 batches are queued.
//!
//! A second fan-out over a partner while one is under way starts its cursor again from the
//! first tenant (what was released before the change may have been reconciled before it).
//! Requests for one tenant (its own events) do not wait behind a fan-out.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::world::{Queues, World};

/// Requests released at once: twice the Tenant controller's concurrency, so that half a batch
/// finished leaves the workers a full round queued when the next batch comes.
pub const BATCH: usize = 2 * super::TENANT_CONCURRENCY as usize;

/// Released anyway after this long without half a batch finished (reconciles stuck on a slow
/// API server, or requests merged with ones already queued, which finish nothing of their own).
const STALL: Duration = Duration::from_secs(1);

/// Where a fan-out over one namespace's tenants has got to.
struct Cursor {
    ns: String,
    /// The last tenant name released; none: from the first.
    after: Option<String>,
}

/// The fan-outs under way, and the count of finished Tenant reconciles that paces them.
#[derive(Default)]
pub struct Lane {
    cursors: Mutex<VecDeque<Cursor>>,
    pushed: Notify,
    finished: AtomicU64,
    progress: Notify,
}

impl Lane {
    fn cursors(&self) -> std::sync::MutexGuard<'_, VecDeque<Cursor>> {
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every tenant of namespace `ns`, from the first (again, if a fan-out is under way there).
    pub fn push(&self, ns: &str) {
        {
            let mut cursors = self.cursors();
            match cursors.iter_mut().find(|c| c.ns == ns) {
                Some(c) => c.after = None,
                None => cursors.push_back(Cursor {
                    ns: ns.to_string(),
                    after: None,
                }),
            }
        }
        self.pushed.notify_one();
    }

    /// A Tenant reconcile finished (whatever its result).
    pub fn finished(&self) {
        self.finished.fetch_add(1, Ordering::Release);
        self.progress.notify_one();
    }

    /// Up to `n` (namespace, name) requests, taken from the cursors in turn; a cursor that
    /// reaches its namespace's last tenant is done.
    fn next_batch(&self, world: &World, n: usize) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut cursors = self.cursors();
        while out.len() < n {
            let Some(c) = cursors.front_mut() else { break };
            let want = n - out.len();
            let names = world.tenants_after(&c.ns, c.after.as_deref(), want);
            // Fewer than asked for: the partner's last tenants, this fan-out is done.
            let done = names.len() < want;
            c.after = names.last().cloned();
            out.extend(names.into_iter().map(|name| (c.ns.clone(), name)));
            if done {
                cursors.pop_front();
            }
        }
        out
    }
}

/// Release the lane's requests to the Tenant queue, a batch at a time (see the module docs).
/// Runs until the task is dropped.
pub async fn feed(world: std::sync::Arc<World>, queues: Queues) {
    let lane = queues.lane.clone();
    loop {
        // Registered before looking, so that a push between the look and the wait is not lost.
        let pushed = lane.pushed.notified();
        let batch = lane.next_batch(&world, BATCH);
        if batch.is_empty() {
            pushed.await;
            continue;
        }
        let mark = lane.finished.load(Ordering::Acquire) + batch.len().div_ceil(2) as u64;
        for (ns, name) in &batch {
            queues.tenant(ns, name);
        }
        drop(batch);
        let paced = async {
            loop {
                let progress = lane.progress.notified();
                if lane.finished.load(Ordering::Acquire) >= mark {
                    return;
                }
                progress.await;
            }
        };
        let _ = tokio::time::timeout(STALL, paced).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn world_with(tenants: &[(&str, &str)]) -> Arc<World> {
        let (world, _writers) = super::super::world::world();
        for (ns, name) in tenants {
            world.index_tenant_for_test(ns, name);
        }
        world
    }

    /// A cursor walks its namespace in name order, a batch at a time, then is done; cursors
    /// are served in turn; a second push of a namespace under way starts it again.
    #[test]
    fn a_fan_out_walks_its_partners_tenants_in_batches() {
        let world = world_with(&[
            ("partner-a", "t3"),
            ("partner-a", "t1"),
            ("partner-a", "t2"),
            ("partner-b", "u1"),
        ]);
        let lane = Lane::default();
        lane.push("partner-a");
        lane.push("partner-b");
        let pairs = |v: Vec<(String, String)>| {
            v.into_iter()
                .map(|(ns, n)| format!("{ns}/{n}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(lane.next_batch(&world, 2)),
            ["partner-a/t1", "partner-a/t2"]
        );
        // Pushed again mid-way: from the first tenant again, and still once in the lane.
        lane.push("partner-a");
        assert_eq!(
            pairs(lane.next_batch(&world, 5)),
            [
                "partner-a/t1",
                "partner-a/t2",
                "partner-a/t3",
                "partner-b/u1"
            ]
        );
        assert!(
            lane.next_batch(&world, 5).is_empty(),
            "every cursor is done"
        );
        // A namespace without tenants is done at once.
        lane.push("partner-none");
        assert!(lane.next_batch(&world, 5).is_empty());
        assert!(lane.cursors().is_empty());
    }

    /// The feeder releases one batch, then the next only as reconciles finish: the queue never
    /// holds the whole fan-out.
    #[tokio::test]
    async fn the_feeder_releases_a_batch_then_waits_for_reconciles() {
        let names: Vec<String> = (0..3 * BATCH).map(|i| format!("t{i:05}")).collect();
        let tenants: Vec<(&str, &str)> = names.iter().map(|n| ("partner-a", n.as_str())).collect();
        let world = world_with(&tenants);
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let (ptx, _prx) = futures::channel::mpsc::unbounded();
        let (itx, _irx) = futures::channel::mpsc::unbounded();
        let queues = Queues {
            partners: ptx,
            tenants: tx,
            invites: itx,
            active: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            lane: Arc::default(),
        };
        let feeder = tokio::spawn(feed(world.clone(), queues.clone()));
        queues.lane.push("partner-a");
        let mut received = Vec::new();
        let mut take = |rx: &mut futures::channel::mpsc::UnboundedReceiver<_>, n: usize| {
            let mut got = 0;
            while got < n {
                match rx.try_recv() {
                    Ok(r) => {
                        received.push(r);
                        got += 1;
                    }
                    Err(_) => break,
                }
            }
            got
        };
        // The first batch, at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(take(&mut rx, usize::MAX), BATCH);
        // Nothing finished: nothing more (well within the stall timeout).
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(take(&mut rx, usize::MAX), 0);
        // Half a batch finished: the next batch.
        for _ in 0..BATCH / 2 {
            queues.lane.finished();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(take(&mut rx, usize::MAX), BATCH);
        // Nothing finishes: after the stall timeout, the last batch anyway.
        tokio::time::sleep(STALL + Duration::from_millis(200)).await;
        assert_eq!(take(&mut rx, usize::MAX), BATCH);
        let mut all: Vec<String> = received.iter().map(|r| r.name.clone()).collect();
        all.sort();
        assert_eq!(all, names, "every tenant exactly once");
        feeder.abort();
    }
}
