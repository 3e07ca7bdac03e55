//! Tenant life cycle: create, delete, rename, status, domains. Every operation is one
//! transaction: PostgreSQL DDL is transactional, so a failure anywhere (validation, a migration,
//! a hook, a duplicate domain) leaves no schema and no row behind.

use std::sync::Arc;

use serde::Serialize;
use sqlx::{AssertSqlSafe, Executor, PgConnection};
use tenantry_core::{
    Tenant, TenantStatus, normalize_host, quote_ident, validate_domain, validate_schema_name,
};

use crate::error::{Error, Result};
use crate::handle::Tenantry;
use crate::migrate::{MIGRATIONS_TABLE, apply_in_tx};
use crate::provision::{Provision, template_schema};
use crate::registry::{DomainRecord, TenantRow};

/// What to create: see [`Tenantry::create_tenant`]. Built with [`NewTenant::new`] and its
/// setters (fields may be added).
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

/// The longest display name [`Tenantry::create_tenant`] accepts, in characters (check it in
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

    /// Normalises and validates a domain given by a user.
    pub(crate) fn clean_domain(&self, raw: &str) -> Result<String> {
        let host = self.normalize_domain(raw)?;
        validate_domain(&host)?;
        if self.config().public_domains.contains(&host) {
            return Err(Error::DomainIsPublic { domain: host });
        }
        Ok(host)
    }

    /// Normalises a domain given by a user as a `Host` would be (lookup key form).
    fn normalize_domain(&self, raw: &str) -> Result<String> {
        normalize_host(raw, self.config().host_policy).map_err(|reason| Error::InvalidDomain {
            domain: raw.to_owned(),
            reason,
        })
    }

    /// Opens a transaction whose path is `schema` then the shared schemas, without the
    /// existence check (the schema may be about to be created).
    pub(crate) async fn begin_admin(
        &self,
        schema: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let sql = format!(
            "BEGIN; SET LOCAL search_path TO {}",
            self.search_path_for(schema)
        );
        Ok(crate::handle::begin_shielded(&self.inner.pool, sql).await?)
    }

    /// Creates a tenant: validate -> `CREATE SCHEMA` -> tenant migrations -> registry rows ->
    /// ledger -> `after_migrate` and `after_create` hooks, all in one transaction.
    ///
    /// With [`Provision::Auto`] (the default) or [`Provision::Clone`], the schema and its
    /// migration history are cloned from the tenant type's template schema in one round trip
    /// instead of replaying the migrations (the template is built or rebuilt first if the
    /// migrations changed); the result is the same schema, and `after_migrate` still receives
    /// every version. [`Provision::Migrate`] replays the migrations.
    pub async fn create_tenant(&self, new: NewTenant) -> Result<Tenant> {
        let reserved = self.reserved();
        let reserved: Vec<&str> = reserved.iter().map(String::as_str).collect();
        validate_schema_name(&new.schema, &reserved)?;
        if new.schema.starts_with(crate::provision::SPARE_PREFIX) {
            return Err(tenantry_core::NameError::SchemaReserved(new.schema).into());
        }
        let domain = self.clean_domain(&new.domain)?;
        let tenant_type = new
            .tenant_type
            .unwrap_or_else(|| crate::DEFAULT_TENANT_TYPE.to_owned());
        let set = self
            .tenant_migration_set(&tenant_type)
            .ok_or_else(|| Error::UnknownTenantType {
                tenant_type: tenant_type.clone(),
            })?
            .clone();
        check_data(&new.data)?;
        let display_name = new.display_name.unwrap_or_else(|| new.schema.clone());
        check_display_name(&display_name)?;
        let sql = &self.inner.sql;
        let plan = match new.provision {
            Provision::Migrate => None,
            // Falls back to migrating when the template can't be cloned.
            Provision::Auto => Some(self.clone_plan(&tenant_type).await?),
            Provision::Clone => {
                let plan = self.clone_plan(&tenant_type).await?;
                if let Err(why) = plan.as_ref() {
                    return Err(Error::CannotClone {
                        tenant_type,
                        reason: why.clone(),
                    });
                }
                Some(plan)
            }
        };

        let mut tx = self.begin_admin(&new.schema).await?;
        // Schema names are unique across the whole database, tenants or not.
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(&new.schema)
                .fetch_one(&mut *tx)
                .await?;
        if exists {
            return Err(Error::TenantNameTaken { schema: new.schema });
        }
        let taken: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE domain = $1)",
            sql.domains
        )))
        .bind(&domain)
        .fetch_one(&mut *tx)
        .await?;
        if taken {
            return Err(Error::DomainTaken { domain });
        }
        let applied = match plan.as_deref() {
            Some(Ok(_))
                if crate::provision::claim_spare(
                    &mut tx,
                    self,
                    &new.schema,
                    &tenant_type,
                    &set,
                )
                .await? =>
            {
                // A pre-created clone (see `fill_spares`), renamed.
                set.migrations().iter().map(|m| m.version).collect()
            }
            Some(Ok(plan)) => {
                // The whole schema, its seed rows and migration history in one batch.
                tx.execute(sqlx::raw_sql(AssertSqlSafe(plan.sql_for(&new.schema))))
                    .await
                    .map_err(|e| conflict_or(e, || name_taken(&new.schema)))?;
                set.migrations().iter().map(|m| m.version).collect()
            }
            _ => {
                tx.execute(AssertSqlSafe(format!(
                    "CREATE SCHEMA {}",
                    quote_ident(&new.schema)
                )))
                .await
                .map_err(|e| conflict_or(e, || name_taken(&new.schema)))?;
                apply_in_tx(&mut tx, &new.schema, MIGRATIONS_TABLE, &set).await?
            }
        };
        let id: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO {} (schema_name, display_name, tenant_type, data) VALUES ($1, $2, $3, $4) RETURNING id",
            sql.tenants
        )))
        .bind(&new.schema)
        .bind(&display_name)
        .bind(&tenant_type)
        .bind(&new.data)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || name_taken(&new.schema)))?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (domain, tenant_id, is_primary) VALUES ($1, $2, TRUE)",
            sql.domains
        )))
        .bind(&domain)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || domain_taken(&domain)))?;
        write_ledger(&mut tx, self, &new.schema, &tenant_type, &set).await?;

        let tenant = fetch_tenant(&mut tx, self, &new.schema).await?;
        if !applied.is_empty() {
            self.inner
                .hooks
                .after_migrate(&new.schema, &applied, &mut tx)
                .await
                .map_err(|source| Error::Hook {
                    hook: "after_migrate",
                    source,
                })?;
        }
        self.inner
            .hooks
            .after_create(&tenant, &mut tx)
            .await
            .map_err(|source| Error::Hook {
                hook: "after_create",
                source,
            })?;
        self.create_tenant_role(&mut tx, &new.schema).await?;
        tx.commit().await?;
        self.invalidate_cache();
        Ok(tenant)
    }

    /// Deletes a tenant: `before_delete` hook, registry rows (domains cascade), ledger row, and
    /// the schema unless `SchemaOnDelete::Keep`. One transaction.
    pub async fn delete_tenant(&self, schema: &str, on_delete: SchemaOnDelete) -> Result<()> {
        let mut tx = self.begin_admin(schema).await?;
        let tenant = self.lock_tenant(&mut tx, schema).await?;
        // Serialise with migrations of this schema.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate'), hashtext($1))")
            .bind(schema)
            .execute(&mut *tx)
            .await?;
        self.inner
            .hooks
            .before_delete(&tenant, &mut tx)
            .await
            .map_err(|source| Error::Hook {
                hook: "before_delete",
                source,
            })?;
        let sql = &self.inner.sql;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE id = $1",
            sql.tenants
        )))
        .bind(tenant.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE schema_name = $1",
            sql.ledger
        )))
        .bind(schema)
        .execute(&mut *tx)
        .await?;
        if on_delete == SchemaOnDelete::Drop {
            tx.execute(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(schema)
            )))
            .await?;
        }
        self.drop_tenant_role(&mut tx, schema).await?;
        tx.commit().await?;
        self.invalidate_cache();
        Ok(())
    }

    /// Renames a tenant's schema (and its registry and ledger rows) in one transaction.
    pub async fn rename_tenant(&self, old: &str, new: &str) -> Result<Tenant> {
        let reserved = self.reserved();
        let reserved: Vec<&str> = reserved.iter().map(String::as_str).collect();
        validate_schema_name(new, &reserved)?;
        if old == new {
            return Err(Error::RenameToSameName {
                schema: old.to_owned(),
            });
        }
        let mut tx = self.begin_admin(old).await?;
        let tenant = self.lock_tenant(&mut tx, old).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate'), hashtext($1))")
            .bind(old)
            .execute(&mut *tx)
            .await?;
        tx.execute(AssertSqlSafe(format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote_ident(old),
            quote_ident(new)
        )))
        .await
        .map_err(|e| conflict_or(e, || name_taken(new)))?;
        self.rename_tenant_role(&mut tx, old, new).await?;
        let sql = &self.inner.sql;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET schema_name = $1 WHERE id = $2",
            sql.tenants
        )))
        .bind(new)
        .bind(tenant.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET schema_name = $1 WHERE schema_name = $2",
            sql.ledger
        )))
        .bind(new)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        let renamed = fetch_tenant(&mut tx, self, new).await?;
        tx.commit().await?;
        self.invalidate_cache();
        Ok(renamed)
    }

    /// Sets a tenant's status (active, suspended, maintenance).
    ///
    /// Waits (up to [`crate::Config::lifecycle_wait`]) for the tenant's transactions and
    /// sessions in flight to end, so that once this returns, no work of a tenant that is not
    /// active is running anywhere, and none starts (every scoped `BEGIN` checks the status).
    pub async fn set_status(&self, schema: &str, status: TenantStatus) -> Result<()> {
        let mut tx = crate::handle::begin_shielded(&self.inner.pool, "BEGIN".to_owned()).await?;
        let tenant = self.lock_tenant(&mut tx, schema).await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET status = $1 WHERE id = $2",
            self.inner.sql.tenants
        )))
        .bind(status.as_str())
        .bind(tenant.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.invalidate_cache();
        Ok(())
    }

    /// Replaces the application's fields of a tenant.
    pub async fn set_data<T: Serialize>(&self, schema: &str, data: &T) -> Result<()> {
        let value = serde_json::to_value(data).map_err(Error::TenantDataNotSerializable)?;
        check_data(&value)?;
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET data = $1 WHERE schema_name = $2",
            self.inner.sql.tenants
        )))
        .bind(&value)
        .bind(schema)
        .execute(&self.inner.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::TenantNotFound(schema.to_owned()));
        }
        self.invalidate_cache();
        Ok(())
    }

    /// Adds a domain to a tenant; with `primary`, it becomes the primary one.
    pub async fn add_domain(&self, schema: &str, domain: &str, primary: bool) -> Result<()> {
        let domain = self.clean_domain(domain)?;
        let sql = &self.inner.sql;
        let mut tx = crate::handle::begin_shielded(&self.inner.pool, "BEGIN".to_owned()).await?;
        let tenant = fetch_tenant(&mut tx, self, schema).await?;
        if primary {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {} SET is_primary = FALSE WHERE tenant_id = $1 AND is_primary",
                sql.domains
            )))
            .bind(tenant.id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (domain, tenant_id, is_primary) VALUES ($1, $2, $3)",
            sql.domains
        )))
        .bind(&domain)
        .bind(tenant.id)
        .bind(primary || tenant.primary_domain.is_none())
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || domain_taken(&domain)))?;
        tx.commit().await?;
        self.invalidate_cache();
        Ok(())
    }

    /// Removes a domain. The primary domain can only be removed when it is the tenant's last
    /// one... which is refused too: set another primary first, or delete the tenant.
    pub async fn remove_domain(&self, domain: &str) -> Result<()> {
        let domain = self.normalize_domain(domain)?;
        let sql = &self.inner.sql;
        let mut tx = crate::handle::begin_shielded(&self.inner.pool, "BEGIN".to_owned()).await?;
        let row: Option<(bool, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT is_primary, tenant_id FROM {} WHERE domain = $1 FOR UPDATE",
            sql.domains
        )))
        .bind(&domain)
        .fetch_optional(&mut *tx)
        .await?;
        // Requests that came in on this domain finish before it goes (it may be added to another
        // tenant next).
        if let Some((_, tenant_id)) = row {
            self.lock_tenant_id(&mut tx, tenant_id, &domain).await?;
        }
        match row.map(|(primary, _)| primary) {
            None => return Err(Error::DomainNotFound { domain }),
            Some(true) => return Err(Error::PrimaryDomainRemoval { domain }),
            Some(false) => {}
        }
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE domain = $1",
            sql.domains
        )))
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.invalidate_cache();
        Ok(())
    }

    /// Makes `domain` its tenant's primary domain.
    pub async fn set_primary_domain(&self, domain: &str) -> Result<()> {
        let domain = self.normalize_domain(domain)?;
        let sql = &self.inner.sql;
        let mut tx = crate::handle::begin_shielded(&self.inner.pool, "BEGIN".to_owned()).await?;
        let tenant_id: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT tenant_id FROM {} WHERE domain = $1 FOR UPDATE",
            sql.domains
        )))
        .bind(&domain)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tenant_id) = tenant_id else {
            return Err(Error::DomainNotFound { domain });
        };
        // Two statements: the partial unique index is checked row by row, so the old primary
        // must be cleared before the new one is set.
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET is_primary = FALSE WHERE tenant_id = $1 AND is_primary AND domain <> $2",
            sql.domains
        )))
        .bind(tenant_id)
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET is_primary = TRUE WHERE domain = $1",
            sql.domains
        )))
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.invalidate_cache();
        Ok(())
    }

    /// One tenant by schema name.
    pub async fn tenant(&self, schema: &str) -> Result<Tenant> {
        let mut conn = self.inner.pool.acquire().await?;
        fetch_tenant(&mut conn, self, schema).await
    }

    /// One tenant by registry id, read from the database (never from the cache). `None` once
    /// it was deleted. Ids are never reused, so this is how long-lived holders of a tenant
    /// re-check it.
    pub async fn tenant_by_id(&self, id: i64) -> Result<Option<Tenant>> {
        let row: Option<TenantRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{} WHERE t.id = $1",
            self.inner.sql.select_tenant
        )))
        .bind(id)
        .fetch_optional(&self.inner.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Every tenant, ordered by schema name.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows: Vec<TenantRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{} ORDER BY t.schema_name",
            self.inner.sql.select_tenant
        )))
        .fetch_all(&self.inner.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The domains of a tenant, primary first.
    pub async fn domains(&self, schema: &str) -> Result<Vec<DomainRecord>> {
        let sql = &self.inner.sql;
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT d.domain, d.is_primary FROM {} d JOIN {} t ON t.id = d.tenant_id \
             WHERE t.schema_name = $1 ORDER BY d.is_primary DESC, d.domain",
            sql.domains, sql.tenants
        )))
        .bind(schema)
        .fetch_all(&self.inner.pool)
        .await?)
    }

    /// Opens a scoped transaction for a tenant by schema name (CLI and jobs).
    pub async fn begin_schema(&self, schema: &str) -> Result<crate::TenantTx> {
        let tenant = Arc::new(self.tenant(schema).await?);
        self.begin(&tenant).await
    }
}

