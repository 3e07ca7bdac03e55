//! Bench setup and warm-up (not part of any measurement).
//!
//! * `tenants`: creates tenants `t000001..tN` (domain `t000001.bench.local`, ...) in the demo's
//!   database through the library's own `create_tenant` (template clone), several in parallel,
//!   each seeded with `--notes` notes inside its creation transaction. Existing ones are kept.
//!   With `--bulk` (bench-only fast path for large N, e.g. 100,000): the first tenant is created
//!   through `create_tenant` (it builds the template and its clone plan), the others many per
//!   transaction: the library's own clone batch (`Fleet::clone_script`, the SQL
//!   `create_tenant` runs) for each schema, the notes, then the registry, domain and ledger rows
//!   with one `INSERT ... SELECT` each. Same resulting layout as `create_tenant`; no hooks run.
//!   On a Citus coordinator (Citus mode: no template, no clone) each schema of the batch is
//!   created distributed and migrated one statement at a time, as `create_tenant` does there,
//!   its `_sqlx_migrations` rows copied from `t000001`'s (see `bulk_create_citus`).
//! * `control`: the control database: the demo's `notes` table in `public`, seeded the same way.
//! * `warm`: one `GET` per tenant host against a running server, so that every host is cached
//!   before memory is read.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tenantry::{BoxError, NewTenant, Tenant, TenantHooks, Tenantry};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the bench tenants in the demo's database.
    Tenants {
        /// The demo's database (created if missing).
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// Number of tenants.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Notes per tenant.
        #[arg(long, default_value_t = 10)]
        notes: i32,
        /// Tenants (or with `--bulk`, batches) created at the same time.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Bench-only fast path: many tenants per transaction (see the module docs).
        #[arg(long)]
        bulk: bool,
        /// Tenants per transaction with `--bulk`.
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// Create and seed the control database.
    Control {
        /// The control database (created if missing).
        #[arg(long)]
        database_url: String,
        /// Notes in the control table.
        #[arg(long, default_value_t = 10)]
        notes: i32,
    },
    /// Request `path` once for every tenant host.
    Warm {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: String,
        /// Number of tenants (hosts t000001.bench.local ...).
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Path to request.
        #[arg(long, default_value = "/api/whoami")]
        path: String,
        /// Requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

/// Schema name of bench tenant `i` (1-based).
fn schema(i: usize) -> String {
    format!("t{i:06}")
}

/// Seeds each new tenant with `n` notes in its creation transaction.
struct SeedNotes(i32);

#[tenantry::async_trait]
impl TenantHooks for SeedNotes {
    async fn after_create(&self, tenant: &Tenant, conn: &mut PgConnection) -> Result<(), BoxError> {
        sqlx::query(
            "INSERT INTO notes (title, body) \
             SELECT 'note ' || g || ' of ' || $1, 'body of note ' || g FROM generate_series(1, $2) g",
        )
        .bind(&tenant.schema)
        .bind(self.0)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Creates the database of `url` if it does not exist.
async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let (base, name) = url
        .rsplit_once('/')
        .context("database URL without a database name")?;
    let name = name.split('?').next().unwrap_or(name);
    let mut admin = PgConnection::connect(&format!("{base}/postgres")).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        let quoted = tenantry::core::quote_ident(name);
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .await?;
    }
    Ok(())
}

/// How to create the missing tenants.
#[derive(Clone, Copy)]
enum Mode {
    /// One `create_tenant` per tenant.
    Library,
    /// Many tenants per transaction (the library's clone batch), this many per transaction.
    Bulk(usize),
}

async fn tenants(
    url: &str,
    count: usize,
    notes: i32,
    concurrency: usize,
    mode: Mode,
) -> anyhow::Result<()> {
    ensure_database(url).await?;
    let (shared, tenant) = tenantry_demo::migrations_dir();
    let tenantry = Tenantry::builder()
        .shared_migrations(shared)
        .tenant_migrations(tenant)
        .hooks(SeedNotes(notes))
        .listen_for_changes(false)
        .pool_options(PgPoolOptions::new().max_connections(concurrency as u32 + 1))
        .connect(url)
        .await?;
    tenantry.fleet().migrate_shared().await?;
    let existing: HashSet<String> = tenantry
        .admin()
        .tenants()
        .await?
        .into_iter()
        .map(|t| t.schema)
        .collect();
    let mut missing: Vec<usize> = (1..=count)
        .filter(|i| !existing.contains(&schema(*i)))
        .collect();
    if let Mode::Bulk(batch) = mode {
        // The first through the library: it builds the template and the clone plan.
        if missing.first() == Some(&1) {
            tenantry
                .admin()
                .create_tenant(NewTenant::new(
                    schema(1),
                    format!("{}.bench.local", schema(1)),
                ))
                .await
                .context("creating t000001")?;
            missing.remove(0);
        }
        if tenantry.is_citus() {
            bulk_create_citus(&tenantry, missing, notes, concurrency, batch).await?;
        } else {
            bulk_create(&tenantry, missing, notes, concurrency, batch).await?;
        }
        tenantry.close().await;
        println!("bench setup: {count} tenants ready");
        return Ok(());
    }
    println!(
        "bench setup: {} of {count} tenants exist, creating {} ({concurrency} at a time)",
        count - missing.len(),
        missing.len()
    );
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let total = missing.len();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(missing)
        .map(|i| {
            let tenantry = tenantry.clone();
            let done = &done;
            async move {
                let s = schema(i);
                tenantry
                    .admin()
                    .create_tenant(NewTenant::new(&s, format!("{s}.bench.local")))
                    .await
                    .with_context(|| format!("creating {s}"))?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(n, 1, total, started);
                Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for r in results {
        r?;
    }
    // (run.sh runs VACUUM ANALYZE afterwards, so autovacuum does not land in the measurements)
    tenantry.close().await;
    println!("bench setup: {count} tenants ready");
    Ok(())
}

/// The bulk path: `batch` tenants per transaction, `concurrency` transactions at a time.
async fn bulk_create(
    tenantry: &Tenantry,
    missing: Vec<usize>,
    notes: i32,
    concurrency: usize,
    batch: usize,
) -> anyhow::Result<()> {
    let total = missing.len();
    println!(
        "bench setup (BULK, bench-only): creating {total} tenants, {batch} per transaction, \
         {concurrency} transactions at a time"
    );
    let shared = tenantry::core::quote_ident(&tenantry.config().shared_schema);
    let template = tenantry::template_schema(tenantry::DEFAULT_TENANT_TYPE)
        .context("no template schema name")?;
    let (shared, template) = (&shared, &template);
    in_batches(missing, batch, concurrency, async |names: Vec<String>| {
        let mut sql = String::from("BEGIN;\n");
        for s in &names {
            let clone = tenantry
                .fleet()
                .clone_script(tenantry::DEFAULT_TENANT_TYPE, s)
                .await?
                .map_err(|why| anyhow::anyhow!("template can't be cloned: {why}"))?;
            // Generated names (t000001...): no quoting issue, quoted anyway.
            sql.push_str(&format!(
                "SET LOCAL search_path TO {path};\n{clone};\n\
                         INSERT INTO notes (title, body) SELECT 'note ' || g || ' of {s}', \
                         'body of note ' || g FROM generate_series(1, {notes}) g;\n",
                path = tenantry.search_path_for(s),
            ));
        }
        let list = names
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(",");
        sql.push_str(&format!(
            "INSERT INTO {shared}.tenantry_tenants (schema_name, display_name) \
                     SELECT s, s FROM unnest(ARRAY[{list}]) s;\n\
                     INSERT INTO {shared}.tenantry_domains (domain, tenant_id, is_primary) \
                     SELECT t.schema_name || '.bench.local', t.id, true \
                     FROM {shared}.tenantry_tenants t WHERE t.schema_name = ANY(ARRAY[{list}]);\n\
                     INSERT INTO {shared}.tenantry_migration_ledger \
                     (schema_name, tenant_type, last_version, fingerprint) \
                     SELECT s, l.tenant_type, l.last_version, l.fingerprint \
                     FROM unnest(ARRAY[{list}]) s, {shared}.tenantry_migration_ledger l \
                     WHERE l.schema_name = '{template}';\n\
                     COMMIT;"
        ));
        let mut conn = tenantry.raw_pool().acquire().await?;
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
            .await
            .with_context(|| format!("bulk batch starting at {}", names[0]))?;
        Ok(())
    })
    .await
}

/// The bulk path on Citus: `batch` tenants per transaction, `concurrency` at a time, each
/// schema created distributed (`citus.enable_schema_based_sharding` on for its `CREATE SCHEMA`)
/// and migrated statement by statement (Citus refuses multi-statement DDL batches), its
/// `_sqlx_migrations` rows those of `t000001` (made by `create_tenant`), then the registry,
/// domain and ledger rows of the batch in one `INSERT ... SELECT` each, all in one transaction.
async fn bulk_create_citus(
    tenantry: &Tenantry,
    missing: Vec<usize>,
    notes: i32,
    concurrency: usize,
    batch: usize,
) -> anyhow::Result<()> {
    let total = missing.len();
    println!(
        "bench setup (BULK, Citus, bench-only): creating {total} distributed tenant schemas, \
         {batch} per transaction, {concurrency} transactions at a time"
    );
    let shared = tenantry::core::quote_ident(&tenantry.config().shared_schema);
    // What `create_tenant` ran for t000001: the tenant migrations, split, and their history rows.
    let (_, dir) = tenantry_demo::migrations_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut statements = Vec::new();
    for f in files {
        statements.extend(tenantry::split_statements(&std::fs::read_to_string(f)?));
    }
    type History = (i64, String, bool, Vec<u8>, i64);
    let history: Vec<History> = sqlx::query_as(
        "SELECT version, description, success, checksum, execution_time \
         FROM t000001._sqlx_migrations ORDER BY version",
    )
    .fetch_all(tenantry.raw_pool())
    .await
    .context("t000001's migration history")?;
    let (statements, history) = (&statements, &history);
    let shared = &shared;
    in_batches(missing, batch, concurrency, async |names: Vec<String>| {
                let mut tx = tenantry.raw_pool().begin().await?;
                for s in &names {
                    // Generated names (t000001...): quoted anyway.
                    let q = tenantry::core::quote_ident(s);
                    tx.execute("SET LOCAL citus.enable_schema_based_sharding TO on")
                        .await?;
                    // Simple protocol for the per-schema DDL: no prepared statement to cache.
                    tx.execute(sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {q}"))))
                        .await?;
                    tx.execute("SET LOCAL citus.enable_schema_based_sharding TO off")
                        .await?;
                    let path = tenantry.search_path_for(s);
                    tx.execute(sqlx::raw_sql(AssertSqlSafe(format!(
                        "SET LOCAL search_path TO {path}"
                    ))))
                    .await?;
                    tx.execute(sqlx::raw_sql(
                        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, \
                         description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), \
                         success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
                    ))
                    .await?;
                    for st in statements {
                        tx.execute(sqlx::raw_sql(AssertSqlSafe(st.clone())))
                            .await
                            .with_context(|| format!("{s}: {st}"))?;
                    }
                    for (version, description, success, checksum, time) in history {
                        sqlx::query(
                            "INSERT INTO _sqlx_migrations \
                             (version, description, success, checksum, execution_time) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(version)
                        .bind(description)
                        .bind(success)
                        .bind(checksum)
                        .bind(time)
                        .persistent(false)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "INSERT INTO notes (title, body) SELECT 'note ' || g || ' of ' || $1, \
                         'body of note ' || g FROM generate_series(1, $2) g",
                    )
                    .bind(s)
                    .bind(notes)
                    .persistent(false)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {shared}.tenantry_tenants (schema_name, display_name) \
                     SELECT s, s FROM unnest($1::text[]) s"
                )))
                .bind(&names)
                .execute(&mut *tx)
                .await?;
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {shared}.tenantry_domains (domain, tenant_id, is_primary) \
                     SELECT t.schema_name || '.bench.local', t.id, true \
                     FROM {shared}.tenantry_tenants t WHERE t.schema_name = ANY($1::text[])"
                )))
                .bind(&names)
                .execute(&mut *tx)
                .await?;
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {shared}.tenantry_migration_ledger \
                     (schema_name, tenant_type, last_version, fingerprint) \
                     SELECT s, l.tenant_type, l.last_version, l.fingerprint \
                     FROM unnest($1::text[]) s, {shared}.tenantry_migration_ledger l \
                     WHERE l.schema_name = 't000001'"
                )))
                .bind(&names)
                .execute(&mut *tx)
                .await?;
                tx.commit()
                    .await
                    .with_context(|| format!("bulk batch starting at {}", names[0]))?;
                Ok(())
    })
    .await
}

