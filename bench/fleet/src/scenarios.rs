//! Scenarios: the timed operations (tenant creation one after the other, fleet runs) and the
//! untimed run that drops the previous `ADD COLUMN` run's column.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tenantry_sqlx::{MigrateOptions, MigrationSet, NewTenant, Provision, Tenantry};

use crate::setup::{handle, with_add_columns};

/// Before timed ADD COLUMN run `k` (k > 0): drops run `k - 1`'s column across the fleet, untimed.
pub(crate) async fn drop_previous_column(
    url: &str,
    shared: Option<PathBuf>,
    base: &MigrationSet,
    table: &str,
    k: usize,
    jobs: usize,
    sync_commit: bool,
) -> Result<()> {
    if k == 0 {
        return Ok(());
    }
    let set = with_add_columns(base, table, k - 1, true);
    let t = handle(url, shared, set, jobs as u32 + 2).await?;
    run_fleet(&t, jobs, sync_commit).await?;
    t.close().await;
    Ok(())
}

/// Creates `n` tenants one after the other; per-tenant milliseconds. `items` seeds that many
/// rows into `items_item` after creation (django-tenants' make_tenants does 10), counted in.
pub(crate) async fn create_many(
    t: &Tenantry,
    n: usize,
    provision: Provision,
    items: usize,
) -> Result<Vec<f64>> {
    create_range(t, 1..=n, provision, items).await
}

/// Creates tenants `t<first>..=t<last>`.
pub(crate) async fn create_range(
    t: &Tenantry,
    range: std::ops::RangeInclusive<usize>,
    provision: Provision,
    items: usize,
) -> Result<Vec<f64>> {
    let n = *range.end();
    let mut out = Vec::with_capacity(n);
    for i in range {
        let schema = format!("t{i:05}");
        let start = Instant::now();
        let tenant = t
            .admin()
            .create_tenant(
                NewTenant::new(&schema, format!("{schema}.bench.local")).provision(provision),
            )
            .await
            .with_context(|| format!("create {schema}"))?;
        if items > 0 {
            let mut tx = t.begin(&std::sync::Arc::new(tenant)).await?;
            sqlx::query("INSERT INTO items_item (name, created) SELECT 'item ' || g, now() FROM generate_series(1, $1) g")
                .bind(items as i32)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        out.push(start.elapsed().as_secs_f64() * 1000.0);
        if i % 500 == 0 {
            eprintln!("  {i}/{n} created ({provision:?})");
        }
    }
    Ok(out)
}

/// One fleet run; fails if any schema failed.
pub(crate) async fn run_fleet(
    t: &Tenantry,
    jobs: usize,
    sync_commit: bool,
) -> Result<(Duration, usize, usize)> {
    // Untimed: start every run right after a checkpoint, so that none of them pays for one
    // (a checkpoint during a run makes the next change of every page write a full-page image to
    // the WAL; which run caught it used to decide which looked slow).
    sqlx::raw_sql("CHECKPOINT").execute(t.raw_pool()).await?;
    let start = Instant::now();
    t.fleet().migrate_shared().await?;
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions {
            jobs,
            synchronous_commit: sync_commit,
            ..MigrateOptions::default()
        })
        .await?;
    let elapsed = start.elapsed();
    if let Some((schema, e)) = report.failures().next() {
        bail!("{schema}: {e}");
    }
    Ok((elapsed, report.total, report.migrated()))
}
