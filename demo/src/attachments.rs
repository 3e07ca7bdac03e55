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
//!   reached; adding a note invalidates it.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router, middleware};
use tenantry::axum::{CurrentTenant, DEFAULT_BODY_LIMIT};
use tenantry_cache::{TenantCache, TenantScope};
use tenantry_files::TenantFiles;

use crate::DemoConfig;
use crate::api::{self, ApiError};

/// Largest attachment: the tenant layer reads bodies up to its limit (413 past it), so the
/// route accepts exactly as much.
pub const MAX_ATTACHMENT_BYTES: usize = DEFAULT_BODY_LIMIT;

/// How long a cached note count lives (a missed invalidation heals by then).
pub const NOTE_COUNT_TTL: Duration = Duration::from_secs(300);

/// The cache key of a tenant's note count (under the tenant's id prefix).
pub const NOTE_COUNT_KEY: &str = "note-count";

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
        tracing::info!("cache: in-process (TENANTRY_DEMO_REDIS_URL is empty)");
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
