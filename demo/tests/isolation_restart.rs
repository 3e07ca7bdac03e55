//! PostgreSQL restarted mid-load, on a private cluster started by the test: while it is down,
//! requests answer a clean 503 (never 500, never another tenant's rows); once it is back the
//! service recovers by itself (same app, same pool) and every request succeeds again.
//!
//! Needs the PostgreSQL server binaries (`/usr/lib/postgresql/<v>/bin`); without them the test
//! is skipped visibly (`tenantry_testing::skip`), unless `CI` is set: then it fails.
//! Run: `cargo test -p tenantry-demo --test isolation_restart -- --nocapture`.

mod isolation_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use isolation_support::*;
use sqlx::Executor;
use tenantry_testing::{PrivateCluster, skip};

const TENANTS: usize = 50;
const CONCURRENCY: usize = 16;

/// Requests without deliberate failures: anything but 200 (or 503 while down) is a bug.
const CLEAN_MIX: &[(Kind, u32)] = &[
    (Kind::Read, 40),
    (Kind::Write, 20),
    (Kind::Savepoint, 10),
    (Kind::Session, 10),
    (Kind::Public, 20),
];

fn statuses(report: &Report) -> Vec<u16> {
    let mut s: Vec<u16> = report.statuses.keys().map(|(_, s)| *s).collect();
    s.sort_unstable();
    s.dedup();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_load_answers_503_then_recovers() {
    let Some(cluster) = PrivateCluster::start() else {
        skip("no PostgreSQL server binaries (initdb, pg_ctl); the restart test did not run");
        return;
    };
    {
        let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
            .await
            .unwrap();
        admin.execute("CREATE DATABASE restart").await.unwrap();
        admin.close().await;
    }
    // A short acquire timeout: while the server is down, requests fail fast (503).
    let tenantry = connect(
        cluster.url("restart").parse().unwrap(),
        8,
        Duration::from_secs(1),
        |b| b,
    )
    .await;
    create_tenants(&tenantry, TENANTS).await;
    let stack = serve(
        tenantry.clone(),
        TENANTS,
        AppOptions {
            unnamed_statements: false,
        },
    )
    .await;

    // 1. Up: everything succeeds.
    let before = run_load_with(stack.addr, TENANTS, 1_000, CONCURRENCY, CLEAN_MIX, None).await;
    print_report("restart/before", &before, &stack.counters, Duration::ZERO);
    assert_eq!(before.violations, 0, "{:?}", before.examples);
    assert_eq!(statuses(&before), [200]);

    // 2. Load running while the server stops (fast shutdown: sessions are terminated) and
    //    starts again.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(run_load_with(
        stack.addr,
        TENANTS,
        u64::MAX,
        CONCURRENCY,
        CLEAN_MIX,
        Some(Arc::clone(&stop)),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| cluster.stop());
    eprintln!("[restart] server stopped");
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| cluster.restart());
    eprintln!("[restart] server started again");
    // Recovery by itself: probe until a tenant request succeeds (bounded).
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(60) {
        let r = client
            .get(format!("http://{}/read", stack.addr))
            .header("host", host(0))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the service did not recover after the restart");
    eprintln!(
        "[restart] first success {:.1}s after the restart",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let during = load.await.unwrap();
    print_report("restart/during", &during, &stack.counters, Duration::ZERO);
    assert_eq!(
        during.violations, 0,
        "cross-tenant data around the restart: {:?}",
        during.examples
    );
    assert!(
        statuses(&during).iter().all(|s| [200, 503].contains(s)),
        "only 200 and 503 are acceptable around a restart: {:?}",
        during.statuses
    );
    assert!(
        during.count_status(503) > 0,
        "no request saw the server down"
    );

    // 3. Back up, same app and pool: everything succeeds again.
    let after = run_load_with(stack.addr, TENANTS, 1_000, CONCURRENCY, CLEAN_MIX, None).await;
    print_report("restart/after", &after, &stack.counters, Duration::ZERO);
    assert_eq!(after.violations, 0, "{:?}", after.examples);
    assert_eq!(statuses(&after), [200], "{:?}", after.statuses);

    drop(stack);
    let problems = check_after_run(&tenantry, TENANTS).await;
    assert!(problems.is_empty(), "after the run: {problems:?}");
    tenantry.close().await;
}
