//! Bench setup (not measured): the registry database with rustango's own bootstrap migrations
//! (`Builder::migrate`), then N schema-mode tenants `t000001..tN` in bulk: per batch of tenants
//! one transaction that creates each schema with the demo's `notes` table (and index) plus the
//! stress `markers` table, seeds the notes, and inserts the `rustango_orgs` rows
//! (`storage_mode = 'schema'`, `host_pattern = tNNNNNN.bench.local`) with one `INSERT ... SELECT`.
//! The schema names are made inside the SQL from the tenant numbers (bound parameters).
//! Existing tenants are kept: a second run creates only the missing ones.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use rustango::sql::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use rustango::sql::sqlx::{self, ConnectOptions, Connection, Executor};

/// `peers-rustango setup`.
#[derive(Args)]
pub(crate) struct SetupArgs {
    /// The registry database (created if missing).
    #[arg(long)]
    database_url: String,
    /// Tenants.
    #[arg(long, default_value_t = 1000)]
    count: i32,
    /// Notes per tenant.
    #[arg(long, default_value_t = 10)]
    notes: i32,
    /// Tenants per transaction.
    #[arg(long, default_value_t = 500)]
    batch: i32,
    /// rustango's project folder (its bootstrap migrations are written there).
    #[arg(long)]
    project_dir: Option<PathBuf>,
    /// The apex domain.
    #[arg(long, default_value = "bench.local")]
    apex: String,
}

/// Creates the database if missing; returns whether it was created.
pub(crate) async fn create_database(url: &str) -> anyhow::Result<bool> {
    let options: PgConnectOptions = url.parse()?;
    let db = options
        .get_database()
        .ok_or_else(|| anyhow::anyhow!("the URL names no database"))?
        .to_owned();
    anyhow::ensure!(
        db.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {db:?}: lowercase letters, digits and _ only"
    );
    let mut admin = options.database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&db)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Checked above: [a-z0-9_] only.
        admin.execute(&*format!("CREATE DATABASE \"{db}\"")).await?;
    }
    admin.close().await?;
    Ok(!exists)
}

/// The registry tables, through rustango's own migrations, unless they are there.
pub(crate) async fn registry(url: &str, apex: &str, project: PathBuf) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
    let have: Option<String> = sqlx::query_scalar("SELECT to_regclass('rustango_orgs')::text")
        .fetch_one(&pool)
        .await?;
    if have.is_none() {
        rustango::server::Builder::from_pool(pool.clone(), url, apex)
            .migrate(&project)
            .await
            .map_err(|e| anyhow::anyhow!("rustango migrate: {e}"))?;
    }
    pool.close().await;
    Ok(())
}

/// Makes tenants `a..=b` (schemas, tables, notes); the org rows are inserted separately.
const MAKE_SCHEMAS: &str = "
CREATE OR REPLACE FUNCTION pg_temp.peers_make(a int, b int, notes int) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE s text;
BEGIN
  FOR i IN a..b LOOP
    s := 't' || lpad(i::text, 6, '0');
    EXECUTE format('CREATE SCHEMA %I', s);
    EXECUTE format('CREATE TABLE %I.notes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT NOT NULL DEFAULT '''',
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())', s);
    EXECUTE format('CREATE INDEX notes_created_at ON %I.notes (created_at DESC)', s);
    EXECUTE format('CREATE TABLE %I.markers (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL)', s);
    EXECUTE format('INSERT INTO %I.notes (title, body) SELECT ''note '' || g || '' of '' || %L,
        ''body of note '' || g FROM generate_series(1, %s) g', s, s, notes);
  END LOOP;
END $f$";

/// `peers-rustango setup`.
pub(crate) async fn run(a: SetupArgs) -> anyhow::Result<()> {
    create_database(&a.database_url).await?;
    let project = a
        .project_dir
        .unwrap_or_else(|| std::env::temp_dir().join("peers-rustango-project"));
    registry(&a.database_url, &a.apex, project).await?;
    let options: PgConnectOptions = a.database_url.parse()?;
    let mut conn = options.connect().await?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM rustango_orgs")
        .fetch_one(&mut conn)
        .await?;
    if have >= i64::from(a.count) {
        println!("rustango: {have} tenants already there, creating 0");
        return Ok(());
    }
    conn.execute(MAKE_SCHEMAS).await?;
    let started = Instant::now();
    let mut from = i32::try_from(have)? + 1;
    while from <= a.count {
        let to = (from + a.batch - 1).min(a.count);
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_temp.peers_make($1, $2, $3)")
            .bind(from)
            .bind(to)
            .bind(a.notes)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO rustango_orgs (slug, display_name, storage_mode, backend_kind, \
             schema_name, host_pattern, active, created_at) \
             SELECT s, s, 'schema', 'postgres', s, s || '.bench.local', true, now() \
             FROM (SELECT 't' || lpad(g::text, 6, '0') AS s FROM generate_series($1, $2) g) x",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        from = to + 1;
    }
    println!(
        "rustango: creating {} tenants ({} notes each) took {:.1}s",
        i64::from(a.count) - have,
        a.notes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
