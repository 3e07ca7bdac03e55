//! Tenant life cycle: create, delete, rename, status, domains. Every operation is one
//! transaction: PostgreSQL DDL is transactional, so a failure anywhere (validation, a migration,
//! a hook, a duplicate domain) leaves no schema and no row behind.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Executor};
use tenantry_core::{SchemaName, Tenant, TenantStatus};

use super::audit::audit;
use super::lookup::fetch_tenant;
use crate::error::{Error, Result, conflict_or, json_kind, name_taken};
use crate::groups::Admin;
use crate::handle::Tenantry;
use crate::migrate::apply::apply_in_tx;
use crate::migrate::set::MIGRATIONS_TABLE;
use crate::provision::spares::claim_spare;
use crate::provision::{Provision, template_schema};
use crate::request::begin::begin_shielded;
use crate::sql::{begin_with_path, create_schema, drop_schema, lock_migrations, rename_schema};

/// What to create: see [`crate::Admin::create_tenant`]. Built with [`NewTenant::new`] and its
/// setters (fields may be added).
///
/// ```no_run
/// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
/// use tenantry_sqlx::{NewTenant, Provision};
///
/// #[derive(serde::Serialize)]
/// struct Billing {
///     plan: &'static str,
/// }
///
/// let new = NewTenant::new("acme", "acme.example.com")
///     .display_name("Acme Corp")
///     .tenant_type("default")
///     .provision(Provision::Auto)
///     .data(&Billing { plan: "pro" })
///     .expect("a JSON object");
/// let acme = tenantry.admin().create_tenant(new).await?;
/// assert_eq!(acme.schema, "acme");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewTenant {
    /// Schema name (validated).
    pub schema: String,
    /// Primary domain (normalised and validated).
    pub domain: String,
    /// Display name (defaults to the schema name): at most [`MAX_DISPLAY_NAME_CHARS`]
    /// characters, no control characters (`create_tenant` refuses others with
    /// [`Error::DisplayNameTooLong`] and [`Error::DisplayNameControlCharacter`]).
    pub display_name: Option<String>,
    /// Tenant type (defaults to `"default"`).
    pub tenant_type: Option<String>,
    /// The application's own fields (a JSON object).
    pub data: serde_json::Value,
    /// How the schema is built: cloned from the tenant type's template (default, when usable)
    /// or migrated from scratch. See [`Provision`].
    pub provision: Provision,
}

impl NewTenant {
    /// A tenant with schema `schema` served at `domain`.
    pub fn new(schema: impl Into<String>, domain: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            domain: domain.into(),
            display_name: None,
            tenant_type: None,
            data: serde_json::Value::Object(Default::default()),
            provision: Provision::Auto,
        }
    }

    /// Chooses how the schema is built (default [`Provision::Auto`]: clone the template when
    /// usable). `Provision::Migrate` forces replaying every migration.
    pub fn provision(mut self, provision: Provision) -> Self {
        self.provision = provision;
        self
    }

    /// Sets the display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the tenant type.
    pub fn tenant_type(mut self, ty: impl Into<String>) -> Self {
        self.tenant_type = Some(ty.into());
        self
    }

    /// Sets the application's fields from any serialisable value.
    pub fn data<T: Serialize>(mut self, data: &T) -> Result<Self, serde_json::Error> {
        self.data = serde_json::to_value(data)?;
        Ok(self)
    }
}

/// The longest display name [`crate::Admin::create_tenant`] accepts, in characters (check it in
/// your own forms to refuse a name before calling Tenantry).
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// Refuses display names that are too long, or that hold control characters (NUL included)
/// that would break terminals, logs and PostgreSQL `TEXT`.
pub(crate) fn check_display_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars > MAX_DISPLAY_NAME_CHARS {
        return Err(Error::DisplayNameTooLong {
            chars,
            max: MAX_DISPLAY_NAME_CHARS,
        });
    }
    if let Some(character) = name.chars().find(|c| c.is_control()) {
        return Err(Error::DisplayNameControlCharacter { character });
    }
    Ok(())
}

/// What to do with the schema when deleting a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaOnDelete {
    /// `DROP SCHEMA ... CASCADE`.
    Drop,
    /// Keep the schema and its data (only the registry rows go).
    Keep,
}

impl Tenantry {
    pub(crate) fn reserved(&self) -> Vec<String> {
        let c = self.config();
        std::iter::once(c.shared_schema.clone())
            .chain(c.extra_search_path.iter().cloned())
            // Template schemas of the configured tenant types.
            .chain(self.tenant_types().filter_map(template_schema))
            .collect()
    }