/// Serialising life-cycle changes with the tenant's work in flight.
impl Tenantry {
    /// Takes the tenant's lock exclusively (see `tenantry_enter`): waits until every scoped
    /// transaction and session of the tenant has ended, while new ones queue behind. Returns
    /// the tenant as the registry has it once the lock is held.
    async fn lock_tenant(&self, conn: &mut PgConnection, schema: &str) -> Result<Tenant> {
        let tenant = fetch_tenant(conn, self, schema).await?;
        self.lock_tenant_id(conn, tenant.id, schema).await?;
        // Read again under the lock: a change that committed while we waited wins.
        let again = fetch_tenant(conn, self, schema).await?;
        if again.id != tenant.id {
            return Err(Error::TenantNotFound(schema.to_owned()));
        }
        Ok(again)
    }

    /// [`Tenantry::lock_tenant`] by id; `what` names the tenant in errors.
    async fn lock_tenant_id(&self, conn: &mut PgConnection, id: i64, what: &str) -> Result<()> {
        let wait = self.config().lifecycle_wait;
        let sql = format!(
            "SET LOCAL lock_timeout = {}; SELECT pg_advisory_xact_lock({}, {}); \
             SET LOCAL lock_timeout TO DEFAULT",
            wait.as_millis().max(1),
            crate::registry::TENANT_LOCK_CLASS,
            crate::registry::tenant_lock_key(id),
        );
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
                    Error::TenantBusy {
                        schema: what.to_owned(),
                        waited: wait,
                    }
                }
                _ => Error::Database(e),
            })?;
        Ok(())
    }
}

