//! The isolation stress: >= 200 tenants with marker rows, many concurrent clients through the
//! real HTTP stack mixing reads, writes, client disconnects mid-query, handlers that fail or
//! panic after a write, savepoint rollbacks of a `SET search_path` to another tenant,
//! `statement_timeout` and Tokio timeouts, session-scoped access and public requests. Every
//! response is checked; afterwards every pooled connection is checked clean.
//!
//! Size: `TENANTRY_STRESS_REQUESTS` (default 20,000), `TENANTRY_STRESS_CONCURRENCY` (default 32).
//! Run: `cargo test -p tenantry-demo --test isolation_stress -- --nocapture`.

mod isolation_support;

use std::time::{Duration, Instant};

use isolation_support::*;
use tenantry_testing::TestDb;

const TENANTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cross_tenant_data_under_fire() {
    let db = TestDb::new().await;
    let options = db.url().parse().unwrap();
    let tenantry = connect(options, 10, Duration::from_secs(30), |b| b).await;
    let started = Instant::now();
    create_tenants(&tenantry, TENANTS).await;
    eprintln!(
        "[stress] {TENANTS} tenants created in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let stack = serve(
        tenantry.clone(),
        TENANTS,
        AppOptions {
            unnamed_statements: false,
        },
    )
    .await;
    let total = requested_size(20_000);
    let concurrency = std::env::var("TENANTRY_STRESS_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let started = Instant::now();
    let report = run_load(stack.addr, TENANTS, total, concurrency).await;
    print_report("stress", &report, &stack.counters, started.elapsed());

    assert_eq!(report.requests, total);
    assert_eq!(
        report.violations, 0,
        "cross-tenant data: {:?}",
        report.examples
    );
    // The mean cases really happened on the server side.
    let c = &stack.counters;
    assert!(c.panicked.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(
        c.savepoint_rollbacks
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert!(report.count_status(0) > 0, "no client disconnect happened");
    // Reads, writes and session-scoped requests succeed; failures are the deliberate ones only
    // (handlers that fail, panic or hit statement_timeout answer 500, Tokio timeouts 504).
    for ((kind, status), n) in &report.statuses {
        let expected: &[u16] = match kind.as_str() {
            "WriteFail" | "Panic" | "StatementTimeout" => &[500],
            "TokioTimeout" => &[504],
            "Disconnect" => &[0, 200],
            _ => &[200],
        };
        assert!(
            expected.contains(status),
            "{kind}: {n} responses with status {status}"
        );
    }
    drop(stack);
    let problems = check_after_run(&tenantry, TENANTS).await;
    assert!(problems.is_empty(), "after the run: {problems:?}");
    eprintln!(
        "[stress] after the run: pool idle, every pooled connection clean, no rolled-back row survived"
    );
    tenantry.close().await;
}