    /// Opens a transaction whose path is `schema` then the shared schemas, without the
    /// existence check (the schema may be about to be created).
    pub(crate) async fn begin_admin(
        &self,
        schema: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let sql = begin_with_path(&self.search_path_for(schema));
        Ok(begin_shielded(&self.inner.pool, sql).await?)
    }
}

/// Tenant data must be a JSON object (the application's fields, by name).
pub(crate) fn check_data(data: &serde_json::Value) -> Result<()> {
    if data.is_object() {
        Ok(())
    } else {
        Err(Error::TenantDataNotObject {
            found: json_kind(data),
        })
    }
}

impl Admin<'_> {
    /// Creates a tenant: validate -> `CREATE SCHEMA` -> tenant migrations -> registry rows ->
    /// ledger -> `after_migrate` and `after_create` hooks, all in one transaction.
    ///
    /// With [`Provision::Auto`] (the default) or [`Provision::Clone`], the schema and its
    /// migration history are cloned from the tenant type's template schema in one round trip
    /// instead of replaying the migrations (the template is built or rebuilt first if the
    /// migrations changed); the result is the same schema, and `after_migrate` still receives
    /// every version. [`Provision::Migrate`] replays the migrations.
    pub async fn create_tenant(self, new: NewTenant) -> Result<Tenant> {
        let provision = new.provision;
        let new = self.tenantry.check_new(new)?;
        let (schema, tenant_type, set) = (&new.schema, &new.tenant_type, &new.set);
        let plan = match provision {
            Provision::Migrate => None,
            // Falls back to migrating when the template can't be cloned.
            Provision::Auto => Some(self.tenantry.clone_plan(tenant_type).await?),
            Provision::Clone => {
                let plan = self.tenantry.clone_plan(tenant_type).await?;
                if let Err(why) = plan.as_ref() {
                    return Err(Error::CannotClone {
                        tenant_type: tenant_type.clone(),
                        reason: why.clone(),
                    });
                }
                Some(plan)
            }
        };

        let mut tx = self.tenantry.begin_admin(schema).await?;
        // Schema names are unique across the whole database, tenants or not.
        self.tenantry.check_free(&mut tx, &new).await?;
        let applied = match plan.as_deref() {
            Some(Ok(_))
                if claim_spare(&mut tx, self.tenantry, schema, tenant_type, set).await? =>
            {
                // A pre-created clone (see `fill_spares`), renamed.
                set.migrations().iter().map(|m| m.version).collect()
            }
            Some(Ok(plan)) => {
                // The whole schema, its seed rows and migration history in one batch.
                tx.execute(sqlx::raw_sql(AssertSqlSafe(plan.sql_for(schema))))
                    .await
                    .map_err(|e| conflict_or(e, || name_taken(schema)))?;
                set.migrations().iter().map(|m| m.version).collect()
            }
            _ => {
                let citus = self.tenantry.is_citus();
                if citus {
                    // One distributed schema (a colocation group placed on one worker).
                    tx.execute(crate::citus::sharding(true)).await?;
                }
                tx.execute(AssertSqlSafe(create_schema(schema)))
                    .await
                    .map_err(|e| conflict_or(e, || name_taken(schema)))?;
                if citus {
                    tx.execute(crate::citus::sharding(false)).await?;
                }
                apply_in_tx(&mut tx, schema, MIGRATIONS_TABLE, set, citus).await?
            }
        };
        let tenant = self
            .tenantry
            .register_tenant(&mut tx, &new, &applied)
            .await?;
        tx.commit().await?;
        audit("create", &new.schema, &new.domain, None);
        self.tenantry.invalidate_cache();
        Ok(tenant)
    }

    /// Deletes a tenant: `before_delete` hook, registry rows (domains cascade), ledger row, and
    /// the schema unless `SchemaOnDelete::Keep`, in one transaction; then, once committed, the
    /// `after_delete` hook (files, cache keys; its failure is logged, the deletion stands).
    pub async fn delete_tenant(self, schema: &str, on_delete: SchemaOnDelete) -> Result<()> {
        let mut tx = self.tenantry.begin_admin(schema).await?;
        let tenant = self.tenantry.lock_tenant(&mut tx, schema).await?;
        // Serialise with migrations of this schema.
        lock_migrations(&mut tx, schema).await?;
        self.tenantry
            .inner
            .hooks
            .before_delete(&tenant, &mut tx)
            .await
            .map_err(|source| Error::Hook {
                hook: "before_delete",
                source,
            })?;
        let sql = &self.tenantry.inner.sql;
        sqlx::query(AssertSqlSafe(
            sql.stmt("DELETE FROM {tenants} WHERE id = $1"),
        ))
        .bind(tenant.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(
            sql.stmt("DELETE FROM {ledger} WHERE schema_name = $1"),
        ))
        .bind(schema)
        .execute(&mut *tx)
        .await?;
        if on_delete == SchemaOnDelete::Drop {
            tx.execute(AssertSqlSafe(drop_schema(&SchemaName::system(
                tenant.schema.as_str(),
            )?)))
            .await?;
        }
        self.tenantry.drop_tenant_role(&mut tx, schema).await?;
        tx.commit().await?;
        audit(
            "delete",
            schema,
            if on_delete == SchemaOnDelete::Drop {
                "schema dropped"
            } else {
                "schema kept"
            },
            None,
        );
        self.tenantry.invalidate_cache();
        if let Err(e) = self.tenantry.inner.hooks.after_delete(&tenant).await {
            tracing::warn!(tenant = %tenant.schema, id = tenant.id, error = %e,
                "tenantry: the after_delete hook failed; the tenant is deleted, what the hook \
                 should have removed is left (unreachable by other tenants)");
        }
        Ok(())
    }

    /// Renames a tenant's schema (and its registry and ledger rows) in one transaction.
    pub async fn rename_tenant(self, old: &str, new: &str) -> Result<Tenant> {
        let reserved = self.tenantry.reserved();
        let reserved: Vec<&str> = reserved.iter().map(String::as_str).collect();
        let new_name = SchemaName::with_reserved(new, &reserved)?;
        if old == new {
            return Err(Error::RenameToSameName {
                schema: old.to_owned(),
            });
        }
        let mut tx = self.tenantry.begin_admin(old).await?;
        let tenant = self.tenantry.lock_tenant(&mut tx, old).await?;
        lock_migrations(&mut tx, old).await?;
        let old_name = SchemaName::system(tenant.schema.as_str())?;
        tx.execute(AssertSqlSafe(rename_schema(&old_name, &new_name)))
            .await
            .map_err(|e| conflict_or(e, || name_taken(new)))?;
        self.tenantry.rename_tenant_role(&mut tx, old, new).await?;
        let sql = &self.tenantry.inner.sql;
        sqlx::query(AssertSqlSafe(
            sql.stmt("UPDATE {tenants} SET schema_name = $1 WHERE id = $2"),
        ))
        .bind(new)
        .bind(tenant.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(sql.stmt(
            "UPDATE {ledger} SET schema_name = $1 WHERE schema_name = $2",
        )))
        .bind(new)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        let renamed = fetch_tenant(&mut tx, self.tenantry, new).await?;
        tx.commit().await?;
        audit("rename", old, new, None);
        self.tenantry.invalidate_cache();
        Ok(renamed)
    }

    /// Sets a tenant's status (active, suspended, maintenance).
    ///
    /// Waits (up to [`crate::Config::lifecycle_wait`]) for the tenant's transactions and
    /// sessions in flight to end, so that once this returns, no work of a tenant that is not
    /// active is running anywhere, and none starts (every scoped `BEGIN` checks the status).
    pub async fn set_status(self, schema: &str, status: TenantStatus) -> Result<()> {
        let mut tx = begin_shielded(&self.tenantry.inner.pool, "BEGIN".to_owned()).await?;
        let tenant = self.tenantry.lock_tenant(&mut tx, schema).await?;
        sqlx::query(AssertSqlSafe(
            self.tenantry
                .inner
                .sql
                .stmt("UPDATE {tenants} SET status = $1 WHERE id = $2"),
        ))
        .bind(status.as_str())
        .bind(tenant.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        audit("status", schema, status.as_str(), None);
        self.tenantry.invalidate_cache();
        Ok(())
    }

    /// Replaces the application's fields of a tenant.
    pub async fn set_data<T: Serialize>(self, schema: &str, data: &T) -> Result<()> {
        let value = serde_json::to_value(data).map_err(Error::TenantDataNotSerializable)?;
        check_data(&value)?;
        let done = sqlx::query(AssertSqlSafe(
            self.tenantry
                .inner
                .sql
                .stmt("UPDATE {tenants} SET data = $1 WHERE schema_name = $2"),
        ))
        .bind(&value)
        .bind(schema)
        .execute(&self.tenantry.inner.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::TenantNotFound(schema.to_owned()));
        }
        audit("data", schema, "", None);
        self.tenantry.invalidate_cache();
        Ok(())
    }
}
