//! The isolation stress behind a real PgBouncer in transaction pooling mode (started by the
//! test on a free port, in front of 127.0.0.1:5432), and the refusal of session-scoped access.
//!
//! Without the binary the test is skipped visibly (`tenantry_testing::skip`), unless `CI` is
//! set: then it fails.
//! Size: `TENANTRY_STRESS_REQUESTS` / 5 (default 3,000).
//!
//! Configuration that works with Debian 12's PgBouncer 1.18 (no `max_prepared_statements`):
//! `TenantryBuilder::transaction_pooler(true)` (Tenantry's lookups in their own transaction with
//! unnamed statements, session scope refused) with `listen_url` pointing straight at PostgreSQL;
//! everything the app runs goes through Tenantry's transactions (the server connection is pinned
//! from `BEGIN` to `COMMIT`) and handler queries are unnamed (`.persistent(false)`). Every
//! response must have its expected status. See SECURITY.md for why named statements need
//! PgBouncer >= 1.21.

mod isolation_support;

use std::time::{Duration, Instant};

use isolation_support::*;
use tenantry::Error;
use tenantry_testing::{PgBouncer, TestDb, pgbouncer_binary, skip};

const TENANTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_access_is_as_safe_behind_pgbouncer() {
    let Some(binary) = pgbouncer_binary() else {
        skip(
            "PgBouncer is not installed (apt-get install pgbouncer, or run .ci/pgbouncer-setup.sh)",
        );
        return;
    };
    let db = TestDb::new().await;
    // Tenants are created directly; the app connects through PgBouncer.
    let direct = connect(db.url().parse().unwrap(), 4, Duration::from_secs(30), |b| b).await;
    create_tenants(&direct, TENANTS).await;

    let bouncer = PgBouncer::start(&binary, 6, "").await;
    eprintln!(
        "[pgbouncer] {} on port {} (pool_mode = transaction)",
        bouncer.version(),
        bouncer.port()
    );
    let options: sqlx::postgres::PgConnectOptions = db.url().parse().unwrap();
    let options = options.port(bouncer.port());
    // The registry listener goes straight to PostgreSQL (LISTEN needs a session).
    let direct_url = db.url().to_owned();
    let app = connect_only(options, 10, |b| {
        b.transaction_pooler(true).listen_url(direct_url)
    })
    .await;
    assert!(app.config().forbid_session_scope);

    // Session-scoped access through a transaction pooler is refused, with a clear error.
    let t0 = std::sync::Arc::new(direct.admin().tenant(&schema(0)).await.unwrap());
    match app.session(&t0).await {
        Err(e @ Error::SessionScopeForbidden) => {
            assert!(e.to_string().contains("forbid_session_scope"), "{e}")
        }
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("session scope allowed behind a transaction pooler"),
    }

    let stack = serve(
        app.clone(),
        TENANTS,
        AppOptions {
            unnamed_statements: true,
        },
    )
    .await;
    // No warm-up: cold host lookups go through the pooler too.
    let total = requested_size(15_000) / 5;
    let started = Instant::now();
    let report = run_load(stack.addr, TENANTS, total, 24).await;
    print_report("pgbouncer", &report, &stack.counters, started.elapsed());
    assert_eq!(
        report.violations, 0,
        "cross-tenant data behind PgBouncer: {:?}",
        report.examples
    );
    // Every status is the expected one: no 503 from Tenantry's own lookups, and session
    // requests are refused (500), never served.
    for ((kind, status), n) in &report.statuses {
        let expected: &[u16] = match kind.as_str() {
            "WriteFail" | "Panic" | "StatementTimeout" | "Session" => &[500],
            "TokioTimeout" => &[504],
            "Disconnect" => &[0, 200],
            _ => &[200],
        };
        assert!(
            expected.contains(status),
            "{kind}: {n} responses with status {status} behind PgBouncer"
        );
    }
    drop(stack);
    let problems = check_after_run(&direct, TENANTS).await;
    assert!(problems.is_empty(), "after the run: {problems:?}");
    app.close().await;
    direct.close().await;
}
