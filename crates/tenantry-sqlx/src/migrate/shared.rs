//! The shared schema: Tenantry's registry migrations, then the application's shared
//! migrations, each atomically; what is pending there; the extra search-path schemas.

use sqlx::AssertSqlSafe;

use super::apply::apply_in_tx;
use super::set::MIGRATIONS_TABLE;
use crate::admin::roles::setup_group_role;
use crate::error::{Error, Result};
use crate::groups::Fleet;
use crate::registry::{REGISTRY_MIGRATIONS_TABLE, install_schema_events_sql, registry_migrations};
use crate::request::begin::begin_shielded;
use crate::sql::{begin_with_path, fill, qualified};

/// What [`crate::Fleet::migrate_shared`] would apply, read without changing anything.
#[derive(Debug, Clone, Default)]
pub struct PendingShared {
    /// Whether Tenantry's registry tables exist yet (if not, there are no tenants to plan).
    pub registry_installed: bool,
    /// Tenantry's own registry migrations not yet applied.
    pub registry_pending: Vec<i64>,
    /// The application's shared migrations not yet applied.
    pub shared_pending: Vec<i64>,
}

impl PendingShared {
    /// True when the shared schema is up to date.
    pub fn is_empty(&self) -> bool {
        self.registry_pending.is_empty() && self.shared_pending.is_empty()
    }
}

impl Fleet<'_> {
    /// Applies Tenantry's registry migrations, then the application's shared migrations, each
    /// atomically in the shared schema. Returns the shared versions applied.
    pub async fn migrate_shared(self) -> Result<Vec<i64>> {
        let shared = self.tenantry.config().shared_schema.clone();
        let mut sql = begin_with_path(&self.tenantry.inner.shared_path);
        if self.tenantry.is_citus() {
            // Whatever the database says, nothing the shared migrations create is a tenant:
            // schemas made here (`extensions`...) stay local to the coordinator.
            sql = format!("{sql}; {}", crate::citus::sharding(false));
        }
        // Registry first (the application's shared migrations may reference it).
        let mut tx = begin_shielded(&self.tenantry.inner.pool, sql.clone()).await?;
        apply_in_tx(
            &mut tx,
            &shared,
            REGISTRY_MIGRATIONS_TABLE,
            &registry_migrations(),
            false,
        )
        .await?;
        tx.commit().await?;
        // Best effort (needs superuser): schema drops and renames by any SQL empty the caches.
        sqlx::raw_sql(AssertSqlSafe(install_schema_events_sql(&shared)))
            .execute(&self.tenantry.inner.pool)
            .await?;

        let mut tx = begin_shielded(&self.tenantry.inner.pool, sql).await?;
        let applied = apply_in_tx(
            &mut tx,
            &shared,
            MIGRATIONS_TABLE,
            &self.tenantry.inner.shared_migrations,
            self.tenantry.is_citus(),
        )
        .await?;
        tx.commit().await?;
        // The shared migrations may have created the extra schemas: check them now.
        self.verify_extra_search_path().await?;
        // Citus: detect it again (the migrations may have created the extension), then the
        // reference tables.
        self.tenantry.after_shared_migrations().await?;
        // ... and let the tenant roles (role mode) use them.
        if let Some(group) = self.tenantry.group_role() {
            setup_group_role(&self.tenantry.inner.pool, &group, self.tenantry.config()).await?;
        }
        Ok(applied)
    }

    /// What [`crate::Fleet::migrate_shared`] would apply (versions missing from the shared schema's
    /// applied-migrations tables). Read-only: for `--plan`/`--check` in tools.
    pub async fn plan_shared(self) -> Result<PendingShared> {
        let shared = self.tenantry.config().shared_schema.clone();
        let mut conn = self.tenantry.inner.pool.acquire().await?;
        let mut pending = Vec::new();
        for (table, set) in [
            (REGISTRY_MIGRATIONS_TABLE, registry_migrations()),
            (
                MIGRATIONS_TABLE,
                self.tenantry.inner.shared_migrations.clone(),
            ),
        ] {
            let qualified = qualified(&shared, table);
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(&qualified)
                .fetch_one(&mut *conn)
                .await?;
            let applied: Vec<i64> = if exists {
                sqlx::query_scalar(AssertSqlSafe(fill(
                    "SELECT version FROM {qualified}",
                    &[("qualified", &qualified)],
                )))
                .fetch_all(&mut *conn)
                .await?
            } else {
                Vec::new()
            };
            pending.push(
                set.migrations()
                    .iter()
                    .map(|m| m.version)
                    .filter(|v| !applied.contains(v))
                    .collect::<Vec<_>>(),
            );
        }
        let registry_installed: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(qualified(&shared, "tenantry_tenants"))
            .fetch_one(&mut *conn)
            .await?;
        let shared_pending = pending.pop().unwrap_or_default();
        let registry_pending = pending.pop().unwrap_or_default();
        Ok(PendingShared {
            registry_installed,
            registry_pending,
            shared_pending,
        })
    }

    /// Checks that every schema of [`crate::Config::extra_search_path`] exists. PostgreSQL
    /// silently skips a missing schema in `search_path`, so a typo would otherwise surface as
    /// "type citext does not exist" deep in some tenant query. Called at the end of
    /// [`crate::Fleet::migrate_shared`] (shared migrations may create the schemas); call it yourself
    /// if you don't migrate at start-up.
    pub async fn verify_extra_search_path(self) -> Result<()> {
        let extra = &self.tenantry.config().extra_search_path;
        if extra.is_empty() {
            return Ok(());
        }
        let missing: Vec<String> = sqlx::query_scalar(
            "SELECT s FROM unnest($1::text[]) AS s \
             WHERE NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s)",
        )
        .bind(extra)
        .fetch_all(&self.tenantry.inner.pool)
        .await?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::ExtraSearchPathMissing { schemas: missing })
        }
    }
}
