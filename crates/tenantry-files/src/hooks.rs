//! Dropping a tenant's files when it is deleted, from Tenantry's life-cycle hooks.

use sqlx::PgConnection;
use tenantry_core::Tenant;
use tenantry_sqlx::{BoxError, TenantHooks, async_trait};

use crate::TenantFiles;

/// A [`TenantHooks`] adapter: runs the application's hooks (`inner`), then, in
/// `after_delete` (once the deletion has committed), deletes the tenant's files
/// ([`TenantFiles::drop_tenant`]). Compose it with other adapters (e.g. the cache's
/// `CacheHooks`) by nesting them.
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
#[derive(Debug, Clone)]
pub struct FilesHooks<H> {
    files: TenantFiles,
    inner: H,
}

impl<H: TenantHooks> FilesHooks<H> {
    /// `inner` (the application's hooks, or [`tenantry_sqlx::NoHooks`]) plus deleting the
    /// files of deleted tenants from `files`.
    pub fn new(files: TenantFiles, inner: H) -> Self {
        Self { files, inner }
    }
}

#[async_trait]
impl<H: TenantHooks> TenantHooks for FilesHooks<H> {
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
        let removed = self.files.drop_tenant(tenant.id).await?;
        tracing::debug!(
            tenant_id = tenant.id,
            removed,
            "deleted tenant's files removed"
        );
        inner
    }
}
