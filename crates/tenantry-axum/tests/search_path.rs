//! Extra search-path schemas: checked at start-up, and usable from tenant code (an
//! `extensions` schema holding citext and a shared enum).

mod common;

use axum::Json;
use axum::routing::get;
use common::{Server, notes_migrations};
use tenantry_axum::{TenantDb, TenantRouter};
use tenantry_sqlx::{MigrationSet, NewTenant, Tenantry};
use tenantry_testing::TestDb;

#[tokio::test]
async fn a_missing_extra_schema_is_a_clear_start_up_error() {
    let db = TestDb::new().await;
    let tenantry = Tenantry::builder()
        .tenant_migration_set("default", notes_migrations())
        .extra_search_path(["extensions", "postgis"])
        .connect(db.url())
        .await
        .unwrap();
    let err = tenantry
        .fleet()
        .migrate_shared()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"extensions\"") && err.contains("\"postgis\""),
        "{err}"
    );
    assert!(err.contains("do not exist"), "{err}");
    assert!(tenantry.fleet().verify_extra_search_path().await.is_err());
}

#[tokio::test]
async fn extensions_schema_serves_every_tenant() {
    let db = TestDb::new().await;
    let tenantry = Tenantry::builder()
        .shared_migration_set(MigrationSet::from_sql(&[(
            1,
            "extensions",
            "CREATE SCHEMA extensions; \
             CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions; \
             CREATE TYPE extensions.priority AS ENUM ('low', 'high');",
        )]))
        .tenant_migration_set(
            "default",
            MigrationSet::from_sql(&[(
                1,
                "contacts",
                // citext and priority resolve through the search path (tenant, public, extensions).
                "CREATE TABLE contacts (email citext PRIMARY KEY, prio priority NOT NULL)",
            )]),
        )
        .extra_search_path(["extensions"])
        .connect(db.url())
        .await
        .unwrap();
    // The shared migration creates the schema, then the check passes.
    tenantry.fleet().migrate_shared().await.unwrap();
    tenantry.fleet().verify_extra_search_path().await.unwrap();
    for name in ["acme", "globex"] {
        tenantry
            .admin()
            .create_tenant(NewTenant::new(name, format!("{name}.localhost")))
            .await
            .unwrap();
    }
    let app = TenantRouter::new(tenantry).tenant(axum::Router::new().route(
        "/contacts",
        get(|mut db: TenantDb| async move {
            sqlx::query("INSERT INTO contacts VALUES ('Ann@Example.com', 'high')")
                .execute(&mut *db)
                .await
                .unwrap();
            let (path, found): (String, Option<String>) = sqlx::query_as(
                "SELECT current_setting('search_path'), \
                 (SELECT prio::text FROM contacts WHERE email = 'ann@example.COM')",
            )
            .fetch_one(&mut *db)
            .await
            .unwrap();
            db.commit().await.unwrap();
            Json((path, found))
        }),
    ));
    let s = Server::start(app).await;
    for name in ["acme", "globex"] {
        let body = s.json(&format!("{name}.localhost"), "/contacts").await;
        assert_eq!(body[0], format!("{name}, public, extensions"));
        assert_eq!(
            body[1], "high",
            "citext comparison through the extensions schema"
        );
    }
}
