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
//! The life cycle ([`Tenantry::create_tenant`], [`Tenantry::delete_tenant`], ...) and
//! migrations ([`Tenantry::migrate_shared`], [`Tenantry::migrate_tenants`]) are atomic per
//! tenant schema.

#![warn(missing_docs)]

mod adopt;
mod context;
mod error;
mod fleet;
mod handle;
mod hooks;
mod lifecycle;
mod lookup;
mod migrate;
mod plans;
mod provision;
mod registry;
mod resolve;
mod scoped;
mod shards;

pub use adopt::AdoptedTenant;
pub use async_trait::async_trait;
pub use context::{current_tenant, scope, sync_scope};
pub use error::{BoxError, Error, Result};
pub use fleet::{FleetReport, MigrateOptions, PlannedSchema, SchemaResult, SharedPlan};
pub use handle::{
    Config, DEFAULT_TENANT_PLANS, DEFAULT_TENANT_TYPE, Resolution, ResolveError, Tenantry,
    TenantryBuilder,
};
pub use hooks::{NoHooks, TenantHooks};
pub use lifecycle::{MAX_DISPLAY_NAME_CHARS, NewTenant, SchemaOnDelete};
pub use migrate::{MIGRATIONS_TABLE, MigrationSet, SchemaOutcome};
pub use provision::{Provision, template_schema};
pub use registry::{DomainRecord, NOTIFY_CHANNEL};
pub use scoped::{PublicTx, TenantConn, TenantTx};
pub use tenantry_core::{Tenant, TenantStatus};
