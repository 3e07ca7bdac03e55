//! A cache with its tenant: keys live under a prefix derived from the tenant's registry id
//! ([`Tenant::id`]), never its schema name, on Redis or in process.
//!
//! Build one [`TenantCache`] at start ([`TenantCache::redis`] or [`TenantCache::in_process`]),
//! then take a [`TenantScope`] per tenant with [`TenantCache::for_tenant`]. Its
//! `get`/`set`/`delete` take the application's key text as it is: the text is percent-encoded
//! into the tenant's prefix (`<namespace>:t:<id>:<encoded key>`), so that no key text, whatever
//! separators, glob characters (`*`, `?`, `[`), `..`, NUL or unicode it holds, can name a key
//! under another tenant's prefix.
//!
//! ```no_run
//! use std::time::Duration;
//! use tenantry_cache::TenantCache;
//! # async fn demo(tenant: &tenantry_core::Tenant) -> Result<(), tenantry_cache::Error> {
//! let cache = TenantCache::redis("redis://127.0.0.1:6379").await?.namespace("notes-app")?;
//! let scope = cache.for_tenant(tenant);
//! scope.set_json("note-count", &42_i64, Some(Duration::from_secs(60))).await?;
//! assert_eq!(scope.get_json::<i64>("note-count").await?, Some(42));
//! # Ok(())
//! # }
//! ```
//!
//! # Deletion and renames
//!
//! A deleted tenant's keys are removed by [`TenantCache::drop_tenant`] (Redis: `SCAN` over the
//! tenant's prefix and `UNLINK` in batches). Call it after `admin().delete_tenant(...)` returns,
//! or register [`CacheHooks`] (a [`TenantHooks`](tenantry_sqlx::TenantHooks) adapter around
//! the application's own hooks) to run it from `after_delete`, once the deletion has
//! committed. Registry ids are never reused
//! (an identity column), so keys a concurrent request writes after the drop are unreachable by
//! any other tenant; calling `drop_tenant` after the delete as well removes them too.
//!
//! A rename changes the schema name, not the id: the tenant keeps its keys, and the tenant
//! that later takes the old name starts with none.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tenantry_core::Tenant;

mod hooks;

pub use hooks::CacheHooks;

/// Default namespace: the first part of every key.
pub const DEFAULT_NAMESPACE: &str = "tenantry";

/// Default capacity (entries) of the in-process cache.
pub const DEFAULT_IN_PROCESS_CAPACITY: u64 = 100_000;

/// How many keys `drop_tenant` asks `SCAN` for, and unlinks, per round trip.
const DROP_BATCH: usize = 500;

/// Everything but ASCII letters, digits, `-` and `_` is percent-encoded: the encoded key has no
/// `:` (the prefix separator), no glob character and no `%`-free escape back to raw bytes.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis refused, or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A value could not be encoded to, or decoded from, JSON.
    #[error("cache value is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A namespace that is empty or holds other characters than ASCII letters, digits, `-`
    /// and `_`.
    #[error("invalid cache namespace {0:?}: use 1 to 64 ASCII letters, digits, '-' or '_'")]
    InvalidNamespace(String),
}

/// Result of the cache's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value in the in-process cache with its time to live.
#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    ttl: Option<Duration>,
}

/// Expiry of in-process entries: each entry's own time to live, reset on update (as Redis
/// `SET ... PX` does).
struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        entry.ttl
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        entry.ttl
    }
}

#[derive(Clone)]
enum Backend {
    Redis(ConnectionManager),
    InProcess(moka::future::Cache<String, Entry>),
}

/// The cache of every tenant: Redis or in process. Cheap to clone (shares the connection or
/// the in-process store).
#[derive(Clone)]
pub struct TenantCache {
    backend: Backend,
    namespace: Arc<str>,
}

