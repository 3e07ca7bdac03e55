//! Tenant creation and a one-column migration over the fleet, through rustango's own
//! provisioning (what its `create-tenant` and `migrate-tenants` verbs run): in a fresh database,
//! the registry by `Builder::migrate`, then `--count` schema-mode tenants one after the other with
//! `provision_tenant` (validate, `CREATE SCHEMA`, the `rustango_orgs` row, the tenant's
//! migrations, activate), each timed; a `migrate_tenants_dyn` with nothing to do; then a second
//! migration (`ALTER TABLE notes ADD COLUMN pinned ...`) applied to every tenant by
//! `migrate_tenants_dyn`, timed. The tenant migrations are rustango migration files with one
//! hand-written SQL operation each (`{"data": {"sql": ...}}`), the demo's `notes` table.
//! Prints one `RESULT` line per figure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use rustango::sql::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use rustango::sql::sqlx::{self, ConnectOptions, Connection, Executor};
use rustango::tenancy::provision::{
    MigrationsOutcome, ProvisionRequest, TenantStorage, provision_tenant,
};
use rustango::tenancy::{TenantPools, migrate_tenants_dyn};

/// `peers-rustango provision`.
#[derive(Args)]
pub(crate) struct ProvisionArgs {
    /// A database to create afresh (dropped first if it exists).
    #[arg(long)]
    database_url: String,
    /// Tenants to create.
    #[arg(long, default_value_t = 1000)]
    count: u32,
    /// rustango's project folder (emptied first).
    #[arg(long)]
    project_dir: Option<PathBuf>,
    /// The apex domain.
    #[arg(long, default_value = "bench.local")]
    apex: String,
}

const NOTES: &str = "CREATE TABLE notes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE INDEX notes_created_at ON notes (created_at DESC)";

const PINNED: &str = "ALTER TABLE notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT false";

fn write_migration(
    dir: &Path,
    name: &str,
    prev: Option<&str>,
    sql: &str,
    reverse: &str,
) -> anyhow::Result<()> {
    let m = serde_json::json!({
        "name": name,
        "created_at": "2026-11-29T00:00:00Z",
        "prev": prev,
        "atomic": true,
        "snapshot": { "tables": [] },
        "forward": [ { "data": { "sql": sql, "reverse_sql": reverse, "reversible": true } } ],
    });
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&m)?,
    )?;
    Ok(())
}

async fn fresh_database(url: &str) -> anyhow::Result<()> {
    let options: PgConnectOptions = url.parse()?;
    let db = options
        .get_database()
        .ok_or_else(|| anyhow::anyhow!("the URL names no database"))?
        .to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    anyhow::ensure!(
        db.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {db:?}: lowercase letters, digits and _ only"
    );
    admin
        .execute(&*format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .await?;
    admin.close().await?;
    crate::setup::create_database(url).await?;
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `peers-rustango provision`.
pub(crate) async fn run(a: ProvisionArgs) -> anyhow::Result<()> {
    fresh_database(&a.database_url).await?;
    let root = a
        .project_dir
        .unwrap_or_else(|| std::env::temp_dir().join("peers-rustango-provision"));
    let _ = std::fs::remove_dir_all(&root);
    let app = root.join("bench").join("migrations");
    std::fs::create_dir_all(&app)?;
    write_migration(&app, "0001_notes", None, NOTES, "DROP TABLE notes")?;
    crate::setup::registry(&a.database_url, &a.apex, root.clone()).await?;

    let registry = PgPoolOptions::new()
        .max_connections(16)
        .connect(&a.database_url)
        .await?;
    let pools = TenantPools::new(registry.clone());
    let mut times = Vec::with_capacity(a.count as usize);
    let started = Instant::now();
    for i in 1..=a.count {
        let slug = format!("t{i:06}");
        let mut req = ProvisionRequest::new(slug.clone(), TenantStorage::Schema(None));
        req.host_pattern = Some(format!("{slug}.{}", a.apex));
        let t0 = Instant::now();
        let outcome = provision_tenant(&pools, &a.database_url, &root, &req, None)
            .await
            .map_err(|e| anyhow::anyhow!("provision {slug}: {e}"))?;
        times.push(t0.elapsed());
        match outcome.migrations {
            MigrationsOutcome::Applied(_) => {}
            other => anyhow::bail!("{slug}: migrations {other:?}"),
        }
    }
    let total = started.elapsed().as_secs_f64();
    times.sort();
    let mean = total * 1000.0 / f64::from(a.count);
    println!(
        "RESULT system=rustango op=create n={} median_ms={:.1} p99_ms={:.1} mean_ms={mean:.1} total_s={total:.1}",
        a.count,
        pct(&times, 0.5),
        pct(&times, 0.99)
    );

    let t0 = Instant::now();
    let report = migrate_tenants_dyn(&pools, &root, &a.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("migrate (nothing to do): {e}"))?;
    anyhow::ensure!(
        report.all_ok(),
        "migrate (nothing to do) failed: {}",
        report.failure_count()
    );
    println!(
        "RESULT system=rustango op=migrate_noop n={} total_s={:.3}",
        report.tenants.len(),
        t0.elapsed().as_secs_f64()
    );

    write_migration(
        &app,
        "0002_pinned",
        Some("0001_notes"),
        PINNED,
        "ALTER TABLE notes DROP COLUMN pinned",
    )?;
    let mut conn = registry.acquire().await?;
    conn.execute("CHECKPOINT").await?;
    drop(conn);
    let t0 = Instant::now();
    let report = migrate_tenants_dyn(&pools, &root, &a.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("migrate (add a column): {e}"))?;
    let secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.all_ok(),
        "add a column failed for {} tenants",
        report.failure_count()
    );
    let with_column: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' \
         AND column_name = 'pinned'",
    )
    .fetch_one(&registry)
    .await?;
    anyhow::ensure!(
        with_column == i64::from(a.count),
        "{with_column} schemas have the column, expected {}",
        a.count
    );
    println!(
        "RESULT system=rustango op=add_column n={} total_s={secs:.3} schemas_with_column={with_column}",
        report.tenants.len()
    );
    registry.close().await;
    Ok(())
}
