//! Tenant-affine connection shards: a tenant's transactions go to the connections of its home
//! shard (so each backend only caches a slice of the fleet), spill over to the next shard under
//! load, and isolation is the same as ever.

mod resolve_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use resolve_support::{tenant_migrations, tenant_with_a_note};
use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{Tenant, Tenantry};
use tenantry_testing::TestDb;

async fn handle(url: &str, shards: usize, max_connections: u32) -> Tenantry {
    let t = Tenantry::builder()
        .tenant_migration_set("default", tenant_migrations())
        .pool_shards(shards)
        .pool_options(
            PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(20)),
        )
        .listen_for_changes(false)
        .connect(url)
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

async fn tenants(t: &Tenantry, n: usize) -> Vec<Arc<Tenant>> {
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("shard_t{i:02}");
        let domain = format!("{}.example.com", name.replace('_', "-"));
        let tenant = tenant_with_a_note(t, &name, domain).await;
        // Back in its pool before the next begin (sqlx pings a connection on release).
        tokio::time::sleep(Duration::from_millis(25)).await;
        out.push(tenant);
    }
    out
}

/// The backend serving a scoped transaction, and what the tenant sees there.
async fn visit(t: &Tenantry, tenant: &Arc<Tenant>, hold: Duration) -> (i32, String, Vec<String>) {
    let mut tx = t.begin(tenant).await.unwrap();
    let (pid, schema): (i32, String) = sqlx::query_as("SELECT pg_backend_pid(), current_schema()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    if !hold.is_zero() {
        sqlx::query("SELECT pg_sleep($1)")
            .bind(hold.as_secs_f64())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (pid, schema, titles)
}

#[tokio::test]
async fn each_tenant_keeps_to_its_home_shard() {
    let db = TestDb::new().await;
    let t = handle(db.url(), 4, 8).await;
    let all = tenants(&t, 12).await;
    let homes: HashSet<usize> = all
        .iter()
        .map(|x| t.pool_shard_of(&x.schema).unwrap())
        .collect();
    assert!(
        homes.len() > 1,
        "12 tenants should hash to several of 4 shards"
    );

    // One request at a time, each connection back in its pool before the next (sqlx pings a
    // connection on release): the home shard always has an idle connection.
    let mut pids: HashMap<String, HashSet<i32>> = HashMap::new();
    for _round in 0..4 {
        for tenant in &all {
            let (pid, schema, titles) = visit(&t, tenant, Duration::ZERO).await;
            assert_eq!(schema, tenant.schema);
            assert_eq!(titles, vec![format!("note of {}", tenant.schema)]);
            pids.entry(tenant.schema.clone()).or_default().insert(pid);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    for (schema, seen) in &pids {
        assert_eq!(
            seen.len(),
            1,
            "{schema} was served by several backends: {seen:?}"
        );
    }
    // Same home shard <=> same backend.
    for a in &all {
        for b in &all {
            let same_shard = t.pool_shard_of(&a.schema) == t.pool_shard_of(&b.schema);
            let same_pid = pids[&a.schema] == pids[&b.schema];
            assert_eq!(same_shard, same_pid, "{} / {}", a.schema, b.schema);
        }
    }
    let sizes = t.stats().await.pool_shard_sizes;
    for (shard, &size) in sizes.iter().enumerate() {
        let expected = u32::from(homes.contains(&shard));
        assert_eq!(
            size, expected,
            "shard {shard}: one connection if used: {sizes:?}"
        );
    }
}

#[tokio::test]
async fn a_busy_tenant_spills_over_and_stays_isolated() {
    let db = TestDb::new().await;
    // Two shards of one connection each.
    let t = handle(db.url(), 2, 2).await;
    let all = tenants(&t, 6).await;
    // The hash is fixed, so these names always fall on both shards.
    let shards: HashSet<_> = all.iter().map(|x| t.pool_shard_of(&x.schema)).collect();
    assert_eq!(shards.len(), 2);
    let hot = Arc::clone(&all[0]);
    // Let the setup's connections finish their return to the pool (sqlx pings on release).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let t = t.clone();
        // Mostly the hot tenant, some others interleaved.
        let tenant = if i % 4 == 3 {
            Arc::clone(&all[i % all.len()])
        } else {
            Arc::clone(&hot)
        };
        tasks.push(tokio::spawn(async move {
            let seen = visit(&t, &tenant, Duration::from_millis(20)).await;
            (tenant, seen)
        }));
    }
    let mut hot_pids = HashSet::new();
    for task in tasks {
        let (tenant, (pid, schema, titles)) = task.await.unwrap();
        assert_eq!(schema, tenant.schema);
        assert_eq!(titles, vec![format!("note of {}", tenant.schema)]);
        if tenant.schema == hot.schema {
            hot_pids.insert(pid);
        }
    }
    // Its own shard was full and busy: the next shard's idle connection served it too.
    assert_eq!(
        hot_pids.len(),
        2,
        "the hot tenant used both shards: {hot_pids:?}"
    );
}

#[tokio::test]
async fn one_shard_means_off() {
    let db = TestDb::new().await;
    let t = handle(db.url(), 1, 2).await;
    assert_eq!(t.pool_shard_of("anything"), None);
    assert!(t.stats().await.pool_shard_sizes.is_empty());
}
