//! Host -> tenant resolution, answered from memory.
//!
//! Two bounded caches: known hosts (TTL as a safety net) and unknown hosts (short TTL, capped
//! size, kept apart so a flood of random hosts can neither evict real tenants nor reach the
//! database once per request). Concurrent misses for one host share a single query, and an
//! unknown host is recorded as such before that query's waiters are released, so no request
//! arriving later repeats it.
//!
//! Freshness comes from the registry's triggers: [`spawn_listener`] LISTENs on
//! [`crate::NOTIFY_CHANNEL`] over a dedicated connection and empties both caches on every
//! notification, and again once a lost connection is re-established and LISTENing
//! (notifications sent while disconnected are lost, so a full refresh is the only safe answer).
//!
//! A lookup that was already running when an invalidation happened may have read the registry
//! before the change: every entry carries the *generation* (invalidation count) current when its
//! query started, and entries from an older generation are never served again.
//!
//! Hits are the hot path of every request: known hosts live in a `quick_cache` map read with a
//! borrowed key (a shard read lock, no allocation, no per-read bookkeeping beyond a bit); misses
//! go through a small, short-lived moka cache whose only job is to coalesce concurrent lookups of
//! one key into one query and share its answer or error with every waiter.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use moka::future::Cache;
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgListener, PgPool};
use tenantry_core::Tenant;

use crate::error::Error;
use crate::handle::{Config, Inner, Tenantry};
use crate::registry::{NOTIFY_CHANNEL, TenantRow};

/// Bound on cached known hosts; far above any realistic fleet, it only caps pathological growth.
const POSITIVE_CAPACITY: u64 = 1_000_000;

/// Room for lookups in flight (the coalescing cache); entries live only briefly.
const IN_FLIGHT_CAPACITY: u64 = 10_000;

/// How long the coalescing cache keeps an answer (it is copied to `known` at once).
const IN_FLIGHT_TTL: Duration = Duration::from_secs(1);

/// Lookups retried when an invalidation lands while they run (then the last answer is used).
const MAX_ATTEMPTS: usize = 3;

#[derive(Clone)]
struct Known {
    generation: u64,
    /// The TTL safety net.
    expires: Instant,
    tenant: Arc<Tenant>,
}

pub(crate) struct ResolverCache {
    /// Known keys: the hit path.
    known: quick_cache::sync::Cache<Key, Known, quick_cache::UnitWeighter>,
    /// Coalesces concurrent misses of one key (one query, answer or error shared).
    in_flight: Cache<Key, Known>,
    ttl: Duration,
    /// Unknown key -> generation it was found unknown in.
    unknown: Cache<Key, u64>,
    generation: AtomicU64,
    /// Every invalidation's new generation, for whoever must re-check a tenant it holds
    /// (open streams, see [`Tenantry::registry_changes`]).
    changes: tokio::sync::watch::Sender<u64>,
    /// The registry listener is LISTENing (notifications reach [`Self::invalidate_all`]).
    listening: AtomicBool,
}

/// What a cache entry is keyed by: a host, or a schema name (subfolder and header strategies).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Host(String),
    Schema(String),
}

/// A [`Key`] borrowed from the request, for lookups without allocating.
#[derive(Clone, Copy)]
enum KeyRef<'a> {
    Host(&'a str),
    Schema(&'a str),
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        KeyRef::from(self).hash(state)
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            KeyRef::Host(h) => (0u8, *h).hash(state),
            KeyRef::Schema(s) => (1u8, *s).hash(state),
        }
    }
}

impl<'a> From<&'a Key> for KeyRef<'a> {
    fn from(key: &'a Key) -> Self {
        match key {
            Key::Host(h) => KeyRef::Host(h),
            Key::Schema(s) => KeyRef::Schema(s),
        }
    }
}

impl KeyRef<'_> {
    fn to_key(self) -> Key {
        match self {
            KeyRef::Host(h) => Key::Host(h.to_owned()),
            KeyRef::Schema(s) => Key::Schema(s.to_owned()),
        }
    }
}

impl quick_cache::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        match (self, key) {
            (KeyRef::Host(a), Key::Host(b)) | (KeyRef::Schema(a), Key::Schema(b)) => *a == b,
            _ => false,
        }
    }
}

