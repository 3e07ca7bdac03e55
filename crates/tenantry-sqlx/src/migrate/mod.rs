//! Migrations: sqlx migration folders, applied per schema, atomically.
//!
//! Folders use sqlx's format (`<version>_<description>.sql`) and are loaded with sqlx's own
//! loader. Tenantry applies them itself rather than through `sqlx::migrate::Migrator::run`
//! because a schema must end up *fully migrated or untouched*: all pending migrations of a schema
//! run in one transaction, under a per-schema advisory lock (so concurrent runs neither deadlock
//! nor apply anything twice). Each schema keeps its own sqlx-compatible `_sqlx_migrations` table,
//! and a ledger row in the shared schema records the fingerprint of the set each tenant schema
//! is at, so that an up-to-date fleet is recognised with one query.
//!
//! * `set.rs`: migration sets and their fingerprints;
//! * `apply.rs`: applying a set to one schema inside a transaction;
//! * `ledger.rs`: the ledger row written with it;
//! * `shared.rs`: the shared schema (registry first, then the application's);
//! * `fleet.rs`: every tenant schema, in parallel;
//! * `split.rs`: a migration file as single statements (Citus mode).

pub(crate) mod apply;
pub(crate) mod fleet;
pub(crate) mod ledger;
pub(crate) mod set;
mod shared;
pub(crate) mod split;

pub use fleet::{FleetReport, MigrateOptions, PlannedSchema, SchemaResult};
pub use set::{MIGRATIONS_TABLE, MigrationSet, SchemaOutcome};
pub use shared::PendingShared;
pub use split::split_statements;
