//! Files and cache with their tenant: `POST/GET /api/attachments/{name}` over
//! [`tenantry_files`], and the home page's cached note count over [`tenantry_cache`].
//!
//! * `POST /api/attachments/{name}` (raw body, at most [`MAX_ATTACHMENT_BYTES`]: the tenant
//!   layer's own buffering limit) -> 201; `GET` -> the bytes, 404 if this tenant has no such
//!   file (whatever other tenants hold). A name with `..`, `/`, `\`, `%`, NUL or other control
//!   characters -> 400 `invalid_name`.
//! * Files are under [`DemoConfig::files_dir`] (`TENANTRY_DEMO_FILES_DIR`), in a folder per
//!   database (two demos on two databases don't mix), then per tenant id.
//! * The note count is cached (5 minutes) under the tenant's id, on Redis
//!   ([`DemoConfig::redis_url`], `TENANTRY_DEMO_REDIS_URL`) or in process when Redis can't be
//!   reached; adding a note invalidates it ([`note_count`], [`notes_changed`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router, middleware};
use tenantry::axum::{CurrentTenant, DEFAULT_BODY_LIMIT, HttpError, TenantDb};
use tenantry_cache::{TenantCache, TenantScope};
use tenantry_files::TenantFiles;

use crate::DemoConfig;
use crate::api::{self, ApiError};

/// Largest attachment: the tenant layer reads bodies up to its limit (413 past it), so the
/// route accepts exactly as much.
pub const MAX_ATTACHMENT_BYTES: usize = DEFAULT_BODY_LIMIT;

/// How long a cached note count, and its generation, live (a missed invalidation heals by
/// then; a generation that expired is replaced by a fresh one, which is a miss).
pub const NOTE_COUNT_TTL: Duration = Duration::from_secs(300);

/// The cache key of a tenant's note count (under the tenant's id prefix): `[generation, count]`.
pub const NOTE_COUNT_KEY: &str = "note-count";

/// The cache key of the generation of a tenant's notes: a fresh token after every change.
pub const NOTES_GENERATION_KEY: &str = "notes-generation";

/// The tenant-scoped stores the demo's handlers use.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Attachments.
    pub files: TenantFiles,
    /// Note counts.
    pub cache: TenantCache,
}

impl Stores {
    /// The stores of `config`: its cache if set, else an in-process one.
    ///
    /// # Panics
    ///
    /// If the files directory can't be created.
    pub fn new(config: &DemoConfig) -> Self {
        let namespace = database_namespace(&config.database_url);
        let files = TenantFiles::local(&config.files_dir)
            .and_then(|f| f.root(&namespace))
            .unwrap_or_else(|e| panic!("TENANTRY_DEMO_FILES_DIR: {e}"));
        let cache = config.cache.clone().unwrap_or_else(|| {
            TenantCache::in_process()
                .namespace(&namespace)
                .expect("a checked namespace")
        });
        Self { files, cache }
    }

    /// The note-count cache of `tenant`.
    pub fn counts(&self, tenant: &CurrentTenant) -> TenantScope {
        self.cache.for_tenant(tenant)
    }
}

/// The cache for [`DemoConfig::cache`]: Redis at [`DemoConfig::redis_url`], or in process if
/// it is unset or can't be reached in 3 seconds. Says which in one log line.
pub async fn connect_cache(config: &DemoConfig) -> TenantCache {
    let namespace = database_namespace(&config.database_url);
    let in_process = || {
        TenantCache::in_process()
            .namespace(&namespace)
            .expect("a checked namespace")
    };
    let Some(url) = config.redis_url.as_deref().filter(|u| !u.is_empty()) else {
        tracing::info!("cache: in-process (no Redis configured: TENANTRY_DEMO_REDIS_URL is empty)");
        return in_process();
    };
    match tokio::time::timeout(Duration::from_secs(3), TenantCache::redis(url)).await {
        Ok(Ok(cache)) => {
            tracing::info!("cache: Redis at {url}");
            cache.namespace(&namespace).expect("a checked namespace")
        }
        Ok(Err(e)) => {
            tracing::warn!("cache: in-process (Redis at {url} is not reachable: {e})");
            in_process()
        }
        Err(_) => {
            tracing::warn!("cache: in-process (Redis at {url} did not answer in 3 s)");
            in_process()
        }
    }
}

/// `tenantry-demo-<database name>` (letters, digits, `-`, `_`; at most 64 bytes): the cache
/// namespace and files folder of one database, so that demos on two databases (tests) never
/// share a tenant id's keys or files.
pub fn database_namespace(database_url: &str) -> String {
    let name = database_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or("");
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64 - "tenantry-demo-".len())
        .collect();
    if clean.is_empty() {
        "tenantry-demo".into()
    } else {
        format!("tenantry-demo-{clean}")
    }
}

/// Adds the attachment routes and the stores to a tenant router.
pub fn with_stores(router: Router, stores: Stores) -> Router {
    router.merge(routes()).layer(Extension(stores))
}

/// `GET/POST /api/attachments/{name}`; the [`Stores`] come from an `Extension`.
pub fn routes() -> Router {
    Router::new()
        // A catch-all, so that a name with `/` is answered 400 rather than "no such route".
        .route(
            "/api/attachments/{*name}",
            get(get_attachment).post(put_attachment),
        )
        .layer(DefaultBodyLimit::max(MAX_ATTACHMENT_BYTES))
        .layer(middleware::from_fn(api::json_errors))
}

