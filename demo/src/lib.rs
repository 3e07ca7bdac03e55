//! The Tenantry demo: a small notes SaaS.
//!
//! * `localhost` (the public site): landing page with a sign-up form, `POST /signup`,
//!   `GET /api/tenants`. See [`public_site`].
//! * `<tenant>.localhost` (tenant sites): notes page, `GET/POST /api/notes`,
//!   `GET /api/notes/{id}`, `GET /api/whoami`. See [`tenant_site`].
//! * Errors on `/api/*` are JSON (`{"error", "code"}`), on HTML routes plain text. See [`api`].
//! * `localhost/t/<tenant>/...`: the same tenant site by subfolder (the public domain routes
//!   `/t/<name>/` to tenant `<name>`; links are built with the prefix).
//! * Tenant types: `default` (sign-up), `clinic` (+ `/api/patients`) and `lab`
//!   (+ `/api/samples`), each with its own migration folder. See [`typed_sites`].
//! * Live notes feed per tenant: `GET /api/notes/stream` (SSE) and `GET /ws`. See [`live`].
//! * A tenant's non-primary domains answer 308 to its primary domain; suspended tenants 403,
//!   tenants in maintenance 503 with `Retry-After` (also by subfolder).
//! * `X-Tenant: <name>` is honoured only from the addresses in `TENANTRY_DEMO_TRUSTED_PROXIES`
//!   (off by default).
//! * Unknown hosts: 404 (answered by Tenantry's router).
//! * Fair limits: each tenant's request rate comes from its plan (Free: 20 requests per second,
//!   bursts of 40); over it, 429 with `Retry-After`. See [`limits`].
//! * Per-tenant files and cache: `GET/POST /api/attachments/{name}`, the home page's cached
//!   note count (Redis or in process). See [`attachments`].
//! * Background jobs with their tenant: `POST /api/exports` enqueues an export of the tenant's
//!   notes on the request's transaction; a worker in the process writes it into the tenant's
//!   file store; `GET /api/exports/{id}` answers 202 until then, 200 with the notes after. See
//!   [`exports`].
//! * `localhost/admin/`: the operator console (`tenantry::console`), with
//!   `DemoConfig::admin_password_hash`. Tenant pages can add, edit and delete notes
//!   ([`note_forms`]).
//! * `GET /metrics` on the public site: Prometheus text with requests by tenant; JSON logs
//!   with `TENANTRY_DEMO_LOG=json`. See [`observe`].
//!
//! [`build`] wires it together; `main.rs` adds the database bootstrap and the server, or runs
//! the demo's command line ([`commands`]: `tenantry-demo tenant create ...`, `migrate`, `exec`,
//! `notes-stats`) with the same configuration.

#![warn(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenantry::axum::limits::TenantLimiter;
use tenantry::axum::strategy::{HeaderStrategy, HostStrategy, SubfolderStrategy, TrustedProxies};
use tenantry::axum::{TenantRouter, TenantUrls};
use tenantry::{BoxError, Tenant, TenantHooks, Tenantry};

pub mod api;
pub mod attachments;
pub mod commands;
pub mod exports;
pub mod layout;
pub mod limits;
pub mod live;
pub mod note_forms;
pub mod observe;
pub mod postgres;
pub mod public_site;
pub mod tenant_site;
pub mod typed_sites;

/// What the demo keeps in each tenant's record (`Tenant::data`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TenantData {
    /// Code of the tenant's plan (a row of the shared `plans` table).
    pub plan: String,
}

/// The demo's life-cycle hooks: seeds every new tenant with a welcome note, inside the creation
/// transaction; once a deletion has committed, removes the tenant's attachments and cached
/// note count (the web app's and the CLI's deletions alike).
#[derive(Debug, Clone)]
pub struct DemoHooks {
    files: tenantry_files::TenantFiles,
    /// The cache, or (command line: no runtime to connect it in yet) the settings to connect
    /// one when a tenant is deleted.
    cache: Result<tenantry_cache::TenantCache, Box<DemoConfig>>,
}