enum Miss {
    /// Not in the registry, as of the generation the lookup started in.
    NotFound(u64),
    /// Shared by every waiter of the lookup; the error keeps its kind (e.g. unavailable).
    Db(Arc<Error>),
}

impl ResolverCache {
    pub fn new(config: &Config) -> Self {
        Self {
            // Sized as it fills (estimated 1,024 entries), bounded at POSITIVE_CAPACITY.
            known: quick_cache::sync::Cache::with_weighter(
                1024,
                POSITIVE_CAPACITY,
                quick_cache::UnitWeighter,
            ),
            in_flight: Cache::builder()
                .max_capacity(IN_FLIGHT_CAPACITY)
                .time_to_live(IN_FLIGHT_TTL)
                .build(),
            ttl: config.cache_ttl,
            unknown: Cache::builder()
                .max_capacity(config.negative_cache_capacity)
                .time_to_live(config.negative_cache_ttl)
                .build(),
            generation: AtomicU64::new(0),
            changes: tokio::sync::watch::Sender::new(0),
            listening: AtomicBool::new(false),
        }
    }

    /// The invalidation count.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The tenant owning `host` (already normalised), from memory when possible.
    pub async fn get(
        &self,
        tenantry: &Tenantry,
        host: &str,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        self.get_key(tenantry, KeyRef::Host(host)).await
    }

    /// The tenant whose schema is `schema` (already validated), from memory when possible.
    pub async fn get_schema(
        &self,
        tenantry: &Tenantry,
        schema: &str,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        self.get_key(tenantry, KeyRef::Schema(schema)).await
    }

    async fn get_key(
        &self,
        tenantry: &Tenantry,
        key_ref: KeyRef<'_>,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        // The hit path: no allocation.
        let generation = self.generation();
        if let Some(k) = self.known.get(&key_ref) {
            if k.generation == generation && k.expires > Instant::now() {
                return Ok(Some(k.tenant));
            }
            // Stale (raced with an invalidation) or expired: drop it, look up again.
            self.known.remove(&key_ref);
        }
        let key = key_ref.to_key();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let generation = self.generation();
            if let Some(g) = self.unknown.get(&key).await {
                if g == generation {
                    return Ok(None);
                }
                self.unknown.invalidate(&key).await;
            }
            // An answer kept by the coalescing cache is reused only if still current.
            if let Some(k) = self.in_flight.get(&key).await
                && (k.generation != generation || k.expires <= Instant::now())
            {
                self.in_flight.invalidate(&key).await;
            }
            let lookup = async {
                // The generation *before* the query: an invalidation during it marks the
                // answer stale.
                let generation = self.generation();
                let found = match &key {
                    Key::Host(h) => lookup_domain(tenantry, h).await,
                    Key::Schema(schema) => lookup_schema(tenantry, schema).await,
                };
                match found {
                    Ok(Some(t)) => Ok(Known {
                        generation,
                        expires: Instant::now() + self.ttl,
                        tenant: Arc::new(t),
                    }),
                    Ok(None) => {
                        // Recorded before the waiters are released: a request arriving after
                        // this lookup finds the host in `unknown` instead of querying again.
                        self.unknown.insert(key.clone(), generation).await;
                        Err(Miss::NotFound(generation))
                    }
                    Err(e) => Err(Miss::Db(Arc::new(e))),
                }
            };
            let (answer, answered_in) = match self.in_flight.try_get_with(key.clone(), lookup).await
            {
                Ok(k) => {
                    let g = k.generation;
                    // Served from memory from now on (if no invalidation came in between; the
                    // generation check on every hit covers a late insert).
                    if g == self.generation() {
                        self.known.insert(key.clone(), k.clone());
                    }
                    (Some(k.tenant), g)
                }
                Err(miss) => match &*miss {
                    Miss::NotFound(g) => (None, *g),
                    Miss::Db(e) => return Err(Arc::clone(e)),
                },
            };
            // Joined a lookup that started before an invalidation: its answer may predate the
            // change, so look again (bounded: under a storm of notifications, use the answer).
            if answered_in == self.generation() || attempt >= MAX_ATTEMPTS {
                return Ok(answer);
            }
        }
    }

    /// Forgets everything, including the answers of lookups still running.
    pub fn invalidate_all(&self) {
        // Bump first: whatever a running lookup inserts from now on is already stale.
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.known.clear();
        self.in_flight.invalidate_all();
        self.unknown.invalidate_all();
        self.changes.send_replace(self.generation());
    }

    /// Whether the registry listener is connected and LISTENing.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Number of cached known hosts (approximate; for diagnostics and benchmarks).
    pub fn len(&self) -> u64 {
        self.known.len() as u64
    }

    /// Exact entry counts (known, unknown) after moka's pending maintenance has run.
    async fn counts(&self) -> (u64, u64) {
        self.unknown.run_pending_tasks().await;
        (self.known.len() as u64, self.unknown.entry_count())
    }
}

