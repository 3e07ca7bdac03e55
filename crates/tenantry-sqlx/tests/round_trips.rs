//! Round trips of a request that runs one query, counted on the wire (a proxy between the pool
//! and PostgreSQL: a round trip is a burst of client bytes after the server last answered),
//! Tenantry against the same work in a single-tenant app with the same sqlx pool settings.
//!
//! What sqlx adds on both sides: a `Sync` ping when a connection is taken from the pool
//! (`test_before_acquire`, on by default) and another when it is returned; the `ROLLBACK` of a
//! dropped transaction is queued and travels with that release ping, so it costs nothing extra.
//!
//! Run with `--nocapture` to see every burst.

#[allow(dead_code)]
#[path = "resolve_support/wire.rs"]
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use tenantry_sqlx::{MigrationSet, NewTenant, Tenantry};
use tenantry_testing::TestDb;
use wire::{Burst, WireCounter};

const READ: &str = "SELECT id, title FROM notes ORDER BY id LIMIT 10";
const WRITE: &str = "INSERT INTO notes (title) VALUES ($1)";
const NOTES: &str = "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title TEXT NOT NULL); \
                     INSERT INTO notes (title) SELECT 'note ' || g FROM generate_series(1, 10) g";

fn pool_options() -> PgPoolOptions {
    // One connection, so every request reuses the same one (statements prepared once).
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
}

/// Runs `request` twice to warm up (prepared statements), then once more recording its bursts,
/// up to the moment its connection is back in the pool. `pings_on_acquire`: whether `pool`
/// pings a connection before handing it out (sqlx's default; Tenantry's pool does not).
async fn measure<F, Fut>(
    name: &str,
    wire: &WireCounter,
    pool: &PgPool,
    pings_on_acquire: bool,
    request: F,
) -> Vec<Burst>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    request().await;
    request().await;
    settle(pool).await;
    wire.reset();
    request().await;
    // With one connection, this acquire waits for the release (and its ping) to finish; its own
    // `test_before_acquire` ping, if the pool does one, is the last burst and not part of the
    // request.
    let conn = pool.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut bursts = wire.bursts();
    drop(conn);
    if pings_on_acquire {
        let ours = bursts.pop().expect("the settling acquire's ping");
        assert_eq!(
            ours.messages,
            ['S'],
            "{name}: unexpected last burst {ours:?}"
        );
    }
    println!("{name}: {} round trips", bursts.len());
    for b in &bursts {
        println!("    {:?} {:?}", b.messages, b.statements);
    }
    bursts
}

/// Waits until the pool's connection is idle again.
async fn settle(pool: &PgPool) {
    drop(pool.acquire().await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn statements(bursts: &[Burst]) -> usize {
    bursts.iter().map(|b| b.statements.len()).sum()
}

#[tokio::test]
async fn one_query_costs_what_the_single_tenant_version_costs_in_a_transaction() {
    let db = TestDb::new().await;
    let wire = WireCounter::start(db.url()).await;
    let url = wire.url(db.url());

    let tenantry = Tenantry::builder()
        .tenant_migration_set("default", MigrationSet::from_sql(&[(1, "notes", NOTES)]))
        .pool_options(pool_options())
        .listen_for_changes(false)
        .connect(&url)
        .await
        .unwrap();
    tenantry.fleet().migrate_shared().await.unwrap();
    let acme = Arc::new(
        tenantry
            .admin()
            .create_tenant(NewTenant::new("acme", "acme.example.com"))
            .await
            .unwrap(),
    );
    // The single-tenant app: the same table in one schema, the same pool settings.
    let control = pool_options().connect(&url).await.unwrap();
    control
        .execute("CREATE SCHEMA single; SET search_path TO single")
        .await
        .unwrap();
    control
        .execute(sqlx::AssertSqlSafe(format!(
            "SET search_path TO single; {NOTES}"
        )))
        .await
        .unwrap();
    // (the session search_path stays on the control's only connection)

    let t = &tenantry;
    let a = &acme;
    let tenantry_read = measure(
        "tenantry read (TenantDb, dropped)",
        &wire,
        t.raw_pool(),
        false,
        || async {
            let mut tx = t.begin(a).await.unwrap();
            let rows: Vec<(i64, String)> = sqlx::query_as(READ).fetch_all(&mut *tx).await.unwrap();
            assert_eq!(rows.len(), 10);
        },
    )
    .await;
    let c = &control;
    let control_read = measure("control read (pool)", &wire, c, true, || async {
        let rows: Vec<(i64, String)> = sqlx::query_as(READ).fetch_all(c).await.unwrap();
        assert_eq!(rows.len(), 10);
    })
    .await;
    let control_tx_read = measure(
        "control read (transaction, dropped)",
        &wire,
        c,
        true,
        || async {
            let mut tx = c.begin().await.unwrap();
            let rows: Vec<(i64, String)> = sqlx::query_as(READ).fetch_all(&mut *tx).await.unwrap();
            assert_eq!(rows.len(), 10);
        },
    )
    .await;
    let tenantry_write = measure(
        "tenantry write (TenantDb, commit)",
        &wire,
        t.raw_pool(),
        false,
        || async {
            let mut tx = t.begin(a).await.unwrap();
            sqlx::query(WRITE)
                .bind("x")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        },
    )
    .await;
    let control_write = measure(
        "control write (transaction, commit)",
        &wire,
        c,
        true,
        || async {
            let mut tx = c.begin().await.unwrap();
            sqlx::query(WRITE)
                .bind("x")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        },
    )
    .await;

    // The control: acquire ping, the query, release ping.
    assert_eq!(control_read.len(), 3, "{control_read:?}");
    // Tenantry: the same count. Its pool skips the acquire ping: the scoped BEGIN (BEGIN, SET
    // LOCAL and the schema check in one simple query) is the first round trip and doubles as the
    // liveness check (retried on a dead connection).
    assert_eq!(tenantry_read.len(), control_read.len(), "{tenantry_read:?}");
    let begin = &tenantry_read[0];
    assert_eq!(
        begin.messages,
        ['Q'],
        "the scoped BEGIN is one simple query"
    );
    assert!(
        begin.statements[0].contains("BEGIN")
            && begin.statements[0].contains("SET LOCAL search_path")
    );
    // The ROLLBACK of the dropped transaction rides on the release ping.
    let release = tenantry_read.last().unwrap();
    assert_eq!(release.messages, ['Q', 'S']);
    assert_eq!(release.statements, ["ROLLBACK"]);
    // One round trip fewer than the single-tenant app doing the same work in a transaction
    // (which pays sqlx's acquire ping and then its BEGIN).
    assert_eq!(
        tenantry_read.len() + 1,
        control_tx_read.len(),
        "{control_tx_read:?}"
    );
    assert_eq!(
        tenantry_write.len() + 1,
        control_write.len(),
        "{control_write:?}"
    );
    assert!(statements(&tenantry_write) >= 3, "{tenantry_write:?}");
}