impl DemoHooks {
    /// The hooks of `config`'s stores ([`attachments::Stores`]); with no
    /// [`DemoConfig::cache`] yet, a deletion connects one ([`attachments::connect_cache`]).
    pub fn new(config: &DemoConfig) -> Self {
        let stores = attachments::Stores::new(config);
        Self {
            files: stores.files,
            cache: config.cache.clone().ok_or_else(|| Box::new(config.clone())),
        }
    }
}

#[tenantry::async_trait]
impl TenantHooks for DemoHooks {
    async fn after_delete(&self, tenant: &Tenant) -> Result<(), BoxError> {
        let files = self.files.drop_tenant(tenant.id).await;
        let cache = match &self.cache {
            Ok(cache) => cache.clone(),
            Err(config) => attachments::connect_cache(config).await,
        };
        cache.drop_tenant(tenant.id).await?;
        files?;
        Ok(())
    }

    async fn after_create(
        &self,
        tenant: &Tenant,
        conn: &mut sqlx::PgConnection,
    ) -> Result<(), BoxError> {
        sqlx::query("INSERT INTO notes (title, body) VALUES ($1, $2)")
            .bind(format!("Welcome to {}", tenant.display_name))
            .bind("This note lives in your own PostgreSQL schema.")
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Refuses text PostgreSQL cannot store: `text` columns can't hold U+0000 (the INSERT would
/// fail, answered 500). The message names the field.
pub(crate) fn no_nul(field: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!("{field} must not contain NUL characters (U+0000)"));
    }
    Ok(())
}

/// The demo's migration folders (shared, tenant), next to this crate.
pub fn migrations_dir() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    (root.join("shared"), root.join("tenant"))
}

/// The tenant types besides `default`, with their migration folders.
pub fn tenant_type_migrations_dirs() -> Vec<(&'static str, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    vec![("clinic", root.join("clinic")), ("lab", root.join("lab"))]
}

/// The binary's Redis when `TENANTRY_DEMO_REDIS_URL` is unset.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The subfolder prefix on the public domain (`/t/<name>/...`).
pub const SUBFOLDER_PREFIX: &str = "/t";

/// Settings of the demo.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The database.
    pub database_url: String,
    /// Hosts served by the public site.
    pub public_domains: Vec<String>,
    /// Suffix appended to a sign-up subdomain (`acme` -> `acme.localhost`).
    pub tenant_domain_suffix: String,
    /// Pool size.
    pub max_connections: u32,
    /// Peers (IPs or CIDR blocks) whose `X-Tenant` header is honoured; empty: header off.
    pub trusted_proxies: Vec<String>,
    /// Port added to canonical tenant URLs (e.g. 8000 in development).
    pub url_port: Option<u16>,
    /// Per-tenant prepared statement budget (`TenantryBuilder::tenant_plans`).
    pub tenant_plans: usize,
    /// Tenant-affine connection shards (`TenantryBuilder::pool_shards`; 1 = one shared pool).
    /// The demo uses 8 (2 connections each): it is set up like a SaaS with many tenants.
    pub pool_shards: usize,
    /// Role mode's prefix (`TenantryBuilder::tenant_roles`; `TENANTRY_DEMO_TENANT_ROLES`): every
    /// tenant gets its own database role. Off (`None`) by default.
    pub tenant_roles: Option<String>,
    /// Per-plan request rate limits on tenant sites (see [`limits`]); on by default,
    /// `TENANTRY_DEMO_RATE_LIMITS=0` turns them off.
    pub rate_limits: bool,
    /// Where attachments are stored (`TENANTRY_DEMO_FILES_DIR`; default `tenantry-demo-files`
    /// under the system temp directory), in a folder per database.
    pub files_dir: PathBuf,
    /// Redis for the note-count cache. `None` (the default of [`DemoConfig::new`], so tests
    /// leave nothing in a shared Redis) or unreachable: an in-process cache. The binary sets
    /// it from `TENANTRY_DEMO_REDIS_URL`, default [`DEFAULT_REDIS_URL`].
    pub redis_url: Option<String>,
    /// The note-count cache itself, if already made: [`build`] connects one
    /// ([`attachments::connect_cache`]) when this is `None`; [`app`] then uses an in-process one.
    pub cache: Option<tenantry_cache::TenantCache>,
    /// `GET /metrics` on the public site (`TENANTRY_DEMO_METRICS=0` turns it off). On by default.
    pub metrics: bool,
    /// Whether [`build`] starts the export worker in this process (on by default; tests turn it
    /// off to see exports pending, then start it with [`exports::spawn_worker`]).
    pub export_worker: bool,
    /// The operator console at `/admin/` on the public site, signed into with the password
    /// whose argon2 hash this is (the binary hashes `TENANTRY_DEMO_ADMIN_PASSWORD`, or a
    /// password it makes up and prints). `None` (the default of [`DemoConfig::new`]): no console.
    pub admin_password_hash: Option<String>,
    /// On a Citus coordinator, send each tenant's transactions straight to the worker holding
    /// its schema (`TenantryBuilder::node_affine`; `TENANTRY_DEMO_NODE_AFFINE=1`). Off by
    /// default; no effect on plain PostgreSQL.
    pub node_affine: bool,
}

