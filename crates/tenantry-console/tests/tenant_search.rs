//! `Admin::tenant_page` searches give what a plain scan gives, whichever way they are answered:
//! by id through the trigram indexes (at most `SEARCH_HIT_CAP` hits) or by a walk of the
//! schema-name index (more hits), page after page; hits in the schema name, display name or a
//! domain; `%`, `_` and `\` match themselves.

use tenantry_sqlx::{SEARCH_HIT_CAP, TenantQuery, Tenantry};
use tenantry_testing::{TestDb, notes_migrations};

/// What a search must find: tenants with `term` in their schema name, display name or a
/// domain, case-insensitively (the test's names are ASCII), in schema-name order.
fn expected(registry: &[(String, String, Vec<String>)], term: &str) -> Vec<String> {
    let term = term.to_lowercase();
    let mut names: Vec<String> = registry
        .iter()
        .filter(|(schema, display, domains)| {
            schema.contains(&term)
                || display.to_lowercase().contains(&term)
                || domains.iter().any(|d| d.contains(&term))
        })
        .map(|(schema, _, _)| schema.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn searches_find_what_a_scan_finds_through_the_indexes_or_the_walk() {
    let db = TestDb::new().await;
    let tenantry = db
        .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
        .await;
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    // The migration made the trigram indexes (pg_trgm is installed here).
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE indexname LIKE '%\\_trgm' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "tenantry_domains_domain_trgm",
            "tenantry_tenants_display_name_trgm",
            "tenantry_tenants_schema_name_trgm"
        ]
    );

    // Registry rows only (no schemas): 3,000 tenants (half of them shops), every 7th with a second domain, and a
    // few whose names hold LIKE's wildcards.
    sqlx::query(
        "INSERT INTO tenantry_tenants (schema_name, display_name) \
         SELECT 'bulk' || lpad(i::text, 5, '0'), \
                CASE WHEN i % 2 = 0 THEN 'Shop ' || i ELSE 'Bulk Tenant ' || i END \
         FROM generate_series(1, 3000) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tenantry_domains (domain, tenant_id, is_primary) \
         SELECT 'h' || id || '.example.com', id, true FROM tenantry_tenants \
         UNION ALL SELECT 'alias-' || id || '.other.test', id, false FROM tenantry_tenants \
         WHERE id % 7 = 0",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (schema, display, domain) in [
        ("percent_co", "100% Co", "percent.test"),
        ("under_co", "a_b Co", "under.test"),
        ("axb_co", "axb Co", "axb.test"),
        ("slash_co", "back\\slash Co", "slash.test"),
    ] {
        tenantry
            .admin()
            .create_tenant(tenantry_sqlx::NewTenant::new(schema, domain).display_name(display))
            .await
            .unwrap();
    }
    sqlx::query("ANALYZE tenantry_tenants, tenantry_domains")
        .execute(&pool)
        .await
        .unwrap();
    let registry: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT t.schema_name, t.display_name, array_agg(d.domain) FROM tenantry_tenants t \
         JOIN tenantry_domains d ON d.tenant_id = t.id GROUP BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();

    let admin = tenantry.admin();
    for (term, at_least) in [
        ("bulk02345", 1),     // a schema name
        ("SHOP 2346", 1),     // a display name, another case
        ("shop 2349", 0),     // odd numbers are no shops
        ("h2345.example", 1), // a domain
        ("alias-14.", 1),     // a second domain
        ("alias-", 400),      // domains, under the cap
        ("shop", 1000),       // display names, over the cap: the walk
        ("bulk", 3000),       // everyone
        ("100%", 1),          // % is no wildcard
        ("%", 1),
        ("a_b", 1), // _ is no wildcard (axb_co doesn't match)
        ("_co", 4),
        ("back\\slash", 1), // \ is no escape
        ("\\", 1),
        ("zz", 0), // too short for a trigram
        ("nothing-like-this", 0),
    ] {
        let want = expected(&registry, term);
        assert!(want.len() >= at_least, "{term}: {} expected", want.len());
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = admin
                .tenant_page(&TenantQuery {
                    search: term.into(),
                    after: after.clone(),
                    limit: 200,
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|r| r.tenant.schema.clone());
            got.extend(page.into_iter().map(|r| r.tenant.schema));
        }
        assert_eq!(got, want, "search {term:?}");
    }
    // The cases above take both ways.
    assert!(expected(&registry, "alias-").len() as i64 <= SEARCH_HIT_CAP);
    assert!(expected(&registry, "shop").len() as i64 > SEARCH_HIT_CAP);
    pool.close().await;
}
