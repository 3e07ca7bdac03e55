//! A scoped `BEGIN` that fails (missing schema) must surface as an error *and* leave the pooled
//! connection usable: sqlx's release check is a bare `Sync`, which an aborted transaction passes,
//! so a failure after `BEGIN` inside the begin statement would poison the connection for every
//! later user of the pool.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{Error, MigrationSet, NewTenant, Tenant, Tenantry};
use tenantry_testing::TestDb;

/// A handle whose pool holds one connection (`ping_on_acquire`: sqlx's test before acquire),
/// and its tenant `acme`.
async fn one_connection_tenantry(db: &TestDb, ping_on_acquire: bool) -> (Tenantry, Arc<Tenant>) {
    let tenantry = Tenantry::builder()
        .tenant_migration_set(
            "default",
            MigrationSet::from_sql(&[(1, "t", "CREATE TABLE t (x int)")]),
        )
        .pool_options(
            PgPoolOptions::new()
                .max_connections(1)
                .test_before_acquire(ping_on_acquire)
                .acquire_timeout(Duration::from_secs(5)),
        )
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    tenantry.fleet().migrate_shared().await.unwrap();
    let acme = tenantry
        .admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
    (tenantry, Arc::new(acme))
}

/// The search path of a pooled connection, and whether it is outside any transaction.
async fn path_and_idle(conn: &mut sqlx::PgConnection) -> (String, bool) {
    let row = sqlx::raw_sql("SELECT current_setting('search_path'), now() = statement_timestamp()")
        .fetch_one(conn)
        .await
        .unwrap();
    (sqlx::Row::get(&row, 0), sqlx::Row::get(&row, 1))
}

#[tokio::test]
async fn missing_schema_is_an_error_and_does_not_poison_the_pool() {
    let db = TestDb::new().await;
    let (tenantry, real) = one_connection_tenantry(&db, true).await;
    let mut ghost = (*real).clone();
    ghost.schema = "ghost".into();
    let ghost: Arc<Tenant> = Arc::new(ghost);

    for _ in 0..3 {
        match tenantry.begin(&ghost).await {
            Err(Error::SchemaMissing(s)) => assert_eq!(s, "ghost"),
            Err(other) => panic!("expected SchemaMissing, got {other}"),
            Ok(_) => panic!("a transaction was opened on a missing schema"),
        }
        // The only connection of the pool must be idle (not in an aborted transaction).
        let mut tx = tenantry
            .begin(&real)
            .await
            .expect("the pool's connection is still usable");
        let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert!(path.starts_with("acme"), "{path}");
        tx.commit().await.unwrap();
        let mut public = tenantry
            .begin_public()
            .await
            .expect("public access still works");
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *public)
            .await
            .unwrap();
        assert_eq!(one, 1);
        public.commit().await.unwrap();
    }
    let status: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(state, ','), '') FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&mut *tenantry.begin_public().await.unwrap())
    .await
    .unwrap();
    assert_eq!(status, "", "no connection may be left in a transaction");
    tenantry.close().await;
}

/// The cause of the rare session-scoped 500 in the isolation stress: a `begin` cancelled after
/// `BEGIN` reached the server and before its answer came back returns the connection to the
/// pool *inside that transaction* (sqlx's rollback guard only acts once the depth is counted).
/// `session()` must not build on such a connection: it closes it and takes a fresh one, and the
/// session it hands out is clean and releases cleanly.
#[tokio::test]
async fn session_on_a_connection_left_in_a_cancelled_begin() {
    let db = TestDb::new().await;
    let (tenantry, acme) = one_connection_tenantry(&db, true).await;
    tenantry
        .admin()
        .create_tenant(NewTenant::new("other", "other.localhost"))
        .await
        .unwrap();

    for _ in 0..3 {
        // A begin whose answer is slow (the sleep comes after BEGIN), cancelled while waiting.
        let slow_begin = tenantry
            .raw_pool()
            .begin_with("BEGIN; SET LOCAL search_path TO other; SELECT pg_sleep(0.3)");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), slow_begin)
                .await
                .is_err(),
            "the begin was not cancelled"
        );
        // The pool's only connection is now inside that transaction (shown with the raw pool).
        {
            let mut conn = tenantry.raw_pool().acquire().await.unwrap();
            let idle: bool = sqlx::Row::get(
                &sqlx::raw_sql("SELECT now() = statement_timestamp()")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap(),
                0,
            );
            assert!(
                !idle,
                "the cancelled begin did not leave a transaction open"
            );
        }

        let mut conn = tenantry
            .session(&acme)
            .await
            .expect("session on a fresh connection");
        let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(path.starts_with("acme"), "{path}");
        conn.release().await.expect("a clean release");

        // And the pool's connection is clean afterwards.
        let mut conn = tenantry.raw_pool().acquire().await.unwrap();
        let (path, idle) = path_and_idle(&mut conn).await;
        assert_eq!(path, "\"$user\", public");
        assert!(idle);
    }
}

/// `Tenantry::begin` cancelled while its `BEGIN` is in flight must not leave the pooled
/// connection inside a transaction (plain sqlx `begin_with` does). The backend is frozen with
/// SIGSTOP so that the cancellation lands deterministically between `BEGIN` sent and answered.
#[tokio::test]
async fn cancelled_begin_leaves_no_open_transaction() {
    let db = TestDb::new().await;
    // No ping on acquire: the cancellation must land after `BEGIN` is sent, not in the ping.
    let (tenantry, acme) = one_connection_tenantry(&db, false).await;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(tenantry.raw_pool())
        .await
        .unwrap();
    // Let the connection's release ping finish: the pool must hold it idle when we freeze it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !signal("-STOP") {
        tenantry_testing::skip("cannot signal the PostgreSQL backend (not root, or another host?)");
        return;
    }
    let cancelled = tokio::time::timeout(Duration::from_millis(100), tenantry.begin(&acme)).await;
    assert!(signal("-CONT"));
    assert!(cancelled.is_err(), "the begin was not cancelled");

    let mut conn = tenantry.raw_pool().acquire().await.unwrap();
    let (path, idle) = path_and_idle(&mut conn).await;
    assert!(idle, "the pooled connection was left inside a transaction");
    assert_eq!(path, "\"$user\", public");
}