impl Tenantry {
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

    /// A receiver that changes whenever the resolution cache is emptied: a registry change
    /// heard by the listener (tenant or domain rows, schema drops and renames), a listener
    /// reconnect, or [`Tenantry::invalidate_cache`]. Long-lived holders of a tenant (streams,
    /// sockets) wait on it to re-check their tenant.
    pub fn registry_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.cache.changes.subscribe()
    }

    /// Whether the registry listener is connected (changes are then heard within
    /// milliseconds; otherwise only when cached entries expire).
    pub fn registry_listener_connected(&self) -> bool {
        self.inner.cache.listening()
    }
}

async fn lookup_domain(tenantry: &Tenantry, host: &str) -> Result<Option<Tenant>, Error> {
    let inner = &tenantry.inner;
    let sql = format!(
        "{} JOIN {} d ON d.tenant_id = t.id WHERE d.domain = $1",
        inner.sql.select_resolved, inner.sql.domains
    );
    registry_row(tenantry, sql, host).await
}

async fn lookup_schema(tenantry: &Tenantry, schema: &str) -> Result<Option<Tenant>, Error> {
    let inner = &tenantry.inner;
    let sql = format!("{} WHERE t.schema_name = $1", inner.sql.select_resolved);
    registry_row(tenantry, sql, schema).await
}

/// Runs a registry lookup in a transaction that holds the registry lock shared (taken before
/// `BEGIN`, in the same round trip): no registry write is in progress while it reads, so the
/// registry version it reads is exactly the version of the rows it reads (see
/// `Tenant::registry_version`). Three round trips: lookups are cache misses only. Behind a
/// transaction pooler the statement is unnamed (named ones leak between the pooler's clients).
async fn registry_row(
    tenantry: &Tenantry,
    sql: String,
    key: &str,
) -> Result<Option<Tenant>, Error> {
    let inner = &tenantry.inner;
    let query = sqlx::query_as::<_, TenantRow>(AssertSqlSafe(sql))
        .bind(key)
        .persistent(!inner.config.transaction_pooler);
    let begin = format!(
        "SELECT pg_advisory_xact_lock_shared({}); BEGIN",
        crate::registry::REGISTRY_LOCK
    );
    let mut tx = crate::handle::begin_shielded(&inner.pool, begin).await?;
    let row = query.fetch_optional(&mut *tx).await?;
    tx.commit().await?;
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
                if inner.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = Duration::from_millis(100);
            // Listening again: whatever changed while we were not is unknown, start from scratch.
            match inner.upgrade() {
                Some(i) => {
                    i.cache.listening.store(true, Ordering::Release);
                    i.cache.invalidate_all();
                }
                None => return,
            }
            loop {
                // Wake up now and then to notice that the handle is gone.
                let next = tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await;
                let Some(i) = inner.upgrade() else { return };
                match next {
                    Err(_elapsed) => continue,
                    Ok(Ok(Some(_))) => i.cache.invalidate_all(),
                    // Connection lost. Empty the cache now, then reconnect with a fresh listener
                    // (the outer loop) so that the full refresh happens only once LISTEN is
                    // active again: entries cached in between may predate missed notifications.
                    Ok(Ok(None)) => {
                        tracing::warn!(
                            "tenantry: registry listener lost its connection; reconnecting"
                        );
                        i.cache.listening.store(false, Ordering::Release);
                        i.cache.invalidate_all();
                        break;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "tenantry: registry listener failed; reconnecting");
                        i.cache.listening.store(false, Ordering::Release);
                        i.cache.invalidate_all();
                        break;
                    }
                }
            }
        }
    });
}
