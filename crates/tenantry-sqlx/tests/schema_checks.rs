//! A scoped `BEGIN` checks that the tenant's schema exists (PostgreSQL would silently skip a
//! missing one and fall through to the shared schema). The check runs on the first `BEGIN` per
//! schema; later ones skip it only while any drop or rename of a schema, by anyone, empties the
//! set of checked schemas (registry listener + schema event triggers).

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

/// Waits until the listener runs and the event triggers are seen (checks are then cached).
async fn wait_cached(t: &Tenantry) {
    wait_listening(t).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            t.schema_checks_cached()
        })
        .await,
        "migrate_shared (as superuser) creates the event triggers; the listener sees them"
    );
}

async fn create(t: &Tenantry, name: &str) -> Arc<tenantry_sqlx::Tenant> {
    Arc::new(
        t.create_tenant(NewTenant::new(name, format!("{name}.example.com")))
            .await
            .unwrap(),
    )
}

/// Waits until no notification has arrived for 300 ms (one change fires several).
async fn settle(t: &Tenantry) {
    loop {
        let g = t.resolver_generation();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if t.resolver_generation() == g {
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
async fn checks_are_cached_only_with_listener_and_event_triggers() {
    let db = TestDb::new().await;
    let listening = tenantry(db.url(), true).await;
    wait_listening(&listening).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            listening.schema_checks_cached()
        })
        .await,
        "migrate_shared (as superuser) creates the event triggers; the listener sees them"
    );
    let deaf = tenantry(db.url(), false).await;
    assert!(
        !deaf.schema_checks_cached(),
        "no listener: every BEGIN checks"
    );

    // Without the event triggers (e.g. not a superuser, so migrate_shared could not create
    // them), a handle keeps checking on every BEGIN.
    sql(&db, "DROP EVENT TRIGGER tenantry_schema_drop").await;
    let later = Tenantry::builder().connect(db.url()).await.unwrap();
    wait_listening(&later).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !later.schema_checks_cached(),
        "one event trigger missing: checks must not be cached"
    );
}

#[tokio::test]
async fn an_out_of_band_drop_or_rename_is_caught_after_a_cached_check() {
    let db = TestDb::new().await;
    let t = tenantry(db.url(), true).await;
    wait_cached(&t).await;
    let acme = create(&t, "acme").await;
    let beta = create(&t, "beta").await;
    // First BEGINs check and remember; later ones take the cached path.
    for _ in 0..3 {
        assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
        assert_eq!(first_schema(&t, &beta).await.unwrap(), "beta");
    }

    // Dropped behind Tenantry's back (no registry change): the event trigger notifies.
    let before = t.resolver_generation();
    sql(&db, "DROP SCHEMA acme CASCADE").await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            t.resolver_generation() > before
        })
        .await,
        "DROP SCHEMA must notify the listener within 1 s"
    );
    expect_missing(&t, &acme, "acme").await;

    // Renamed behind Tenantry's back: the old name is gone, caught the same way.
    let before = t.resolver_generation();
    sql(&db, "ALTER SCHEMA beta RENAME TO beta_old").await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            t.resolver_generation() > before
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
async fn the_check_runs_once_per_schema_while_cached() {
    let db = TestDb::new().await;
    let wire = WireCounter::start(db.url()).await;
    let t = tenantry(&wire.url(db.url()), true).await;
    wait_cached(&t).await;
    let acme = create(&t, "acme").await;
    settle(&t).await;
    wire.reset();
    for _ in 0..5 {
        assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    }
    assert_eq!(
        wire.executions_of("::regnamespace"),
        1,
        "only the first BEGIN on a schema checks it"
    );
    // Any registry change empties the set: the next BEGIN checks again.
    let before = t.resolver_generation();
    t.create_tenant(NewTenant::new("beta", "beta.example.com"))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(1), || async {
            t.resolver_generation() > before
        })
        .await
    );
    settle(&t).await;
    wire.reset();
    assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    assert_eq!(first_schema(&t, &acme).await.unwrap(), "acme");
    assert_eq!(wire.executions_of("::regnamespace"), 1);
}
