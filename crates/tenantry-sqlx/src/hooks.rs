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
