//! A scoped `BEGIN` checks that the tenant's schema exists (PostgreSQL would silently skip a
//! missing one and fall through to the shared schema) and is still the tenant's, on every
//! `BEGIN`, in the same round trip. Drops and renames of a schema by any SQL also notify the
//! registry listener (schema event triggers), so cached resolutions go at once.

mod resolve_support;

use std::sync::Arc;
use std::time::Duration;

use resolve_support::wire::WireCounter;
use resolve_support::{eventually, tenantry, wait_listening};
use sqlx::{Connection, PgConnection};
use tenantry_sqlx::{Error, NewTenant, Tenantry};
use tenantry_testing::TestDb;

async fn sql(db: &TestDb, statement: &'static str) {
    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
}

/// Opens and commits a scoped transaction; returns the schema it saw first on its path.
async fn first_schema(t: &Tenantry, tenant: &Arc<tenantry_sqlx::Tenant>) -> Result<String, Error> {
    let mut tx = t.begin(tenant).await?;
    let s: String = sqlx::query_scalar("SELECT (current_schemas(false))[1]")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Ok(s)
}

async fn create(t: &Tenantry, name: &str) -> Arc<tenantry_sqlx::Tenant> {
    Arc::new(
        t.admin()
            .create_tenant(NewTenant::new(name, format!("{name}.example.com")))
            .await
            .unwrap(),
    )
}

/// Waits until no notification has arrived for 300 ms (one change fires several).
async fn settle(t: &Tenantry) {
    loop {
        let g = t.stats().await.resolver_generation;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if t.stats().await.resolver_generation == g {
            return;
        }
    }
}

async fn expect_missing(t: &Tenantry, tenant: &Arc<tenantry_sqlx::Tenant>, schema: &str) {
    match t.begin(tenant).await {
        Err(Error::SchemaMissing(s)) => assert_eq!(s, schema),
        Err(other) => panic!("expected SchemaMissing, got {other}"),
        Ok(_) => panic!("a transaction was opened on the missing schema {schema}"),
    }
}

#[tokio::test]
async fn an_out_of_band_drop_or_rename_is_caught() {
    let db = TestDb::new().await;
    let t = tenantry(db.url(), true).await;
    wait_listening(&t).await;
    let acme = create(&t, "acme").await;
    let beta = create(&t, "beta").await;
    for _ in 0..3 {
        assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
        assert_eq!(first_schema(&t, &beta).await.unwrap(), "beta");
    }

    // Dropped behind Tenantry's back (no registry change): the event trigger notifies.
    let before = t.stats().await.resolver_generation;
    sql(&db, "DROP SCHEMA acme CASCADE").await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            t.stats().await.resolver_generation > before
        })
        .await,
        "DROP SCHEMA must notify the listener within 1 s"
    );
    expect_missing(&t, &acme, "acme").await;

    // Renamed behind Tenantry's back: the old name is gone, caught the same way.
    let before = t.stats().await.resolver_generation;
    sql(&db, "ALTER SCHEMA beta RENAME TO beta_old").await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            t.stats().await.resolver_generation > before
        })
        .await,
        "ALTER SCHEMA .. RENAME must notify the listener within 1 s"
    );
    expect_missing(&t, &beta, "beta").await;
    // And again: a failed check is not remembered.
    expect_missing(&t, &beta, "beta").await;
}

#[tokio::test]
async fn without_a_listener_every_begin_checks() {
    let db = TestDb::new().await;
    let t = tenantry(db.url(), false).await;
    let acme = create(&t, "acme").await;
    assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    sql(&db, "DROP SCHEMA acme CASCADE").await;
    // No waiting: nothing is cached, so the very next BEGIN checks.
    expect_missing(&t, &acme, "acme").await;
}

#[tokio::test]
async fn every_begin_checks_in_its_own_round_trip() {
    let db = TestDb::new().await;
    let wire = WireCounter::start(db.url()).await;
    let t = tenantry(&wire.url(db.url()), true).await;
    wait_listening(&t).await;
    let acme = create(&t, "acme").await;
    settle(&t).await;
    wire.reset();
    for _ in 0..5 {
        assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    }
    assert_eq!(
        wire.executions_of("tenantry_enter"),
        5,
        "every BEGIN checks the tenant's identity"
    );
    // A schema that exists but is not the tenant's (same id, another name) is refused.
    create(&t, "beta").await;
    let mut impostor = (*acme).clone();
    impostor.schema = "beta".into();
    match t.begin(&Arc::new(impostor)).await {
        Err(Error::TenantMoved(s)) => assert_eq!(s, "beta"),
        Err(other) => panic!("expected TenantMoved, got {other}"),
        Ok(_) => panic!("a transaction was opened in another tenant's schema"),
    }
}

/// A record from a resolution carries the registry version: while the registry is unchanged,
/// its BEGIN skips the registry lookups (one statement with the lock and a version compare);
/// after any registry change it takes the full check, which refuses a stale identity.
#[tokio::test]
async fn resolved_records_take_the_fast_check_until_the_registry_changes() {
    let db = TestDb::new().await;
    let wire = WireCounter::start(db.url()).await;
    let t = tenantry(&wire.url(db.url()), true).await;
    wait_listening(&t).await;
    create(&t, "acme").await;
    create(&t, "beta").await;
    settle(&t).await;
    let resolve = |host: &'static str| {
        let t = t.clone();
        async move {
            match t.resolve_host(host).await.unwrap() {
                tenantry_sqlx::Resolution::Tenant(tenant) => tenant,
                other => panic!("{host}: {other:?}"),
            }
        }
    };
    let acme = resolve("acme.example.com").await;
    assert!(acme.registry_version.is_some());
    wire.reset();
    for _ in 0..5 {
        assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    }
    assert_eq!(wire.executions_of("tenantry_enter"), 0, "fast check only");
    assert_eq!(wire.executions_of("pg_sequence_last_value"), 5);

    // Any registry change: the same record now takes the full check, and still works.
    t.admin()
        .create_tenant(NewTenant::new("gamma", "gamma.example.com"))
        .await
        .unwrap();
    wire.reset();
    assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    assert_eq!(wire.executions_of("tenantry_enter"), 1);

    // A swap of names: the stale resolved record is refused, never run in beta's schema.
    let beta = resolve("beta.example.com").await;
    t.admin().rename_tenant("acme", "tmp").await.unwrap();
    t.admin().rename_tenant("beta", "acme").await.unwrap();
    t.admin().rename_tenant("tmp", "beta").await.unwrap();
    for stale in [&acme, &beta] {
        match t.begin(stale).await {
            Err(Error::TenantMoved(_) | Error::SchemaMissing(_)) => {}
            Err(other) => panic!("expected TenantMoved, got {other}"),
            Ok(_) => panic!("a stale resolved record got a transaction"),
        }
    }
    // Dropped behind Tenantry's back (no registry change): the fast check sees the schema gone.
    settle(&t).await;
    let gamma = resolve("gamma.example.com").await;
    sql(&db, "DROP SCHEMA gamma CASCADE").await;
    expect_missing(&t, &gamma, "gamma").await;
}
