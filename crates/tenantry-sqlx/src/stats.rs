//! Diagnostics of a [`Tenantry`]: cache, shards, statement budget, listener.

use crate::handle::Tenantry;

impl Tenantry {
    /// Open connections per shard (empty when sharding is off).
    pub fn pool_shard_sizes(&self) -> Vec<u32> {
        self.inner.shards.sizes()
    }

    /// How many (tenant, statement) pairs have a prepared statement of their own so far (see
    /// [`TenantryBuilder::tenant_plans`]).
    pub fn tenant_plans_admitted(&self) -> usize {
        self.inner.budget.admitted()
    }

    /// Number of hosts currently cached as known (diagnostics, benchmarks).
    pub fn cached_hosts(&self) -> u64 {
        self.inner.cache.len()
    }
    /// Entries in the resolution cache: `(known hosts, unknown hosts)`, after pending evictions
    /// have been applied (diagnostics, tests, benchmarks). The unknown-host count never exceeds
    /// [`Config::negative_cache_capacity`].
    pub async fn resolver_cache_counts(&self) -> (u64, u64) {
        self.inner.cache.counts().await
    }

    /// How many times the resolution cache has been emptied (registry notifications, listener
    /// reconnects, [`Tenantry::invalidate_cache`]).
    pub fn resolver_generation(&self) -> u64 {
        self.inner.cache.generation()
    }

    /// Whether the registry listener is connected (changes are then heard within
    /// milliseconds; otherwise only when cached entries expire).
    pub fn registry_listener_connected(&self) -> bool {
        self.inner.cache.listening()
    }
}
