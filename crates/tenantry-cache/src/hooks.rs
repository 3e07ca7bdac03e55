//! Dropping a tenant's keys when it is deleted, from Tenantry's life-cycle hooks.

use async_trait::async_trait;
use sqlx::PgConnection;
use tenantry_core::Tenant;
use tenantry_sqlx::{BoxError, TenantHooks};

use crate::TenantCache;

/// A [`TenantHooks`] adapter: runs the application's hooks (`inner`), then, in
/// `after_delete` (once the deletion has committed), drops the deleted tenant's keys
/// ([`TenantCache::drop_tenant`]).
///
/// A cache that can't be reached does not undo the deletion (Tenantry logs a warning): the
/// keys are under the deleted tenant's id, which is never reused, so no other tenant can reach
/// them; remove them later with [`TenantCache::drop_tenant`].
///
/// ```no_run
/// use tenantry_cache::{CacheHooks, TenantCache};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = TenantCache::redis("redis://127.0.0.1:6379").await?;
/// let tenantry = tenantry_sqlx::Tenantry::builder()
///     .hooks(CacheHooks::new(cache.clone(), tenantry_sqlx::NoHooks))
///     .connect("postgres://localhost/app")
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CacheHooks<H> {
    cache: TenantCache,
    inner: H,
}

impl<H: TenantHooks> CacheHooks<H> {
    /// `inner` (the application's hooks, or [`tenantry_sqlx::NoHooks`]) plus dropping
    /// `cache`'s keys of deleted tenants.
    pub fn new(cache: TenantCache, inner: H) -> Self {
        Self { cache, inner }
    }
}

#[async_trait]
impl<H: TenantHooks> TenantHooks for CacheHooks<H> {
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

    async fn after_delete(&self, tenant: &Tenant) -> Result<(), BoxError> {
        let inner = self.inner.after_delete(tenant).await;
        self.cache.drop_tenant(tenant.id).await?;
        inner
    }
}