impl DemoConfig {
    /// Defaults for `database_url`: public site on `localhost`, tenants on `*.localhost`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            public_domains: vec!["localhost".into(), "127.0.0.1".into()],
            tenant_domain_suffix: "localhost".into(),
            max_connections: 16,
            trusted_proxies: Vec::new(),
            url_port: None,
            tenant_plans: tenantry::DEFAULT_TENANT_PLANS,
            pool_shards: 8,
            tenant_roles: None,
            rate_limits: true,
            files_dir: std::env::temp_dir().join("tenantry-demo-files"),
            redis_url: None,
            cache: None,
            metrics: true,
            export_worker: true,
            admin_password_hash: None,
            node_affine: false,
        }
    }

    /// Refuses settings the demo can't honour, rather than ignoring them: no pool shard, or a
    /// trusted proxy that is not an IP address or CIDR block.
    pub fn validate(&self) -> Result<(), String> {
        if self.pool_shards == 0 {
            return Err("pool_shards must be at least 1 (1 = one shared pool)".into());
        }
        self.proxies().map(drop)
    }

    /// The trusted proxies, parsed.
    fn proxies(&self) -> Result<TrustedProxies, String> {
        TrustedProxies::parse(&self.trusted_proxies).map_err(|e| format!("trusted proxies: {e}"))
    }
}

/// Connects, runs both migration sets (and the job queue's), starts the export worker on the
/// runtime ([`exports::spawn_worker`]) and returns the handle and the app. Invalid settings
/// (see [`DemoConfig::validate`]) are refused before connecting.
pub async fn build(config: &DemoConfig) -> anyhow::Result<(Tenantry, TenantRouter)> {
    config.validate().map_err(anyhow::Error::msg)?;
    if config.metrics {
        observe::prometheus(); // before the start-up migrations, so that they are counted
    }
    let mut config = config.clone();
    if config.cache.is_none() {
        // Before the builder: the hooks drop a deleted tenant's keys from it.
        config.cache = Some(attachments::connect_cache(&config).await);
    }
    // Per-plan limits: the rate limit on the tenant sites, the transaction cap in every BEGIN.
    let limiter = config.rate_limits.then(limits::limiter);
    let mut builder = commands::builder(&config);
    if let Some(limiter) = &limiter {
        builder = builder.transaction_gate(limiter.clone());
    }
    let tenantry = builder
        .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(config.max_connections))
        .connect(&config.database_url)
        .await?;
    tenantry.fleet().migrate_shared().await?;
    // The job queue's storage (schema `apalis`, its own migration history) with them.
    tenantry::jobs::setup(&tenantry).await?;
    let report = tenantry.fleet().migrate_tenants(Default::default()).await?;
    for (schema, err) in report.failures() {
        tracing::error!(schema, error = %err, "tenant migration failed");
    }
    let app = app_with_limiter(tenantry.clone(), &config, limiter);
    // The export worker, in this process, on the attachments' file store.
    if config.export_worker {
        exports::spawn_worker(&tenantry, attachments::Stores::new(&config).files);
    }
    if config.metrics {
        // `tenantry_jobs{queue, state}` on `GET /metrics`.
        tenantry::jobs::metrics::spawn_job_states(tenantry.clone(), Duration::from_secs(5));
    }
    Ok((tenantry, app))
}

