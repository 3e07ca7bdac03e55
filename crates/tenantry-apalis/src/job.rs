//! What a job function gets: its tenant, and the way to open the tenant's transaction.

use std::sync::Arc;

use apalis::prelude::{FromRequest, Task};
use tenantry_core::Tenant;
use tenantry_sqlx::{TenantTx, Tenantry};

use crate::error::JobError;

/// The job's tenant, as resolved by the worker's [`crate::TenantJobLayer`]: an apalis
/// extractor (take it as an argument of the job function).
///
/// [`JobTenant::begin`] opens the tenant's transaction through [`Tenantry::begin`], the path a
/// request's `TenantDb` takes: the same identity check (registry id, schema OID), status check
/// and `SET LOCAL search_path`, so a job is isolated exactly like a request. The job also runs
/// inside the tenant's task-local scope, so [`Tenantry::begin_current`] and
/// [`tenantry_sqlx::current_tenant`] work in code it calls.
///
/// ```no_run
/// use tenantry_apalis::JobTenant;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Reindex { table: String }
///
/// async fn reindex(job: Reindex, tenant: JobTenant) -> Result<(), tenantry_apalis::BoxDynError> {
///     let mut tx = tenant.begin().await?; // refused if the tenant was suspended meanwhile
///     sqlx::query("UPDATE notes SET title = title").execute(&mut tx).await?;
///     tx.commit().await?;
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct JobTenant {
    tenant: Arc<Tenant>,
    tenantry: Tenantry,
}

impl JobTenant {
    pub(crate) fn new(tenant: Arc<Tenant>, tenantry: Tenantry) -> Self {
        Self { tenant, tenantry }
    }

    /// The tenant's record, as resolved when the job started.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// The Tenantry handle the worker was built with.
    pub fn tenantry(&self) -> &Tenantry {
        &self.tenantry
    }

    /// Opens a transaction scoped to the job's tenant ([`Tenantry::begin`]). A refusal because
    /// the tenant stopped serving or moved in the meantime (`Error::TenantNotServing`,
    /// `Error::TenantMoved`), returned by the job, makes the layer put the job back to wait
    /// instead of failing it.
    pub async fn begin(&self) -> Result<TenantTx, tenantry_sqlx::Error> {
        self.tenantry.begin(&self.tenant).await
    }
}

impl<Args: Sync> FromRequest<Task<Args>> for JobTenant {
    type Error = JobError;

    async fn from_request(task: &Task<Args>) -> Result<Self, Self::Error> {
        task.data()
            .get::<JobTenant>()
            .cloned()
            .ok_or(JobError::NoJobContext)
    }
}
