//! Tenant life cycle against work in flight (issue 11): requests queued on a saturated pool
//! while their tenants swap names or their domain moves to another tenant. The demo over real
//! HTTP on a fresh database each time.
//!
//! Identity is the tenant (its registry id, reached through its domain), not the schema name:
//! after a swap of names, `alpha.localhost` still belongs to the tenant created as `alpha`,
//! whose schema is now called `bravo`. Every note title names the tenant it was written for
//! (`alpha-secret-3`, `bravo-w-7-12`...), so a foreign row is recognisable wherever it shows up.
//!
//! Each test failed against the code before the fix (commit 4ac0362); what it saw there is
//! noted on the test.
//!
//! Run: `cargo test -p tenantry-demo --test isolation_lifecycle_queued -- --nocapture` (reports).

mod isolation_lifecycle_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use isolation_lifecycle_support::*;
use serde_json::json;
use tenantry_demo::{DemoConfig, build};

/// 3. With the pool saturated, 10 GETs and 6 POSTs of `alpha.localhost` resolve their tenant and
/// wait for a connection; alpha and bravo swap names (through a second handle, like the CLI,
/// since the demo's pool is full); the pool is released. Every answer is alpha's tenant's or a
/// clean 503/404. Before the fix: 10 of 10 GETs answered bravo's notes (and the 6 POSTs
/// answered 201 from bravo's schema).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_across_a_swap_answer_from_their_own_tenant() {
    const POOL: u32 = 4;
    let _serial = SERIAL.lock().await;
    let d = Demo::start_with(|c| {
        c.max_connections = POOL;
        c.pool_shards = 1;
    })
    .await;
    let mut ids = BTreeMap::new();
    for name in ["alpha", "bravo"] {
        d.signup(name).await;
        for i in 1..=3 {
            assert_eq!(
                d.post_note(&format!("{name}.localhost"), &format!("{name}-secret-{i}"))
                    .await,
                201
            );
        }
        ids.insert(name, d.id_of(name).await);
    }
    let mut admin_config = DemoConfig::new(d.db.url());
    admin_config.max_connections = 2;
    admin_config.pool_shards = 1;
    let (admin, _) = build(&admin_config).await.expect("second handle");

    // Warm the resolution cache, so the queued requests resolve alpha before they wait.
    let warm = d.get("alpha.localhost", "/api/notes").send().await.unwrap();
    assert_eq!(warm.status(), 200);
    assert!(foreign_titles(&warm.bytes().await.unwrap(), "alpha", "bravo").is_empty());

    // Saturate the pool (with one pool shard, tenant transactions use the main pool).
    let mut held = Vec::new();
    for _ in 0..POOL {
        held.push(d.tenantry.raw_pool().acquire().await.unwrap());
    }
    let answered = Arc::new(AtomicUsize::new(0));
    let requests: Vec<_> = (0..16)
        .map(|i| {
            let write = i >= 10;
            let request = if write {
                d.post("alpha.localhost", "/api/notes")
                    .json(&json!({"title": format!("alpha-q-{i}"), "body": ""}))
            } else {
                d.get("alpha.localhost", "/api/notes")
            };
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                let r = request.send().await.expect("an answer");
                answered.fetch_add(1, Ordering::SeqCst);
                let status = r.status().as_u16();
                let retry_after = r.headers().contains_key("retry-after");
                (
                    write,
                    status,
                    retry_after,
                    r.bytes().await.unwrap_or_default(),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        answered.load(Ordering::SeqCst),
        0,
        "the requests must be queued on the saturated pool"
    );

    swap(&admin, "alpha", "bravo").await;
    drop(held);

    let mut statuses: BTreeMap<(&str, u16), u32> = BTreeMap::new();
    let (mut created, mut foreign, mut example) = (0, 0, None);
    for r in futures::future::join_all(requests).await {
        let (write, status, retry_after, body) = r.expect("request task");
        *statuses
            .entry((if write { "POST" } else { "GET" }, status))
            .or_default() += 1;
        match (write, status) {
            (false, 200) => {
                let titles = foreign_titles(&body, "alpha", "bravo");
                if !titles.is_empty() {
                    foreign += 1;
                    example.get_or_insert(titles);
                }
            }
            (true, 201) => created += 1,
            (_, 503) => assert!(retry_after, "503 without Retry-After"),
            (_, 404) => {}
            _ => panic!(
                "unexpected answer {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
    eprintln!("[queued] answers across the swap: {statuses:?}");
    assert_eq!(
        foreign, 0,
        "GETs of alpha.localhost answered bravo's rows, e.g. {example:?}"
    );
    // alpha's tenant is now in schema `bravo`; bravo's in `alpha`.
    let alpha_schema = d.schema_of(ids["alpha"]).await;
    assert_eq!(alpha_schema, "bravo");
    let queued_rows =
        |titles: Vec<String>| titles.iter().filter(|t| t.starts_with("alpha-q-")).count();
    assert_eq!(
        queued_rows(d.titles_in("alpha").await),
        0,
        "queued POSTs of alpha.localhost landed in bravo's tenant"
    );
    assert_eq!(queued_rows(d.titles_in(&alpha_schema).await), created);
    admin.close().await;
}

/// A domain moved to another tenant while requests that came in on it wait for a pooled
/// connection: none of them is served as the domain's old owner after the move.
#[tokio::test]
async fn queued_requests_across_a_domain_move_never_reach_the_old_owner() {
    const POOL: u32 = 4;
    let _serial = SERIAL.lock().await;
    let d = Demo::start_with(|c| {
        c.max_connections = POOL;
        c.pool_shards = 1;
    })
    .await;
    for name in ["alpha", "bravo"] {
        d.signup(name).await;
        assert_eq!(
            d.post_note(&format!("{name}.localhost"), &format!("{name}-secret-1"))
                .await,
            201
        );
    }
    let mut admin_config = DemoConfig::new(d.db.url());
    admin_config.max_connections = 2;
    admin_config.pool_shards = 1;
    let (admin, _) = build(&admin_config).await.expect("second handle");
    admin
        .admin()
        .add_domain("alpha", "shop.localhost", true)
        .await
        .unwrap();
    // Warm the cache: shop.localhost -> alpha.
    let mut warm = None;
    for _ in 0..50 {
        let r = d.get("shop.localhost", "/api/notes").send().await.unwrap();
        if r.status() == 200 {
            warm = Some(r.bytes().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let warm = warm.expect("shop.localhost serves alpha");
    assert!(String::from_utf8_lossy(&warm).contains("alpha-secret-1"));

    let mut held = Vec::new();
    for _ in 0..POOL {
        held.push(d.tenantry.raw_pool().acquire().await.unwrap());
    }
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let request = if i % 2 == 0 {
                d.get("shop.localhost", "/api/notes")
            } else {
                d.post("shop.localhost", "/api/notes")
                    .json(&json!({"title": format!("shop-q-{i}"), "body": ""}))
            };
            tokio::spawn(async move {
                let r = request.send().await.expect("an answer");
                let status = r.status().as_u16();
                (status, r.bytes().await.unwrap_or_default())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Move the domain: alpha keeps alpha.localhost, bravo gets shop.localhost.
    admin
        .admin()
        .set_primary_domain("alpha.localhost")
        .await
        .unwrap();
    admin.admin().remove_domain("shop.localhost").await.unwrap();
    admin
        .admin()
        .add_domain("bravo", "shop.localhost", true)
        .await
        .unwrap();
    drop(held);

    let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
    for r in futures::future::join_all(requests).await {
        let (status, body) = r.expect("request task");
        *statuses.entry(status).or_default() += 1;
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("alpha-secret"),
            "a request on shop.localhost was served alpha's notes after the move: {text}"
        );
        assert!(
            matches!(status, 200 | 201 | 503),
            "unexpected answer {status}: {text}"
        );
    }
    eprintln!("[domain move] answers: {statuses:?}");
    let alpha_rows = d.titles_in("alpha").await;
    assert!(
        alpha_rows.iter().all(|t| !t.starts_with("shop-q-")),
        "queued POSTs on shop.localhost landed in alpha after the move: {alpha_rows:?}"
    );
    admin.close().await;
}
