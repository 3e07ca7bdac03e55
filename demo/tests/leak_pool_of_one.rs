//! The leak case: with a pool of ONE connection, whatever a tenant request did (finished,
//! aborted mid-query, session-scoped and dropped), the next public request on that same
//! connection sees the public search path.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use sqlx::postgres::PgPoolOptions;
use tenantry::axum::{PublicDb, TenantDb, TenantRouter, TenantryExt};
use tenantry::{MigrationSet, NewTenant, Tenantry};
use tenantry_testing::TestDb;

async fn tenant_path(mut db: TenantDb) -> String {
    sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *db)
        .await
        .unwrap()
}

async fn tenant_slow(mut db: TenantDb) -> &'static str {
    sqlx::query("SELECT pg_sleep(1)")
        .execute(&mut *db)
        .await
        .unwrap();
    "done"
}

/// Session-scoped access that is dropped (not released) while its query runs.
async fn tenant_session_slow(
    TenantryExt(t): TenantryExt,
    tenant: tenantry::axum::CurrentTenant,
) -> &'static str {
    let mut conn = t.session(&tenant.0).await.unwrap();
    // Session settings of the application's own must not outlive the session either.
    sqlx::query("SET statement_timeout = 4321")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SELECT pg_sleep(1)")
        .execute(&mut *conn)
        .await
        .unwrap();
    conn.release().await.unwrap();
    "done"
}

async fn public_path(mut db: PublicDb) -> String {
    sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *db)
        .await
        .unwrap()
}

/// What the *session* of the pooled connection says, with no SET of Tenantry's in between:
/// proves nothing of the tenant stuck to the connection.
async fn raw_session_path(TenantryExt(t): TenantryExt) -> String {
    // Simple protocol: outside a transaction block now() == statement_timestamp().
    let row = sqlx::raw_sql("SELECT current_setting('search_path') || ' in_tx=' || (now() <> statement_timestamp())::text \
         || ' timeout=' || current_setting('statement_timeout')")
        .fetch_one(t.raw_pool())
        .await
        .unwrap();
    sqlx::Row::get(&row, 0)
}

async fn setup() -> (TestDb, String, reqwest::Client) {
    let db = TestDb::new().await;
    let tenantry = Tenantry::builder()
        .tenant_migration_set(
            "default",
            MigrationSet::from_sql(&[(1, "t", "CREATE TABLE t (x int)")]),
        )
        .pool_options(
            PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10)),
        )
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    tenantry.fleet().migrate_shared().await.unwrap();
    tenantry
        .admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
    let app = TenantRouter::new(tenantry)
        .public(
            Router::new()
                .route("/path", get(public_path))
                .route("/raw", get(raw_session_path)),
        )
        .tenant(
            Router::new()
                .route("/path", get(tenant_path))
                .route("/slow", get(tenant_slow))
                .route("/session-slow", get(tenant_session_slow)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .unwrap()
    });
    (db, base, reqwest::Client::new())
}

async fn get_text(client: &reqwest::Client, base: &str, host: &str, path: &str) -> String {
    let r = client
        .get(format!("{base}{path}"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{host}{path}");
    r.text().await.unwrap()
}

/// Starts a request and drops it (client disconnect) while the handler's query is running.
async fn abort_mid_query(client: &reqwest::Client, base: &str, path: &str) {
    let req = client
        .get(format!("{base}{path}"))
        .header("host", "acme.localhost")
        .send();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), req)
            .await
            .is_err(),
        "request should still be running"
    );
}

#[tokio::test]
async fn tenant_request_then_public_request_on_a_pool_of_one() {
    let (_db, base, client) = setup().await;
    assert_eq!(
        get_text(&client, &base, "acme.localhost", "/path").await,
        "acme, public"
    );
    assert_eq!(
        get_text(&client, &base, "localhost", "/path").await,
        "public"
    );
    assert_eq!(
        get_text(&client, &base, "localhost", "/raw").await,
        "\"$user\", public in_tx=false timeout=0"
    );
}

#[tokio::test]
async fn aborted_tenant_transaction_does_not_leak() {
    let (_db, base, client) = setup().await;
    abort_mid_query(&client, &base, "/slow").await;
    // The one connection is still busy with pg_sleep; the public request waits for it.
    assert_eq!(
        get_text(&client, &base, "localhost", "/raw").await,
        "\"$user\", public in_tx=false timeout=0"
    );
    assert_eq!(
        get_text(&client, &base, "localhost", "/path").await,
        "public"
    );
}

#[tokio::test]
async fn aborted_session_scoped_connection_does_not_leak() {
    let (_db, base, client) = setup().await;
    abort_mid_query(&client, &base, "/session-slow").await;
    // The session connection was closed, not returned: the pool opens a fresh one.
    assert_eq!(
        get_text(&client, &base, "localhost", "/raw").await,
        "\"$user\", public in_tx=false timeout=0"
    );
    // And a completed session-scoped request releases cleanly.
    assert_eq!(
        get_text(&client, &base, "acme.localhost", "/session-slow").await,
        "done"
    );
    assert_eq!(
        get_text(&client, &base, "localhost", "/raw").await,
        "\"$user\", public in_tx=false timeout=0"
    );
}
