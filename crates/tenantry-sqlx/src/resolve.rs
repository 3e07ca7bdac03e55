//! Host -> tenant resolution, answered from memory.
//!
//! Two bounded caches: known hosts (TTL as a safety net) and unknown hosts (short TTL, capped
//! size, kept apart so a flood of random hosts can neither evict real tenants nor reach the
//! database once per request). Concurrent misses for one host share a single query.
//!
//! Freshness comes from the registry's triggers: [`spawn_listener`] LISTENs on
//! [`crate::NOTIFY_CHANNEL`] over a dedicated connection and empties both caches on every
//! notification, and again after any reconnect (notifications sent while disconnected are lost,
//! so a full refresh is the only safe answer).

use std::sync::{Arc, Weak};
use std::time::Duration;

use moka::future::Cache;
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgListener, PgPool};
use tenantry_core::Tenant;

use crate::error::Error;
use crate::handle::{Config, Inner, Tenantry};
use crate::registry::{NOTIFY_CHANNEL, TenantRow};

/// Bound on cached known hosts; far above any realistic fleet, it only caps pathological growth.
const POSITIVE_CAPACITY: u64 = 1_000_000;

pub(crate) struct ResolverCache {
    known: Cache<Key, Arc<Tenant>>,
    unknown: Cache<Key, ()>,
}

/// What a cache entry is keyed by: a host, or a schema name (subfolder and header strategies).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Host(String),
    Schema(String),
}

enum Miss {
    NotFound,
    Db(Error),
}

impl ResolverCache {
    pub fn new(config: &Config) -> Self {
        Self {
            known: Cache::builder()
                .max_capacity(POSITIVE_CAPACITY)
                .time_to_live(config.cache_ttl)
                .build(),
            unknown: Cache::builder()
                .max_capacity(config.negative_cache_capacity)
                .time_to_live(config.negative_cache_ttl)
                .build(),
        }
    }

    /// The tenant owning `host` (already normalised), from memory when possible.
    pub async fn get(
        &self,
        tenantry: &Tenantry,
        host: String,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        self.get_key(tenantry, Key::Host(host)).await
    }

    /// The tenant whose schema is `schema` (already validated), from memory when possible.
    pub async fn get_schema(
        &self,
        tenantry: &Tenantry,
        schema: String,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        self.get_key(tenantry, Key::Schema(schema)).await
    }

    async fn get_key(
        &self,
        tenantry: &Tenantry,
        key: Key,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        if let Some(t) = self.known.get(&key).await {
            return Ok(Some(t));
        }
        if self.unknown.contains_key(&key) {
            return Ok(None);
        }
        let lookup = async {
            let found = match &key {
                Key::Host(host) => lookup_domain(tenantry, host).await,
                Key::Schema(schema) => lookup_schema(tenantry, schema).await,
            };
            match found {
                Ok(Some(t)) => Ok(Arc::new(t)),
                Ok(None) => Err(Miss::NotFound),
                Err(e) => Err(Miss::Db(e)),
            }
        };
        match self.known.try_get_with(key.clone(), lookup).await {
            Ok(t) => Ok(Some(t)),
            Err(miss) => match &*miss {
                Miss::NotFound => {
                    self.unknown.insert(key, ()).await;
                    Ok(None)
                }
                Miss::Db(e) => Err(Arc::new(Error::Refused(format!(
                    "tenant lookup failed: {e}"
                )))),
            },
        }
    }

    pub fn invalidate_all(&self) {
        self.known.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// Number of cached known hosts (approximate; for diagnostics and benchmarks).
    pub fn len(&self) -> u64 {
        self.known.entry_count()
    }
}

async fn lookup_domain(tenantry: &Tenantry, host: &str) -> Result<Option<Tenant>, Error> {
    let inner = &tenantry.inner;
    let sql = format!(
        "{} JOIN {} d ON d.tenant_id = t.id WHERE d.domain = $1",
        inner.sql.select_tenant, inner.sql.domains
    );
    let row: Option<TenantRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(host)
        .fetch_optional(&inner.pool)
        .await?;
    Ok(row.map(|r| r.0))
}

async fn lookup_schema(tenantry: &Tenantry, schema: &str) -> Result<Option<Tenant>, Error> {
    let inner = &tenantry.inner;
    let sql = format!("{} WHERE t.schema_name = $1", inner.sql.select_tenant);
    let row: Option<TenantRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(schema)
        .fetch_optional(&inner.pool)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Listens for registry changes and empties the cache on each; reconnects forever.
/// Stops when the last [`Tenantry`] handle is dropped.
pub(crate) fn spawn_listener(inner: Weak<Inner>, listen_pool: PgPool) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match PgListener::connect_with(&listen_pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "tenantry: registry listener cannot connect; retrying");
                    if inner.strong_count() == 0 {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
                tracing::warn!(error = %e, "tenantry: LISTEN failed; retrying");
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(100);
            // Whatever changed while we were not listening is unknown: start from scratch.
            match inner.upgrade() {
                Some(i) => i.cache.invalidate_all(),
                None => return,
            }
            loop {
                // Wake up now and then to notice that the handle is gone.
                let next = tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await;
                let Some(i) = inner.upgrade() else { return };
                match next {
                    Err(_elapsed) => continue,
                    Ok(Ok(Some(_))) => i.cache.invalidate_all(),
                    // Connection lost (sqlx reconnects on the next call): notifications may
                    // have been missed.
                    Ok(Ok(None)) => i.cache.invalidate_all(),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "tenantry: registry listener failed; reconnecting");
                        i.cache.invalidate_all();
                        break;
                    }
                }
            }
        }
    });
}
