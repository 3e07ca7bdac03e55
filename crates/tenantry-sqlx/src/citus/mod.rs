//! Citus mode: tenant schemas distributed over a Citus cluster (schema-based sharding).
//!
//! When the database has the `citus` extension (or the builder says so, see
//! [`crate::TenantryBuilder::citus`]), Tenantry:
//!
//! * creates each tenant schema as a *distributed schema*: `CREATE SCHEMA` runs with
//!   `citus.enable_schema_based_sharding` on for that one statement, so the schema and every
//!   table its migrations create form one colocation group, placed whole on one worker;
//! * keeps everything else local to the coordinator, whatever the database-level setting says:
//!   the shared schema, the registry, extra search-path schemas (`extensions`) and whatever the
//!   shared migrations create run with the setting off;
//! * turns the shared tables named by [`crate::TenantryBuilder::reference_tables`] into reference
//!   tables (a copy on every node), so a tenant transaction reads them on the tenant's node;
//! * applies migrations one statement at a time ([`crate::split_statements`]): Citus refuses a
//!   multi-statement query holding DDL for a distributed schema;
//! * builds no template and no spare schemas: a tenant schema must be created distributed, and
//!   the clone script is one multi-statement batch (refused like a migration file) whose split
//!   form costs the same worker round trips as the migrations; a spare made ahead would have to
//!   be distributed when claimed, which copies it to a worker. [`crate::Provision::Auto`] migrates
//!   instead, [`crate::Provision::Clone`] and [`crate::Fleet::fill_spares`] answer
//!   [`crate::Error::CannotClone`].
//!
//! Role mode ([`crate::TenantryBuilder::tenant_roles`]) is refused on Citus: Citus opens its
//! connections to the workers as the current user, and a tenant role is `NOLOGIN`.
//!
//! Placement (which node holds a tenant, moving tenants, rebalancing) is in `placement.rs`.

use std::sync::atomic::Ordering;

use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::handle::Tenantry;

pub(crate) mod affine;
pub(crate) mod affinity;
pub(crate) mod node_addr;
pub(crate) mod placement;

/// Whether [`crate::Tenantry`] runs in Citus mode (see [`crate::TenantryBuilder::citus`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CitusMode {
    /// Citus mode when the database has the `citus` extension (checked at connect, and again
    /// after the shared migrations, which may create it). The default.
    #[default]
    Auto,
    /// Citus mode; connecting fails with [`Error::CitusMissing`] without the extension.
    On,
    /// Never: tenant schemas are plain schemas even on a Citus coordinator (they stay on it).
    Off,
}

/// The statement that turns schema-based sharding on or off for the rest of the transaction.
pub(crate) fn sharding(on: bool) -> &'static str {
    if on {
        "SET LOCAL citus.enable_schema_based_sharding TO on"
    } else {
        "SET LOCAL citus.enable_schema_based_sharding TO off"
    }
}

/// Whether the database has the `citus` extension. One simple-protocol query (no prepared
/// statement): safe behind a transaction-mode pooler, where a Parse and its Bind outside a
/// transaction may reach different server connections.
pub(crate) async fn has_citus(pool: &PgPool) -> Result<bool> {
    use sqlx::Row;
    let row = sqlx::raw_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus",
    )
    .fetch_one(pool)
    .await?;
    Ok(row.try_get("citus")?)
}

/// Resolves `mode` against the database.
pub(crate) async fn detect(pool: &PgPool, mode: CitusMode) -> Result<bool> {
    match mode {
        CitusMode::Off => Ok(false),
        CitusMode::Auto => has_citus(pool).await,
        CitusMode::On => {
            if has_citus(pool).await? {
                Ok(true)
            } else {
                Err(Error::CitusMissing)
            }
        }
    }
}

impl Tenantry {
    /// Whether this handle runs in Citus mode: tenant schemas are created distributed, and
    /// migrations run one statement at a time (see [`crate::TenantryBuilder::citus`]).
    pub fn is_citus(&self) -> bool {
        self.inner.citus.load(Ordering::Relaxed)
    }

    /// After the shared migrations: detect Citus again (they may have created the extension)
    /// and make the configured shared tables reference tables.
    pub(crate) async fn after_shared_migrations(&self) -> Result<()> {
        if self.inner.config.citus == CitusMode::Auto && !self.is_citus() {
            let on = has_citus(&self.inner.pool).await?;
            self.inner.citus.store(on, Ordering::Relaxed);
        }
        if !self.is_citus() {
            return Ok(());
        }
        if self.config().tenant_roles.is_some() {
            return Err(Error::CitusUnsupported {
                what: "role mode (tenant_roles)",
                why: "Citus connects to the workers as the current user, and tenant roles can't log in",
            });
        }
        if !self.inner.config.reference_tables.is_empty() {
            self.make_reference_tables().await?;
        }
        if self.inner.config.node_affine {
            self.setup_node_epochs().await?;
        } else {
            self.detect_node_epochs().await?;
        }
        Ok(())
    }

    /// Makes the configured shared tables reference tables, those not distributed yet. Under a
    /// lock, in one transaction: instances starting together would otherwise both find a table
    /// local and the second `create_reference_table` fail ("already distributed").
    async fn make_reference_tables(&self) -> Result<()> {
        let fail = |table: &str, e: &sqlx::Error| Error::ReferenceTable {
            table: table.to_owned(),
            message: crate::migrate::apply::db_message(e),
        };
        let first = &self.inner.config.reference_tables[0];
        let mut tx = self.inner.pool.begin().await.map_err(|e| fail(first, &e))?;
        sqlx::raw_sql("SELECT pg_advisory_xact_lock(hashtext('tenantry.reference_tables'))")
            .execute(&mut *tx)
            .await
            .map_err(|e| fail(first, &e))?;
        for table in &self.inner.config.reference_tables {
            let name = if table.contains('.') {
                table.clone()
            } else {
                crate::sql::qualified(&self.inner.config.shared_schema, table)
            };
            // Bound as text and cast: no name is spelled into the statement.
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass)",
            )
            .bind(&name)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| fail(table, &e))?;
            if !done {
                sqlx::query("SELECT create_reference_table($1::regclass)")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| fail(table, &e))?;
            }
        }
        tx.commit().await.map_err(|e| fail(first, &e))
    }
}
