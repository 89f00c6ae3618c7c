//! Platform: what knows no domain — database, bus, ids, crypto, clock.

pub mod bus;
pub mod clock;
pub mod crypto;
pub mod db;
pub mod group_commit;
pub mod ids;
