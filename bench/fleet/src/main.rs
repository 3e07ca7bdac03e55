//! Fleet benchmark: tenant creation by clone and by migration, one `ADD COLUMN` migration across
//! the fleet with several `jobs` values, a no-op run; and the same on django-tenants' one-table
//! schema at 1,000 tenants, as ratios against its recorded baseline. Every phase runs in a
//! database of its own, created and dropped by the benchmark. See README.md.
//!
//! Modules by job: `setup` (databases, handles, migration sets), `scenarios` (the timed
//! operations), `report` (the recorded baseline, statistics), `data_tools` (`--data-tools`:
//! clone, export, import); the phases run in order in `main`.

mod data_tools;
mod report;
mod scenarios;
mod setup;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use tenantry_sqlx::{MigrationSet, Provision};

use report::*;
use scenarios::{create_many, create_range, drop_previous_column, run_fleet};
use setup::{BenchDb, fixtures, handle, with_add_columns};

#[derive(Parser, Debug)]
#[command(about = "Tenantry fleet benchmark (creates and drops its own databases)")]
struct Args {
    /// Tenants created by clone with the 30-table schema (then migrated across).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Tenants created by migrating from scratch (30-table schema), for the comparison.
    #[arg(long, default_value_t = 300)]
    scratch_n: usize,
    /// `jobs` values for the ADD COLUMN run.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    jobs: Vec<usize>,
    /// Spare clones pre-created (`fill_spares`), then claimed by as many sign-ups (0 to skip).
    #[arg(long, default_value_t = 200)]
    spares: usize,
    /// Fleet runs with `MigrateOptions::synchronous_commit` (a disk sync per schema) instead of
    /// the default (asynchronous schema commits, one WAL flush at the end of the run).
    #[arg(long)]
    sync_commit: bool,
    /// Tenants in the django-tenants comparison (0 to skip it).
    #[arg(long, default_value_t = 1000)]
    dt_n: usize,
    /// Only build the 30-table template in a new database, write the clone script for a schema
    /// named `probe` to this file, print the database's URL and exit, keeping the database (for
    /// timing the script's parts in psql; drop it afterwards).
    #[arg(long, value_name = "FILE")]
    clone_script: Option<PathBuf>,
    /// Only time the tenant data tools (create empty vs clone, export, import) on a tenant
    /// holding this many rows, side by side, and exit.
    #[arg(long, value_name = "ROWS")]
    data_tools: Option<i64>,
    /// Server admin URL (databases are created and dropped through it).
    #[arg(
        long,
        env = "TENANTRY_BENCH_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let base = MigrationSet::from_dir(fixtures().join("tenant")).await?;
    let shared = Some(fixtures().join("shared"));
    let max_jobs = args.jobs.iter().copied().max().unwrap_or(4);
    if let Some(rows) = args.data_tools {
        return data_tools::run(&args.admin_url, rows).await;
    }
    if let Some(path) = &args.clone_script {
        let db = BenchDb::create(&args.admin_url, "probe").await?;
        let t = handle(&db.url(), shared.clone(), base.clone(), 2).await?;
        t.fleet().migrate_shared().await?;
        let script = t
            .fleet()
            .clone_script("default", "probe")
            .await?
            .map_err(anyhow::Error::msg)?;
        std::fs::write(path, script)?;
        println!("{}", db.url());
        return Ok(());
    }
    let mut summary = Vec::new();
    println!("# sync_commit={}", args.sync_commit);
    println!(
        "# tenantry fleet benchmark: n={} scratch_n={} jobs={:?} dt_n={}",
        args.n, args.scratch_n, args.jobs, args.dt_n
    );

