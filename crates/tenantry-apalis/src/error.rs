//! Errors of enqueueing and running tenant jobs.

use crate::meta::TenantMetadataError;

/// What went wrong with a tenant job.
///
/// The worker's [`crate::TenantJobLayer`] returns the variants that mean "this job can never
/// run" ([`JobError::TenantGone`], [`JobError::SchemaReplaced`], [`JobError::NoTenant`])
/// wrapped in apalis's `AbortError`: the job is marked `Killed` with this message and is not
/// retried.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job's arguments could not be encoded (JSON).
    #[error("could not encode the job's arguments: {0}")]
    Encode(#[source] serde_json::Error),
    /// The INSERT into the queue failed (the tenant's transaction is then aborted too).
    #[error("could not enqueue the job: {0}")]
    Enqueue(#[source] tenantry_sqlx::BoxError),
    /// The queue's storage could not be set up ([`crate::setup`]).
    #[error("could not set up the job queue's storage: {0}")]
    Setup(#[source] tenantry_sqlx::BoxError),
    /// The job's tenant was deleted after the job was enqueued: it is dropped, not retried.
    #[error(
        "tenant {id} (schema {schema:?} when the job was enqueued) no longer exists: the job is \
         dropped, not retried"
    )]
    TenantGone {
        /// The tenant's registry id.
        id: i64,
        /// Its schema name when the job was enqueued.
        schema: String,
    },
    /// The tenant's id now stands for another schema than the one the job was enqueued for
    /// (its schema was dropped and another one adopted): the job is dropped, not retried.
    #[error(
        "tenant {id}'s schema {schema:?} was replaced since the job was enqueued: the job is \
         dropped, not retried"
    )]
    SchemaReplaced {
        /// The tenant's registry id.
        id: i64,
        /// Its schema name when the job was enqueued.
        schema: String,
    },
    /// The job carries no tenant, or a malformed one: it was not enqueued through
    /// [`crate::TenantQueue`].
    #[error("{0}")]
    NoTenant(#[from] TenantMetadataError),
    /// The job function asked for its tenant outside a [`crate::TenantJobLayer`].
    #[error("no tenant job context: the worker has no TenantJobLayer")]
    NoJobContext,
    /// Tenantry refused or failed (a `BEGIN`, a resolution...).
    #[error(transparent)]
    Tenantry(#[from] tenantry_sqlx::Error),
}
