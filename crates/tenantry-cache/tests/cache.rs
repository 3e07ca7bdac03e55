//! One suite, run against both backends: real Redis (127.0.0.1:6379, or `TENANTRY_TEST_REDIS_URL`)
//! under a random per-test namespace (removed at the end), and the in-process cache.

use std::time::Duration;

use tenantry_cache::{CacheHooks, TenantCache};
use tenantry_sqlx::{NoHooks, SchemaOnDelete, Tenantry};
use tenantry_testing::{TestDb, create_named, rename_and_reuse};

/// Key texts that try to reach out of their tenant's prefix.
fn hostile_keys() -> Vec<String> {
    vec![
        "plain".into(),
        "".into(),
        ":".into(),
        "a:b".into(),
        "t:2:x".into(),
        ":t:2:x".into(),
        "*".into(),
        "?".into(),
        "[a-z]".into(),
        "..".into(),
        "../..".into(),
        "../t:2:plain".into(),
        "/".into(),
        "\\".into(),
        "a\0b".into(),
        "\0".into(),
        "%3A".into(),
        "%2A".into(),
        "\r\n".into(),
        "x".repeat(100_000),
        "é🦀ß\u{202e}".into(),
        " ".into(),
        "tenantry:t:2:plain".into(),
    ]
}

fn redis_url() -> String {
    std::env::var("TENANTRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A Redis cache under a fresh namespace, or `None` (skipped visibly; fails under CI).
async fn redis_cache() -> Option<TenantCache> {
    let cache = match TenantCache::redis(&redis_url()).await {
        Ok(cache) => cache,
        Err(e) => {
            tenantry_testing::skip(format!("Redis is not reachable at {}: {e}", redis_url()));
            return None;
        }
    };
    let ns = format!("tenantry-test-{:016x}", rand::random::<u64>());
    Some(cache.namespace(&ns).unwrap())
}

/// Every key left under the test's namespace (Redis only).
async fn leftover_keys(cache: &TenantCache, ns_probe_id: i64) -> Vec<String> {
    let key = cache.for_tenant_id(ns_probe_id).storage_key("");
    let namespace = key.split(':').next().unwrap().to_owned();
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    let mut all = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        all.extend(keys);
        if next == 0 {
            return all;
        }
        cursor = next;
    }
}

async fn isolation_with_hostile_keys(cache: &TenantCache) {
    let a = cache.for_tenant_id(1);
    let b = cache.for_tenant_id(2);
    let c = cache.for_tenant_id(12);
    for key in hostile_keys() {
        a.set(&key, b"from-a", None).await.unwrap();
        assert_eq!(b.get(&key).await.unwrap(), None, "{key:.40?} leaked to b");
        assert_eq!(c.get(&key).await.unwrap(), None, "{key:.40?} leaked to 12");
        b.set(&key, b"from-b", None).await.unwrap();
        assert_eq!(a.get(&key).await.unwrap().as_deref(), Some(&b"from-a"[..]));
        assert_eq!(b.get(&key).await.unwrap().as_deref(), Some(&b"from-b"[..]));
    }
    // No two key texts share a storage key.
    let keys = hostile_keys();
    let stored: std::collections::HashSet<String> = keys.iter().map(|k| a.storage_key(k)).collect();
    assert_eq!(stored.len(), keys.len());
    // Deleting in a never touches b.
    for key in hostile_keys() {
        assert!(a.delete(&key).await.unwrap());
        assert!(!a.delete(&key).await.unwrap());
        assert_eq!(b.get(&key).await.unwrap().as_deref(), Some(&b"from-b"[..]));
    }
    // Dropping tenant 1 leaves 12 (whose id starts with 1) and 2 alone.
    a.set("k", b"1", None).await.unwrap();
    c.set("k", b"12", None).await.unwrap();
    assert_eq!(cache.drop_tenant(1).await.unwrap(), 1);
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"12"[..]));
    let n = hostile_keys().len() as u64;
    assert_eq!(cache.drop_tenant(2).await.unwrap(), n);
    assert_eq!(cache.drop_tenant(12).await.unwrap(), 1);
    assert_eq!(b.get("plain").await.unwrap(), None);
}

