//! Node-affine routing on a real Citus cluster (`TenantryBuilder::node_affine`): transactions
//! land on the tenant's worker and see only its rows; a rename, a delete or a status change
//! waits for the tenant's transactions in flight on its worker, and a record resolved before
//! it never reaches the new owner of the name; a move under writes loses nothing and reads
//! after it come from the new node; an unknown or stale placement goes through the
//! coordinator or costs a hop, never wrong data; a worker down makes its tenants unavailable
//! (503-class) and leaves the others served.

mod citus_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use citus_support::{builder, create, create_many, port_of, tenant_set};
use tenantry_sqlx::{Error, Resolution, SchemaOnDelete, Tenant, TenantStatus, Tenantry};
use tenantry_testing::rename_and_reuse;
use tenantry_testing::{CITUS_INSTALL_HINT, CitusCluster, skip};

/// A cluster with two workers and a migrated node-affine handle, or a visible skip (a failure
/// in CI).
async fn start() -> Option<(CitusCluster, Tenantry)> {
    let Some(citus) = CitusCluster::start(2).await else {
        skip(CITUS_INSTALL_HINT);
        return None;
    };
    let t = affine(&citus, true).await;
    Some((citus, t))
}

/// Another node-affine handle on `citus` (listening for registry changes or not).
async fn affine(citus: &CitusCluster, listen: bool) -> Tenantry {
    let t = builder(tenant_set())
        .node_affine(true)
        .listen_for_changes(listen)
        .lifecycle_wait(Duration::from_secs(10))
        .connect(&citus.url())
        .await
        .expect("connect");
    t.fleet().migrate_shared().await.expect("shared");
    assert!(t.is_node_affine(), "node-affine routing is in force");
    t
}

/// The tenant at `<schema>.test`, as a request resolves it.
async fn resolved(t: &Tenantry, schema: &str) -> Arc<Tenant> {
    match t.resolve_host(&format!("{schema}.test")).await {
        Ok(Resolution::Tenant(tenant)) => tenant,
        other => panic!("{schema}.test: {other:?}"),
    }
}

/// One transaction of `tenant`: the port of the server it ran on, and its notes' titles.
async fn served(t: &Tenantry, tenant: &Arc<Tenant>) -> Result<(u16, Vec<String>), Error> {
    let mut tx = t.begin(tenant).await?;
    let port: i32 = sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&mut *tx)
        .await?;
    let titles = sqlx::query_scalar("SELECT title FROM notes ORDER BY title")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((port as u16, titles))
}

