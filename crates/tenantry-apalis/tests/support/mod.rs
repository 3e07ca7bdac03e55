//! A database with tenants, the apalis storage, and a worker whose job writes a note in its
//! tenant's schema.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use serde::{Deserialize, Serialize};
use tenantry_apalis::{JobTenant, TenantJobLayer, TenantQueue};
use tenantry_core::{Tenant, TenantStatus};
use tenantry_sqlx::Tenantry;
use tenantry_testing::{TestDb, TestTenants, eventually, notes_migrations};

/// The queue of the tests' jobs.
pub const QUEUE: &str = "notes";

/// A job: write a note titled `title` in the job's tenant. With `suspend_first`, the job
/// suspends its own tenant before it opens its transaction (once).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteNote {
    pub title: String,
    #[serde(default)]
    pub suspend_first: bool,
}

impl WriteNote {
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            suspend_first: false,
        }
    }
}

/// The job function: checks that the task-local scope is the job's tenant, then writes.
pub async fn write_note(job: WriteNote, tenant: JobTenant) -> Result<(), BoxDynError> {
    let current = tenantry_sqlx::current_tenant().ok_or("job ran outside a tenant scope")?;
    if current.id != tenant.tenant().id {
        return Err("the scope's tenant is not the job's".into());
    }
    if job.suspend_first {
        let suspended: Option<String> = sqlx::query_scalar(
            "SELECT status FROM public.tenantry_tenants WHERE id = $1 AND status = 'suspended'",
        )
        .bind(tenant.tenant().id)
        .fetch_optional(tenant.tenantry().raw_pool())
        .await?;
        let ran_before: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM public.marks)")
            .fetch_one(tenant.tenantry().raw_pool())
            .await?;
        if suspended.is_none() && !ran_before {
            sqlx::query("INSERT INTO public.marks VALUES (1)")
                .execute(tenant.tenantry().raw_pool())
                .await?;
            tenant
                .tenantry()
                .admin()
                .set_status(
                    &tenant.tenant().schema,
                    tenantry_core::TenantStatus::Suspended,
                )
                .await?;
        }
    }
    let mut tx = tenant.begin().await?;
    sqlx::query("INSERT INTO notes (title) VALUES ($1)")
        .bind(&job.title)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    tracing::info!(title = %job.title, "note written");
    Ok(())
}

/// A test database with the notes fixture, the apalis storage and `tenants` tenants.
pub struct Setup {
    pub db: TestDb,
    pub tenantry: Tenantry,
    pub tenants: TestTenants,
    pub queue: TenantQueue<WriteNote>,
}

impl Setup {
    pub async fn new() -> Self {
        Self::with(|b, _| b).await
    }

    /// [`Setup::new`] with the builder changed by `f` (given the database, for its role prefix).
    pub async fn with(
        f: impl FnOnce(tenantry_sqlx::TenantryBuilder, &TestDb) -> tenantry_sqlx::TenantryBuilder,
    ) -> Self {
        let db = TestDb::new().await;
        let builder = Tenantry::builder().tenant_migration_set("default", notes_migrations());
        let tenantry = db.tenantry(f(builder, &db)).await;
        tenantry_apalis::setup(&tenantry)
            .await
            .expect("apalis migrations");
        sqlx::query("CREATE TABLE public.marks (n int)")
            .execute(tenantry.raw_pool())
            .await
            .unwrap();
        let tenants = TestTenants::new(&tenantry);
        Self {
            db,
            tenantry,
            tenants,
            queue: TenantQueue::new(QUEUE).max_attempts(3),
        }
    }

    pub async fn tenant(&self) -> Arc<Tenant> {
        self.tenants.create().await.expect("tenant").tenant
    }

    /// Enqueues `job` for `tenant` in a committed transaction; returns the job id.
    pub async fn enqueue(&self, tenant: &Arc<Tenant>, job: WriteNote) -> String {
        let mut tx = self.tenantry.begin(tenant).await.expect("begin");
        let id = self.queue.push(&mut tx, &job).await.expect("push");
        tx.commit().await.expect("commit");
        id.to_string()
    }

    /// Starts a worker on the queue (aborted when the handle is dropped).
    pub fn start_worker(&self, name: &str) -> Worker {
        let layer = TenantJobLayer::new(self.tenantry.clone())
            .retry_inactive_after(Duration::from_millis(200));
        let worker = WorkerBuilder::new(name)
            .backend(
                self.queue
                    .backend(&self.tenantry, Duration::from_millis(100)),
            )
            .layer(layer)
            .build(write_note);
        Worker(tokio::spawn(async move {
            let _ = worker.run().await;
        }))
    }

    /// The notes' titles in `schema`, read without any tenant scope (test inspection).
    pub async fn titles_in(&self, schema: &str) -> Vec<String> {
        let sql = format!("SELECT title FROM \"{schema}\".notes ORDER BY id");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.tenantry.raw_pool())
            .await
            .unwrap()
    }

    /// `(status, attempts, max_attempts, last_result)` of job `id`.
    pub async fn job_row(&self, id: &str) -> Option<(String, i32, i32, Option<String>)> {
        sqlx::query_as(
            "SELECT status, attempts, max_attempts, last_result::text FROM apalis.jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.tenantry.raw_pool())
        .await
        .unwrap()
    }

    /// Sets the status of `tenant`.
    pub async fn set_status(&self, tenant: &Tenant, status: TenantStatus) {
        self.tenantry
            .admin()
            .set_status(&tenant.schema, status)
            .await
            .unwrap();
    }

    /// Asserts that job `id` gets done (else fails with `failure`) and that `schema` then holds
    /// just the note `title`.
    pub async fn assert_ran(&self, id: &str, failure: &str, schema: &str, title: &str) {
        assert!(self.wait_status(id, "Done").await, "{failure}");
        assert_eq!(self.titles_in(schema).await, vec![title.to_owned()]);
    }

    /// Waits (up to 90 s) until job `id` is in `status`. Usually well under a second; now and
    /// then (about 1 run in 4 of `a_suspended_tenants_job_waits_and_runs_after_resume`, cause
    /// not found yet) a job waits until apalis-postgres's 30 s worker heartbeat, so 30 s was
    /// not enough on a loaded machine.
    pub async fn wait_status(&self, id: &str, status: &str) -> bool {
        eventually(Duration::from_secs(90), async || {
            self.job_row(id).await.is_some_and(|r| r.0 == status)
        })
        .await
    }
}

/// A running worker task, aborted on drop.
pub struct Worker(tokio::task::JoinHandle<()>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}
