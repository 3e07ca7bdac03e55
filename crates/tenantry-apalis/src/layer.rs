//! The worker side: [`TenantJobLayer`], a tower layer for apalis workers that runs each job in
//! its tenant's scope.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{AbortError, BoxDynError, RetryAfterError, Status, Task};
use apalis_core::task::status::AtomicStatus;
use futures::FutureExt;
use futures::future::BoxFuture;
use tenantry_core::TenantStatus;
use tenantry_sqlx::{Error, Tenantry};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::JobError;
use crate::job::JobTenant;
use crate::meta::JobTenantRef;
use crate::resolve::{Resolved, resolve};

/// How long a job of a suspended or maintenance tenant waits before it is looked at again,
/// unless [`TenantJobLayer::retry_inactive_after`] says otherwise.
pub const DEFAULT_RETRY_INACTIVE_AFTER: Duration = Duration::from_secs(5);

/// A tower layer for apalis workers (`WorkerBuilder::layer`): each job runs in its tenant's
/// scope.
///
/// For every job it:
/// 1. reads the job's tenant ([`JobTenantRef`], written by [`crate::TenantQueue`]) and finds
///    the tenant by its registry id, from Tenantry's resolution cache when the tenant still
///    has the name the job recorded (the cache is emptied by registry notifications, like the
///    request path's); a renamed tenant is found by id and its job follows it;
/// 2. drops a job whose tenant is gone (deleted; or its id now stands for a replaced schema):
///    apalis's `AbortError` with [`JobError::TenantGone`] / [`JobError::SchemaReplaced`], so the
///    job is marked `Killed` with that message and never retried;
/// 3. puts back a job whose tenant is suspended or in maintenance: it becomes `Pending` again
///    and runs no earlier than [`TenantJobLayer::retry_inactive_after`] later, without using
///    up its attempts (its `max_attempts` grows with each wait that counted one), and runs once
///    the tenant is active again; the same when the job itself is refused at `BEGIN` because
///    its tenant stopped serving or moved meanwhile;
/// 4. otherwise runs the job inside the tenant's task-local scope and a `tenant_job` tracing
///    span carrying `tenant` (schema), `tenant_id`, `job` and `queue`, with a [`JobTenant`]
///    available to the job function.
///
/// ```no_run
/// # async fn demo(tenantry: tenantry_sqlx::Tenantry) {
/// use apalis::prelude::*;
/// use tenantry_apalis::{JobTenant, TenantJobLayer, TenantQueue};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Export { format: String }
///
/// async fn export(job: Export, tenant: JobTenant) -> Result<(), BoxDynError> {
///     let mut tx = tenant.begin().await?;
///     // ... read the tenant's rows on &mut tx ...
///     tx.commit().await?;
///     Ok(())
/// }
///
/// let queue = TenantQueue::<Export>::new("exports");
/// let worker = WorkerBuilder::new("exports-worker")
///     .backend(queue.backend(&tenantry, std::time::Duration::from_secs(1)))
///     .layer(TenantJobLayer::new(tenantry.clone()))
///     .build(export);
/// tokio::spawn(worker.run());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TenantJobLayer {
    shared: Arc<Shared>,
}

#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) tenantry: Tenantry,
    retry_inactive_after: Duration,
}

impl TenantJobLayer {
    /// The layer for workers of `tenantry`'s tenants.
    pub fn new(tenantry: Tenantry) -> Self {
        Self {
            shared: Arc::new(Shared {
                tenantry,
                retry_inactive_after: DEFAULT_RETRY_INACTIVE_AFTER,
            }),
        }
    }

    /// How long a job of an inactive (suspended, maintenance) tenant waits before it is
    /// looked at again (default [`DEFAULT_RETRY_INACTIVE_AFTER`]).
    pub fn retry_inactive_after(mut self, wait: Duration) -> Self {
        Arc::make_mut(&mut self.shared).retry_inactive_after = wait;
        self
    }
}

impl<S> Layer<S> for TenantJobLayer {
    type Service = TenantJobService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TenantJobService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`TenantJobLayer`].
#[derive(Clone, Debug)]
pub struct TenantJobService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, Args> Service<Task<Args>> for TenantJobService<S>
where
    S: Service<Task<Args>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError>,
    S::Response: Send + 'static,
    Args: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        // The ready service goes with this job; a clone waits for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        run(Arc::clone(&self.shared), inner, task).boxed()
    }
}

