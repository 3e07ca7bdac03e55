//! Finding a job's tenant by its identity, from the resolution cache when possible.

use std::sync::Arc;

use tenantry_core::Tenant;
use tenantry_sqlx::{ResolveError, Tenantry};

use crate::error::JobError;
use crate::meta::JobTenantRef;

/// What became of a job's tenant.
pub(crate) enum Resolved {
    /// The tenant, under its current name.
    Tenant(Arc<Tenant>),
    /// Deleted, or its schema replaced: the job can never run.
    Gone(JobError),
}

/// The tenant `job` was enqueued for, found by registry id.
///
/// The common case (the tenant still has the recorded name) is answered by
/// [`Tenantry::resolve_schema`], from memory; the record it returns carries the registry
/// version, so the job's `BEGIN` takes the fast identity check. A name that now belongs to
/// nobody or to another tenant falls back to a registry read by id.
pub(crate) async fn resolve(
    tenantry: &Tenantry,
    job: &JobTenantRef,
) -> Result<Resolved, tenantry_sqlx::BoxError> {
    if let Some(t) = cached(tenantry, &job.schema, job.id).await? {
        return Ok(same_schema(job, t));
    }
    match tenantry.admin().tenant_by_id(job.id).await? {
        None => Ok(Resolved::Gone(JobError::TenantGone {
            id: job.id,
            schema: job.schema.clone(),
        })),
        // Renamed: the job follows its tenant (same id, same schema OID).
        Some(t) => match cached(tenantry, &t.schema, job.id).await? {
            Some(c) => Ok(same_schema(job, c)),
            None => Ok(same_schema(job, Arc::new(t))),
        },
    }
}

/// The cached tenant named `schema`, if it is tenant `id`.
async fn cached(
    tenantry: &Tenantry,
    schema: &str,
    id: i64,
) -> Result<Option<Arc<Tenant>>, ResolveError> {
    Ok(tenantry
        .resolve_schema(schema)
        .await?
        .filter(|t| t.id == id))
}

/// `tenant`, unless its schema is not the one the job was enqueued for.
fn same_schema(job: &JobTenantRef, tenant: Arc<Tenant>) -> Resolved {
    match (job.schema_oid, tenant.schema_oid) {
        (Some(then), Some(now)) if then != now => Resolved::Gone(JobError::SchemaReplaced {
            id: job.id,
            schema: job.schema.clone(),
        }),
        _ => Resolved::Tenant(tenant),
    }
}