/// The name as a file key, or 400: one segment, no `..`, and [`tenantry_files::check_key`].
fn attachment_key(name: &str) -> Result<&str, ApiError> {
    let refuse = |why: &str| {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            format!("invalid attachment name: {why}"),
        ))
    };
    if name.contains('/') {
        return refuse("'/' is not allowed");
    }
    if name.contains("..") {
        return refuse("'..' is not allowed");
    }
    match tenantry_files::check_key(name) {
        Ok(()) => Ok(name),
        Err(tenantry_files::Error::InvalidKey { reason, .. }) => refuse(reason),
        Err(e) => refuse(&e.to_string()),
    }
}

fn storage_error(e: tenantry_files::Error) -> ApiError {
    tracing::error!(error = %e, "attachment store failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_error",
        "the attachment store failed",
    )
}

async fn put_attachment(
    tenant: CurrentTenant,
    Extension(stores): Extension<Stores>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let key = attachment_key(&name)?;
    stores
        .files
        .for_tenant(&tenant)
        .put(key, body)
        .await
        .map_err(storage_error)?;
    Ok(StatusCode::CREATED)
}

async fn get_attachment(
    tenant: CurrentTenant,
    Extension(stores): Extension<Stores>,
    Path(name): Path<String>,
) -> Result<Bytes, ApiError> {
    let key = attachment_key(&name)?;
    stores
        .files
        .for_tenant(&tenant)
        .get(key)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "attachment_not_found",
                format!("no attachment {name:?}"),
            )
        })
}

/// A token no other change (in this or another process) has: the time, the process id and a
/// counter.
fn fresh_generation() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos}-{}-{n}", std::process::id())
}

/// The tenant's note count and where it came from: `"hit"` (the cache), `"miss"` (counted,
/// then cached), `"off"` (no stores) or `"error"` (counted; the cache failed, logged).
///
/// The count is cached with the notes' generation read *before* counting; a new note sets a
/// fresh generation after its commit ([`notes_changed`]). A count taken before a commit but
/// stored after it is therefore stored under the old generation and never served: deleting
/// the key instead would let that stale count back in.
pub async fn note_count(
    tenant: &CurrentTenant,
    stores: Option<&Stores>,
    db: &mut TenantDb,
) -> Result<(i64, &'static str), HttpError> {
    let Some(stores) = stores else {
        return Ok((count_notes(db).await?, "off"));
    };
    let cache = stores.counts(tenant);
    let cached: tenantry_cache::Result<(String, Option<(String, i64)>)> = async {
        let generation = match cache.get_json::<String>(NOTES_GENERATION_KEY).await? {
            Some(g) => g,
            None => {
                let g = fresh_generation();
                cache
                    .set_json(NOTES_GENERATION_KEY, &g, Some(NOTE_COUNT_TTL))
                    .await?;
                g
            }
        };
        let count = cache.get_json::<(String, i64)>(NOTE_COUNT_KEY).await?;
        Ok((generation, count))
    }
    .await;
    let generation = match cached {
        Ok((generation, Some((of, n)))) if of == generation => return Ok((n, "hit")),
        Ok((generation, _)) => generation,
        Err(e) => {
            tracing::warn!(error = %e, "note-count cache failed");
            return Ok((count_notes(db).await?, "error"));
        }
    };
    let n = count_notes(db).await?;
    match cache
        .set_json(NOTE_COUNT_KEY, &(generation, n), Some(NOTE_COUNT_TTL))
        .await
    {
        Ok(()) => Ok((n, "miss")),
        Err(e) => {
            tracing::warn!(error = %e, "note-count cache failed");
            Ok((n, "error"))
        }
    }
}

async fn count_notes(db: &mut TenantDb) -> Result<i64, HttpError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut **db)
        .await?)
}

/// After a change to the tenant's notes has committed: a fresh generation, so that no count
/// taken before it is served again. A cache failure is logged (the count heals with its TTL).
pub async fn notes_changed(stores: &Stores, tenant: &CurrentTenant) {
    let result = stores
        .counts(tenant)
        .set_json(
            NOTES_GENERATION_KEY,
            &fresh_generation(),
            Some(NOTE_COUNT_TTL),
        )
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "note-count cache not invalidated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_per_database() {
        assert_eq!(
            database_namespace("postgres://u@h:5432/app_db?sslmode=disable"),
            "tenantry-demo-app_db"
        );
        assert_eq!(
            database_namespace("postgres://h/a.b*c"),
            "tenantry-demo-a_b_c"
        );
        assert_eq!(database_namespace(""), "tenantry-demo");
        let long = database_namespace(&format!("postgres://h/{}", "x".repeat(100)));
        assert_eq!(long.len(), 64);
        for url in [
            "",
            "postgres://h/x",
            &format!("postgres://h/{}", "é".repeat(40)),
        ] {
            let ns = database_namespace(url);
            assert!(TenantCache::in_process().namespace(&ns).is_ok(), "{ns}");
            assert!(tenantry_files::check_key(&ns).is_ok(), "{ns}");
        }
    }

    #[test]
    fn names_with_dots_or_separators_are_refused() {
        for bad in ["..", "a..b", "a/b", "/", ".", "a\\b", "a%2Fb", "a\0b", ""] {
            assert!(attachment_key(bad).is_err(), "{bad:?}");
        }
        for good in ["report.txt", "résumé.v1.pdf", ".hidden", "a b"] {
            assert!(attachment_key(good).is_ok(), "{good:?}");
        }
    }
}
