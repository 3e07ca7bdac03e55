//! Placement on a real Citus cluster: a tenant moved to the other worker while it receives a
//! steady stream of writes (none lost, reads served throughout and from the new node after),
//! a rebalance, a worker down (its tenants unavailable, never another tenant's data; the
//! others served), and a tenant whose table has no primary key moved with its rows.

mod citus_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use citus_support::{create, create_many, port_of, start, tenant_set};
use sqlx::{Connection, PgConnection};
use tenantry_sqlx::{Error, Tenantry};

/// Inserts one note in `schema`, retrying what is documented as retryable (503-class).
async fn write(t: &Tenantry, tenant: &Arc<tenantry_sqlx::Tenant>, i: usize, retries: &AtomicUsize) {
    loop {
        let attempt = async {
            let mut tx = t.begin(tenant).await?;
            sqlx::query("INSERT INTO notes (title) VALUES ($1)")
                .bind(format!("w{i}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, Error>(())
        };
        match attempt.await {
            Ok(()) => return,
            Err(e) if e.is_unavailable() || matches!(e, Error::TenantMoved(_)) => {
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("write {i} failed with a non-retryable error: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_moves_to_the_other_worker_under_writes_and_loses_nothing() {
    let Some((citus, t)) = start(tenant_set()).await else {
        return;
    };
    let mover = Arc::new(create(&t, "mover").await);
    let ports = citus.worker_ports();
    let from = port_of(&t, "mover").await;
    let to = *ports.iter().find(|p| **p != from).unwrap();

    const WRITES: usize = 400;
    let retries = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (t, mover, retries, written) =
            (t.clone(), mover.clone(), retries.clone(), written.clone());
        tokio::spawn(async move {
            for i in 0..WRITES {
                write(&t, &mover, i, &retries).await;
                written.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Reads keep working during the move too.
    let reader = {
        let (t, mover) = (t.clone(), mover.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            let mut last = 0i64;
            while last < WRITES as i64 {
                let mut tx = t.begin(&mover).await.expect("read begin");
                last = sqlx::query_scalar("SELECT count(*) FROM notes")
                    .fetch_one(&mut *tx)
                    .await
                    .expect("read during the move");
                tx.commit().await.unwrap();
                reads += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            reads
        })
    };
    while written.load(Ordering::Relaxed) < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let progress = Arc::new(AtomicUsize::new(0));
    let p = progress.clone();
    let report = t
        .placement()
        .move_tenant("mover", "127.0.0.1", to, move |_| {
            p.fetch_add(1, Ordering::Relaxed);
        })
        .await
        .expect("move");
    assert!(report.moved);
    assert_eq!(report.from.port, from);
    let during = written.load(Ordering::Relaxed);
    assert!(
        during < WRITES,
        "the move ended after the writes: nothing was tested"
    );
    writer.await.unwrap();
    let reads = reader.await.unwrap();
    assert!(reads > 0);
    eprintln!(
        "move: {:?}, {during} writes done when it ended, {} retried, {} progress calls",
        report.elapsed,
        retries.load(Ordering::Relaxed),
        progress.load(Ordering::Relaxed)
    );

    assert_eq!(port_of(&t, "mover").await, to);
    let mut tx = t.begin(&mover).await.unwrap();
    let (n, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT title) FROM notes")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (n, distinct),
        (WRITES as i64, WRITES as i64),
        "every write is there once"
    );
    // The rows are on the new node: its shard of mover.notes holds every one of them.
    let shard: i64 = sqlx::query_scalar(
        "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'mover.notes'::regclass",
    )
    .fetch_one(t.raw_pool())
    .await
    .unwrap();
    let url = |port: u16| {
        format!(
            "postgres://postgres@127.0.0.1:{port}/{}",
            tenantry_testing::CITUS_DATABASE
        )
    };
    let mut on_new = PgConnection::connect(&url(to)).await.unwrap();
    // An integer we read, not text: safe to spell into the statement.
    let there: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM mover.notes_{shard}"
    )))
    .fetch_one(&mut on_new)
    .await
    .unwrap();
    assert_eq!(there, WRITES as i64, "the new node holds every row");
    // The old copy is dropped by Citus's deferred cleanup.
    sqlx::query("CALL citus_cleanup_orphaned_resources()")
        .execute(t.raw_pool())
        .await
        .unwrap();
    let mut on_old = PgConnection::connect(&url(from)).await.unwrap();
    let left: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("mover.notes_{shard}"))
        .fetch_one(&mut on_old)
        .await
        .unwrap();
    assert_eq!(left, None, "the old node no longer holds the shard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_spreads_tenants_and_a_worker_down_answers_unavailable_for_its_tenants_only() {
    let Some((citus, t)) = start(tenant_set()).await else {
        return;
    };
    create_many(&t, "r", 6, 2).await;
    // Pile them on one worker, then rebalance.
    let first = citus.worker_ports()[0];
    for i in 0..6 {
        t.placement()
            .move_tenant(&format!("r{i}"), "127.0.0.1", first, |_| {})
            .await
            .unwrap();
    }
    let nodes = t.placement().nodes().await.unwrap();
    assert_eq!(nodes[1].tenants, 6, "{nodes:?}");
    let report = t.placement().rebalance(|_| {}).await.unwrap();
    assert_eq!(report.moves.len(), 3, "{report:?}");
    let nodes = t.placement().nodes().await.unwrap();
    assert!(
        nodes[1].tenants >= 2 && nodes[2].tenants >= 2,
        "rebalanced: {nodes:?}"
    );

    // A worker down.
    let mut on = [Vec::new(), Vec::new()];
    for i in 0..6 {
        let schema = format!("r{i}");
        let k = usize::from(port_of(&t, &schema).await != first);
        let tenant = Arc::new(t.admin().tenant(&schema).await.unwrap());
        let mut tx = t.begin(&tenant).await.unwrap();
        sqlx::query("INSERT INTO notes (title) VALUES ($1)")
            .bind(&schema)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        on[k].push(tenant);
    }
    tokio::task::block_in_place(|| citus.stop_worker(0));
    for tenant in &on[0] {
        let result = async {
            let mut tx = t.begin(tenant).await?;
            let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM notes")
                .fetch_all(&mut *tx)
                .await?;
            Ok::<_, Error>(titles)
        }
        .await;
        match result {
            Err(e) => assert!(
                e.is_unavailable(),
                "{}: not a 503-class error: {e}",
                tenant.schema
            ),
            Ok(rows) => panic!("{} served with its worker down: {rows:?}", tenant.schema),
        }
    }
    for tenant in &on[1] {
        let mut tx = t.begin(tenant).await.unwrap();
        let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM notes")
            .fetch_all(&mut *tx)
            .await
            .expect("a tenant on the live worker is served");
        assert_eq!(titles, std::slice::from_ref(&tenant.schema));
        tx.commit().await.unwrap();
    }
    tokio::task::block_in_place(|| citus.start_worker(0));
}

// Moves copy with `block_writes` (the tenant's lock holds its requests anyway): a table without
// a primary key or replica identity, which Citus's online mode refuses to move, moves too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_a_table_without_primary_key_moves_with_its_rows() {
    let set = tenantry_sqlx::MigrationSet::from_sql(&[
        (1, "notes", citus_support::TENANT_V1),
        (2, "log", "CREATE TABLE log (line text NOT NULL)"),
    ]);
    let Some((citus, t)) = start(set).await else {
        return;
    };
    let tenant = Arc::new(create(&t, "keyless").await);
    let mut tx = t.begin(&tenant).await.unwrap();
    sqlx::query("INSERT INTO log SELECT 'line ' || i FROM generate_series(1, 500) i")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let from = port_of(&t, "keyless").await;
    let to = *citus.worker_ports().iter().find(|p| **p != from).unwrap();
    let report = t
        .placement()
        .move_tenant("keyless", "127.0.0.1", to, |_| {})
        .await
        .expect("a table without a primary key moves");
    assert!(report.moved);
    assert_eq!(port_of(&t, "keyless").await, to);
    let mut tx = t.begin(&tenant).await.unwrap();
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT line) FROM log")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((rows, distinct), (500, 500), "every row moved, once");
}
