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

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};

use super::begin::begin_retrying;

/// The shard pools (none when sharding is off).
pub(crate) struct Shards {
    pools: Vec<PgPool>,
}

impl Shards {
    /// `count` lazily connecting pools sharing `options`' size (at least one connection each).
    pub(crate) fn new(count: usize, options: &PgPoolOptions, connect: &PgConnectOptions) -> Self {
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

    /// The home shard of `schema`, if sharding is on (see [`shard_of`]).
    pub(crate) fn for_schema(&self, schema: &str) -> Option<usize> {
        if self.pools.is_empty() {
            return None;
        }
        Some(shard_of(schema, self.pools.len()))
    }

    /// Opens a transaction with `sql` on shard `home` (spilling over to an idle connection of the
    /// next shard when `home` is full and busy); retried on connections found dead, shielded
    /// against cancellation like every scoped `BEGIN`.
    pub(crate) async fn begin(
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
    pub(crate) fn sizes(&self) -> Vec<u32> {
        self.pools.iter().map(PgPool::size).collect()
    }

    /// Closes every shard.
    pub(crate) async fn close(&self) {
        for pool in &self.pools {
            pool.close().await;
        }
    }
}

/// The home shard of `schema` among `shards`: the first 8 bytes of the SHA-256 of the name (big
/// endian) modulo `shards`. A fixed algorithm over the name's bytes, so every instance, build and
/// Rust version agrees on it (std's `Hash` for `str` makes no such promise); pinned by the test
/// below.
pub(crate) fn shard_of(schema: &str, shards: usize) -> usize {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(schema.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::shard_of;

    #[test]
    fn shard_choice_is_pinned() {
        let names = ["acme", "globex", "initech", "t000001", "t099999", "a"];
        let got: Vec<usize> = names.iter().map(|n| shard_of(n, 8)).collect();
        // Changing these moves every tenant to another shard in a rolling deployment: don't.
        assert_eq!(got, PINNED);
        assert!(names.iter().all(|n| shard_of(n, 1) == 0));
    }

    // Computed independently: python3 -c "import hashlib; [int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], 'big') % 8 for n in ...]"
    const PINNED: [usize; 6] = [0, 7, 3, 5, 6, 2];
}
