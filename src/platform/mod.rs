//! Platform: what knows no domain — database, bus, caches, ids, crypto, clock.

pub mod bus;
pub mod cache;
pub mod clock;
pub mod crypto;
pub mod db;
pub mod group_commit;
pub mod ids;
pub mod mail;
pub mod memory;
pub mod metrics;
pub mod patch;
