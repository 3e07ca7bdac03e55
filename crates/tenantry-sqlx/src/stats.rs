//! Diagnostics of a [`Tenantry`], gathered behind one call: [`Tenantry::stats`].

use crate::handle::Tenantry;

/// A snapshot of a handle's caches, pools and listener (diagnostics, tests, benchmarks).
/// Fields may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Hosts and schema names cached as known tenants.
    pub known_hosts: u64,
    /// Hosts and schema names cached as unknown, after pending evictions were applied: never
    /// more than [`crate::Config::negative_cache_capacity`].
    pub unknown_hosts: u64,
    /// How many times the resolution cache has been emptied (registry notifications, listener
    /// reconnects, [`Tenantry::invalidate_cache`]).
    pub resolver_generation: u64,
    /// Whether the registry listener is connected (changes are then heard within
    /// milliseconds; otherwise only when cached entries expire).
    pub listener_connected: bool,
    /// Connections open in the main pool.
    pub pool_size: u32,
    /// Connections open in each connection shard (empty when sharding is off, see
    /// [`crate::TenantryBuilder::pool_shards`]).
    pub pool_shard_sizes: Vec<u32>,
    /// (tenant, statement) pairs admitted to a prepared statement of their own so far (see
    /// [`crate::TenantryBuilder::tenant_plans`]).
    pub statement_budget_admitted: usize,
}

impl Tenantry {
    /// Diagnostics: cache sizes, resolver generation, listener state, pool and shard sizes,
    /// per-tenant statement budget use. Runs the unknown-host cache's pending evictions first
    /// so its count is exact; sends nothing to the database.
    ///
    /// ```no_run
    /// # async fn demo(tenantry: tenantry_sqlx::Tenantry) {
    /// let stats = tenantry.stats().await;
    /// println!("{} known hosts, listener up: {}", stats.known_hosts, stats.listener_connected);
    /// # }
    /// ```
    pub async fn stats(&self) -> Stats {
        let inner = &self.inner;
        let (known_hosts, unknown_hosts) = inner.cache.counts().await;
        Stats {
            known_hosts,
            unknown_hosts,
            resolver_generation: inner.cache.generation(),
            listener_connected: inner.cache.listening(),
            pool_size: inner.pool.size(),
            pool_shard_sizes: inner.shards.sizes(),
            statement_budget_admitted: inner.budget.admitted(),
        }
    }
}