    // 1. Creation with the 30-table schema, by clone.
    let db = BenchDb::create(&args.admin_url, "clone").await?;
    let t = handle(&db.url(), shared.clone(), base.clone(), max_jobs as u32 + 2).await?;
    t.fleet().migrate_shared().await?;
    let start = Instant::now();
    t.fleet()
        .refresh_template("default")
        .await?
        .map_err(anyhow::Error::msg)?;
    println!(
        "template build: {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    let start = Instant::now();
    let s = stats(create_many(&t, args.n, Provision::Clone, 0).await?);
    let clone_wall = start.elapsed();
    let line = format!(
        "create {} tenants (30-table schema) by clone: median {:.1} ms, p99 {:.1} ms, mean {:.1} ms, total {:.1} s",
        args.n,
        s.median,
        s.p99,
        s.mean,
        secs(clone_wall)
    );
    println!("{line}");
    summary.push(line);
    let clone_median = s.median;

    // 1b. Sign-ups served from spare clones made beforehand.
    if args.spares > 0 {
        let start = Instant::now();
        t.fleet().fill_spares("default", args.spares).await?;
        let fill = start.elapsed();
        let s =
            stats(create_range(&t, args.n + 1..=args.n + args.spares, Provision::Auto, 0).await?);
        let line = format!(
            "create {} tenants (30-table schema) from spare clones: median {:.1} ms, p99 {:.1} ms, mean {:.1} ms (spares filled beforehand at {:.1} ms each)",
            args.spares,
            s.median,
            s.p99,
            s.mean,
            fill.as_secs_f64() * 1000.0 / args.spares as f64
        );
        println!("{line}");
        summary.push(line);
    }

    // 2. The same by migrating from scratch, in a database of its own.
    if args.scratch_n > 0 {
        let db2 = BenchDb::create(&args.admin_url, "scratch").await?;
        let t2 = handle(&db2.url(), shared.clone(), base.clone(), 4).await?;
        t2.fleet().migrate_shared().await?;
        let s = stats(create_many(&t2, args.scratch_n, Provision::Migrate, 0).await?);
        let line = format!(
            "create {} tenants (30-table schema) by migrating from scratch: median {:.1} ms, p99 {:.1} ms, mean {:.1} ms (scratch/clone median: {:.2}; the scratch database is fresh, the clone one holds the N clones)",
            args.scratch_n,
            s.median,
            s.p99,
            s.mean,
            s.median / clone_median
        );
        println!("{line}");
        summary.push(line);
        t2.close().await;
        db2.drop_now().await?;
    }

    // 3. One ADD COLUMN across the fleet, once per jobs value (each run adds a new column).
    for (k, &jobs) in args.jobs.iter().enumerate() {
        drop_previous_column(
            &db.url(),
            shared.clone(),
            &base,
            "users",
            k,
            max_jobs,
            args.sync_commit,
        )
        .await?;
        let set = with_add_columns(&base, "users", k, false);
        let tk = handle(&db.url(), shared.clone(), set, jobs as u32 + 2).await?;
        let (elapsed, total, migrated) = run_fleet(&tk, jobs, args.sync_commit).await?;
        let line = format!(
            "ADD COLUMN across {total} tenants, jobs {jobs}: {:.2} s ({migrated} migrated)",
            secs(elapsed)
        );
        println!("{line}");
        summary.push(line);
        tk.close().await;
    }

    // 4. No-op run over the fleet.
    let last = with_add_columns(&base, "users", args.jobs.len().saturating_sub(1), false);
    let tk = handle(&db.url(), shared.clone(), last, max_jobs as u32 + 2).await?;
    let (elapsed, total, migrated) = run_fleet(&tk, max_jobs, args.sync_commit).await?;
    let line = format!(
        "no-op migrate over {total} tenants: {:.3} s ({migrated} migrated)",
        secs(elapsed)
    );
    println!("{line}");
    summary.push(line);
    tk.close().await;
    t.close().await;
    db.drop_now().await?;

    // 5. django-tenants' one-table schema at dt_n tenants.
    if args.dt_n > 0 {
        let items = MigrationSet::from_sql(&[(
            1,
            "items",
            "CREATE TABLE items_item (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
             name VARCHAR(100) NOT NULL, created TIMESTAMPTZ NOT NULL);",
        )]);
        let db3 = BenchDb::create(&args.admin_url, "dt").await?;
        let t3 = handle(&db3.url(), None, items.clone(), 4).await?;
        t3.fleet().migrate_shared().await?;
        t3.fleet()
            .refresh_template("default")
            .await?
            .map_err(anyhow::Error::msg)?;
        // The recorded baseline is for 1,000 tenants: ratios only at that size.
        let ratio = |dt: f64, ours: f64| {
            if args.dt_n == 1000 {
                format!("-> {:.1}x", dt / ours)
            } else {
                "(baseline is for 1,000 tenants: no ratio)".to_owned()
            }
        };
        // django-tenants' recorded figure for a jobs value and the ratio (none recorded for 4).
        let baseline = |jobs: usize, dt: Option<f64>, ours: f64| match dt {
            Some(dt) => format!(
                "; django-tenants (recorded, {}) {dt} s {}",
                if jobs == 1 { "standard" } else { "2 processes" },
                ratio(dt, ours)
            ),
            None => String::new(),
        };
        let s = stats(create_many(&t3, args.dt_n, Provision::Clone, 10).await?);
        summary.push(format!(
            "[one-table] create {} tenants + 10 items each, by clone: median {:.1} ms, p99 {:.1} ms; django-tenants (recorded) median {DT_CREATE_MEDIAN_MS} ms {}",
            args.dt_n,
            s.median,
            s.p99,
            ratio(DT_CREATE_MEDIAN_MS, s.median)
        ));
        println!("{}", summary.last().unwrap());
        t3.close().await;
        let t3 = handle(&db3.url(), None, items.clone(), 6).await?;
        for (jobs, dt) in [
            (1, Some(DT_NOOP_SEQ_S)),
            (2, Some(DT_NOOP_PAR2_S)),
            (4, None),
        ] {
            let (elapsed, total, _) = run_fleet(&t3, jobs, args.sync_commit).await?;
            summary.push(format!(
                "[one-table] no-op migrate (shared + {total} tenants), jobs {jobs}: {:.3} s{}",
                secs(elapsed),
                baseline(jobs, dt, secs(elapsed))
            ));
            println!("{}", summary.last().unwrap());
        }
        t3.close().await;
        // In the order given by --jobs (each run adds one more column).
        for (k, &jobs) in args.jobs.iter().enumerate() {
            let dt = match jobs {
                1 => Some(DT_ADD_SEQ_S),
                2 => Some(DT_ADD_PAR2_S),
                _ => None,
            };
            drop_previous_column(
                &db3.url(),
                None,
                &items,
                "items_item",
                k,
                4,
                args.sync_commit,
            )
            .await?;
            let tk = handle(
                &db3.url(),
                None,
                with_add_columns(&items, "items_item", k, false),
                6,
            )
            .await?;
            let (elapsed, total, migrated) = run_fleet(&tk, jobs, args.sync_commit).await?;
            summary.push(format!(
                "[one-table] ADD COLUMN (shared + {total} tenants, {migrated} migrated), jobs {jobs}: {:.2} s{}",
                secs(elapsed),
                baseline(jobs, dt, secs(elapsed))
            ));
            println!("{}", summary.last().unwrap());
            tk.close().await;
        }
        // Sign-ups from spare clones (after the fleet runs, so those compare 1,000 tenants with
        // django-tenants' 1,000): the spares are filled first, timed apart, then dt_n sign-ups
        // claim them, each + 10 items as above.
        if args.spares > 0 {
            let tk = handle(
                &db3.url(),
                None,
                with_add_columns(
                    &items,
                    "items_item",
                    args.jobs.len().saturating_sub(1),
                    false,
                ),
                4,
            )
            .await?;
            let start = Instant::now();
            tk.fleet().fill_spares("default", args.dt_n).await?;
            let fill = start.elapsed();
            let s =
                stats(create_range(&tk, args.dt_n + 1..=2 * args.dt_n, Provision::Auto, 10).await?);
            summary.push(format!(
                "[one-table] create {} tenants + 10 items each, from spare clones: median {:.1} ms, p99 {:.1} ms (spares filled beforehand at {:.1} ms each); django-tenants (recorded) median {DT_CREATE_MEDIAN_MS} ms {}",
                args.dt_n,
                s.median,
                s.p99,
                fill.as_secs_f64() * 1000.0 / args.dt_n as f64,
                ratio(DT_CREATE_MEDIAN_MS, s.median)
            ));
            println!("{}", summary.last().unwrap());
            tk.close().await;
        }
        db3.drop_now().await?;
    }

    println!("\n## summary");
    for line in summary {
        println!("- {line}");
    }
    Ok(())
}
