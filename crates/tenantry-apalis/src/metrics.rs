//! Jobs by state through the [`metrics`](https://docs.rs/metrics) crate (cargo feature
//! `metrics`; the facade's `metrics` feature turns it on). Without the feature every function
//! here is a no-op and nothing is compiled in.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | [`JOB_RUNS`] | counter | `queue`, `outcome` = `done` / `failed` / `deferred` / `dropped` | job runs seen by [`crate::TenantJobLayer`] |
//! | [`JOBS`] | gauge | `queue`, `state` = `Pending` / `Queued` / `Running` / `Done` / `Failed` / `Killed` | rows of `apalis.jobs`, sampled by [`record_job_states`] |
//!
//! Labels are the application's queue names and apalis's six states: never a tenant, so the
//! number of series does not grow with the number of tenants (the job's tenant is in its
//! tracing span instead).

use tenantry_sqlx::Tenantry;

/// Counter: job runs seen by [`crate::TenantJobLayer`], by `queue` and `outcome`: `done`,
/// `failed` (an error; apalis retries it while attempts remain), `deferred` (its tenant was
/// suspended, in maintenance or moved: put back to wait), `dropped` (its tenant is gone:
/// `Killed`, never retried).
pub const JOB_RUNS: &str = "tenantry_job_runs_total";
/// Gauge: jobs in `apalis.jobs` by `queue` and `state`, as of the last [`record_job_states`].
pub const JOBS: &str = "tenantry_jobs";

/// apalis's task states, as stored in `apalis.jobs.status`.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const STATES: [&str; 6] = ["Pending", "Queued", "Running", "Done", "Failed", "Killed"];

/// Counts one job run's outcome.
pub(crate) fn finished(_queue: &str, _outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(JOB_RUNS, "queue" => _queue.to_owned(), "outcome" => _outcome).increment(1);
}

/// Sets [`JOBS`] from `apalis.jobs` (one `GROUP BY` query): every state of every queue that
/// has jobs, zeros included. Call it from a timer, or use [`spawn_job_states`].
pub async fn record_job_states(_tenantry: &Tenantry) -> Result<(), sqlx::Error> {
    #[cfg(feature = "metrics")]
    {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT job_type, status, count(*) FROM apalis.jobs GROUP BY job_type, status",
        )
        .fetch_all(_tenantry.raw_pool())
        .await?;
        let mut queues: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            for state in STATES {
                let n = rows
                    .iter()
                    .find(|r| r.0 == queue && r.1 == state)
                    .map_or(0, |r| r.2);
                metrics::gauge!(JOBS, "queue" => queue.to_owned(), "state" => state).set(n as f64);
            }
        }
    }
    Ok(())
}

/// Runs [`record_job_states`] every `every` on the runtime until the handle is aborted (errors
/// are logged at `debug` and the next tick tries again).
pub fn spawn_job_states(
    tenantry: Tenantry,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = record_job_states(&tenantry).await {
                tracing::debug!(error = %e, "could not sample job states");
            }
        }
    })
}
