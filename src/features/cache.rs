//! The per-node copy of every feature flag with its overrides, so a check reads no database: the
//! whole set is loaded on first use and dropped on every node when any flag or override changes
//! (a bus message), or after a bus resync. A set read before an invalidation is not kept after it.
//! State only; `super::service` fills it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::model::{FlagRow, OverrideRow};
use crate::platform::bus::BusMessage;

/// One flag as a check needs it.
pub struct Flag {
    pub row: FlagRow,
    /// Organization id → its override.
    pub overrides: HashMap<String, bool>,
}

impl Flag {
    /// Whether the flag is on for `org`: its override, else off when the flag is off, else on for
    /// the rollout's share of organizations (all without one).
    pub fn enabled_for(&self, org: &str) -> bool {
        if let Some(v) = self.overrides.get(org) {
            return *v;
        }
        if !self.row.enabled {
            return false;
        }
        match self.row.rollout_percent {
            None => true,
            Some(p) => bucket(&self.row.key, org) < p.clamp(0, 100) as u64,
        }
    }
}

/// The organization's place (0–99) in a flag's rollout: a hash of the flag's key and the
/// organization, so it is the same on every node and every day, differs between flags, and an
/// organization in at p % stays in at any larger p.
pub fn bucket(key: &str, org: &str) -> u64 {
    use sha2::Digest;
    let digest =
        sha2::Sha256::new().chain_update(key.as_bytes()).chain_update(b"\0").chain_update(org.as_bytes()).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 100
}

/// Every flag by key.
pub struct Snapshot {
    pub by_key: HashMap<String, Arc<Flag>>,
}

impl Snapshot {
    pub fn build(flags: Vec<FlagRow>, overrides: Vec<OverrideRow>) -> Self {
        let mut by_id: HashMap<String, Flag> =
            flags.into_iter().map(|row| (row.id.to_string(), Flag { row, overrides: HashMap::new() })).collect();
        for o in overrides {
            if let Some(f) = by_id.get_mut(o.flag_id.as_str()) {
                f.overrides.insert(o.org_id.to_string(), o.enabled);
            }
        }
        Snapshot { by_key: by_id.into_values().map(|f| (f.row.key.clone(), Arc::new(f))).collect() }
    }
}

#[derive(Default)]
pub struct FeatureFlags {
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Bumped by every invalidation.
    generation: AtomicU64,
    /// How many times the set was read from the database (tests prove checks read none).
    loads: AtomicU64,
}

impl FeatureFlags {
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.current.read().clone()
    }

    /// The generation to pass to [`Self::store`], taken before the set is read.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps a set read at `generation`, unless an invalidation came since.
    pub fn store(&self, generation: u64, snapshot: Arc<Snapshot>) {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let mut current = self.current.write();
        if self.generation.load(Ordering::SeqCst) == generation {
            *current = Some(snapshot);
        }
    }

    /// Database reads of the set so far on this node.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    pub fn forget(&self) {
        let mut current = self.current.write();
        self.generation.fetch_add(1, Ordering::SeqCst);
        *current = None;
    }

    /// Applies a bus message from any node.
    pub fn on_bus(&self, msg: &BusMessage) {
        if matches!(msg, BusMessage::InvalidateFeatureFlags | BusMessage::Resync) {
            self.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(enabled: bool, percent: Option<i64>) -> Flag {
        Flag {
            row: FlagRow {
                id: "ff_01jdxq3z8m0000000000000000".parse().unwrap(),
                key: "new-dashboard".into(),
                description: String::new(),
                enabled,
                rollout_percent: percent,
                metadata: "{}".into(),
                created_at: 0,
                updated_at: 0,
            },
            overrides: HashMap::new(),
        }
    }

    #[test]
    fn overrides_win_then_the_switch_then_the_rollout() {
        let mut f = flag(false, None);
        assert!(!f.enabled_for("org_a"));
        f.overrides.insert("org_a".into(), true);
        assert!(f.enabled_for("org_a"), "an override wins over the switch");
        f.row.enabled = true;
        f.overrides.insert("org_b".into(), false);
        assert!(!f.enabled_for("org_b") && f.enabled_for("org_c"));
        f.row.rollout_percent = Some(0);
        assert!(!f.enabled_for("org_c") && f.enabled_for("org_a"));
    }

    #[test]
    fn a_rollout_is_stable_monotonic_and_near_its_share() {
        let orgs: Vec<String> = (0..2000).map(|i| format!("org_{i:026}")).collect();
        let on = |p: i64| -> Vec<bool> {
            let f = flag(true, Some(p));
            orgs.iter().map(|o| f.enabled_for(o)).collect()
        };
        let (at30, at60) = (on(30), on(60));
        assert_eq!(at30, on(30), "the same answer every time");
        assert!(at30.iter().zip(&at60).all(|(a, b)| !a || *b), "in at 30 % stays in at 60 %");
        let share = at30.iter().filter(|b| **b).count() as f64 / orgs.len() as f64;
        assert!((0.26..0.34).contains(&share), "{share}");
        assert!(on(100).iter().all(|b| *b) && on(0).iter().all(|b| !b));
    }
}