/// Runs `run` on the schema names of `missing` in batches of `batch`, `concurrency` at a time,
/// printing progress; the first failed batch's error is returned (after all have run).
async fn in_batches(
    missing: Vec<usize>,
    batch: usize,
    concurrency: usize,
    run: impl AsyncFn(Vec<String>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (total, started, done) = (missing.len(), Instant::now(), AtomicUsize::new(0));
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(missing.chunks(batch.max(1)))
        .map(|chunk| {
            let (done, run) = (&done, &run);
            async move {
                run(chunk.iter().map(|i| schema(*i)).collect()).await?;
                let n = done.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
                progress(n, chunk.len(), total, started);
                Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn control(url: &str, notes: i32) -> anyhow::Result<()> {
    ensure_database(url).await?;
    let mut conn = PgConnection::connect(url).await?;
    let (_, tenant_dir) = tenantry_demo::migrations_dir();
    let exists: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM pg_tables WHERE tablename = 'notes' AND schemaname = 'public'",
    )
    .fetch_optional(&mut conn)
    .await?;
    if exists.is_none() {
        // The demo's tenant migrations, applied once to the control's public schema.
        let mut files: Vec<_> = std::fs::read_dir(&tenant_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        for f in files {
            let sql = std::fs::read_to_string(&f)?;
            conn.execute(AssertSqlSafe(sql)).await?;
        }
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut conn)
        .await?;
    if n == 0 {
        sqlx::query(
            "INSERT INTO notes (title, body) \
             SELECT 'note ' || g || ' of control', 'body of note ' || g FROM generate_series(1, $1) g",
        )
        .bind(notes)
        .execute(&mut conn)
        .await?;
    }
    conn.execute("VACUUM ANALYZE notes").await?;
    println!("control database ready");
    Ok(())
}

async fn warm(addr: &str, count: usize, path: &str, concurrency: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = Arc::new(format!("http://{addr}{path}"));
    let started = Instant::now();
    let failures: usize = futures::stream::iter(1..=count)
        .map(|i| {
            let client = client.clone();
            let url = Arc::clone(&url);
            async move {
                let host = format!("{}.bench.local", schema(i));
                match client.get(url.as_str()).header("host", host).send().await {
                    Ok(r) if r.status().is_success() => 0,
                    _ => 1,
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .fold(0, |a, b| async move { a + b })
        .await;
    println!(
        "warm: {count} hosts in {:.1} s, {failures} failures",
        started.elapsed().as_secs_f64()
    );
    if failures > 0 {
        bail!("{failures} hosts did not answer 2xx");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Tenants {
            database_url,
            count,
            notes,
            concurrency,
            bulk,
            batch,
        } => {
            let mode = if bulk {
                Mode::Bulk(batch)
            } else {
                Mode::Library
            };
            tenants(&database_url, count, notes, concurrency, mode).await
        }
        Command::Control {
            database_url,
            notes,
        } => control(&database_url, notes).await,
        Command::Warm {
            addr,
            count,
            path,
            concurrency,
        } => warm(&addr, count, &path, concurrency).await,
    }
}

/// Prints a progress line each time `n` (advanced by `step`) crosses a multiple of 5,000, and at
/// the end.
fn progress(n: usize, step: usize, total: usize, started: std::time::Instant) {
    if n % 5000 < step || n == total {
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {n}/{total} created, {secs:.0} s, {:.0} tenants/s",
            n as f64 / secs
        );
    }
}