async fn values_json_and_ttl(cache: &TenantCache) {
    let t = cache.for_tenant_id(7);
    assert_eq!(t.get("missing").await.unwrap(), None);
    t.set_json("count", &41_i64, None).await.unwrap();
    t.set_json("count", &42_i64, None).await.unwrap();
    assert_eq!(t.get_json::<i64>("count").await.unwrap(), Some(42));
    t.set("bytes", &[0, 255, 1], None).await.unwrap();
    assert_eq!(t.get("bytes").await.unwrap(), Some(vec![0, 255, 1]));
    assert!(t.get_json::<i64>("bytes").await.is_err());
    t.set("short", b"x", Some(Duration::from_millis(50)))
        .await
        .unwrap();
    t.set("long", b"y", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.get("short").await.unwrap(), None);
    assert_eq!(t.get("long").await.unwrap().as_deref(), Some(&b"y"[..]));
    // A new TTL replaces the old one; none means no expiry.
    t.set("long", b"z", None).await.unwrap();
    assert_eq!(t.clear().await.unwrap(), 3);
    assert_eq!(t.get("count").await.unwrap(), None);
}

async fn drop_many_in_batches(cache: &TenantCache) {
    let t = cache.for_tenant_id(3);
    let other = cache.for_tenant_id(4);
    for i in 0..1_234 {
        t.set(&format!("k{i}"), b"v", None).await.unwrap();
    }
    other.set("k1", b"v", None).await.unwrap();
    assert_eq!(cache.drop_tenant(3).await.unwrap(), 1_234);
    assert_eq!(t.get("k1").await.unwrap(), None);
    assert_eq!(other.get("k1").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(cache.drop_tenant(4).await.unwrap(), 1);
}

/// With `CacheHooks`, deleting a tenant drops its keys; a rename keeps them (same id), and the
/// tenant that takes the old name sees none of them.
async fn delete_and_rename_through_tenantry(cache: &TenantCache) {
    let db = TestDb::new().await;
    let tenantry: Tenantry = db
        .tenantry(Tenantry::builder().hooks(CacheHooks::new(cache.clone(), NoHooks)))
        .await;
    let admin = tenantry.admin();
    let [acme, globex] = create_named(&tenantry, ["acme", "globex"]).await.unwrap();
    cache
        .for_tenant(&acme)
        .set("secret", b"acme's", None)
        .await
        .unwrap();
    cache
        .for_tenant(&globex)
        .set("secret", b"globex's", None)
        .await
        .unwrap();

    let (renamed, newcomer) = rename_and_reuse(&tenantry, "acme", "acme2").await.unwrap();
    assert_eq!(renamed.id, acme.id);
    assert_eq!(
        cache.for_tenant(&newcomer).get("secret").await.unwrap(),
        None
    );
    assert_eq!(
        cache.for_tenant(&renamed).get("secret").await.unwrap(),
        Some(b"acme's".to_vec())
    );

    admin
        .delete_tenant("acme2", SchemaOnDelete::Drop)
        .await
        .unwrap();
    assert_eq!(cache.for_tenant(&acme).get("secret").await.unwrap(), None);
    assert_eq!(
        cache.for_tenant(&globex).get("secret").await.unwrap(),
        Some(b"globex's".to_vec())
    );
    admin
        .delete_tenant("globex", SchemaOnDelete::Drop)
        .await
        .unwrap();
    admin
        .delete_tenant("acme", SchemaOnDelete::Drop)
        .await
        .unwrap();
    assert_eq!(cache.for_tenant(&globex).get("secret").await.unwrap(), None);
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&tenantry_cache::TenantCache::in_process()).await;
                }
            )*
        }
        mod redis_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(cache) = super::redis_cache().await else { return };
                    super::$name(&cache).await;
                    let left = super::leftover_keys(&cache, 0).await;
                    assert!(left.is_empty(), "keys left behind: {left:?}");
                }
            )*
        }
    };
}

both_backends!(
    isolation_with_hostile_keys,
    values_json_and_ttl,
    drop_many_in_batches,
    delete_and_rename_through_tenantry,
);

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        TenantCache::redis("redis://127.0.0.1:1"),
    )
    .await
    .expect("connecting gave up");
    assert!(result.is_err());
}
