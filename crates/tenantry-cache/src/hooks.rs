//! Dropping a tenant's keys when it is deleted, from Tenantry's life-cycle hooks.

use async_trait::async_trait;
use tenantry_core::Tenant;
use tenantry_sqlx::{BoxError, CleanupHooks, TenantCleanup};

use crate::TenantCache;

/// A [`TenantHooks`](tenantry_sqlx::TenantHooks) adapter: runs the application's hooks (`inner`), then, in
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
pub type CacheHooks<H> = CleanupHooks<TenantCache, H>;

#[async_trait]
impl TenantCleanup for TenantCache {
    async fn drop_tenant(&self, tenant: &Tenant) -> Result<(), BoxError> {
        TenantCache::drop_tenant(self, tenant.id).await?;
        Ok(())
    }
}
