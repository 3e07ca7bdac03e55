//! Tenant types: each type gets its own router and its own migration set, migrated per type.

mod common;

use axum::Router;
use axum::routing::get;
use common::{Server, notes_migrations, probe_router};
use tenantry_axum::{CurrentTenant, TenantDb, TenantRouter};
use tenantry_sqlx::{MigrationSet, NewTenant, Tenantry};
use tenantry_testing::{NOTES_TABLE, TestDb};

fn lab_v1() -> Vec<(i64, &'static str, &'static str)> {
    vec![
        (1, "notes", NOTES_TABLE),
        (2, "samples", "CREATE TABLE samples (code TEXT PRIMARY KEY)"),
    ]
}

fn clinic() -> MigrationSet {
    MigrationSet::from_sql(&[(1, "patients", "CREATE TABLE patients (name TEXT NOT NULL)")])
}

async fn connect(db: &TestDb, lab: &[(i64, &'static str, &'static str)]) -> Tenantry {
    Tenantry::builder()
        .tenant_migration_set("default", notes_migrations())
        .tenant_migration_set("lab", MigrationSet::from_sql(lab))
        .tenant_migration_set("clinic", clinic())
        .connect(db.url())
        .await
        .unwrap()
}

async fn tables(tenantry: &Tenantry, schema: &str) -> Vec<String> {
    let mut tx = tenantry.admin().begin_schema(schema).await.unwrap();
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_%' ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap()
}

async fn samples(tenant: CurrentTenant, mut db: TenantDb) -> String {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM samples")
        .fetch_one(&mut *db)
        .await
        .unwrap();
    format!("lab {} has {n} samples", tenant.schema)
}

#[tokio::test]
async fn each_type_has_its_router_and_migrations() {
    let db = TestDb::new().await;
    let tenantry = connect(&db, &lab_v1()).await;
    tenantry.fleet().migrate_shared().await.unwrap();
    for (name, ty) in [
        ("acme", None),
        ("lab1", Some("lab")),
        ("clinic1", Some("clinic")),
    ] {
        let mut new = NewTenant::new(name, format!("{name}.localhost"));
        if let Some(ty) = ty {
            new = new.tenant_type(ty);
        }
        tenantry.admin().create_tenant(new).await.unwrap();
    }
    let err = tenantry
        .admin()
        .create_tenant(NewTenant::new("x", "x.localhost").tenant_type("garage"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("garage"), "{err}");

    assert_eq!(tables(&tenantry, "acme").await, ["notes"]);
    assert_eq!(tables(&tenantry, "lab1").await, ["notes", "samples"]);
    assert_eq!(tables(&tenantry, "clinic1").await, ["patients"]);

    let app = TenantRouter::new(tenantry.clone())
        .tenant(probe_router())
        .tenant_type_router("lab", Router::new().route("/samples", get(samples)))
        .tenant_type_router(
            "clinic",
            Router::new().route(
                "/",
                get(|t: CurrentTenant| async move { format!("clinic {}", t.schema) }),
            ),
        );
    let s = Server::start(app).await;
    assert_eq!(
        s.fetch("lab1.localhost", "/samples").await,
        (200, "lab lab1 has 0 samples".into())
    );
    assert_eq!(
        s.fetch("clinic1.localhost", "/").await,
        (200, "clinic clinic1".into())
    );
    assert_eq!(s.json("acme.localhost", "/whoami").await["tenant"], "acme");
    // A type's routes exist only for that type.
    assert_eq!(s.fetch("acme.localhost", "/samples").await.0, 404);
    assert_eq!(s.fetch("lab1.localhost", "/whoami").await.0, 404);
    assert_eq!(s.fetch("clinic1.localhost", "/samples").await.0, 404);

    // A new lab migration: the fleet run migrates lab tenants only.
    let mut lab_v2 = lab_v1();
    lab_v2.push((3, "instruments", "CREATE TABLE instruments (id INT)"));
    let upgraded = connect(&db, &lab_v2).await;
    let report = upgraded
        .fleet()
        .migrate_tenants(Default::default())
        .await
        .unwrap();
    assert!(report.is_ok());
    assert_eq!(report.migrated(), 1);
    assert_eq!(
        tables(&upgraded, "lab1").await,
        ["instruments", "notes", "samples"]
    );
    assert_eq!(tables(&upgraded, "acme").await, ["notes"]);
    assert_eq!(tables(&upgraded, "clinic1").await, ["patients"]);
}
