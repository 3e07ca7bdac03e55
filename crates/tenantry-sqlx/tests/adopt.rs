//! `Tenantry::adopt_tenant`: a tenant row and primary domain over an existing schema, after its
//! migration history was checked against the tenant type's migrations. Refusals leave nothing
//! behind; a schema kept by `delete_tenant(.., Keep)` comes back with its rows.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use tenantry_sqlx::{
    BoxError, Error, MigrationSet, NewTenant, SchemaOnDelete, Tenant, TenantHooks, Tenantry,
};
use tenantry_testing::TestDb;

const NOTES: &str =
    "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title TEXT NOT NULL)";
const LAB: &str = "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title TEXT NOT NULL); \
                   CREATE TABLE samples (id INT)";
const TAGS: &str = "CREATE TABLE tags (name TEXT PRIMARY KEY)";

/// Records every `after_create` in the shared `created` table (seed hooks run on adoption too).
struct Seed;

#[tenantry_sqlx::async_trait]
impl TenantHooks for Seed {
    async fn after_create(
        &self,
        tenant: &Tenant,
        conn: &mut sqlx::PgConnection,
    ) -> Result<(), BoxError> {
        sqlx::query("INSERT INTO notes (title) VALUES ($1)")
            .bind(format!("welcome {}", tenant.display_name))
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// A handle whose `default` type has `tenant` migrations (and a `lab` type with one other one).
async fn handle(
    db: &TestDb,
    tenant: &[(i64, &'static str, &'static str)],
    roles: bool,
) -> Tenantry {
    let mut b = Tenantry::builder()
        .tenant_migration_set("default", MigrationSet::from_sql(tenant))
        .tenant_migration_set("lab", MigrationSet::from_sql(&[(7, "samples", LAB)]))
        .hooks(Seed)
        .pool_options(
            PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10)),
        )
        .listen_for_changes(false);
    if roles {
        b = b.tenant_roles(db.role_prefix());
    }
    let t = b.connect(db.url()).await.unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

async fn note(t: &Tenantry, schema: &str, title: &str) {
    let tenant = Arc::new(t.admin().tenant(schema).await.unwrap());
    let mut tx = t.begin(&tenant).await.unwrap();
    sqlx::query("INSERT INTO notes (title) VALUES ($1)")
        .bind(title)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn titles(t: &Tenantry, schema: &str) -> Vec<String> {
    let tenant = Arc::new(t.admin().tenant(schema).await.unwrap());
    let mut tx = t.begin(&tenant).await.unwrap();
    let titles = sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    titles
}

async fn versions(pool: &PgPool, schema: &str) -> Vec<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\"._sqlx_migrations ORDER BY version"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn registered(pool: &PgPool, schema: &str) -> (bool, bool, bool) {
    sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM tenantry_tenants WHERE schema_name = $1), \
                EXISTS (SELECT 1 FROM tenantry_domains d JOIN tenantry_tenants t ON t.id = d.tenant_id \
                        WHERE t.schema_name = $1), \
                EXISTS (SELECT 1 FROM tenantry_migration_ledger WHERE schema_name = $1)",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn kept_schema_comes_back_with_its_rows() {
    let db = TestDb::new().await;
    let t = handle(&db, &[(1, "notes", NOTES)], false).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    note(&t, "acme", "kept note").await;
    t.admin()
        .delete_tenant("acme", SchemaOnDelete::Keep)
        .await
        .unwrap();
    assert!(matches!(
        t.admin().tenant("acme").await,
        Err(Error::TenantNotFound(_))
    ));

    let adopted = t
        .admin()
        .adopt_tenant(NewTenant::new("acme", "acme.example").display_name("Acme again"))
        .await
        .unwrap();
    assert!(adopted.applied.is_empty(), "{:?}", adopted.applied);
    assert_eq!(adopted.tenant.schema, "acme");
    assert_eq!(adopted.tenant.display_name, "Acme again");
    assert_eq!(
        adopted.tenant.primary_domain.as_deref(),
        Some("acme.example")
    );
    // The rows survived; `after_create` ran for the adopted tenant as for a new one.
    assert_eq!(
        titles(&t, "acme").await,
        ["welcome acme", "kept note", "welcome Acme again"]
    );
    // Served again by its new domain; and the ledger knows it (migrate has nothing to do).
    let pool = t.raw_pool();
    assert_eq!(registered(pool, "acme").await, (true, true, true));
    let (_, pending) = t.fleet().plan_tenants(None, false).await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
    t.close().await;
}

#[tokio::test]
async fn pending_migrations_are_applied_in_the_same_transaction() {
    let db = TestDb::new().await;
    let old = handle(&db, &[(1, "notes", NOTES)], false).await;
    old.admin()
        .create_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    old.admin()
        .delete_tenant("acme", SchemaOnDelete::Keep)
        .await
        .unwrap();
    old.close().await;

    // A newer app: one more migration, and a broken one on a third handle.
    let broken = handle(
        &db,
        &[
            (1, "notes", NOTES),
            (2, "tags", TAGS),
            (3, "broken", "SELECT 1/0"),
        ],
        false,
    )
    .await;
    let err = broken
        .admin()
        .adopt_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Migration { schema, version: 3, .. } if schema == "acme"),
        "{err:?}"
    );
    // Nothing behind: no row, no table 2 applied, history unchanged.
    let pool = broken.raw_pool().clone();
    assert_eq!(registered(&pool, "acme").await, (false, false, false));
    assert_eq!(versions(&pool, "acme").await, [1]);
    broken.close().await;

    let new = handle(&db, &[(1, "notes", NOTES), (2, "tags", TAGS)], false).await;
    let adopted = new
        .admin()
        .adopt_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    assert_eq!(adopted.applied, [2]);
    assert_eq!(versions(new.raw_pool(), "acme").await, [1, 2]);
    new.close().await;
}

