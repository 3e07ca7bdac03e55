//! The queue's storage: its migrations, and a tenant's view of one of its jobs.

use apalis::prelude::Status;
use tenantry_core::{Tenant, quote_ident};
use tenantry_sqlx::Tenantry;

use crate::error::JobError;

use crate::meta::TENANT_ID_KEY;

/// Runs apalis-postgres's migrations on `tenantry`'s pool: schema `apalis`, its tables and
/// functions, and its own migration history (`apalis._sqlx_migrations`, apart from the
/// application's). It also creates the `hstore` extension (job metadata) if it is missing, in
/// the first schema of the pool's search path (the shared schema, where extensions belong).
///
/// In role mode ([`tenantry_sqlx::Config::tenant_roles`]) it grants the tenant roles' group
/// what enqueueing inside a tenant transaction needs (`USAGE` on schema `apalis`, `INSERT` on
/// `apalis.jobs`): nothing else of the queue (no `SELECT`, `UPDATE`, `DELETE`).
///
/// Idempotent: run it at start-up with the shared migrations.
pub async fn setup(tenantry: &Tenantry) -> Result<(), JobError> {
    apalis_postgres::PostgresStorage::setup(tenantry.raw_pool())
        .await
        .map_err(|e| JobError::Setup(e.into()))?;
    if let Some(group) = tenantry.admin().tenant_group_role() {
        let group = quote_ident(&group);
        let grant = format!(
            "GRANT USAGE ON SCHEMA apalis TO {group}; GRANT INSERT ON apalis.jobs TO {group}"
        );
        // A quoted role name from Tenantry's configuration; no untrusted text.
        sqlx::raw_sql(sqlx::AssertSqlSafe(grant))
            .execute(tenantry.raw_pool())
            .await
            .map_err(|e| JobError::Setup(e.into()))?;
    }
    Ok(())
}

/// Where one job is, as [`job_state`] reads it from `apalis.jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// apalis's state: `Pending`/`Queued`/`Running` (not finished), `Done`, `Failed` (retried
    /// while attempts remain), `Killed` (given up: its tenant is gone, or a fatal error).
    pub status: Status,
    /// How many times it ran.
    pub attempts: i32,
    /// The last run's result as apalis stored it (JSON text; the error message for a failure).
    pub last_result: Option<String>,
}

impl JobState {
    /// Whether the job finished successfully.
    pub fn is_done(&self) -> bool {
        self.status == Status::Done
    }

    /// Whether the job will not run again without success: `Killed`, or `Failed` with no
    /// attempts left.
    pub fn is_given_up(&self, max_attempts: i32) -> bool {
        self.status == Status::Killed
            || (self.status == Status::Failed && self.attempts >= max_attempts)
    }
}

/// The state of job `id` of `queue`, if it is `tenant`'s: `None` for an unknown id and for
/// another tenant's job (the id is compared with the job's tenant metadata, so a tenant can
/// never learn about another's jobs). `id` can be untrusted text (it is bound, never formatted).
pub async fn job_state(
    tenantry: &Tenantry,
    tenant: &Tenant,
    queue: &str,
    id: &str,
) -> Result<Option<JobState>, sqlx::Error> {
    let row: Option<(String, i32, Option<String>)> = sqlx::query_as(
        "SELECT status, attempts, last_result::text FROM apalis.jobs \
         WHERE id = $1 AND job_type = $2 AND metadata -> $3 = $4",
    )
    .bind(id)
    .bind(queue)
    .bind(TENANT_ID_KEY)
    .bind(tenant.id.to_string())
    .fetch_optional(tenantry.raw_pool())
    .await?;
    Ok(row.map(|(status, attempts, last_result)| JobState {
        // apalis writes only its own state names; an unknown one reads as still pending.
        status: status.parse().unwrap_or(Status::Pending),
        attempts,
        last_result,
    }))
}