/// The operator console (`tenantry::console`), mounted at `/admin` on the public site: tenant
/// routes never pass through it. "Open its site" links keep the demo's port; the charts read
/// requests per tenant from the demo's metrics.
///
/// # Panics
///
/// If `hash` is not an argon2 PHC string (the binary makes it with `hash_password`).
fn console(tenantry: &Tenantry, config: &DemoConfig, hash: &str) -> axum::Router {
    let port = config.url_port.map(|p| format!(":{p}")).unwrap_or_default();
    let mut console = tenantry::console::Console::new(tenantry.clone(), hash)
        .unwrap_or_else(|e| panic!("{e}"))
        .mount_path("/admin")
        .site_url(move |domain| format!("http://{domain}{port}/"));
    if config.metrics && observe::prometheus().is_some() {
        console = console.requests_per_tenant(observe::requests_by_tenant);
    }
    console.router()
}

/// The HTTP app: public and tenant routers behind Tenantry's routing. Identification chain:
/// trusted `X-Tenant` header (only if `trusted_proxies` is set), `/t/<name>/` on the public
/// domain, then the host.
///
/// # Panics
///
/// If `config` is invalid (see [`DemoConfig::validate`], which [`build`] calls first).
pub fn app(tenantry: Tenantry, config: &DemoConfig) -> TenantRouter {
    app_with_limiter(tenantry, config, config.rate_limits.then(limits::limiter))
}

/// [`app`] with the per-plan limiter `limiter` on its tenant sites (`None`: no rate limits).
/// [`build`] also hands it to the Tenantry handle as its transaction gate (the per-plan cap on
/// concurrent transactions); [`app`] alone enforces the rate limits only.
///
/// # Panics
///
/// If `config` is invalid (see [`DemoConfig::validate`]).
pub fn app_with_limiter(
    tenantry: Tenantry,
    config: &DemoConfig,
    limiter: Option<TenantLimiter>,
) -> TenantRouter {
    let feed = live::NotesFeed::default();
    let stores = attachments::Stores::new(config);
    let mut urls = TenantUrls::new().scheme("http");
    if let Some(host) = config.public_domains.first() {
        urls = urls.subfolder(host.clone(), SUBFOLDER_PREFIX);
    }
    if let Some(port) = config.url_port {
        urls = urls.port(port);
    }
    let mut public = public_site::router(config.tenant_domain_suffix.clone());
    if config.metrics {
        public = observe::with_metrics_route(public);
    }
    if let Some(hash) = &config.admin_password_hash {
        public = public.merge(console(&tenantry, config, hash));
    }
    let mut router = TenantRouter::new(tenantry);
    if !config.trusted_proxies.is_empty() {
        // Never ignored: a header strategy silently off is a deployment that routes wrongly.
        let trusted = config.proxies().unwrap_or_else(|e| panic!("{e}"));
        router = router.strategy(HeaderStrategy::new(trusted));
    }
    let router = router
        .strategy(SubfolderStrategy::new(SUBFOLDER_PREFIX))
        .strategy(HostStrategy)
        .redirect_to_primary(true)
        .urls(urls)
        .public(public)
        .tenant(attachments::with_stores(
            exports::with_routes(tenant_site::router_with(feed.clone())),
            stores.clone(),
        ))
        .tenant_type_router(
            "clinic",
            attachments::with_stores(
                exports::with_routes(typed_sites::clinic_router(feed.clone())),
                stores.clone(),
            ),
        )
        .tenant_type_router(
            "lab",
            attachments::with_stores(exports::with_routes(typed_sites::lab_router(feed)), stores),
        );
    // One limiter for every tenant (its state is per tenant id), checked before bodies are read.
    match limiter {
        Some(limiter) => router.admission(limiter),
        None => router,
    }
}
