//! The Tenantry demo: a small notes SaaS.
//!
//! * `localhost` (the public site): landing page with a sign-up form, `POST /signup`,
//!   `GET /api/tenants`. See [`public_site`].
//! * `<tenant>.localhost` (tenant sites): notes page, `GET/POST /api/notes`, `GET /api/whoami`.
//!   See [`tenant_site`].
//! * Unknown hosts: 404 (answered by Tenantry's router).
//!
//! [`build`] wires it together; `main.rs` adds the database bootstrap and the server.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tenantry::axum::TenantRouter;
use tenantry::{BoxError, Tenant, TenantHooks, Tenantry};

pub mod postgres;
pub mod public_site;
pub mod tenant_site;

/// What the demo keeps in each tenant's record (`Tenant::data`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TenantData {
    /// Code of the tenant's plan (a row of the shared `plans` table).
    pub plan: String,
}

/// Seeds every new tenant with a welcome note, inside the creation transaction.
pub struct DemoHooks;

#[tenantry::async_trait]
impl TenantHooks for DemoHooks {
    async fn after_create(&self, tenant: &Tenant, conn: &mut sqlx::PgConnection) -> Result<(), BoxError> {
        sqlx::query("INSERT INTO notes (title, body) VALUES ($1, $2)")
            .bind(format!("Welcome to {}", tenant.display_name))
            .bind("This note lives in your own PostgreSQL schema.")
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// The demo's migration folders (shared, tenant), next to this crate.
pub fn migrations_dir() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    (root.join("shared"), root.join("tenant"))
}

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
}

impl DemoConfig {
    /// Defaults for `database_url`: public site on `localhost`, tenants on `*.localhost`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            public_domains: vec!["localhost".into(), "127.0.0.1".into()],
            tenant_domain_suffix: "localhost".into(),
            max_connections: 16,
        }
    }
}

/// Connects, runs both migration sets and returns the handle and the app.
pub async fn build(config: &DemoConfig) -> Result<(Tenantry, TenantRouter), tenantry::Error> {
    let (shared, tenant) = migrations_dir();
    let tenantry = Tenantry::builder()
        .shared_migrations(shared)
        .tenant_migrations(tenant)
        .public_domains(config.public_domains.clone())
        .hooks(DemoHooks)
        .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(config.max_connections))
        .connect(&config.database_url)
        .await?;
    tenantry.migrate_shared().await?;
    let report = tenantry.migrate_tenants(Default::default()).await?;
    for (schema, err) in report.failures() {
        tracing::error!(schema, error = %err, "tenant migration failed");
    }
    let app = app(tenantry.clone(), config);
    Ok((tenantry, app))
}

/// The HTTP app: public and tenant routers behind Tenantry's host routing.
pub fn app(tenantry: Tenantry, config: &DemoConfig) -> TenantRouter {
    TenantRouter::new(tenantry)
        .public(public_site::router(config.tenant_domain_suffix.clone()))
        .tenant(tenant_site::router())
}
