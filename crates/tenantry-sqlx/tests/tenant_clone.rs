//! `Admin::clone_tenant`: a copy of a tenant with its rows, against a real PostgreSQL: every
//! table and row copied, sequences continuing, the source untouched, the copy isolated,
//! one snapshot of a source being written, atomic failures.

mod data_support;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::PgConnection;
use tenantry_sqlx::{
    BoxError, Error, MigrationSet, NewTenant, Resolution, Tenant, TenantHooks, Tenantry,
    async_trait,
};
use tenantry_testing::TestDb;

use data_support::{assert_nothing_left, assert_same_rows, fill_demo, rows_by_table};
use support::{catalog_snapshot, demo_set_with, demo_tenantry};

#[tokio::test]
async fn clone_copies_every_row_and_sequences_continue() {
    let db = TestDb::new().await;
    let t = demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    let pool = t.raw_pool().clone();
    let src = t
        .admin()
        .create_tenant(
            NewTenant::new("acme", "acme.example.com")
                .display_name("Acme")
                .data(&serde_json::json!({"plan": "pro"}))
                .unwrap(),
        )
        .await
        .unwrap();
    fill_demo(&t, "acme", 200).await;
    let before = rows_by_table(&pool, "acme").await;

    let report = t
        .admin()
        .clone_tenant("acme", NewTenant::new("acme_copy", "copy.example.com"))
        .await
        .expect("clone");
    assert_eq!(report.tenant.schema, "acme_copy");
    assert_eq!(
        report.tenant.primary_domain.as_deref(),
        Some("copy.example.com")
    );
    assert_eq!(report.tenant.tenant_type, src.tenant_type);
    assert_eq!(
        report.tenant.data["plan"], "pro",
        "data defaults to the source's"
    );
    assert_eq!(report.tenant.display_name, "acme_copy");
    assert_ne!(report.tenant.id, src.id);
    assert!(report.applied.is_empty());
    assert_eq!(report.source_version, Some(5));
    let users = report.tables.iter().find(|t| t.table == "users").unwrap();
    assert_eq!(users.rows, 200);

    // Every table, every row, the same; the source unchanged.
    let copy = rows_by_table(&pool, "acme_copy").await;
    assert_same_rows(&before, &copy, "copy vs source");
    assert_same_rows(
        &before,
        &rows_by_table(&pool, "acme").await,
        "source after clone",
    );
    // The same objects too (columns, constraints, indexes, sequences and their positions,
    // views, functions, triggers, comments).
    let (a, b) = (
        catalog_snapshot(db.url(), "acme").await,
        catalog_snapshot(db.url(), "acme_copy").await,
    );
    for (kind, rows) in &a {
        assert_eq!(rows, &b[kind], "{kind} differ between source and copy");
    }

    // Sequences continue: new rows get fresh ids, in both tenants, independently.
    for schema in ["acme_copy", "acme"] {
        let mut tx = t.admin().begin_schema(schema).await.unwrap();
        let id: i64 =
            sqlx::query_scalar("INSERT INTO users (email) VALUES ('new@example.com') RETURNING id")
                .fetch_one(&mut tx)
                .await
                .unwrap_or_else(|e| panic!("insert into {schema}: {e}"));
        assert_eq!(id, 201, "{schema}");
        let task: i64 = sqlx::query_scalar(
            "INSERT INTO tasks (project_id, title) SELECT min(id), 'new' FROM projects RETURNING id",
        )
        .fetch_one(&mut tx)
        .await
        .unwrap();
        let max: i64 = sqlx::query_scalar("SELECT max(id) FROM tasks WHERE title <> 'new'")
            .fetch_one(&mut tx)
            .await
            .unwrap();
        assert_eq!(
            task,
            max + 5,
            "{schema}: identity with INCREMENT BY 5 continues"
        );
        tx.commit().await.unwrap();
    }

    // Isolation: a write to one is not seen by the other.
    let mut tx = t.admin().begin_schema("acme_copy").await.unwrap();
    sqlx::query("DELETE FROM tags")
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let count = |schema: &'static str| {
        let t = t.clone();
        async move {
            let mut tx = t.admin().begin_schema(schema).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tags")
                .fetch_one(&mut tx)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("acme_copy").await, 0);
    assert_eq!(count("acme").await, 2);
    // The copy is served at its own domain.
    let Ok(Resolution::Tenant(served)) = t.resolve_host("copy.example.com").await else {
        panic!("copy.example.com does not resolve to a tenant");
    };
    assert_eq!(served.schema, "acme_copy");
}

/// A hook that fails when asked to.
struct FailingHook(Arc<AtomicBool>);

#[async_trait]
impl TenantHooks for FailingHook {
    async fn after_create(&self, _: &Tenant, conn: &mut PgConnection) -> Result<(), BoxError> {
        // Sees the copied rows, inside the operation's transaction.
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
            .fetch_one(&mut *conn)
            .await?;
        if self.0.load(Ordering::SeqCst) {
            return Err("refused by the hook".into());
        }
        Ok(())
    }
}

async fn notes_tenantry(db: &TestDb, fail: Arc<AtomicBool>) -> Tenantry {
    db.tenantry(
        Tenantry::builder()
            .tenant_migration_set("default", tenantry_testing::notes_migrations())
            .tenant_migration_set(
                "other",
                MigrationSet::from_sql(&[(1, "other", "CREATE TABLE notes (id INT)")]),
            )
            .hooks(FailingHook(fail))
            .listen_for_changes(false),
    )
    .await
}

