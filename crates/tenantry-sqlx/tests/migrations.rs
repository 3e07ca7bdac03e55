//! Shared and tenant migration sets: where they land, per-schema atomicity, the ledger, and
//! refusal of edited migrations.

use tenantry_sqlx::{Error, MigrateOptions, MigrationSet, NewTenant, Tenantry};
use tenantry_testing::TestDb;

async fn open(db: &TestDb, shared: MigrationSet, tenant: MigrationSet) -> Tenantry {
    Tenantry::builder()
        .shared_migration_set(shared)
        .tenant_migration_set("default", tenant)
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap()
}

async fn scalar_i64(t: &Tenantry, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.raw_pool())
        .await
        .unwrap()
}

async fn columns(t: &Tenantry, schema: &str, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(t.raw_pool())
    .await
    .unwrap()
}

const V1: (i64, &str, &str) = (
    1,
    "notes",
    "CREATE TABLE notes (id INT PRIMARY KEY, title TEXT NOT NULL)",
);
const V2: (i64, &str, &str) = (2, "body", "ALTER TABLE notes ADD COLUMN body TEXT");

#[tokio::test]
async fn shared_set_runs_once_in_the_shared_schema_beside_the_registry() {
    let db = TestDb::new().await;
    let shared =
        MigrationSet::from_sql(&[(1, "plans", "CREATE TABLE plans (code TEXT PRIMARY KEY)")]);
    let t = open(&db, shared, MigrationSet::from_sql(&[V1])).await;
    assert_eq!(t.fleet().migrate_shared().await.unwrap(), [1]);
    assert_eq!(
        t.fleet().migrate_shared().await.unwrap(),
        Vec::<i64>::new(),
        "second run applies nothing"
    );
    assert_eq!(columns(&t, "public", "plans").await, ["code"]);
    // The registry tracks its own migrations apart from the application's.
    assert_eq!(
        scalar_i64(&t, "SELECT count(*) FROM public._sqlx_migrations").await,
        1
    );
    assert_eq!(
        scalar_i64(&t, "SELECT count(*) FROM public._tenantry_migrations").await,
        5,
        "registry tables, the schema DDL notification function, the tenant identity check, the maintenance refusal, the search trigram indexes"
    );
}

#[tokio::test]
async fn tenant_set_runs_in_every_tenant_schema_with_its_own_table() {
    let db = TestDb::new().await;
    let t = open(&db, MigrationSet::default(), MigrationSet::from_sql(&[V1])).await;
    t.fleet().migrate_shared().await.unwrap();
    for name in ["acme", "globex", "initech"] {
        t.admin()
            .create_tenant(NewTenant::new(name, format!("{name}.localhost")))
            .await
            .unwrap();
    }
    assert!(
        columns(&t, "public", "notes").await.is_empty(),
        "tenant tables never land in public"
    );
    t.close().await;

    // A release adds migration 2: it reaches every tenant, each schema records it.
    let t = open(
        &db,
        MigrationSet::default(),
        MigrationSet::from_sql(&[V1, V2]),
    )
    .await;
    let (total, plan) = t.fleet().plan_tenants(None, false).await.unwrap();
    assert_eq!((total, plan.len()), (3, 3));
    assert_eq!(plan[0].pending_versions, [2]);
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.migrated(), 3);
    for name in ["acme", "globex", "initech"] {
        assert_eq!(columns(&t, name, "notes").await, ["id", "title", "body"]);
        let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM \"{name}\"._sqlx_migrations ORDER BY version"
        )))
        .fetch_all(t.raw_pool())
        .await
        .unwrap();
        assert_eq!(versions, [1, 2]);
    }
    // Up to date: the ledger answers, no schema is opened.
    let again = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!((again.total, again.pending, again.results.len()), (3, 0, 0));
}

#[tokio::test]
async fn a_failing_migration_leaves_its_schema_untouched_and_names_it() {
    let db = TestDb::new().await;
    let t = open(&db, MigrationSet::default(), MigrationSet::from_sql(&[V1])).await;
    t.fleet().migrate_shared().await.unwrap();
    for name in ["acme", "globex"] {
        t.admin()
            .create_tenant(NewTenant::new(name, format!("{name}.localhost")))
            .await
            .unwrap();
    }
    // globex already has a `body` column of its own, so migration 3 fails there only.
    sqlx::query("ALTER TABLE globex.notes ADD COLUMN body INT")
        .execute(t.raw_pool())
        .await
        .unwrap();
    t.close().await;

    let v3: (i64, &str, &str) = (3, "body", "ALTER TABLE notes ADD COLUMN body TEXT");
    let v2: (i64, &str, &str) = (2, "flag", "ALTER TABLE notes ADD COLUMN flag BOOLEAN");
    let t = open(
        &db,
        MigrationSet::default(),
        MigrationSet::from_sql(&[V1, v2, v3]),
    )
    .await;
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert!(!report.is_ok());
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    let (schema, err) = failures[0];
    assert_eq!(schema, "globex");
    match err {
        Error::Migration {
            version, message, ..
        } => {
            assert_eq!(*version, 3);
            assert!(message.contains("already exists"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // acme fully migrated; globex untouched (migration 2 rolled back with 3).
    assert_eq!(
        columns(&t, "acme", "notes").await,
        ["id", "title", "flag", "body"]
    );
    assert_eq!(
        columns(&t, "globex", "notes").await,
        ["id", "title", "body"]
    );
    assert_eq!(
        scalar_i64(&t, "SELECT max(version) FROM globex._sqlx_migrations").await,
        1
    );
    // The ledger still lists globex as pending.
    let (_, plan) = t.fleet().plan_tenants(None, false).await.unwrap();
    assert_eq!(
        plan.iter().map(|p| p.schema.as_str()).collect::<Vec<_>>(),
        ["globex"]
    );
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let db = TestDb::new().await;
    let t = open(&db, MigrationSet::default(), MigrationSet::from_sql(&[V1])).await;
    t.fleet().migrate_shared().await.unwrap();
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
    t.close().await;
    let edited =
        MigrationSet::from_sql(&[(1, "notes", "CREATE TABLE notes (id BIGINT PRIMARY KEY)")]);
    let t = open(&db, MigrationSet::default(), edited).await;
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    let (schema, err) = report.failures().next().expect("a failure");
    assert_eq!(schema, "acme");
    assert!(matches!(err, Error::MigrationState { .. }), "{err:?}");
    assert!(err.to_string().contains("checksum"), "{err}");
}