/// Database-enforced isolation ([`crate::Config::tenant_roles`]): the tenant role is created,
/// dropped and renamed inside the life-cycle transaction, so it exists exactly when the tenant
/// does. Role names are validated prefixes plus validated schema names, always quoted.
impl Tenantry {
    /// Creates the tenant's role, makes it own the schema and everything in it, and grants it
    /// what later migrations (run by the connecting user) create there.
    pub(crate) async fn create_tenant_role(
        &self,
        conn: &mut PgConnection,
        schema: &str,
    ) -> Result<()> {
        let (Some(role), Some(group)) = (self.tenant_role(schema), self.tenant_group_role()) else {
            return Ok(());
        };
        let (r, g, s) = (quote_ident(&role), quote_ident(&group), quote_ident(schema));
        let literal = |x: &str| format!("'{}'", x.replace('\'', "''"));
        // `GRANT r TO CURRENT_USER` lets a non-superuser owner SET ROLE and migrate later.
        let sql = format!(
            "CREATE ROLE {r} NOLOGIN IN ROLE {g}; GRANT {r} TO CURRENT_USER; \
             ALTER SCHEMA {s} OWNER TO {r}; \
             DO $tenantry$ DECLARE o record; BEGIN \
               FOR o IN SELECT c.oid::regclass AS name FROM pg_class c \
                 WHERE c.relnamespace = {ns}::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                     AND d.objid = c.oid AND d.deptype IN ('a', 'i')) \
               LOOP EXECUTE format('ALTER TABLE %s OWNER TO %I', o.name, {rl}); END LOOP; \
               FOR o IN SELECT p.oid::regprocedure AS name FROM pg_proc p WHERE p.pronamespace = {ns}::regnamespace \
               LOOP EXECUTE format('ALTER ROUTINE %s OWNER TO %I', o.name, {rl}); END LOOP; \
             END $tenantry$; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON TABLES TO {r}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON SEQUENCES TO {r}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT EXECUTE ON ROUTINES TO {r}",
            ns = literal(&s),
            rl = literal(&role),
        );
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
            .await
            .map_err(|e| match &e {
                // 42710 duplicate_object; 23505 when two creations race on the catalog.
                sqlx::Error::Database(db)
                    if matches!(db.code().as_deref(), Some("42710" | "23505")) =>
                {
                    Error::RoleExists { role: role.clone() }
                }
                _ => Error::Database(e),
            })?;
        Ok(())
    }