#[tokio::test]
async fn a_failed_clone_leaves_nothing() {
    let db = TestDb::new().await;
    let fail = Arc::new(AtomicBool::new(false));
    let t = notes_tenantry(&db, Arc::clone(&fail)).await;
    let pool = t.raw_pool().clone();
    t.admin()
        .create_tenant(NewTenant::new("src", "src.example.com"))
        .await
        .unwrap();
    t.admin()
        .create_tenant(NewTenant::new("taken", "taken.example.com"))
        .await
        .unwrap();
    let mut tx = t.admin().begin_schema("src").await.unwrap();
    sqlx::query("INSERT INTO notes (title) SELECT 'n' || i FROM generate_series(1, 50) i")
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let before = rows_by_table(&pool, "src").await;

    let clone =
        |name: &str, domain: &str| t.admin().clone_tenant("src", NewTenant::new(name, domain));
    let err = clone("dup", "taken.example.com").await.unwrap_err();
    assert!(matches!(err, Error::DomainTaken { .. }), "{err}");
    assert_nothing_left(&pool, "dup").await;
    let err = clone("taken", "new.example.com").await.unwrap_err();
    assert!(matches!(err, Error::TenantNameTaken { .. }), "{err}");
    let err = clone("Bad-Name", "bad.example.com").await.unwrap_err();
    assert!(matches!(err, Error::InvalidName(_)), "{err}");
    let err = t
        .admin()
        .clone_tenant("nosuch", NewTenant::new("x", "x.example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TenantNotFound(_)), "{err}");
    assert_nothing_left(&pool, "x").await;
    let err = t
        .admin()
        .clone_tenant(
            "src",
            NewTenant::new("typed", "typed.example.com").tenant_type("other"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::CannotCopy { reason, .. } if reason.contains("tenant type")),
        "{err}"
    );
    assert_nothing_left(&pool, "typed").await;

    // A hook failing after every row was copied rolls the whole copy back.
    fail.store(true, Ordering::SeqCst);
    let err = clone("hooked", "hooked.example.com").await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Hook {
                hook: "after_create",
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_left(&pool, "hooked").await;
    fail.store(false, Ordering::SeqCst);
    assert_same_rows(&before, &rows_by_table(&pool, "src").await, "source");
    // And then it works.
    let report = clone("hooked", "hooked.example.com").await.unwrap();
    assert_eq!(report.rows(), 51, "50 notes and the migration history");
}

#[tokio::test]
async fn clone_reads_one_snapshot_of_a_source_being_written() {
    let db = TestDb::new().await;
    let set = MigrationSet::from_sql(&[(
        1,
        "pairs",
        "CREATE TABLE a (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v INT);
         CREATE TABLE b (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v INT)",
    )]);
    let t = db
        .tenantry(
            Tenantry::builder()
                .tenant_migration_set("default", set)
                .listen_for_changes(false),
        )
        .await;
    t.admin()
        .create_tenant(NewTenant::new("busy", "busy.example.com"))
        .await
        .unwrap();
    // A writer adds a row to both tables in each transaction, as fast as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (t, stop) = (t.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let mut tx = t.admin().begin_schema("busy").await.unwrap();
                sqlx::raw_sql(
                    "INSERT INTO a (v) SELECT g FROM generate_series(1, 20) g;
                     SELECT pg_sleep(0.001);
                     INSERT INTO b (v) SELECT g FROM generate_series(1, 20) g;",
                )
                .execute(&mut tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
                n += 1;
            }
            n
        })
    };
    for i in 0..5 {
        let name = format!("snap{i}");
        let report = t
            .admin()
            .clone_tenant("busy", NewTenant::new(&name, format!("{name}.example.com")))
            .await
            .unwrap();
        let rows = |table: &str| {
            report
                .tables
                .iter()
                .find(|t| t.table == table)
                .unwrap()
                .rows
        };
        assert_eq!(rows("a"), rows("b"), "copy {name} is not one snapshot");
        // Sequences are at or past the copied rows: inserting works.
        let mut tx = t.admin().begin_schema(&name).await.unwrap();
        sqlx::query("INSERT INTO a (v) VALUES (0)")
            .execute(&mut tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(writer.await.unwrap() > 0, "the writer ran");
}

#[tokio::test]
async fn a_source_behind_the_migrations_is_migrated_forward() {
    let db = TestDb::new().await;
    let v1 = MigrationSet::from_sql(&[(1, "notes", tenantry_testing::NOTES_TABLE)]);
    let old = db
        .tenantry(
            Tenantry::builder()
                .tenant_migration_set("default", v1)
                .listen_for_changes(false),
        )
        .await;
    old.admin()
        .create_tenant(NewTenant::new("old", "old.example.com"))
        .await
        .unwrap();
    let mut tx = old.admin().begin_schema("old").await.unwrap();
    sqlx::query("INSERT INTO notes (title) VALUES ('kept')")
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let v2 = MigrationSet::from_sql(&[
        (1, "notes", tenantry_testing::NOTES_TABLE),
        (
            2,
            "pinned",
            "ALTER TABLE notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE",
        ),
    ]);
    let new = db
        .tenantry(
            Tenantry::builder()
                .tenant_migration_set("default", v2)
                .listen_for_changes(false),
        )
        .await;
    let report = new
        .admin()
        .clone_tenant("old", NewTenant::new("newer", "newer.example.com"))
        .await
        .unwrap();
    assert_eq!(report.source_version, Some(1));
    assert_eq!(report.applied, vec![2]);
    let mut tx = new.admin().begin_schema("newer").await.unwrap();
    let (title, pinned): (String, bool) = sqlx::query_as("SELECT title, pinned FROM notes")
        .fetch_one(&mut tx)
        .await
        .unwrap();
    assert_eq!((title.as_str(), pinned), ("kept", false));
}
