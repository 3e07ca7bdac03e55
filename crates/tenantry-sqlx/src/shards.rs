//! Tenant-affine connection shards (see [`crate::TenantryBuilder::pool_shards`]).
//!
//! A PostgreSQL backend caches the catalog entries and relation descriptors of every table it
//! touches and never evicts them. Over one shared pool, every connection ends up serving every
//! tenant: with a large fleet, most requests land on a backend that has to load that tenant's
//! tables first, and every backend's memory grows with the fleet. Here each tenant has a home
//! shard (a small pool of its own) chosen by a fixed hash of its schema name, so each backend
//! only ever sees a slice of the fleet.
//!
//! Choosing a connection: an idle one of the home shard, or a new one there while it has room;
//! when it is full and busy, an idle one of the next shard (a tenant's tables are then warm in
//! at most two shards); else wait for the home shard.

use std::hash::{Hash, Hasher};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};

use crate::handle::begin_retrying;

/// The shard pools (none when sharding is off).
pub(crate) struct Shards {
    pools: Vec<PgPool>,
}

impl Shards {
    /// `count` lazily connecting pools sharing `options`' size (at least one connection each).
    pub fn new(count: usize, options: &PgPoolOptions, connect: &PgConnectOptions) -> Self {
        if count <= 1 {
            return Self { pools: Vec::new() };
        }
        let per_shard = options.get_max_connections().div_ceil(count as u32).max(1);
        let pools = (0..count)
            .map(|_| {
                options
                    .clone()
                    .max_connections(per_shard)
                    .min_connections(0)
                    .connect_lazy_with(connect.clone())
            })
            .collect();
        Self { pools }
    }

    /// The home shard of `schema`, if sharding is on. The hash is fixed (not seeded per
    /// process), so every instance of an application agrees on it.
    pub fn for_schema(&self, schema: &str) -> Option<usize> {
        if self.pools.is_empty() {
            return None;
        }
        // SipHash with zero keys: stable across processes and runs of the same build.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new();
        schema.hash(&mut h);
        Some((h.finish() % self.pools.len() as u64) as usize)
    }

    /// Opens a transaction with `sql` on shard `home` (spilling over to an idle connection of the
    /// next shard when `home` is full and busy); retried on connections found dead, shielded
    /// against cancellation like every scoped `BEGIN`.
    pub async fn begin(
        &self,
        home: usize,
        sql: String,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let n = self.pools.len();
        let (home, next) = (&self.pools[home], &self.pools[(home + 1) % n]);
        begin_retrying(|| {
            let (home, next, sql) = (home.clone(), next.clone(), sql.clone());
            Box::pin(async move {
                // Home first: an idle connection, or room to open one.
                if let Some(tx) = home.try_begin_with(AssertSqlSafe(sql.clone())).await? {
                    return Ok(tx);
                }
                if home.size() >= home.options().get_max_connections()
                    && let Some(tx) = next.try_begin_with(AssertSqlSafe(sql.clone())).await?
                {
                    return Ok(tx);
                }
                home.begin_with(AssertSqlSafe(sql)).await
            })
        })
        .await
    }

    /// Connections open in each shard (diagnostics, tests).
    pub fn sizes(&self) -> Vec<u32> {
        self.pools.iter().map(PgPool::size).collect()
    }

    /// Closes every shard.
    pub async fn close(&self) {
        for pool in &self.pools {
            pool.close().await;
        }
    }
}
