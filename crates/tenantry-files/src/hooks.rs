//! Dropping a tenant's files when it is deleted, from Tenantry's life-cycle hooks.

use tenantry_core::Tenant;
use tenantry_sqlx::{BoxError, CleanupHooks, TenantCleanup, async_trait};

use crate::TenantFiles;

/// A [`TenantHooks`](tenantry_sqlx::TenantHooks) adapter: runs the application's hooks
/// (`inner`), then, in `after_delete` (once the deletion has committed), deletes the tenant's
/// files ([`TenantFiles::drop_tenant`]). Nest it with other adapters (the cache's
/// `CacheHooks`) to clean up several stores.
///
/// A store that fails does not undo the deletion (Tenantry logs a warning): the files are
/// under the deleted tenant's id, which is never reused, so no other tenant can reach them;
/// remove them later with [`TenantFiles::drop_tenant`].
///
/// ```no_run
/// use tenantry_files::{FilesHooks, TenantFiles};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let files = TenantFiles::local("/var/lib/app/files")?;
/// let tenantry = tenantry_sqlx::Tenantry::builder()
///     .hooks(FilesHooks::new(files.clone(), tenantry_sqlx::NoHooks))
///     .connect("postgres://localhost/app")
///     .await?;
/// # Ok(())
/// # }
/// ```
pub type FilesHooks<H> = CleanupHooks<TenantFiles, H>;

#[async_trait]
impl TenantCleanup for TenantFiles {
    async fn drop_tenant(&self, tenant: &Tenant) -> Result<(), BoxError> {
        let removed = TenantFiles::drop_tenant(self, tenant.id).await?;
        tracing::debug!(
            tenant_id = tenant.id,
            removed,
            "deleted tenant's files removed"
        );
        Ok(())
    }
}
