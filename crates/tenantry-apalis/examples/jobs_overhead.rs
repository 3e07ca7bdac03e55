//! What the tenant layer costs a worker, side by side in one run: the same jobs (one note
//! written per job, 20 tenants) drained by
//!
//! * `plain`: an apalis worker without Tenantry, whose job function opens a pooled transaction
//!   and sets the tenant's `search_path` itself (what an app would write by hand), and
//! * `tenant`: the same worker with `TenantJobLayer`, the job enqueued by `TenantQueue` and its
//!   transaction opened by `JobTenant::begin` (resolution, identity and status checks).
//!
//! `cargo run --release -p tenantry-apalis --example jobs_overhead [jobs per round] [rounds]`
//! (defaults 1000 and 3; needs the test PostgreSQL of `tenantry-testing`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use serde::{Deserialize, Serialize};
use tenantry_apalis::{JobTenant, TenantJobLayer, TenantQueue};
use tenantry_core::{Tenant, quote_ident};
use tenantry_sqlx::Tenantry;
use tenantry_testing::{TestDb, TestTenants, eventually, notes_migrations};

const TENANTS: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Note {
    schema: String,
    title: String,
}

async fn plain_job(job: Note, pool: Data<sqlx::PgPool>) -> Result<(), BoxDynError> {
    let mut tx = pool.begin().await?;
    let set = format!(
        "SET LOCAL search_path TO {}, public",
        quote_ident(&job.schema)
    );
    sqlx::query(sqlx::AssertSqlSafe(set))
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO notes (title) VALUES ($1)")
        .bind(&job.title)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn tenant_job(job: Note, tenant: JobTenant) -> Result<(), BoxDynError> {
    let mut tx = tenant.begin().await?;
    sqlx::query("INSERT INTO notes (title) VALUES ($1)")
        .bind(&job.title)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Enqueues `n` jobs on `queue` across the tenants, then drains them with a worker; returns
/// the drain time.
async fn round(
    tenantry: &Tenantry,
    tenants: &[Arc<Tenant>],
    queue: &str,
    n: usize,
    with_layer: bool,
) -> Duration {
    let q = TenantQueue::<Note>::new(queue);
    for i in 0..n {
        let t = &tenants[i % tenants.len()];
        let mut tx = tenantry.begin(t).await.unwrap();
        let note = Note {
            schema: t.schema.clone(),
            title: format!("{queue}-{i}"),
        };
        q.push(&mut tx, &note).await.unwrap();
        tx.commit().await.unwrap();
    }
    let started = Instant::now();
    let backend = q.backend(tenantry, Duration::from_millis(50));
    let handle = if with_layer {
        let w = WorkerBuilder::new(format!("{queue}-w"))
            .backend(backend)
            .layer(TenantJobLayer::new(tenantry.clone()))
            .build(tenant_job);
        tokio::spawn(async move { drop(w.run().await) })
    } else {
        let w = WorkerBuilder::new(format!("{queue}-w"))
            .backend(backend)
            .data(tenantry.raw_pool().clone())
            .build(plain_job);
        tokio::spawn(async move { drop(w.run().await) })
    };
    let done = eventually(Duration::from_secs(600), async || {
        let d: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
        )
        .bind(queue)
        .fetch_one(tenantry.raw_pool())
        .await
        .unwrap();
        d as usize == n
    })
    .await;
    let took = started.elapsed();
    handle.abort();
    assert!(done, "{queue}: the jobs did not all finish");
    took
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(1000, |a| a.parse().expect("jobs per round"));
    let rounds: usize = args.next().map_or(3, |a| a.parse().expect("rounds"));
    let db = TestDb::new().await;
    let tenantry = db
        .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
        .await;
    tenantry_apalis::setup(&tenantry).await.unwrap();
    let maker = TestTenants::new(&tenantry);
    let mut tenants = Vec::new();
    for _ in 0..TENANTS {
        tenants.push(maker.create().await.unwrap().tenant);
    }
    let (mut plain, mut tenant) = (Duration::ZERO, Duration::ZERO);
    for r in 0..rounds {
        // Alternate the order so that neither side always runs on a warmer database.
        let order = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for with_layer in order {
            let name = format!("{}-{r}", if with_layer { "tenant" } else { "plain" });
            let took = round(&tenantry, &tenants, &name, n, with_layer).await;
            println!(
                "{name}: {n} jobs in {:.2} s ({:.0} jobs/s)",
                took.as_secs_f64(),
                n as f64 / took.as_secs_f64()
            );
            if with_layer {
                tenant += took
            } else {
                plain += took
            }
        }
    }
    let total = (n * rounds) as f64;
    println!(
        "plain {:.0} jobs/s, tenant {:.0} jobs/s: tenant/plain throughput ratio {:.2}",
        total / plain.as_secs_f64(),
        total / tenant.as_secs_f64(),
        plain.as_secs_f64() / tenant.as_secs_f64()
    );
}
