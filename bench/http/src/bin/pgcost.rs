//! `tenantry-bench-pgcost`: what one tenant-scoped read costs PostgreSQL, by way of scoping.
//!
//! Runs the demo's notes query (`SELECT id, title, body FROM notes ORDER BY id LIMIT 10`) in a
//! transaction, with the same concurrency and pool size for every variant, against a bench
//! database made by `tenantry-bench-setup tenants` (schemas `t000001`..), and prints the
//! transactions per second and PostgreSQL's CPU time per transaction (utime + stime of every
//! `postgres` process, from `/proc`). Variants run alternately, several rounds.
//!
//! This isolates the database side of `bench/http` from HTTP and from the app: it shows what the
//! scoped `BEGIN` costs and what switching schemas between transactions costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor, PgPool};

#[derive(Parser)]
struct Args {
    /// A bench database (`tenantry_bench_<N>`).
    #[arg(long)]
    database_url: String,
    /// Tenants in it (`t000001` .. `t<N>`).
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Concurrent clients (= pool size).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per variant and round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Variants to run (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Statement cache capacity per connection.
    #[arg(long, default_value_t = 100)]
    statement_cache: usize,
}

const QUERY: &str = "SELECT id, title, body FROM notes ORDER BY id LIMIT 10";

/// How a transaction is scoped.
#[derive(Clone, Copy, Debug)]
enum Variant {
    /// `BEGIN`, the query on one schema (set once per connection): the single-tenant control.
    ControlTx,
    /// Tenantry's scoped BEGIN (schema check; BEGIN; SET LOCAL), always the same tenant.
    CheckedOne,
    /// Tenantry's scoped BEGIN, a random tenant per transaction.
    CheckedSpread,
    /// `BEGIN; SET LOCAL search_path` without the schema check, random tenant.
    SetLocalSpread,
    /// Schema check folded into the SET: `BEGIN; SELECT set_config(..) FROM pg_namespace ..`.
    SetConfigSpread,
    /// `SET LOCAL` + a statement text per tenant (its plan is never invalidated by the switch).
    PerTenantTextSpread,
    /// `BEGIN; SET LOCAL search_path` without the check, always the same tenant.
    SetLocalOne,
    /// Plain `BEGIN` and the query with the schema written into it (no search_path at all).
    QualifiedSpread,
}

const ALL: [Variant; 8] = [
    Variant::SetLocalOne,
    Variant::QualifiedSpread,
    Variant::ControlTx,
    Variant::CheckedOne,
    Variant::CheckedSpread,
    Variant::SetLocalSpread,
    Variant::SetConfigSpread,
    Variant::PerTenantTextSpread,
];

fn name(v: Variant) -> &'static str {
    match v {
        Variant::ControlTx => "control_tx",
        Variant::CheckedOne => "checked_one",
        Variant::CheckedSpread => "checked_spread",
        Variant::SetLocalSpread => "setlocal_spread",
        Variant::SetConfigSpread => "setconfig_spread",
        Variant::PerTenantTextSpread => "pertenant_text_spread",
        Variant::SetLocalOne => "setlocal_one",
        Variant::QualifiedSpread => "qualified_spread",
    }
}

/// utime + stime of every process named `postgres`, in clock ticks.
fn postgres_ticks() -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(open) = stat.find('(') else { continue };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        if &stat[open + 1..close] != "postgres" {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // Fields after the name: state is index 0, utime 11, stime 12.
        let ut: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let st: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        total += ut + st;
    }
    total
}

async fn one(pool: &PgPool, v: Variant, tenant: usize) -> sqlx::Result<usize> {
    let schema = format!("t{tenant:06}");
    let mut tx = match v {
        Variant::ControlTx | Variant::QualifiedSpread => pool.begin().await?,
        Variant::CheckedOne | Variant::CheckedSpread => {
            pool.begin_with(AssertSqlSafe(format!(
                "SELECT '\"{schema}\"'::regnamespace; BEGIN; SET LOCAL search_path TO \"{schema}\", public"
            )))
            .await?
        }
        Variant::SetLocalSpread | Variant::PerTenantTextSpread | Variant::SetLocalOne => {
            pool.begin_with(AssertSqlSafe(format!(
                "BEGIN; SET LOCAL search_path TO \"{schema}\", public"
            )))
            .await?
        }
        Variant::SetConfigSpread => {
            pool.begin_with(AssertSqlSafe(format!(
                "BEGIN; SELECT set_config('search_path', '\"{schema}\", public', true) \
                 FROM pg_namespace WHERE nspname = '{schema}'"
            )))
            .await?
        }
    };
    let rows = match v {
        Variant::PerTenantTextSpread => {
            sqlx::query(AssertSqlSafe(format!("{QUERY} /* {schema} */")))
                .fetch_all(&mut *tx)
                .await?
        }
        Variant::QualifiedSpread => {
            sqlx::query(AssertSqlSafe(
                QUERY.replace("FROM notes", &format!("FROM \"{schema}\".notes")),
            ))
            .fetch_all(&mut *tx)
            .await?
        }
        _ => sqlx::query(QUERY).fetch_all(&mut *tx).await?,
    };
    tx.commit().await?;
    Ok(rows.len())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options: PgConnectOptions = args.database_url.parse()?;
    let options = options.statement_cache_capacity(args.statement_cache);
    // The control's connections sit on tenant 1's schema for their whole life.
    let control_pool = PgPoolOptions::new()
        .max_connections(args.clients as u32)
        .min_connections(args.clients as u32)
        .after_connect(|c, _| {
            Box::pin(async move {
                c.execute("SET search_path TO t000001, public").await?;
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(args.clients as u32)
        .min_connections(args.clients as u32)
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    let variants: Vec<Variant> = ALL
        .into_iter()
        .filter(|v| args.only.is_empty() || args.only.iter().any(|o| o == name(*v)))
        .collect();
    let tck = 100.0; // CLK_TCK on Linux
    println!("variant\tround\ttx_per_s\tpg_cpu_us_per_tx");
    for round in 1..=args.rounds {
        let mut order = variants.clone();
        if round % 2 == 0 {
            order.reverse();
        }
        for v in order {
            let p = if matches!(v, Variant::ControlTx) {
                control_pool.clone()
            } else {
                pool.clone()
            };
            // Warm-up (not counted).
            run(&p, v, &args, Duration::from_secs(1)).await?;
            let t0 = postgres_ticks();
            let start = Instant::now();
            let n = run(&p, v, &args, Duration::from_secs(args.seconds)).await?;
            let secs = start.elapsed().as_secs_f64();
            let t1 = postgres_ticks();
            let cpu_us = (t1 - t0) as f64 / tck * 1e6 / n as f64;
            println!(
                "{}\t{round}\t{:.0}\t{:.1}",
                name(v),
                n as f64 / secs,
                cpu_us
            );
        }
    }
    Ok(())
}

async fn run(pool: &PgPool, v: Variant, args: &Args, d: Duration) -> anyhow::Result<u64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + d;
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let pool = pool.clone();
        let done = Arc::clone(&done);
        let tenants = args.tenants;
        tasks.push(tokio::spawn(async move {
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1);
            while Instant::now() < deadline {
                // xorshift: a uniform-enough tenant spread without a dependency.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let tenant = match v {
                    Variant::ControlTx | Variant::CheckedOne | Variant::SetLocalOne => 1,
                    _ => (x % tenants as u64) as usize + 1,
                };
                let rows = one(&pool, v, tenant).await?;
                anyhow::ensure!(rows == 10, "{} rows for tenant {tenant}", rows);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed))
}
