//! The resolution cache answers hits from memory and keeps floods of unknown hosts away from
//! the database and within a bounded memory. Queries are counted on the wire (a proxy between
//! Tenantry and PostgreSQL, `resolve_support/wire.rs`), not estimated.

mod resolve_support;

use std::sync::Arc;

use resolve_support::wire::WireCounter;
use resolve_support::{HOST_LOOKUP, acme_behind_wire, cached_hosts, schema_of, through_wire};
use tenantry_sqlx::Resolution;

#[tokio::test]
async fn a_cache_hit_costs_no_round_trip() {
    // Tenants exist before the instance under test starts listening: no notification will
    // empty its cache during the test.
    let (db, _admin, wire) = acme_behind_wire().await;
    let t = through_wire(&db, &wire, true).await;

    wire.reset();
    assert_eq!(schema_of(&t, "acme.example.com").await.unwrap().0, "acme");
    assert_eq!(
        wire.executions_of(HOST_LOOKUP),
        1,
        "the first request looks the host up"
    );

    wire.reset();
    for raw in [
        "acme.example.com",
        "ACME.example.com",
        "acme.example.com:8080",
    ] {
        for _ in 0..500 {
            assert_eq!(schema_of(&t, raw).await.unwrap().0, "acme");
        }
    }
    assert_eq!(
        wire.round_trips(),
        0,
        "cache hits must not touch the database: {:?}",
        wire.bursts()
    );
}

#[tokio::test]
async fn concurrent_misses_for_one_host_share_one_query() {
    let (db, _admin, wire) = acme_behind_wire().await;
    let t = through_wire(&db, &wire, false).await;
    wire.reset();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { schema_of(&t, "acme.example.com").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().0, "acme");
    }
    assert_eq!(wire.executions_of(HOST_LOOKUP), 1);
}

/// Random-looking unknown hosts, `distinct` of them, each requested `repeat` times from 64
/// concurrent tasks in a scrambled order. Returns the number of lookups that reached PostgreSQL.
async fn flood(
    t: &tenantry_sqlx::Tenantry,
    wire: &WireCounter,
    seed: u64,
    distinct: u64,
    repeat: u64,
) -> usize {
    wire.reset();
    let total = distinct * repeat;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let t = t.clone();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    // A multiplicative permutation scatters the repeats of each host.
                    let host_no = (i.wrapping_mul(2_654_435_761)) % distinct;
                    let host = format!("x{:x}-{host_no}.flood.example.net", seed);
                    let r = t.resolve_host(&host).await.unwrap();
                    assert!(matches!(r, Resolution::Unknown), "{host}: {r:?}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    wire.executions_of(HOST_LOOKUP)
}

#[tokio::test]
async fn a_flood_of_unknown_hosts_is_coalesced_negatively_cached_and_bounded() {
    let (db, _admin, wire) = acme_behind_wire().await;
    let t = through_wire(&db, &wire, true).await;
    assert_eq!(schema_of(&t, "acme.example.com").await.unwrap().0, "acme");

    // 200 unknown hosts x 25 requests each: one lookup per host, not per request.
    let lookups = flood(&t, &wire, rand_seed(), 200, 25).await;
    assert_eq!(lookups, 200, "5,000 requests over 200 unknown hosts");

    // More distinct unknown hosts than the negative cache holds: memory stays bounded.
    let capacity = t.config().negative_cache_capacity;
    let distinct = capacity + capacity / 5;
    let lookups = flood(&t, &wire, rand_seed(), distinct, 1).await;
    assert_eq!(lookups as u64, distinct, "each new host is looked up once");
    let (known, unknown) = cached_hosts(&t).await;
    assert!(
        unknown <= capacity,
        "negative cache holds {unknown} entries, capacity {capacity}"
    );
    assert_eq!(known, 1, "only the real tenant is cached as known");

    // The flood neither evicted nor invalidated the real tenant: still a hit.
    wire.reset();
    assert_eq!(schema_of(&t, "acme.example.com").await.unwrap().0, "acme");
    assert_eq!(wire.round_trips(), 0);
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Without LISTEN, the TTL is the only freshness: a cached host is served from memory until it
/// expires, then looked up again (and a domain removed meanwhile is then unknown).
#[tokio::test]
async fn the_ttl_expires_cached_hosts() {
    let (db, admin, wire) = acme_behind_wire().await;
    let t = tenantry_sqlx::Tenantry::builder()
        .tenant_migration_set("default", resolve_support::tenant_migrations())
        .listen_for_changes(false)
        .cache_ttl(
            std::time::Duration::from_millis(400),
            std::time::Duration::from_millis(400),
        )
        .connect(&wire.url(db.url()))
        .await
        .unwrap();

    assert_eq!(schema_of(&t, "acme.example.com").await.unwrap().0, "acme");
    // Removed behind the instance's back (it does not listen).
    admin
        .admin()
        .add_domain("acme", "www.acme.example.com", true)
        .await
        .unwrap();
    admin
        .admin()
        .remove_domain("acme.example.com")
        .await
        .unwrap();
    wire.reset();
    assert_eq!(schema_of(&t, "acme.example.com").await.unwrap().0, "acme");
    assert_eq!(wire.executions_of(HOST_LOOKUP), 0, "served from memory");

    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(schema_of(&t, "acme.example.com").await, None);
    assert_eq!(
        wire.executions_of(HOST_LOOKUP),
        1,
        "expired: looked up again"
    );
}
