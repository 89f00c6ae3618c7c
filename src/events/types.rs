//! The per-node cache of event types as publishing needs them: the catalog entry and its
//! compiled JSON Schema, so a publish neither reads the type's row nor compiles its schema again.
//! Dropped on every node when any operator type is created, changed or archived (a bus message),
//! and after a bus resync. State only; `super::publish` fills it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::publish::CatalogEntry;
use crate::platform::bus::BusMessage;

/// A type with its compiled schema.
pub struct Publishable {
    pub entry: CatalogEntry,
    pub validator: jsonschema::Validator,
}

pub struct EventTypes {
    /// Only types that exist are kept (a name nobody defined is read again each time), so the
    /// keys are names the operator chose — still text from outside, hence moka's default hasher.
    by_name: moka::sync::Cache<String, Arc<Publishable>>,
    /// Bumped by every invalidation: a type read before one is not kept after it.
    generation: AtomicU64,
}

impl Default for EventTypes {
    fn default() -> Self {
        Self {
            by_name: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(300)).build(),
            generation: AtomicU64::new(0),
        }
    }
}

impl EventTypes {
    pub fn get(&self, name: &str) -> Option<Arc<Publishable>> {
        self.by_name.get(name)
    }

    /// The generation to pass to [`Self::store`], taken before the type is read.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `t`, read at `generation`, unless an invalidation came since (then the row it was
    /// read from may be older than the change).
    pub fn store(&self, generation: u64, name: &str, t: Arc<Publishable>) {
        self.by_name.insert(name.to_string(), t);
        if self.generation.load(Ordering::SeqCst) != generation {
            self.by_name.invalidate(name);
        }
    }

    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.by_name.invalidate_all();
    }

    /// Applies a bus message from any node.
    pub fn on_bus(&self, msg: &BusMessage) {
        if matches!(msg, BusMessage::InvalidateEventTypes | BusMessage::Resync) {
            self.forget_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publishable(description: &str) -> Arc<Publishable> {
        let schema = serde_json::json!({ "type": "object" });
        Arc::new(Publishable {
            validator: jsonschema::validator_for(&schema).unwrap(),
            entry: CatalogEntry {
                name: "shop.order_paid".into(),
                category: "shop".into(),
                description: description.into(),
                schema,
                sample: serde_json::json!({}),
                deprecated: false,
                archived_at: None,
                built_in: false,
            },
        })
    }

    #[test]
    fn a_type_read_before_an_invalidation_is_not_kept_after_it() {
        let types = EventTypes::default();
        let before = types.generation();
        types.on_bus(&BusMessage::InvalidateEventTypes);
        types.store(before, "shop.order_paid", publishable("old"));
        assert!(types.get("shop.order_paid").is_none());

        let now = types.generation();
        types.store(now, "shop.order_paid", publishable("new"));
        assert_eq!(types.get("shop.order_paid").unwrap().entry.description, "new");
        types.on_bus(&BusMessage::Resync);
        assert!(types.get("shop.order_paid").is_none());
    }
}
