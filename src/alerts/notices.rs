//! The queue of alert triggers raised on the request path, and a per-node memory of what was
//! queued recently (so a condition seen on every request queues one trigger). State only: the
//! store drains it.

use tokio::sync::mpsc;

use super::Trigger;

/// Triggers waiting to be stored, and the one that failed to be (with when it first failed): it is
/// tried first on the next drain, so a database error delays a trigger instead of losing it.
struct Queue {
    rx: mpsc::Receiver<Trigger>,
    held: Option<(Trigger, i64)>,
}

/// The queue of triggers and a per-node memory of what was queued recently.
pub struct Notices {
    tx: mpsc::Sender<Trigger>,
    queue: tokio::sync::Mutex<Queue>,
    recent: moka::sync::Cache<String, ()>,
    /// When this node last evaluated the periodic rules (epoch ms).
    pub last_evaluation_ms: std::sync::atomic::AtomicI64,
}

impl Default for Notices {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(10_000);
        Self {
            tx,
            queue: tokio::sync::Mutex::new(Queue { rx, held: None }),
            recent: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(35 * 86_400))
                .build(),
            last_evaluation_ms: Default::default(),
        }
    }
}

impl Notices {
    /// Queues a trigger; false when the queue is full (the trigger is dropped, with a warning).
    pub fn send(&self, t: Trigger) -> bool {
        let sent = self.tx.try_send(t).is_ok();
        if !sent {
            tracing::warn!("alert queue full: an alert trigger was dropped");
        }
        sent
    }

    /// Queues the trigger `make` builds unless one under `key` was queued before on this node. A
    /// trigger the full queue refused is not remembered, so the next occurrence queues it.
    pub fn send_once(&self, key: String, make: impl FnOnce() -> Trigger) {
        if !self.recent.contains_key(&key) && self.send(make()) {
            self.recent.insert(key, ());
        }
    }

    /// The queue, for one drain at a time: it is held for the whole pass, so two drains never store
    /// the same trigger.
    pub async fn queue(&self) -> NoticeQueue<'_> {
        NoticeQueue(self.queue.lock().await)
    }
}

/// The trigger queue, locked for one drain.
pub struct NoticeQueue<'a>(tokio::sync::MutexGuard<'a, Queue>);

impl NoticeQueue<'_> {
    /// The next trigger to store, with when it was first tried: the held one first, then the
    /// oldest queued one (first tried `now`).
    pub fn next(&mut self, now: i64) -> Option<(Trigger, i64)> {
        self.0.held.take().or_else(|| self.0.rx.try_recv().ok().map(|t| (t, now)))
    }

    /// Keeps a trigger that could not be stored, to be tried first next time.
    pub fn hold(&mut self, trigger: Trigger, since: i64) {
        self.0.held = Some((trigger, since));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::KEY_EXCEEDED_EVENT;
    use crate::platform::ids::OrgId;

    fn trigger() -> Trigger {
        Trigger {
            org_id: OrgId::generate(0),
            kind: None,
            severity: "CRITICAL",
            dedupe_key: String::new(),
            title: "t".into(),
            data: serde_json::json!({}),
            event: Some(KEY_EXCEEDED_EVENT),
        }
    }

    #[tokio::test]
    async fn a_trigger_the_full_queue_refused_is_queued_on_its_next_occurrence() {
        let notices = Notices::default();
        while notices.send(trigger()) {}
        notices.send_once("key:k:2026-12".into(), trigger);
        assert!(!notices.recent.contains_key("key:k:2026-12"), "refused, so not remembered");
        notices.queue.lock().await.rx.try_recv().unwrap();
        notices.send_once("key:k:2026-12".into(), trigger);
        assert!(notices.recent.contains_key("key:k:2026-12"));
        // Queued once: a second occurrence queues nothing (the queue has room for it).
        notices.queue.lock().await.rx.try_recv().unwrap();
        notices.send_once("key:k:2026-12".into(), || panic!("built again"));
    }
}