impl fmt::Debug for TenantCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCache")
            .field("backend", &self.backend_name())
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl TenantCache {
    /// Connects to Redis at `url` (`redis://host:port/db`, `rediss://...` for TLS is not
    /// compiled in) with a connection manager that reconnects on its own. Fails if Redis
    /// can't be reached now.
    pub async fn redis(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let manager = ConnectionManager::new(client).await?;
        Ok(Self {
            backend: Backend::Redis(manager),
            namespace: DEFAULT_NAMESPACE.into(),
        })
    }

    /// An in-process cache of at most [`DEFAULT_IN_PROCESS_CAPACITY`] entries (least recently
    /// used evicted first), for one process or tests.
    pub fn in_process() -> Self {
        Self::in_process_with_capacity(DEFAULT_IN_PROCESS_CAPACITY)
    }

    /// An in-process cache of at most `entries` entries.
    pub fn in_process_with_capacity(entries: u64) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(entries)
            .expire_after(PerEntryTtl)
            .build();
        Self {
            backend: Backend::InProcess(cache),
            namespace: DEFAULT_NAMESPACE.into(),
        }
    }

    /// The same cache with every key under `namespace` (default [`DEFAULT_NAMESPACE`]): two
    /// applications sharing a Redis keep apart. 1 to 64 ASCII letters, digits, `-` or `_`.
    pub fn namespace(mut self, namespace: &str) -> Result<Self> {
        let valid = (1..=64).contains(&namespace.len())
            && namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(Error::InvalidNamespace(namespace.to_owned()));
        }
        self.namespace = namespace.into();
        Ok(self)
    }

    /// `"redis"` or `"in-process"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Redis(_) => "redis",
            Backend::InProcess(_) => "in-process",
        }
    }

    /// The cache of `tenant`, keyed by its registry id.
    pub fn for_tenant(&self, tenant: &Tenant) -> TenantScope {
        self.for_tenant_id(tenant.id)
    }

    /// The cache of the tenant with registry id `id`.
    pub fn for_tenant_id(&self, id: i64) -> TenantScope {
        TenantScope {
            cache: self.clone(),
            prefix: self.tenant_prefix(id),
            tenant_id: id,
        }
    }

    /// `<namespace>:t:<id>:`: the id is followed by `:`, so tenant 1's prefix is not a prefix
    /// of tenant 12's.
    fn tenant_prefix(&self, id: i64) -> String {
        format!("{}:t:{id}:", self.namespace)
    }

    /// Removes every key of the tenant with registry id `id`; returns how many were removed.
    /// On Redis: `SCAN` over the tenant's prefix and `UNLINK` in batches of 500 (never
    /// `KEYS`, which blocks the server).
    pub async fn drop_tenant(&self, id: i64) -> Result<u64> {
        let prefix = self.tenant_prefix(id);
        match &self.backend {
            Backend::Redis(conn) => {
                let mut conn = conn.clone();
                // The prefix holds no glob character: namespace and id are checked/numeric.
                let pattern = format!("{prefix}*");
                let mut cursor: u64 = 0;
                let mut removed = 0;
                loop {
                    let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(DROP_BATCH)
                        .query_async(&mut conn)
                        .await?;
                    if !keys.is_empty() {
                        let n: u64 = redis::cmd("UNLINK")
                            .arg(&keys)
                            .query_async(&mut conn)
                            .await?;
                        removed += n;
                    }
                    if next == 0 {
                        return Ok(removed);
                    }
                    cursor = next;
                }
            }
            Backend::InProcess(cache) => {
                cache.run_pending_tasks().await;
                let keys: Vec<Arc<String>> = cache
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, _)| k)
                    .collect();
                let mut removed = 0;
                for key in keys {
                    if cache.remove(key.as_str()).await.is_some() {
                        removed += 1;
                    }
                }
                Ok(removed)
            }
        }
    }
}

/// One tenant's cache: every key the application passes is encoded under the tenant's prefix.
/// From [`TenantCache::for_tenant`].
#[derive(Clone)]
pub struct TenantScope {
    cache: TenantCache,
    prefix: String,
    tenant_id: i64,
}

impl fmt::Debug for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantScope")
            .field("backend", &self.cache.backend_name())
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

impl TenantScope {
    /// The registry id of the tenant.
    pub fn tenant_id(&self) -> i64 {
        self.tenant_id
    }

    /// The storage key of the application's `key`: the tenant's prefix followed by `key`
    /// percent-encoded (every byte but ASCII letters, digits, `-` and `_`). Shown for
    /// inspection; the methods take the application's key.
    pub fn storage_key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + key.len());
        out.push_str(&self.prefix);
        out.extend(utf8_percent_encode(key, KEY_ENCODE));
        out
    }

    /// The bytes stored at `key`, if any (and not expired).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = self.storage_key(key);
        match &self.cache.backend {
            Backend::Redis(conn) => Ok(redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn.clone())
                .await?),
            Backend::InProcess(cache) => Ok(cache.get(&key).await.map(|e| e.value.to_vec())),
        }
    }

    /// Stores `value` at `key`, replacing what was there; with `ttl`, it expires after that
    /// long (rounded up to whole milliseconds, at least 1 ms).
    pub async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        let key = self.storage_key(key);
        let ttl = ttl.map(|t| t.max(Duration::from_millis(1)));
        match &self.cache.backend {
            Backend::Redis(conn) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key).arg(value);
                if let Some(ttl) = ttl {
                    let ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
                    cmd.arg("PX").arg(ms);
                }
                cmd.query_async::<()>(&mut conn.clone()).await?;
                Ok(())
            }
            Backend::InProcess(cache) => {
                let entry = Entry {
                    value: value.into(),
                    ttl,
                };
                cache.insert(key, entry).await;
                Ok(())
            }
        }
    }

    /// Removes `key`; whether it was there.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let key = self.storage_key(key);
        match &self.cache.backend {
            Backend::Redis(conn) => {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(key)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(n > 0)
            }
            Backend::InProcess(cache) => Ok(cache.remove(&key).await.is_some()),
        }
    }

    /// The JSON value stored at `key`, decoded as `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Stores `value` as JSON at `key` (see [`TenantScope::set`]).
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(value)?;
        self.set(key, &bytes, ttl).await
    }

    /// Removes every key of this tenant (see [`TenantCache::drop_tenant`]).
    pub async fn clear(&self) -> Result<u64> {
        self.cache.drop_tenant(self.tenant_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_keys_stay_under_their_prefix() {
        let cache = TenantCache::in_process();
        let scope = cache.for_tenant_id(1);
        for key in [
            "a:b", "*", "..", "../t:2:x", "a\0b", "é", "t:12:", "%3A", "", " ", "\\",
        ] {
            let stored = scope.storage_key(key);
            let rest = stored.strip_prefix("tenantry:t:1:").unwrap();
            assert!(
                rest.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'%'),
                "{key:?} -> {stored:?}"
            );
        }
        assert_ne!(scope.storage_key("a:b"), scope.storage_key("a%3Ab"));
    }

    #[test]
    fn namespace_is_checked() {
        assert!(TenantCache::in_process().namespace("app-1_x").is_ok());
        for bad in ["", "a:b", "a*", "é", &"x".repeat(65)] {
            assert!(TenantCache::in_process().namespace(bad).is_err(), "{bad:?}");
        }
    }
}