/// One job, from its tenant metadata to its outcome.
async fn run<S, Args>(
    shared: Arc<Shared>,
    mut inner: S,
    mut task: Task<Args>,
) -> Result<S::Response, BoxDynError>
where
    S: Service<Task<Args>>,
    S::Error: Into<BoxDynError>,
{
    let job_id = task.task_id().map(ToString::to_string).unwrap_or_default();
    let queue = task.queue().map(|q| q.to_string()).unwrap_or_default();
    let job_ref = match task.metadata().extract_as::<JobTenantRef>() {
        Ok(r) => r,
        Err(e) => return Err(drop_job(&task, &queue, JobError::NoTenant(e))),
    };
    let tenant = match resolve(&shared.tenantry, &job_ref).await {
        Ok(Resolved::Tenant(t)) => t,
        Ok(Resolved::Gone(e)) => return Err(drop_job(&task, &queue, e)),
        // The registry could not be read: an ordinary failure, retried by apalis.
        Err(e) => return Err(e),
    };
    let span = tracing::info_span!(
        "tenant_job",
        tenant = %tenant.schema,
        tenant_id = tenant.id,
        job = %job_id,
        queue = %queue,
    );
    if tenant.status != TenantStatus::Active {
        let why = Box::new(Error::TenantNotServing {
            schema: tenant.schema.clone(),
            status: tenant.status,
        });
        return Err(
            defer(&shared, task.raw_status(), &job_id, &queue, why, false)
                .instrument(span)
                .await,
        );
    }
    task.inject_data(JobTenant::new(Arc::clone(&tenant), shared.tenantry.clone()));
    let status = task.raw_status().clone();
    let fut = inner.call(task);
    let outcome = tenantry_sqlx::scope(Arc::clone(&tenant), fut)
        .instrument(span.clone())
        .await
        .map_err(Into::into);
    match outcome {
        Ok(r) => {
            crate::metrics::finished(&queue, "done");
            Ok(r)
        }
        // The attempt was counted when the job started: the wait gives it back.
        Err(e) if waits(&e) => Err(defer(&shared, &status, &job_id, &queue, e, true)
            .instrument(span)
            .await),
        Err(e) => {
            let _guard = span.enter();
            tracing::warn!(error = %e, "tenant job failed");
            crate::metrics::finished(&queue, "failed");
            Err(e)
        }
    }
}

/// Marks the job `Killed` with `why`: it never runs again.
fn drop_job<Args>(task: &Task<Args>, queue: &str, why: JobError) -> BoxDynError {
    tracing::warn!(job = ?task.task_id().map(ToString::to_string), queue, error = %why, "tenant job dropped");
    task.raw_status().store(Status::Killed);
    crate::metrics::finished(queue, "dropped");
    Box::new(AbortError::new(why))
}

/// Puts the job back: `Pending`, to run no earlier than `retry_inactive_after` from now. With
/// `counted`, the attempt apalis counted for this run is compensated (`max_attempts + 1`), so
/// waiting for a tenant never uses up a job's attempts.
async fn defer(
    shared: &Shared,
    status: &AtomicStatus,
    job_id: &str,
    queue: &str,
    why: BoxDynError,
    counted: bool,
) -> BoxDynError {
    let wait = shared.retry_inactive_after;
    let update = sqlx::query(
        "UPDATE apalis.jobs SET run_at = now() + make_interval(secs => $2), \
         max_attempts = max_attempts + $3 WHERE id = $1",
    )
    .bind(job_id)
    .bind(wait.as_secs_f64())
    .bind(i32::from(counted))
    .execute(shared.tenantry.raw_pool())
    .await;
    if let Err(e) = update {
        // Without the new run time the job would be fetched again at once: fail it instead
        // (an ordinary failure, retried by apalis's attempts).
        tracing::warn!(error = %e, "could not put a waiting tenant job back");
        crate::metrics::finished(queue, "failed");
        return Box::new(e);
    }
    tracing::info!(reason = %why, wait_secs = wait.as_secs_f64(), "tenant job waits for its tenant");
    status.store(Status::Pending);
    crate::metrics::finished(queue, "deferred");
    Box::new(RetryAfterError::new(why, wait))
}

/// Whether a job's error is a Tenantry refusal that means "not now" rather than "failed": its
/// tenant stopped serving or moved while the job ran.
fn waits(e: &BoxDynError) -> bool {
    let err = e
        .downcast_ref::<Error>()
        .or_else(|| match e.downcast_ref::<JobError>() {
            Some(JobError::Tenantry(inner)) => Some(inner),
            _ => None,
        });
    matches!(
        err,
        Some(Error::TenantNotServing { .. } | Error::TenantMoved(_))
    )
}