    /// Hands what the role owns back to the connecting user and drops the role.
    async fn drop_tenant_role(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let Some(role) = self.tenant_role(schema) else {
            return Ok(());
        };
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&mut *conn)
                .await?;
        if exists {
            let r = quote_ident(&role);
            conn.execute(sqlx::raw_sql(AssertSqlSafe(format!(
                "REASSIGN OWNED BY {r} TO CURRENT_USER; DROP OWNED BY {r}; DROP ROLE {r}"
            ))))
            .await?;
        }
        Ok(())
    }

    /// Renames the tenant's role with its schema.
    async fn rename_tenant_role(
        &self,
        conn: &mut PgConnection,
        old: &str,
        new: &str,
    ) -> Result<()> {
        let (Some(old_role), Some(new_role)) = (self.tenant_role(old), self.tenant_role(new))
        else {
            return Ok(());
        };
        conn.execute(AssertSqlSafe(format!(
            "ALTER ROLE {} RENAME TO {}",
            quote_ident(&old_role),
            quote_ident(&new_role)
        )))
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42710") => {
                Error::RoleExists { role: new_role }
            }
            e => Error::Database(e),
        })?;
        Ok(())
    }
}

pub(crate) async fn fetch_tenant(
    conn: &mut PgConnection,
    t: &Tenantry,
    schema: &str,
) -> Result<Tenant> {
    let row: Option<TenantRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{} WHERE t.schema_name = $1",
        t.inner.sql.select_tenant
    )))
    .bind(schema)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.0)
        .ok_or_else(|| Error::TenantNotFound(schema.to_owned()))
}

