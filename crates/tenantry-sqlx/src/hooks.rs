//! Application hooks into the tenant life cycle.

use async_trait::async_trait;
use sqlx::PgConnection;
use tenantry_core::Tenant;

use crate::error::BoxError;

/// Hooks an application implements to take part in the tenant life cycle. Every method has a
/// default that does nothing.
///
/// Each hook but [`TenantHooks::after_delete`] runs *inside* the transaction of the operation,
/// with `search_path` set to the tenant's schema followed by the shared schema: an error from a
/// hook rolls the whole operation back (a failed seed leaves no schema and no row behind).
///
/// ```no_run
/// use tenantry_sqlx::{BoxError, Tenant, TenantHooks, Tenantry, async_trait};
///
/// struct Seed;
///
/// #[async_trait]
/// impl TenantHooks for Seed {
///     async fn after_create(
///         &self,
///         tenant: &Tenant,
///         conn: &mut sqlx::PgConnection,
///     ) -> Result<(), BoxError> {
///         // `search_path` is the new tenant's schema: no schema name in the SQL.
///         sqlx::query("INSERT INTO settings (name, value) VALUES ('welcome', $1)")
///             .bind(format!("Welcome to {}", tenant.display_name))
///             .execute(conn)
///             .await?;
///         Ok(())
///     }
/// }
///
/// # async fn demo() -> tenantry_sqlx::Result<()> {
/// let tenantry = Tenantry::builder()
///     .tenant_migrations("migrations/tenant")
///     .hooks(Seed)
///     .connect("postgres://localhost/app")
///     .await?;
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait TenantHooks: Send + Sync + 'static {
    /// After a tenant's schema has been created and migrated and its rows inserted: seed data.
    async fn after_create(
        &self,
        _tenant: &Tenant,
        _conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    /// After pending migrations were applied to a tenant schema (not called when nothing ran).
    async fn after_migrate(
        &self,
        _schema: &str,
        _applied: &[i64],
        _conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    /// Before a tenant is deleted (its schema still exists).
    async fn before_delete(
        &self,
        _tenant: &Tenant,
        _conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    /// After a tenant's deletion has **committed**: remove what it had outside the database
    /// (files, cache keys), which a rolled-back deletion must not lose. Keyed by
    /// [`Tenant::id`], which is never reused.
    ///
    /// The deletion stands whatever this returns: an error is logged (`tracing` warning with
    /// the tenant's id) and `delete_tenant` still returns `Ok`; what was left behind is
    /// unreachable by other tenants (their ids differ) and can be removed later.
    async fn after_delete(&self, _tenant: &Tenant) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The hooks used when the application registers none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl TenantHooks for NoHooks {}

/// What a tenant keeps outside the database (files, cache keys...), removed once its deletion
/// has committed: see [`CleanupHooks`]. `tenantry-cache`'s `TenantCache` and
/// `tenantry-files`' `TenantFiles` implement it.
#[async_trait]
pub trait TenantCleanup: Send + Sync + 'static {
    /// Removes everything of the deleted `tenant` (keyed by [`Tenant::id`], never reused).
    async fn drop_tenant(&self, tenant: &Tenant) -> Result<(), BoxError>;
}

/// A [`TenantHooks`] adapter: the application's hooks (`inner`), plus `cleanup` run from
/// [`TenantHooks::after_delete`], once a deletion has committed (a rolled-back deletion keeps
/// everything). Nest adapters to clean up several stores.
///
/// ```no_run
/// use tenantry_sqlx::{BoxError, CleanupHooks, NoHooks, Tenant, TenantCleanup, Tenantry, async_trait};
///
/// /// The tenant's row in a search index outside PostgreSQL.
/// struct SearchIndex;
///
/// #[async_trait]
/// impl TenantCleanup for SearchIndex {
///     async fn drop_tenant(&self, tenant: &Tenant) -> Result<(), BoxError> {
///         println!("drop index tenant-{}", tenant.id);
///         Ok(())
///     }
/// }
///
/// # async fn demo() -> tenantry_sqlx::Result<()> {
/// let tenantry = Tenantry::builder()
///     .hooks(CleanupHooks::new(SearchIndex, NoHooks))
///     .connect("postgres://localhost/app")
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CleanupHooks<C, H> {
    cleanup: C,
    inner: H,
}

impl<C: TenantCleanup, H: TenantHooks> CleanupHooks<C, H> {
    /// `inner` (the application's hooks, or [`NoHooks`]) plus `cleanup` after deletions.
    pub fn new(cleanup: C, inner: H) -> Self {
        Self { cleanup, inner }
    }
}

#[async_trait]
impl<C: TenantCleanup, H: TenantHooks> TenantHooks for CleanupHooks<C, H> {
    async fn after_create(&self, tenant: &Tenant, conn: &mut PgConnection) -> Result<(), BoxError> {
        self.inner.after_create(tenant, conn).await
    }

    async fn after_migrate(
        &self,
        schema: &str,
        applied: &[i64],
        conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        self.inner.after_migrate(schema, applied, conn).await
    }

    async fn before_delete(
        &self,
        tenant: &Tenant,
        conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        self.inner.before_delete(tenant, conn).await
    }

    /// The inner hook's, then the cleanup (both run; the first error is returned).
    async fn after_delete(&self, tenant: &Tenant) -> Result<(), BoxError> {
        let inner = self.inner.after_delete(tenant).await;
        self.cleanup.drop_tenant(tenant).await?;
        inner
    }
}
