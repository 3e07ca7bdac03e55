//! Fleet benchmark: tenant creation by clone and by migration, one `ADD COLUMN` migration across
//! the fleet with several `jobs` values, a no-op run; and the same on django-tenants' one-table
//! schema at 1,000 tenants, as ratios against its recorded baseline. Every phase runs in a
//! database of its own, created and dropped by the benchmark. See README.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use sqlx::migrate::Migration;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqlSafeStr};
use tenantry_sqlx::{MigrateOptions, MigrationSet, NewTenant, Provision, Tenantry};

/// django-tenants figures recorded with `bench/django-tenants/run_all.sh` (its README,
/// "Recorded baseline"; 2 cores, PostgreSQL 15): per-tenant creation median ms (schema,
/// migrate, domain, 10 items), then `migrate_schemas` seconds at 1,000 tenants.
const DT_CREATE_MEDIAN_MS: f64 = 87.0;
const DT_NOOP_SEQ_S: f64 = 64.84;
const DT_NOOP_PAR2_S: f64 = 35.83;
const DT_ADD_SEQ_S: f64 = 73.83;
const DT_ADD_PAR2_S: f64 = 43.35;

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
    /// Server admin URL (databases are created and dropped through it).
    #[arg(
        long,
        env = "TENANTRY_BENCH_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
}

/// A database for one phase, dropped on `drop_now`.
struct BenchDb {
    admin_url: String,
    name: String,
}

impl BenchDb {
    async fn create(admin_url: &str, label: &str) -> Result<Self> {
        let name = format!("tenantry_bench_{label}_{:08x}", rand::random::<u32>());
        let mut admin = PgConnection::connect(admin_url).await?;
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }

    async fn drop_now(self) -> Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .await?;
        Ok(())
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crates/tenantry-sqlx/tests/fixtures")
}

async fn handle(
    url: &str,
    shared: Option<PathBuf>,
    set: MigrationSet,
    pool: u32,
) -> Result<Tenantry> {
    let mut b = Tenantry::builder()
        .tenant_migration_set("default", set)
        .listen_for_changes(false)
        .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(pool));
    if let Some(dir) = shared {
        b = b.shared_migrations(dir);
    }
    Ok(b.connect(url).await?)
}

/// `base` plus `ADD COLUMN` migrations numbered 1000, 1001, ... (`count` of them).
/// The base set plus the ADD COLUMN migration of timed run `k` (0-based), every earlier run's
/// column having been added and then dropped again (`drop_last`: run `k`'s too).
///
/// Each timed run must do the same work as django-tenants' one added column: adding a second
/// and a third `VARCHAR(200)` would cross PostgreSQL's TOAST threshold, and the run that crosses
/// it creates a TOAST table and its index (with a file sync) in every schema. That made "the
/// second ADD COLUMN run" slow in earlier sessions, whatever its `jobs`. Dropped columns don't
/// count towards that threshold, so between timed runs an untimed run drops the previous column.
fn with_add_columns(base: &MigrationSet, table: &str, k: usize, drop_last: bool) -> MigrationSet {
    let mut list: Vec<Migration> = base.migrations().to_vec();
    let step = |version: i64, description: String, sql: String| {
        Migration::new(
            version,
            description.into(),
            sqlx::migrate::MigrationType::Simple,
            AssertSqlSafe(sql).into_sql_str(),
            false,
        )
    };
    for i in 0..=k {
        list.push(step(
            1000 + 2 * i as i64,
            format!("add bench_note_{i}"),
            format!("ALTER TABLE {table} ADD COLUMN bench_note_{i} VARCHAR(200) NULL;"),
        ));
        if i < k || drop_last {
            list.push(step(
                1001 + 2 * i as i64,
                format!("drop bench_note_{i}"),
                format!("ALTER TABLE {table} DROP COLUMN bench_note_{i};"),
            ));
        }
    }
    MigrationSet::from_migrations(list)
}

/// Before timed ADD COLUMN run `k` (k > 0): drops run `k - 1`'s column across the fleet, untimed.
async fn drop_previous_column(
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

struct Stats {
    median: f64,
    p99: f64,
    mean: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        median: at(0.5),
        p99: at(0.99),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Creates `n` tenants one after the other; per-tenant milliseconds. `items` seeds that many
/// rows into `items_item` after creation (django-tenants' make_tenants does 10), counted in.
async fn create_many(
    t: &Tenantry,
    n: usize,
    provision: Provision,
    items: usize,
) -> Result<Vec<f64>> {
    create_range(t, 1..=n, provision, items).await
}

/// Creates tenants `t<first>..=t<last>`.
async fn create_range(
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
async fn run_fleet(
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

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let base = MigrationSet::from_dir(fixtures().join("tenant")).await?;
    let shared = Some(fixtures().join("shared"));
    let max_jobs = args.jobs.iter().copied().max().unwrap_or(4);
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
