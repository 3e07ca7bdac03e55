//! Adopting an existing schema as a tenant ([`crate::Admin::adopt_tenant`]): the way back for a
//! schema kept by `delete_tenant(.., SchemaOnDelete::Keep)`, or one restored from a dump.

use sqlx::AssertSqlSafe;
use tenantry_core::Tenant;

use super::audit::audit;
use super::tenants::NewTenant;
use crate::error::{Error, Result};
use crate::groups::Admin;
use crate::migrate::apply::apply_in_tx;
use crate::migrate::set::MIGRATIONS_TABLE;
use crate::sql::{fill, lock_migrations, qualified};

/// What [`crate::Admin::adopt_tenant`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdoptedTenant {
    /// The tenant, as registered.
    pub tenant: Tenant,
    /// The migrations of the tenant type that were pending in the schema and were applied
    /// (empty when its history was up to date).
    pub applied: Vec<i64>,
}

impl Admin<'_> {
    /// Registers a tenant over an existing schema named `new.schema`: tenant row, primary
    /// domain `new.domain`, ledger row, role (in role mode) and hooks, as
    /// [`crate::Admin::create_tenant`] does, but without creating the schema. `new.provision` is
    /// ignored.
    ///
    /// The schema's migration history (its [`MIGRATIONS_TABLE`]) is checked against the
    /// migration set of the tenant type (`new.tenant_type`, default `default`) first. Refused:
    ///
    /// * a schema that does not exist: [`Error::SchemaMissing`];
    /// * a schema that already belongs to a tenant: [`Error::SchemaAlreadyTenant`];
    /// * a schema without a migration history, or with an empty one while the type has
    ///   migrations (not a schema Tenantry migrated): [`Error::MigrationState`];
    /// * a history holding a migration the type does not have, or one whose checksum differs
    ///   (the schema belongs to another type or another version of the app):
    ///   [`Error::MigrationState`];
    /// * reserved names, taken or invalid domains, bad data, as for `create_tenant`.
    ///
    /// Migrations of the type the schema has not applied yet are applied, in the same
    /// transaction; `after_migrate` then receives them. `after_create` runs as for a new tenant,
    /// so it sees the schema's existing data (seed hooks that must not run twice should check
    /// first). Everything happens in one transaction: on any failure nothing is registered and
    /// the schema is left as it was.
    pub async fn adopt_tenant(self, new: NewTenant) -> Result<AdoptedTenant> {
        let t = self.tenantry;
        let new = t.check_new(new)?;
        let (schema, domain, tenant_type, set) = (
            new.schema.to_string(),
            &new.domain,
            &new.tenant_type,
            &new.set,
        );
        let sql = &t.inner.sql;

        let mut tx = t.begin_admin(&schema).await?;
        // The schema's migration lock: serialises with `migrate`, a concurrent adoption of the
        // same schema and a delete of it (held until the end of the transaction).
        lock_migrations(&mut tx, &schema).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(&schema)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            return Err(Error::SchemaMissing(schema));
        }
        let is_tenant: bool = sqlx::query_scalar(AssertSqlSafe(
            sql.stmt("SELECT EXISTS (SELECT 1 FROM {tenants} WHERE schema_name = $1)"),
        ))
        .bind(&schema)
        .fetch_one(&mut *tx)
        .await?;
        if is_tenant {
            return Err(Error::SchemaAlreadyTenant { schema });
        }
        let has_history: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))",
        )
        .bind(&schema)
        .bind(MIGRATIONS_TABLE)
        .fetch_one(&mut *tx)
        .await?;
        if !has_history {
            return Err(Error::MigrationState {
                schema,
                message: format!(
                    "no migration history (table {MIGRATIONS_TABLE}): not a schema Tenantry \
                     migrated, so its contents can't be checked against tenant type \
                     {tenant_type:?}; refusing to adopt it"
                ),
            });
        }
        let recorded: i64 = sqlx::query_scalar(AssertSqlSafe(fill(
            "SELECT count(*) FROM {history}",
            &[("history", &qualified(&schema, MIGRATIONS_TABLE))],
        )))
        .fetch_one(&mut *tx)
        .await?;
        if recorded == 0 && !set.migrations().is_empty() {
            return Err(Error::MigrationState {
                schema,
                message: format!(
                    "its migration history ({MIGRATIONS_TABLE}) is empty: not a schema of tenant \
                     type {tenant_type:?}; refusing to adopt it"
                ),
            });
        }
        let taken: bool = sqlx::query_scalar(AssertSqlSafe(
            sql.stmt("SELECT EXISTS (SELECT 1 FROM {domains} WHERE domain = $1)"),
        ))
        .bind(domain)
        .fetch_one(&mut *tx)
        .await?;
        if taken {
            return Err(Error::DomainTaken {
                domain: domain.clone(),
            });
        }
        // Refuses unknown versions and changed checksums before applying anything; then the
        // pending migrations, in this transaction.
        let applied = apply_in_tx(&mut tx, &schema, MIGRATIONS_TABLE, set, t.is_citus())
            .await
            .map_err(|e| match e {
                Error::MigrationState { schema, message } => Error::MigrationState {
                    message: format!(
                        "{message} (tenant type {tenant_type:?}); refusing to adopt the schema"
                    ),
                    schema,
                },
                other => other,
            })?;
        let tenant = t.register_tenant(&mut tx, &new, &applied).await?;
        tx.commit().await?;
        audit("adopt", &schema, "", None);
        t.invalidate_cache();
        Ok(AdoptedTenant { tenant, applied })
    }
}
