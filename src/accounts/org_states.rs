//! The per-node list of organizations that may not act — suspended by a platform administrator,
//! or deleted (until their data is purged) — so authentication and webhook delivery refuse them
//! without a database read. Loaded at start-up; each change is carried by its bus message
//! (`OrgStateChanged`, applied by every node, the changing one first), and a bus resync reloads
//! it whole. State only; `accounts::service` and `admin` fill it.

use std::collections::HashMap;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::platform::bus::BusMessage;

/// Why an organization may not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Denial {
    Suspended,
    Deleted,
}

impl Denial {
    /// The error its credentials get.
    pub fn error(self) -> crate::error::Error {
        match self {
            Denial::Suspended => crate::error::Error::Denied {
                reason: "ORGANIZATION_SUSPENDED",
                message: "this organization is suspended by a platform administrator; its credentials are refused"
                    .into(),
            },
            Denial::Deleted => crate::error::Error::Denied {
                reason: "ORGANIZATION_DELETED",
                message: "this organization was deleted; its credentials are refused".into(),
            },
        }
    }
}

#[derive(Default)]
pub struct OrgStates {
    denied: RwLock<HashMap<String, Denial>>,
}

impl OrgStates {
    /// Why the organization may not act, if it may not.
    pub fn denial(&self, org: &str) -> Option<Denial> {
        let denied = self.denied.read();
        if denied.is_empty() { None } else { denied.get(org).copied() }
    }

    pub fn set(&self, org: &str, state: Option<Denial>) {
        let mut denied = self.denied.write();
        match state {
            Some(d) => {
                denied.insert(org.to_string(), d);
            }
            None => {
                denied.remove(org);
            }
        }
    }

    pub fn replace_all(&self, all: HashMap<String, Denial>) {
        *self.denied.write() = all;
    }

    /// Applies a change from any node. (A resync is handled by the composition root, which reads
    /// the list again.)
    pub fn on_bus(&self, msg: &BusMessage) {
        if let BusMessage::OrgStateChanged { org_id, state } = msg {
            self.set(org_id, *state);
        }
    }
}
