//! The console's tenant list at 100,000 tenants (registry rows made in bulk, without schemas):
//! how long `Admin::tenant_page` takes for the first page, a deep page and searches. A
//! measurement, printed, not a timed assertion; it checks that the pages are right.
//!
//! `cargo test -p tenantry-console --test tenant_page_scale -- --ignored --nocapture`
//! (`TENANTRY_PAGE_TENANTS` sets the count).

use std::time::Instant;

use tenantry_sqlx::{TenantQuery, Tenantry};
use tenantry_testing::{TestDb, notes_migrations};

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn tenant_pages_at_a_hundred_thousand_tenants() {
    let n: i64 = std::env::var("TENANTRY_PAGE_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let db = TestDb::new().await;
    let tenantry = db
        .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
        .await;
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO tenantry_tenants (schema_name, display_name) \
         SELECT 'bulk' || lpad(i::text, 6, '0'), 'Bulk tenant ' || i FROM generate_series(1, $1) i",
    )
    .bind(n)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tenantry_domains (domain, tenant_id, is_primary) \
         SELECT schema_name || '.example.com', id, true FROM tenantry_tenants",
    )
    .execute(&pool)
    .await
    .unwrap();
    // As autovacuum leaves a registry: statistics, and the trigram indexes' pending lists
    // (where GIN parks bulk inserts) merged.
    sqlx::query("VACUUM ANALYZE tenantry_tenants, tenantry_domains")
        .execute(&pool)
        .await
        .unwrap();
    let admin = tenantry.admin();
    let deep = format!("bulk{:06}", n * 9 / 10);
    for (what, query, expect) in [
        ("first page", TenantQuery::default(), 50),
        (
            "a page 90% deep",
            TenantQuery {
                after: Some(deep.clone()),
                ..TenantQuery::default()
            },
            50,
        ),
        (
            "search, many matches",
            TenantQuery {
                search: "tenant 1".into(),
                ..TenantQuery::default()
            },
            50,
        ),
        (
            "search, one match (a domain)",
            TenantQuery {
                search: format!("bulk{:06}.example", n - 1),
                ..TenantQuery::default()
            },
            1,
        ),
        (
            "search, no match",
            TenantQuery {
                search: "nothing-like-this".into(),
                ..TenantQuery::default()
            },
            0,
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let page = admin.tenant_page(&query).await.unwrap();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(page.len(), expect, "{what}");
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{n} tenants, {what}: median {:.1} ms (min {:.1}, max {:.1})",
            times[2], times[0], times[4]
        );
    }
}
