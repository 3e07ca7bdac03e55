//! Tenantry's pool does not ping connections before handing them out: the scoped BEGIN is the
//! liveness check. A connection the server killed while it sat idle is replaced, not reported.

use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{MigrationSet, NewTenant, Tenantry};
use tenantry_testing::TestDb;

#[tokio::test]
async fn begin_replaces_connections_killed_while_idle() {
    let db = TestDb::new().await;
    let t = Tenantry::builder()
        .tenant_migration_set(
            "default",
            MigrationSet::from_sql(&[(1, "t", "CREATE TABLE t (x INT)")]),
        )
        .pool_options(PgPoolOptions::new().max_connections(2).min_connections(2))
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    let acme = Arc::new(
        t.admin()
            .create_tenant(NewTenant::new("acme", "acme.localhost"))
            .await
            .unwrap(),
    );
    // Make sure both pooled connections exist and are idle.
    {
        let a = t.begin(&acme).await.unwrap();
        let b = t.begin(&acme).await.unwrap();
        drop((a, b));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    // Kill every backend of this database from outside the pool.
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&tenantry_testing::admin_url())
            .await
            .unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()) k",
    )
    .bind(db.name())
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 2, "{killed}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    for _ in 0..4 {
        let mut tx = t
            .begin(&acme)
            .await
            .expect("a dead connection is replaced at BEGIN");
        let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(path, "acme, public");
        tx.commit().await.unwrap();
    }
}