pub(crate) async fn write_ledger(
    conn: &mut PgConnection,
    t: &Tenantry,
    schema: &str,
    tenant_type: &str,
    set: &crate::MigrationSet,
) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (schema_name, tenant_type, last_version, fingerprint, updated_at) \
         VALUES ($1, $2, $3, $4, now()) ON CONFLICT (schema_name) DO UPDATE \
         SET tenant_type = EXCLUDED.tenant_type, last_version = EXCLUDED.last_version, \
             fingerprint = EXCLUDED.fingerprint, updated_at = now()",
        t.inner.sql.ledger
    )))
    .bind(schema)
    .bind(tenant_type)
    .bind(set.latest_version())
    .bind(set.fingerprint())
    .execute(conn)
    .await?;
    Ok(())
}

/// Unique violations (23505) and duplicate schemas (42P06), found only once the statement ran
/// (a concurrent creation won), become `conflict()`; other errors stay database errors.
pub(crate) fn conflict_or(e: sqlx::Error, conflict: impl FnOnce() -> Error) -> Error {
    if let sqlx::Error::Database(db) = &e
        && matches!(db.code().as_deref(), Some("23505" | "42P06"))
    {
        return conflict();
    }
    Error::Database(e)
}

pub(crate) fn name_taken(schema: &str) -> Error {
    Error::TenantNameTaken {
        schema: schema.to_owned(),
    }
}

pub(crate) fn domain_taken(domain: &str) -> Error {
    Error::DomainTaken {
        domain: domain.to_owned(),
    }
}

/// Tenant data must be a JSON object (the application's fields, by name).
pub(crate) fn check_data(data: &serde_json::Value) -> Result<()> {
    if data.is_object() {
        Ok(())
    } else {
        Err(Error::TenantDataNotObject {
            found: crate::error::json_kind(data),
        })
    }
}
