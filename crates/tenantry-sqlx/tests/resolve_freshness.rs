//! Changes made anywhere (plain SQL, another `Tenantry` instance) reach a running instance's
//! resolution cache within one second, also after its LISTEN connection was killed, and a lookup
//! racing with an invalidation never leaves a stale entry behind.

mod resolve_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use resolve_support::{
    HOST_LOOKUP, acme_behind_wire, cached_hosts, create_acme, eventually, resolves_within_a_second,
    schema_of, tenantry, through_wire, wait_listening,
};
use sqlx::{Connection, PgConnection};
use tenantry_sqlx::{NewTenant, SchemaOnDelete, TenantStatus};
use tenantry_testing::TestDb;

const ONE_SECOND: Duration = Duration::from_secs(1);

async fn sql(db: &TestDb, statement: &'static str) {
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
}

#[tokio::test]
async fn plain_sql_changes_are_seen_within_one_second() {
    let db = TestDb::new().await;
    let t = tenantry(db.url(), true).await;
    wait_listening(&t).await;
    create_acme(&t).await;
    let acme = Some(("acme".to_owned(), TenantStatus::Active));
    assert!(resolves_within_a_second(&t, "acme.example.com", &acme).await);

    sql(
        &db,
        "UPDATE tenantry_tenants SET status = 'suspended' WHERE schema_name = 'acme'",
    )
    .await;
    let suspended = Some(("acme".to_owned(), TenantStatus::Suspended));
    assert!(
        resolves_within_a_second(&t, "acme.example.com", &suspended).await,
        "a suspension made in SQL is not seen within 1 s"
    );

    sql(
        &db,
        "UPDATE tenantry_domains SET domain = 'acme.example.org' WHERE domain = 'acme.example.com'",
    )
    .await;
    assert!(
        eventually(ONE_SECOND, || async {
            schema_of(&t, "acme.example.com").await.is_none()
                && schema_of(&t, "acme.example.org").await.is_some()
        })
        .await,
        "a domain moved in SQL is not seen within 1 s"
    );

    sql(
        &db,
        "DELETE FROM tenantry_tenants WHERE schema_name = 'acme'",
    )
    .await;
    assert!(
        resolves_within_a_second(&t, "acme.example.org", &None).await,
        "a tenant deleted in SQL is still served after 1 s"
    );
}

#[tokio::test]
async fn changes_from_another_instance_are_seen_within_one_second() {
    let db = TestDb::new().await;
    let t = tenantry(db.url(), true).await;
    let other = tenantry(db.url(), false).await;
    wait_listening(&t).await;

    // Negatively cached first: the creation must clear that too.
    assert_eq!(schema_of(&t, "beta.example.com").await, None);
    other
        .admin()
        .create_tenant(NewTenant::new("beta", "beta.example.com"))
        .await
        .unwrap();
    assert!(
        eventually(ONE_SECOND, || async {
            schema_of(&t, "beta.example.com").await.is_some()
        })
        .await,
        "a tenant created by another instance is not served within 1 s"
    );

    assert_eq!(schema_of(&t, "www.beta.example.com").await, None);
    other
        .admin()
        .add_domain("beta", "www.beta.example.com", false)
        .await
        .unwrap();
    assert!(
        eventually(ONE_SECOND, || async {
            schema_of(&t, "www.beta.example.com").await.is_some()
        })
        .await
    );

    other
        .admin()
        .set_status("beta", TenantStatus::Suspended)
        .await
        .unwrap();
    let suspended = Some(("beta".to_owned(), TenantStatus::Suspended));
    assert!(
        resolves_within_a_second(&t, "beta.example.com", &suspended).await,
        "a suspension by another instance is not seen within 1 s"
    );

    other
        .admin()
        .delete_tenant("beta", SchemaOnDelete::Drop)
        .await
        .unwrap();
    assert!(
        eventually(ONE_SECOND, || async {
            schema_of(&t, "beta.example.com").await.is_none()
                && schema_of(&t, "www.beta.example.com").await.is_none()
        })
        .await,
        "a tenant deleted by another instance is still served after 1 s"
    );
}

/// Process id of the backend LISTENing for registry changes in this database, if any.
async fn listener_pid(db: &TestDb) -> Option<i32> {
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%' \
         ORDER BY backend_start DESC LIMIT 1",
    )
    .bind(db.name())
    .fetch_optional(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_killed_listener_reconnects_and_refreshes_everything() {
    let (db, admin, wire) = acme_behind_wire().await;
    let t = through_wire(&db, &wire, true).await;
    assert!(schema_of(&t, "acme.example.com").await.is_some());
    assert_eq!(cached_hosts(&t).await.0, 1);

    let old = listener_pid(&db).await.expect("a LISTEN backend");
    let generation = t.stats().await.resolver_generation;
    sql_bind_pid(&db, old).await;

    // A new LISTEN backend appears, and the cache was emptied once it was listening.
    let reconnected = eventually(Duration::from_secs(10), || async {
        let new_pid = listener_pid(&db).await.filter(|p| *p != old);
        new_pid.is_some() && t.stats().await.resolver_generation >= generation + 2
    })
    .await;
    assert!(reconnected, "no new listener after pg_terminate_backend");
    assert_eq!(
        cached_hosts(&t).await,
        (0, 0),
        "full refresh after reconnect"
    );

    // The next request looks the host up again...
    wire.reset();
    assert!(schema_of(&t, "acme.example.com").await.is_some());
    assert_eq!(wire.executions_of(HOST_LOOKUP), 1);
    // ... and notifications flow again.
    admin
        .admin()
        .set_status("acme", TenantStatus::Suspended)
        .await
        .unwrap();
    let suspended = Some(("acme".to_owned(), TenantStatus::Suspended));
    assert!(
        resolves_within_a_second(&t, "acme.example.com", &suspended).await,
        "changes are not seen after the listener reconnected"
    );
}

async fn sql_bind_pid(db: &TestDb, pid: i32) {
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_racing_invalidations_never_leave_a_stale_entry() {
    let db = TestDb::new().await;
    let t = tenantry(db.url(), true).await;
    wait_listening(&t).await;
    create_acme(&t).await;

    // Requests hammer the host (misses are frequent, as every change empties the cache) while
    // its status flips; the last flip must win within one second.
    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..8)
        .map(|_| {
            let t = t.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _ = schema_of(&t, "acme.example.com").await;
                    // Cache hits complete without yielding.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    for i in 0..60 {
        let status = if i % 2 == 0 { "suspended" } else { "active" };
        sqlx::query("UPDATE tenantry_tenants SET status = $1 WHERE schema_name = 'acme'")
            .bind(status)
            .execute(&mut conn)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3 * (i % 4))).await;
    }
    // The last flip (i = 59) set `active`; make the final state `suspended` in one more change.
    sqlx::query("UPDATE tenantry_tenants SET status = 'suspended' WHERE schema_name = 'acme'")
        .execute(&mut conn)
        .await
        .unwrap();
    let suspended = Some(("acme".to_owned(), TenantStatus::Suspended));
    let seen = resolves_within_a_second(&t, "acme.example.com", &suspended).await;
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.await.unwrap();
    }
    assert!(seen, "the final status is not served within 1 s");
    // And it stays so: no lookup that started before the last change may overwrite it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..100 {
        assert_eq!(schema_of(&t, "acme.example.com").await, suspended);
    }
}