#[tokio::test]
async fn refusals_name_the_problem_and_leave_nothing_behind() {
    let db = TestDb::new().await;
    let t = handle(&db, &[(1, "notes", NOTES)], false).await;
    let pool = t.raw_pool().clone();
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();

    // Missing schema.
    let err = t
        .admin()
        .adopt_tenant(NewTenant::new("ghost", "ghost.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::SchemaMissing(s) if s == "ghost"),
        "{err:?}"
    );

    // Already a tenant's.
    let err = t
        .admin()
        .adopt_tenant(NewTenant::new("acme", "other.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::SchemaAlreadyTenant { schema } if schema == "acme"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("already belongs to tenant"),
        "{err}"
    );

    // No migration history: a schema Tenantry never migrated.
    sqlx::raw_sql("CREATE SCHEMA plain; CREATE TABLE plain.notes (id INT)")
        .execute(&pool)
        .await
        .unwrap();
    let err = t
        .admin()
        .adopt_tenant(NewTenant::new("plain", "plain.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MigrationState { schema, message }
            if schema == "plain" && message.contains("no migration history")),
        "{err:?}"
    );
    assert!(
        !sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'plain' AND tablename = '_sqlx_migrations')"
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
        "the refused adoption created no history table"
    );

    // A schema of another type: its history holds a migration `default` does not have.
    t.admin()
        .create_tenant(NewTenant::new("lab1", "lab1.test").tenant_type("lab"))
        .await
        .unwrap();
    t.admin()
        .delete_tenant("lab1", SchemaOnDelete::Keep)
        .await
        .unwrap();
    let err = t
        .admin()
        .adopt_tenant(NewTenant::new("lab1", "lab1.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MigrationState { schema, message }
            if schema == "lab1" && message.contains("migration 7") && message.contains("\"default\"")),
        "{err:?}"
    );
    assert_eq!(versions(&pool, "lab1").await, [7], "nothing applied");

    // A changed migration (checksum mismatch).
    t.admin()
        .create_tenant(NewTenant::new("old", "old.test"))
        .await
        .unwrap();
    t.admin()
        .delete_tenant("old", SchemaOnDelete::Keep)
        .await
        .unwrap();
    sqlx::query("UPDATE old._sqlx_migrations SET checksum = '\\x00'::bytea")
        .execute(&pool)
        .await
        .unwrap();
    let err = t
        .admin()
        .adopt_tenant(NewTenant::new("old", "old.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MigrationState { message, .. } if message.contains("checksum mismatch")),
        "{err:?}"
    );

    // A taken domain, a reserved name.
    t.admin()
        .create_tenant(NewTenant::new("kept", "kept.test"))
        .await
        .unwrap();
    t.admin()
        .delete_tenant("kept", SchemaOnDelete::Keep)
        .await
        .unwrap();
    let err = t
        .admin()
        .adopt_tenant(NewTenant::new("kept", "acme.test"))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::DomainTaken { .. }), "{err:?}");
    let err = t
        .admin()
        .adopt_tenant(NewTenant::new("public", "pub.test"))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::InvalidName(_)), "{err:?}");

    for schema in ["ghost", "plain", "lab1", "old", "kept"] {
        assert_eq!(
            registered(&pool, schema).await,
            (false, false, false),
            "{schema}"
        );
    }
    // The refused ones still adopt fine under the right type.
    t.admin()
        .adopt_tenant(NewTenant::new("lab1", "lab1.test").tenant_type("lab"))
        .await
        .unwrap();
    t.admin()
        .adopt_tenant(NewTenant::new("kept", "kept.test"))
        .await
        .unwrap();
    t.close().await;
}

#[tokio::test]
async fn role_mode_gives_the_adopted_tenant_its_role() {
    let db = TestDb::new().await;
    let t = handle(&db, &[(1, "notes", NOTES)], true).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    t.admin()
        .create_tenant(NewTenant::new("beta", "beta.test"))
        .await
        .unwrap();
    note(&t, "acme", "kept").await;
    t.admin()
        .delete_tenant("acme", SchemaOnDelete::Keep)
        .await
        .unwrap();
    let role = t.admin().tenant_role("acme").unwrap();
    let role_exists = |pool: PgPool, role: String| async move {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(!role_exists(t.raw_pool().clone(), role.clone()).await);

    t.admin()
        .adopt_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    assert!(role_exists(t.raw_pool().clone(), role.clone()).await);
    // Scoped access runs as the role, owns its (kept) tables, and can't read another tenant.
    let tenant = Arc::new(t.admin().tenant("acme").await.unwrap());
    let mut tx = t.begin(&tenant).await.unwrap();
    let (user, notes): (String, i64) =
        sqlx::query_as("SELECT current_user::text, (SELECT count(*) FROM notes)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!((user.as_str(), notes), (role.as_str(), 3));
    sqlx::query("INSERT INTO notes (title) VALUES ('as the role')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("SELECT * FROM beta.notes")
        .fetch_all(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);
    t.close().await;
}