/// Inserts a note titled `title` in one transaction of `tenant`.
async fn note(t: &Tenantry, tenant: &Arc<Tenant>, title: &str) -> Result<(), Error> {
    let mut tx = t.begin(tenant).await?;
    sqlx::query("INSERT INTO notes (title) VALUES ($1)")
        .bind(title)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_land_on_the_tenants_worker_and_see_only_its_rows() {
    let Some((citus, t)) = start().await else {
        return;
    };
    create_many(&t, "a", 6, 2).await;
    let mut ports = Vec::new();
    for i in 0..6 {
        let schema = format!("a{i}");
        let tenant = resolved(&t, &schema).await;
        assert!(
            tenant.node_epoch.is_some(),
            "{schema}: resolved with its node epoch"
        );
        note(&t, &tenant, &schema)
            .await
            .expect("write on the worker");
        ports.push(port_of(&t, &schema).await);
    }
    for w in citus.worker_ports() {
        assert!(ports.contains(&w), "tenants on both workers: {ports:?}");
    }
    for (i, home) in ports.iter().enumerate() {
        let schema = format!("a{i}");
        let tenant = resolved(&t, &schema).await;
        let (port, titles) = served(&t, &tenant).await.expect("served");
        assert_eq!(port, *home, "{schema}: served by the worker holding it");
        assert_eq!(titles, vec![schema.clone()], "{schema} sees only its rows");
    }
    // A record without a node epoch (not from a resolution) goes through the coordinator.
    let plain = Arc::new(t.admin().tenant("a0").await.unwrap());
    let (port, titles) = served(&t, &plain).await.unwrap();
    assert_eq!(port, citus.coordinator_port());
    assert_eq!(titles, vec!["a0".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_wait_for_transactions_on_the_worker_and_stale_records_never_reach_a_new_owner() {
    let Some((citus, t)) = start().await else {
        return;
    };
    for name in ["acme", "gone", "paused"] {
        create(&t, name).await;
        note(&t, &resolved(&t, name).await, name).await.unwrap();
    }
    let acme = resolved(&t, "acme").await;
    let acme_port = port_of(&t, "acme").await;

    // A transaction in flight on the worker holds the rename back until it ends.
    let mut tx = t.begin(&acme).await.unwrap();
    let port: i32 = sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(port as u16, acme_port);
    let renaming = {
        let t = t.clone();
        tokio::spawn(async move { rename_and_reuse(&t, "acme", "acme_old").await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !renaming.is_finished(),
        "the rename waits for acme's transaction on its worker"
    );
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM notes")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(titles, vec!["acme".to_owned()]);
    tx.commit().await.unwrap();

    // Requests holding the record read before the rename, racing it: each sees acme's rows or
    // is refused, never the newcomer's.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let racer = {
        let (t, acme, stop, seen) = (t.clone(), acme.clone(), stop.clone(), seen.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match served(&t, &acme).await {
                    Ok((_, titles)) => {
                        assert!(
                            titles.iter().all(|x| x == "acme"),
                            "a stale record reached another tenant's rows: {titles:?}"
                        );
                    }
                    // Refused: the name is between owners, or another tenant's now.
                    Err(Error::TenantMoved(_) | Error::SchemaMissing(_)) => {}
                    Err(e) => panic!("unexpected error for a stale record: {e}"),
                }
                seen.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let (renamed, newcomer) = renaming.await.unwrap().expect("rename and reuse");
    assert_eq!(renamed.id, acme.id);
    let newcomer = Arc::new(newcomer);
    // The newcomer took the name (its domain is new-acme.test; acme.test stays the renamed one's).
    let fresh = resolved(&t, "new-acme").await;
    assert_eq!((fresh.id, fresh.schema.as_str()), (newcomer.id, "acme"));
    note(&t, &fresh, "newcomer").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    racer.await.unwrap();
    assert!(seen.load(Ordering::Relaxed) > 0, "the racing requests ran");
    // After the rename, the old record is refused (its name is the newcomer's now).
    assert!(
        matches!(served(&t, &acme).await, Err(Error::TenantMoved(_))),
        "the old record is refused"
    );
    let old = resolved(&t, "acme").await;
    assert_eq!((old.id, old.schema.as_str()), (acme.id, "acme_old"));
    let (_, titles) = served(&t, &old).await.unwrap();
    assert_eq!(titles, vec!["acme".to_owned()]);
    let (port, titles) = served(&t, &fresh).await.unwrap();
    assert_eq!(titles, vec!["newcomer".to_owned()]);
    assert!(
        citus.worker_ports().contains(&port),
        "the newcomer is served by its worker"
    );

    // A delete and a reuse of the name: the old record never reaches the new tenant.
    let gone = resolved(&t, "gone").await;
    t.admin()
        .delete_tenant("gone", SchemaOnDelete::Drop)
        .await
        .unwrap();
    create(&t, "gone").await;
    note(&t, &resolved(&t, "gone").await, "reborn")
        .await
        .unwrap();
    match served(&t, &gone).await {
        Err(Error::TenantMoved(_) | Error::SchemaMissing(_)) => {}
        other => panic!("a deleted tenant's record was served: {other:?}"),
    }

    // A change that can't wait long enough for a transaction on the worker gives up:
    // TenantBusy, nothing changed.
    let paused = resolved(&t, "paused").await;
    let impatient = builder(tenant_set())
        .node_affine(true)
        .lifecycle_wait(Duration::from_millis(500))
        .connect(&citus.url())
        .await
        .unwrap();
    let tx = t.begin(&paused).await.unwrap();
    assert!(
        matches!(
            impatient
                .admin()
                .set_status("paused", TenantStatus::Suspended)
                .await,
            Err(Error::TenantBusy { .. })
        ),
        "busy on the worker"
    );
    tx.commit().await.unwrap();
    impatient.close().await;
    assert_eq!(
        t.admin().tenant("paused").await.unwrap().status,
        TenantStatus::Active
    );

    // A suspension (no name change): refused for the record read before it.
    t.admin()
        .set_status("paused", TenantStatus::Suspended)
        .await
        .unwrap();
    assert!(
        matches!(
            served(&t, &paused).await,
            Err(Error::TenantNotServing { .. })
        ),
        "a suspended tenant is refused with a record read while it was active"
    );
    // Raw SQL on the registry (no Tenantry code): the trigger bumps the epoch too.
    t.admin()
        .set_status("paused", TenantStatus::Active)
        .await
        .unwrap();
    let paused = resolved(&t, "paused").await;
    sqlx::query("UPDATE tenantry_tenants SET status = 'suspended' WHERE schema_name = 'paused'")
        .execute(t.raw_pool())
        .await
        .unwrap();
    assert!(
        matches!(
            served(&t, &paused).await,
            Err(Error::TenantNotServing { .. })
        ),
        "a suspension by raw SQL is seen on the worker path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_under_writes_loses_nothing_and_reads_come_from_the_new_node() {
    let Some((citus, t)) = start().await else {
        return;
    };
    create(&t, "mover").await;
    let mover = resolved(&t, "mover").await;
    let from = port_of(&t, "mover").await;
    let to = *citus.worker_ports().iter().find(|p| **p != from).unwrap();
    assert_eq!(served(&t, &mover).await.unwrap().0, from);

    const WRITES: usize = 300;
    let retries = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (t, retries, written) = (t.clone(), retries.clone(), written.clone());
        tokio::spawn(async move {
            for i in 0..WRITES {
                loop {
                    // Each write resolves as a request would (the cache answers).
                    let tenant = resolved(&t, "mover").await;
                    match note(&t, &tenant, &format!("w{i:03}")).await {
                        Ok(()) => break,
                        Err(e) if e.is_unavailable() => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => panic!("write {i}: {e}"),
                    }
                }
                written.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    while written.load(Ordering::Relaxed) < WRITES / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = t
        .placement()
        .move_tenant("mover", "127.0.0.1", to, |_| {})
        .await
        .expect("move");
    assert!(report.moved);
    assert!(
        written.load(Ordering::Relaxed) < WRITES,
        "the move ended while writes were still coming"
    );
    writer.await.unwrap();
    let mover = resolved(&t, "mover").await;
    let (port, titles) = served(&t, &mover).await.unwrap();
    assert_eq!(port, to, "reads after the move are served by the new node");
    assert_eq!(titles.len(), WRITES, "every write is there");
    let distinct: std::collections::BTreeSet<&String> = titles.iter().collect();
    assert_eq!(distinct.len(), WRITES, "each write once");
    eprintln!(
        "move: {:?}, {} retried writes",
        report.elapsed,
        retries.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_placements_cost_a_hop_and_a_worker_down_is_unavailable_for_its_tenants_only() {
    let Some((citus, t)) = start().await else {
        return;
    };
    create_many(&t, "s", 4, 2).await;
    let mut on: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let workers = citus.worker_ports();
    for i in 0..4 {
        let schema = format!("s{i}");
        note(&t, &resolved(&t, &schema).await, &schema)
            .await
            .unwrap();
        let k = usize::from(port_of(&t, &schema).await != workers[0]);
        on[k].push(schema);
    }
    assert!(!on[0].is_empty() && !on[1].is_empty(), "{on:?}");

    // An instance that does not hear registry notifications keeps its placements.
    let deaf = affine(&citus, false).await;
    let schema = on[0][0].clone();
    let tenant = resolved(&deaf, &schema).await;
    assert_eq!(served(&deaf, &tenant).await.unwrap().0, workers[0]);
    // Moved behind Tenantry's back (no epoch bump, no notification): the stale placement
    // sends the transaction to the old worker, which forwards to the new one. A hop, the same
    // rows.
    sqlx::query(
        "SELECT citus_schema_move($1::regnamespace, '127.0.0.1', $2, \
         shard_transfer_mode => 'block_writes')",
    )
    .bind(&schema)
    .bind(i32::from(workers[1]))
    .execute(t.raw_pool())
    .await
    .unwrap();
    note(&t, &resolved(&t, &schema).await, "after")
        .await
        .unwrap();
    let (port, titles) = served(&deaf, &tenant).await.unwrap();
    assert_eq!(port, workers[0], "the stale placement's node");
    assert_eq!(titles, vec!["after".to_owned(), schema.clone()]);
    // Moved by Tenantry (epoch bumped): the deaf instance's record is stale, so its
    // transaction goes through the coordinator (its check decides), with the right rows.
    t.placement()
        .move_tenant(&schema, "127.0.0.1", workers[0], |_| {})
        .await
        .unwrap();
    let (port, titles) = served(&deaf, &tenant).await.unwrap();
    assert_eq!(port, citus.coordinator_port(), "a stale record falls back");
    assert_eq!(titles, vec!["after".to_owned(), schema.clone()]);
    deaf.close().await;

    // A worker down: its tenants are unavailable (503-class), the others served by theirs.
    let tenants: Vec<Vec<Arc<Tenant>>> = {
        let mut v = Vec::new();
        for side in &on {
            let mut list = Vec::new();
            for s in side {
                list.push(resolved(&t, s).await);
            }
            v.push(list);
        }
        v
    };
    tokio::task::block_in_place(|| citus.stop_worker(0));
    for tenant in &tenants[0] {
        match served(&t, tenant).await {
            Err(e) => assert!(e.is_unavailable(), "{}: not 503-class: {e}", tenant.schema),
            Ok(rows) => panic!("{} served with its worker down: {rows:?}", tenant.schema),
        }
    }
    for tenant in &tenants[1] {
        let (port, titles) = served(&t, tenant).await.expect("served");
        assert_eq!(port, workers[1]);
        assert_eq!(titles, vec![tenant.schema.clone()]);
    }
    tokio::task::block_in_place(|| citus.start_worker(0));
}
