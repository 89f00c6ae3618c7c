//! Per-node caches whose keys the server derives itself (keyed hashes, ids): moka, hashed with
//! foldhash (randomly seeded per cache) rather than SipHash. A cache keyed by text a caller
//! chooses (the GraphQL document cache) keeps SipHash.

pub type FastCache<K, V> = moka::sync::Cache<K, V, foldhash::fast::RandomState>;

/// A cache of at most `capacity` entries, each living `ttl` (or until evicted) when given.
pub fn fast_cache<K, V>(capacity: u64, ttl: Option<std::time::Duration>) -> FastCache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let builder = moka::sync::Cache::builder().max_capacity(capacity);
    let builder = match ttl {
        Some(ttl) => builder.time_to_live(ttl),
        None => builder,
    };
    builder.build_with_hasher(foldhash::fast::RandomState::default())
}
