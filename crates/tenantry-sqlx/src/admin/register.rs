//! The steps every way of making a tenant shares: the checks of what was asked for (name,
//! domain, type, display name, data) and, once its schema is ready, the registry rows, the
//! ledger row, the hooks and the role. Used by [`crate::Admin::clone_tenant`] and the archive
//! import, so they validate and register exactly as [`crate::Admin::create_tenant`] does.

use sqlx::{AssertSqlSafe, PgConnection};
use tenantry_core::{SchemaName, Tenant};

use super::lookup::fetch_tenant;
use super::tenants::{NewTenant, check_data, check_display_name};
use crate::config::DEFAULT_TENANT_TYPE;
use crate::error::{Error, Result, conflict_or, domain_taken, name_taken};
use crate::handle::Tenantry;
use crate::migrate::ledger::write_ledger;
use crate::migrate::set::MigrationSet;
use crate::provision::SPARE_PREFIX;

/// A new tenant's settings, checked.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The schema name (validated, not reserved).
    pub(crate) schema: SchemaName,
    /// The primary domain, normalised.
    pub(crate) domain: String,
    /// The tenant type.
    pub(crate) tenant_type: String,
    /// Its migration set.
    pub(crate) set: MigrationSet,
    /// The display name (the schema name when none was given).
    pub(crate) display_name: String,
    /// The application's fields.
    pub(crate) data: serde_json::Value,
}

impl Tenantry {
    /// Checks `new` as `create_tenant` does, before anything runs.
    pub(crate) fn check_new(&self, new: NewTenant) -> Result<Checked> {
        let reserved = self.reserved();
        let reserved: Vec<&str> = reserved.iter().map(String::as_str).collect();
        let schema = SchemaName::with_reserved(new.schema.as_str(), &reserved)?;
        if schema.starts_with(SPARE_PREFIX) {
            return Err(tenantry_core::NameError::SchemaReserved(new.schema).into());
        }
        let domain = self.clean_domain(&new.domain)?.into_string();
        let tenant_type = new
            .tenant_type
            .unwrap_or_else(|| DEFAULT_TENANT_TYPE.to_owned());
        let set = self
            .tenant_migration_set(&tenant_type)
            .ok_or_else(|| Error::UnknownTenantType {
                tenant_type: tenant_type.clone(),
            })?
            .clone();
        check_data(&new.data)?;
        let display_name = new.display_name.unwrap_or_else(|| new.schema.clone());
        check_display_name(&display_name)?;
        Ok(Checked {
            schema,
            domain,
            tenant_type,
            set,
            display_name,
            data: new.data,
        })
    }

    /// Inside the operation's transaction: refuses a schema name that exists (tenant or not)
    /// and a domain another tenant has.
    pub(crate) async fn check_free(&self, conn: &mut PgConnection, new: &Checked) -> Result<()> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(new.schema.as_str())
                .fetch_one(&mut *conn)
                .await?;
        if exists {
            return Err(name_taken(&new.schema));
        }
        let taken: bool = sqlx::query_scalar(AssertSqlSafe(
            self.inner
                .sql
                .stmt("SELECT EXISTS (SELECT 1 FROM {domains} WHERE domain = $1)"),
        ))
        .bind(&new.domain)
        .fetch_one(&mut *conn)
        .await?;
        if taken {
            return Err(domain_taken(&new.domain));
        }
        Ok(())
    }

    /// Inside the operation's transaction, once the schema holds the tenant's tables at the
    /// type's migrations: tenant row, primary domain, ledger row, `after_migrate` (when
    /// `applied` is not empty) and `after_create` hooks, the role in role mode. Returns the
    /// tenant as registered.
    pub(crate) async fn register_tenant(
        &self,
        conn: &mut PgConnection,
        new: &Checked,
        applied: &[i64],
    ) -> Result<Tenant> {
        let sql = &self.inner.sql;
        let schema = new.schema.as_str();
        let id: i64 = sqlx::query_scalar(AssertSqlSafe(sql.stmt(
            "INSERT INTO {tenants} (schema_name, display_name, tenant_type, data) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )))
        .bind(schema)
        .bind(&new.display_name)
        .bind(&new.tenant_type)
        .bind(&new.data)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| conflict_or(e, || name_taken(schema)))?;
        sqlx::query(AssertSqlSafe(sql.stmt(
            "INSERT INTO {domains} (domain, tenant_id, is_primary) VALUES ($1, $2, TRUE)",
        )))
        .bind(&new.domain)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(|e| conflict_or(e, || domain_taken(&new.domain)))?;
        write_ledger(&mut *conn, self, schema, &new.tenant_type, &new.set).await?;
        let tenant = fetch_tenant(&mut *conn, self, schema).await?;
        if !applied.is_empty() {
            self.inner
                .hooks
                .after_migrate(schema, applied, &mut *conn)
                .await
                .map_err(|source| Error::Hook {
                    hook: "after_migrate",
                    source,
                })?;
        }
        self.inner
            .hooks
            .after_create(&tenant, &mut *conn)
            .await
            .map_err(|source| Error::Hook {
                hook: "after_create",
                source,
            })?;
        self.create_tenant_role(&mut *conn, schema).await?;
        Ok(tenant)
    }
}
