//! Enqueueing a job with its tenant, inside the tenant's own transaction.

use std::marker::PhantomData;
use std::time::Duration;

use apalis::prelude::{BackendExt, PollWith, Strategy, TaskBuilder, TaskId};
use apalis_postgres::{PgTask, PostgresStorage, Pubsub};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{TenantTx, Tenantry};

use crate::error::JobError;
use crate::meta::JobTenantRef;

/// Connections of the pool [`TenantQueue::backend`] gives a worker's storage.
pub const QUEUE_POOL_CONNECTIONS: u32 = 4;

/// Where a tenant's jobs of type `Args` go: one apalis-postgres queue (`apalis.jobs`, rows
/// with `job_type` = the queue's name).
///
/// [`TenantQueue::push`] inserts the job on the tenant's [`TenantTx`], the transaction the
/// request (or job) writes with: the job row exists if and only if that transaction commits.
/// The job carries its tenant ([`JobTenantRef`]: registry id, schema, schema OID) in its
/// metadata; the worker's [`crate::TenantJobLayer`] runs it in that tenant's scope.
///
/// ```no_run
/// # async fn demo(tenantry: tenantry_sqlx::Tenantry, tenant: std::sync::Arc<tenantry_core::Tenant>)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use tenantry_apalis::TenantQueue;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Welcome { user_id: i64 }
///
/// let queue = TenantQueue::<Welcome>::new("welcome-mails");
/// let mut tx = tenantry.begin(&tenant).await?;
/// sqlx::query("INSERT INTO users (id) VALUES (7)").execute(&mut tx).await?;
/// let job = queue.push(&mut tx, &Welcome { user_id: 7 }).await?;
/// tx.commit().await?; // the user and the job, or neither
/// # let _ = job; Ok(()) }
/// ```
#[derive(Debug)]
pub struct TenantQueue<Args> {
    name: String,
    max_attempts: Option<usize>,
    _args: PhantomData<fn(Args)>,
}

impl<Args> Clone for TenantQueue<Args> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            max_attempts: self.max_attempts,
            _args: PhantomData,
        }
    }
}

impl<Args: Serialize> TenantQueue<Args> {
    /// The queue named `name` (apalis-postgres's `Config::queue`; the worker's storage must use
    /// the same name, see [`TenantQueue::backend`]).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_attempts: None,
            _args: PhantomData,
        }
    }

    /// The queue's name (`job_type` in `apalis.jobs`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many times a failing job runs before it is given up (apalis-postgres's default
    /// is 25). Waiting for a suspended tenant does not use them up.
    pub fn max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// The plain apalis-postgres storage of this queue on `pool`, for a worker with a polling
    /// strategy of its own (see [`TenantQueue::backend`]). `pool` must reach the tenants'
    /// database; the storage names its tables (`apalis.*`), so the pool's search path does
    /// not matter.
    pub fn storage(&self, pool: &sqlx::PgPool) -> PostgresStorage<Args> {
        PostgresStorage::new(pool).with_config(apalis_postgres::Config::default().queue(&self.name))
    }

    /// The backend a worker of this queue runs on: the storage on a small pool of its own
    /// ([`QUEUE_POOL_CONNECTIONS`] connections to `tenantry`'s database: one listens, the
    /// others poll and record results), so a worker never takes the connections of the
    /// request path. It is woken by apalis-postgres's `LISTEN`/`NOTIFY` when a job is
    /// enqueued (at the enqueuing transaction's commit), and every `poll_every` for jobs that
    /// became due (put back to wait for their tenant, scheduled, retried).
    pub fn backend(
        &self,
        tenantry: &Tenantry,
        poll_every: Duration,
    ) -> PollWith<PostgresStorage<Args>, Strategy> {
        let options = (*tenantry.raw_pool().connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(QUEUE_POOL_CONNECTIONS)
            .connect_lazy_with(options);
        let strategy = Strategy::new()
            .stream(Pubsub::new(pool.clone(), self.name.clone()))
            .interval(poll_every);
        self.storage(&pool).poll_with_strategy(strategy)
    }

    /// Inserts the job on `tx`, for `tx`'s tenant; it becomes visible to workers when `tx`
    /// commits, and never exists if `tx` rolls back. Returns the job's id.
    pub async fn push(&self, tx: &mut TenantTx, args: &Args) -> Result<TaskId, JobError> {
        self.push_with(tx, args, |t| t).await
    }

    /// [`TenantQueue::push`] with a job that runs no earlier than `delay` from now.
    pub async fn push_after(
        &self,
        tx: &mut TenantTx,
        args: &Args,
        delay: Duration,
    ) -> Result<TaskId, JobError> {
        self.push_with(tx, args, |t| t.run_after(delay)).await
    }

    /// [`TenantQueue::push`] with the task shaped by `build` (priority, run time, idempotency
    /// key...). The tenant metadata and the id are Tenantry's: set after `build`.
    pub async fn push_with(
        &self,
        tx: &mut TenantTx,
        args: &Args,
        build: impl FnOnce(TaskBuilder<Vec<u8>>) -> TaskBuilder<Vec<u8>>,
    ) -> Result<TaskId, JobError> {
        let bytes = serde_json::to_vec(args).map_err(JobError::Encode)?;
        let id = TaskId::from_ulid(ulid::Ulid::generate());
        let mut task = build(TaskBuilder::new(bytes));
        if let Some(n) = self.max_attempts {
            task = task.max_attempts(n);
        }
        let task: PgTask = task
            .task_id(id.clone())
            .metadata(&JobTenantRef::of(tx.tenant()))
            .build();
        // The plain connection of the tenant's transaction: the INSERT names its table
        // (`apalis.jobs`), so the tenant's search path changes nothing about it.
        apalis_postgres::queries::push_tasks(&mut **tx, &self.name, vec![task])
            .await
            .map_err(|e| JobError::Enqueue(e.into()))?;
        Ok(id)
    }
}
