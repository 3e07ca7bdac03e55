//! Tenant creation and a one-column migration over the fleet, through Tenantry's library (what
//! `tenantry tenant create` and `tenantry migrate` run): in a fresh database, the shared
//! migrations, then `--count` tenants one after the other with `admin().create_tenant` (schema by
//! template clone, registry row, domain, ledger: atomic), each timed; a fleet migrate with nothing
//! to do; then one added column (`ALTER TABLE notes ADD COLUMN pinned ...`) across the fleet,
//! with `--jobs` schemas at once (1 = one after the other, as rustango's runner). The tenant
//! migrations are the demo's `notes` table as in `bench/peers` (`peers-rustango provision`, the
//! same figures for rustango). Prints one `RESULT` line per figure.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tenantry::{MigrateOptions, NewTenant, Tenantry};

#[derive(Parser)]
struct Args {
    /// A database to create afresh (dropped first if it exists).
    #[arg(long)]
    database_url: String,
    /// Tenants to create.
    #[arg(long, default_value_t = 1000)]
    count: u32,
    /// Schemas migrated at once by the timed `ADD COLUMN`.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// The migrations folder (emptied first).
    #[arg(long)]
    migrations_dir: Option<std::path::PathBuf>,
}

const NOTES: &str = "CREATE TABLE notes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE INDEX notes_created_at ON notes (created_at DESC);
";

const PINNED: &str = "ALTER TABLE notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT false;\n";

async fn fresh_database(url: &str) -> anyhow::Result<()> {
    let (base, db) = url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("the URL names no database"))?;
    anyhow::ensure!(
        db.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {db:?}: lowercase letters, digits and _ only"
    );
    let mut admin = PgConnection::connect(&format!("{base}/postgres")).await?;
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .await?;
    admin.close().await?;
    Ok(())
}

async fn connect(url: &str, dir: &Path) -> anyhow::Result<Tenantry> {
    Ok(Tenantry::builder()
        .tenant_migrations(dir)
        .connect(url)
        .await?)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    fresh_database(&a.database_url).await?;
    let dir = a
        .migrations_dir
        .unwrap_or_else(|| std::env::temp_dir().join("tenantry-bench-provision"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("20261129000001_notes.sql"), NOTES)?;
    let t = connect(&a.database_url, &dir).await?;
    t.fleet().migrate_shared().await?;
    let mut times = Vec::with_capacity(a.count as usize);
    let started = Instant::now();
    for i in 1..=a.count {
        let name = format!("t{i:06}");
        let t0 = Instant::now();
        t.admin()
            .create_tenant(NewTenant::new(&name, format!("{name}.bench.local")))
            .await?;
        times.push(t0.elapsed());
    }
    let total = started.elapsed().as_secs_f64();
    times.sort();
    println!(
        "RESULT system=tenantry op=create n={} median_ms={:.1} p99_ms={:.1} mean_ms={:.1} total_s={total:.1}",
        a.count,
        pct(&times, 0.5),
        pct(&times, 0.99),
        total * 1000.0 / f64::from(a.count)
    );
    let options = || MigrateOptions {
        jobs: a.jobs,
        ..MigrateOptions::default()
    };
    let t0 = Instant::now();
    let report = t.fleet().migrate_tenants(options()).await?;
    anyhow::ensure!(report.is_ok(), "migrate (nothing to do) failed");
    println!(
        "RESULT system=tenantry op=migrate_noop n={} total_s={:.3}",
        report.total,
        t0.elapsed().as_secs_f64()
    );
    t.close().await;

    std::fs::write(dir.join("20261129000002_pinned.sql"), PINNED)?;
    let t = connect(&a.database_url, &dir).await?;
    t.fleet().migrate_shared().await?;
    let mut conn = PgConnection::connect(&a.database_url).await?;
    conn.execute("CHECKPOINT").await?;
    let t0 = Instant::now();
    let report = t.fleet().migrate_tenants(options()).await?;
    let secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(report.is_ok(), "add a column failed");
    let with_column: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' \
         AND column_name = 'pinned'",
    )
    .fetch_one(&mut conn)
    .await?;
    anyhow::ensure!(
        with_column >= i64::from(a.count),
        "{with_column} schemas have the column, expected {}",
        a.count
    );
    println!(
        "RESULT system=tenantry op=add_column n={} jobs={} total_s={secs:.3} schemas_with_column={with_column}",
        report.migrated(),
        a.jobs
    );
    t.close().await;
    Ok(())
}
