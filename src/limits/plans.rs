//! The per-node plan and policy caches: each organization's plan (cleared on every node when a
//! plan or an organization's plan changes), and the policies built from a plan version and a key
//! override (never stale: an edited plan has a new version). State only; `limits::service` fills it.

use std::sync::Arc;
use std::time::Duration;

use super::model::PlanRow;
use super::policy::{Override, Policy};
use crate::platform::bus::BusMessage;
use crate::platform::cache::{FastCache, fast_cache};

/// A plan as a cache key: its id and version (an edited plan has a new `updated_at`), cloned as a
/// pointer.
#[derive(Clone)]
pub struct PlanVersion(pub Arc<PlanRow>);

impl PartialEq for PlanVersion {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id && self.0.updated_at == other.0.updated_at
    }
}

impl Eq for PlanVersion {}

impl std::hash::Hash for PlanVersion {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
        self.0.updated_at.hash(state);
    }
}

pub struct Plans {
    by_org: FastCache<String, Arc<PlanRow>>,
    /// Each organization on an overage plan: the monthly count its spend cap affords (-1: no cap).
    stops: FastCache<String, i64>,
    policies: FastCache<(PlanVersion, Option<Override>, Option<u64>), Arc<Policy>>,
    /// The policy of unauthenticated callers (per IP).
    pub anonymous: Arc<Policy>,
    /// The policy of failed credentials (per IP).
    pub failed_credentials: Arc<Policy>,
    /// Password changes per user (see [`Policy::password_changes`]).
    pub password_changes: Arc<Policy>,
}

impl Default for Plans {
    fn default() -> Self {
        Self {
            by_org: fast_cache(100_000, Some(Duration::from_secs(60))),
            stops: fast_cache(100_000, Some(Duration::from_secs(60))),
            policies: fast_cache(10_000, None),
            anonymous: Arc::new(Policy::anonymous()),
            failed_credentials: Arc::new(Policy::failed_credentials()),
            password_changes: Arc::new(Policy::password_changes()),
        }
    }
}

impl Plans {
    pub fn of_org(&self, org: &str) -> Option<Arc<PlanRow>> {
        self.by_org.get(org)
    }

    pub fn store(&self, org: String, plan: Arc<PlanRow>) {
        self.by_org.insert(org, plan);
    }

    pub fn stop_of(&self, org: &str) -> Option<Option<u64>> {
        self.stops.get(org).map(|s| u64::try_from(s).ok())
    }

    pub fn store_stop(&self, org: String, stop: Option<u64>) {
        self.stops.insert(org, stop.map_or(-1, |s| s as i64));
    }

    pub fn forget_all(&self) {
        self.by_org.invalidate_all();
        self.stops.invalidate_all();
    }

    /// The policy of a plan with an optional key override and spend stop, built once per plan
    /// version.
    pub fn policy(&self, plan: Arc<PlanRow>, o: Option<&Override>, stop: Option<u64>) -> Arc<Policy> {
        let key = (PlanVersion(plan.clone()), o.cloned(), stop);
        self.policies.get_with(key, || {
            Arc::new(
                match o {
                    Some(o) => Policy::with_override(plan, o),
                    None => Policy::from_plan(plan),
                }
                .with_stop(stop),
            )
        })
    }

    /// Applies a bus message from any node. Returns whether the per-operation costs must be read
    /// again too (they travel with plan changes).
    pub fn on_bus(&self, msg: &BusMessage) -> bool {
        match msg {
            BusMessage::InvalidatePlans | BusMessage::Resync => {
                self.forget_all();
                true
            }
            _ => false,
        }
    }
}
