//! Tenantry on PostgreSQL through sqlx.
//!
//! Build one [`Tenantry`] at start-up; it owns the pool and hands out only scoped access:
//!
//! * [`Tenantry::begin`] -> [`TenantTx`]: a transaction with the tenant's `search_path`
//!   (`SET LOCAL`, sent with `BEGIN` in one round trip);
//! * [`Tenantry::begin_public`] -> [`PublicTx`]: the same for the shared schema;
//! * [`Tenantry::session`] -> [`TenantConn`]: a session-scoped connection, reset on release and
//!   closed if dropped unreleased.
//!
//! The rest is grouped so the request path stays short: [`Tenantry::admin`] ([`Admin`]: the
//! tenant life cycle, domains, registry reads, roles), [`Tenantry::fleet`] ([`Fleet`]:
//! migrations, templates, spares) and [`Tenantry::stats`] ([`Stats`]: diagnostics). The life
//! cycle ([`Admin::create_tenant`], [`Admin::delete_tenant`], ...) and migrations
//! ([`Fleet::migrate_shared`], [`Fleet::migrate_tenants`]) are atomic per tenant schema.
//!
//! ```no_run
//! # async fn demo() -> tenantry_sqlx::Result<()> {
//! use tenantry_sqlx::{NewTenant, Tenantry};
//!
//! let tenantry = Tenantry::builder()
//!     .tenant_migrations("migrations/tenant")
//!     .connect("postgres://localhost/app")
//!     .await?;
//! tenantry.fleet().migrate_shared().await?;
//! let acme = tenantry
//!     .admin()
//!     .create_tenant(NewTenant::new("acme", "acme.example.com"))
//!     .await?;
//! let mut tx = tenantry.begin(&std::sync::Arc::new(acme)).await?;
//! sqlx::query("SELECT 1").execute(&mut tx).await?;
//! tx.commit().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Where things are: `request/` (the request path: scoped `BEGIN`, access types, shards,
//! statement tagging), `resolve/` (host -> tenant cache and registry listener), `registry/`
//! (Tenantry's own tables, SQL in files), `admin/` (tenants, domains, roles), `migrate/` (sets,
//! ledger, shared schema, fleet), `provision/` (templates, clone scripts, spares), `transfer/`
//! (tenant clone, export and import), `sql.rs`
//! (quoting and lock statements), `config.rs` and `builder.rs` (settings and construction),
//! `handle.rs` (the handle itself), `groups.rs` (`admin()`, `fleet()`), `stats.rs`, `citus/`
//! (Citus mode and tenant placement).

#![warn(missing_docs)]

mod admin;
mod builder;
mod citus;
mod config;
mod context;
mod error;
mod groups;
mod handle;
mod hooks;
#[cfg(feature = "metrics")]
pub mod metrics;
mod migrate;
mod provision;
mod registry;
mod request;
mod resolve;
mod sql;
mod stats;
mod transfer;

pub use admin::{
    AdoptedTenant, MAX_DISPLAY_NAME_CHARS, MAX_PAGE_SIZE, MigrationState, NewTenant,
    SEARCH_HIT_CAP, SchemaOnDelete, TenantOverview, TenantQuery, TenantsOnDay,
};
pub use async_trait::async_trait;
pub use builder::TenantryBuilder;
pub use citus::CitusMode;
pub use citus::placement::{
    MoveProgress, MoveReport, NodeAddr, NodeInfo, Placement, RebalanceProgress, RebalanceReport,
};
pub use config::{
    Config, DEFAULT_LIFECYCLE_WAIT, DEFAULT_TENANT_IDLE_TIMEOUT, DEFAULT_TENANT_PLANS,
    DEFAULT_TENANT_TYPE,
};
pub use context::{current_tenant, scope, sync_scope};
pub use error::{BoxError, Error, Result};
pub use handle::{Tenantry, TransactionGate, TransactionPermit};
pub use hooks::{CleanupHooks, NoHooks, TenantCleanup, TenantHooks};
pub use migrate::{
    FleetReport, MIGRATIONS_TABLE, MigrateOptions, MigrationSet, PendingShared, PlannedSchema,
    SchemaOutcome, SchemaResult, split_statements,
};
pub use provision::{Provision, template_schema};
pub use registry::{DomainRecord, NOTIFY_CHANNEL};
pub use request::access::{PublicTx, TenantTx};
pub use request::session::TenantConn;
pub use resolve::{Resolution, ResolveError};
pub use stats::Stats;
pub use tenantry_core::{Tenant, TenantStatus};
#[cfg(feature = "archive")]
pub use transfer::{ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION};
pub use transfer::{ProgressFn, TableCount, TransferProgress, TransferReport};
