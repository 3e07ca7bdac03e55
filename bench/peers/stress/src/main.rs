//! Adversarial traffic against a peer app (`peers-rls`, `peers-rustango`): the request mix of the
//! demo's isolation_stress (reads, writes, writes that then fail, panics, clients that disconnect
//! mid-query, savepoint rollbacks of a switch to another tenant, `statement_timeout`, Tokio
//! timeouts) plus hostile `Host` headers, many clients at once. Every answer is checked: a
//! transaction that saw another tenant's rows, or a request served as the wrong tenant, is a
//! **violation**. Afterwards the database is checked: rows written under another tenant's name
//! (wrong-schema writes), rows of rolled-back work that survived, tables that appeared in `public`,
//! connections left inside a transaction.
//!
//! `peers-stress --app rls|rustango --addr HOST:PORT --database-url URL [--tenants 200]
//! [--requests 20000] [--concurrency 32]`; exits 1 on any violation.

mod checks;
mod mix;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::StreamExt;
use rand::Rng;

use mix::{Kind, Outcome};

/// Command line.
#[derive(Parser)]
struct Args {
    /// Which app is at `--addr` (decides the database checks).
    #[arg(long, value_enum)]
    app: App,
    /// The app's address.
    #[arg(long)]
    addr: String,
    /// The app's database, as a superuser (checks before and after the run).
    #[arg(long)]
    database_url: String,
    /// Tenants t000001..tN the traffic is spread over (they must exist).
    #[arg(long, default_value_t = 200)]
    tenants: u32,
    /// Requests.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// The app under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum App {
    /// `peers-rls`: one shared table, row-level security.
    Rls,
    /// `peers-rustango`: a schema per tenant.
    Rustango,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    checks::reset(args.app, &args.database_url, args.tenants).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let client = Arc::new(client);
    let started = Instant::now();
    let n = args.tenants;
    let addr = Arc::new(args.addr.clone());
    let outcomes: Vec<Outcome> = futures::stream::iter(0..args.requests)
        .map(|_| {
            let (client, addr) = (Arc::clone(&client), Arc::clone(&addr));
            let (kind, tenant, other) = {
                let mut rng = rand::rng();
                (
                    mix::pick(&mut rng),
                    rng.random_range(1..=n),
                    rng.random_range(1..=n),
                )
            };
            async move { mix::send(&client, &addr, kind, tenant, other).await }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut statuses: BTreeMap<(Kind, u16), usize> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut unexpected = Vec::new();
    for o in &outcomes {
        *statuses.entry((o.kind, o.status)).or_default() += 1;
        if let Some(v) = &o.violation {
            violations.push(v.clone());
        }
        if let Some(u) = &o.unexpected {
            unexpected.push(u.clone());
        }
    }
    println!(
        "[{:?}] {} requests, {} tenants, {} in flight, {:.1}s",
        args.app,
        outcomes.len(),
        n,
        args.concurrency,
        elapsed.as_secs_f64()
    );
    for ((kind, status), count) in &statuses {
        println!("  {kind:?} -> {status}: {count}");
    }
    // Let dropped handlers and reset tasks finish before looking at the database.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = checks::after(args.app, &args.database_url, n).await?;
    println!(
        "[{:?}] violations in answers: {} (cross-tenant rows seen, or served as another tenant)",
        args.app,
        violations.len()
    );
    for v in violations.iter().take(10) {
        println!("    {v}");
    }
    println!(
        "[{:?}] answers no deliberate failure explains: {}",
        args.app,
        unexpected.len()
    );
    for u in unexpected.iter().take(10) {
        println!("    {u}");
    }
    println!(
        "[{:?}] database after the run: {} wrong-schema writes, {} rolled-back rows that survived, \
         {} stray tables in public, {} connections left in a transaction",
        args.app, after.wrong_writes, after.survived, after.stray_public, after.idle_in_tx
    );
    for d in after.details.iter().take(10) {
        println!("    {d}");
    }
    let bad = violations.len() + after.wrong_writes + after.survived + after.stray_public;
    println!("[{:?}] VIOLATIONS TOTAL: {bad}", args.app);
    if bad > 0 {
        std::process::exit(1);
    }
    Ok(())
}
