//! The resolution cache: host (or schema name) -> tenant, answered from memory.
//!
//! Two bounded caches: known hosts (TTL as a safety net) and unknown hosts (short TTL, capped
//! size, kept apart so a flood of random hosts can neither evict real tenants nor reach the
//! database once per request). Concurrent misses for one host share a single query, and an
//! unknown host is recorded as such before that query's waiters are released, so no request
//! arriving later repeats it.
//!
//! Freshness comes from the registry's triggers: the listener (`listener.rs`) LISTENs on
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;
use tenantry_core::Tenant;

use super::lookup::RegistryReader;
use crate::config::Config;
use crate::error::Error;

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
    /// (open streams, see `Tenantry::registry_changes`).
    changes: tokio::sync::watch::Sender<u64>,
    /// The registry listener is LISTENing (notifications reach [`Self::invalidate_all`]).
    listening: AtomicBool,
    /// Hits and misses, registered once (feature `metrics`).
    #[cfg(feature = "metrics")]
    counters: crate::metrics::ResolveCounters,
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
    pub(crate) fn new(config: &Config) -> Self {
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
            #[cfg(feature = "metrics")]
            counters: Default::default(),
        }
    }

    /// The invalidation count.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The tenant owning `host` (already normalised), from memory when possible.
    pub(crate) async fn get(
        &self,
        reader: &RegistryReader<'_>,
        host: &str,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        self.get_key(reader, KeyRef::Host(host)).await
    }

    /// The tenant whose schema is `schema` (already validated), from memory when possible.
    pub(crate) async fn get_schema(
        &self,
        reader: &RegistryReader<'_>,
        schema: &str,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        self.get_key(reader, KeyRef::Schema(schema)).await
    }

    async fn get_key(
        &self,
        reader: &RegistryReader<'_>,
        key_ref: KeyRef<'_>,
    ) -> Result<Option<Arc<Tenant>>, Arc<Error>> {
        // The hit path: no allocation.
        let generation = self.generation();
        if let Some(k) = self.known.get(&key_ref) {
            if k.generation == generation && k.expires > Instant::now() {
                #[cfg(feature = "metrics")]
                self.counters.count(true);
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
                    #[cfg(feature = "metrics")]
                    if attempt == 1 {
                        self.counters.count(true);
                    }
                    return Ok(None);
                }
                self.unknown.invalidate(&key).await;
            }
            #[cfg(feature = "metrics")]
            if attempt == 1 {
                self.counters.count(false);
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
                    Key::Host(h) => reader.tenant_by_domain(h).await,
                    Key::Schema(schema) => reader.tenant_by_schema(schema).await,
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
    pub(crate) fn invalidate_all(&self) {
        // Bump first: whatever a running lookup inserts from now on is already stale.
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.known.clear();
        self.in_flight.invalidate_all();
        self.unknown.invalidate_all();
        self.changes.send_replace(self.generation());
    }

    /// A receiver that changes on every invalidation.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Records whether the registry listener is LISTENing.
    pub(crate) fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
    }

    /// Whether the registry listener is connected and LISTENing.
    pub(crate) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Exact entry counts (known, unknown) after moka's pending maintenance has run.
    pub(crate) async fn counts(&self) -> (u64, u64) {
        self.unknown.run_pending_tasks().await;
        (self.known.len() as u64, self.unknown.entry_count())
    }
}
