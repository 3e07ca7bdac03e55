//! `Admin::export_tenant` / `Admin::import_tenant` (feature `archive`) against a real
//! PostgreSQL: a round trip gives identical rows in every table (in the same database and in
//! another one), incompatible, damaged and truncated archives are refused with a reason and
//! leave nothing behind.

mod data_support;
mod support;

use std::io::Read;

use tenantry_sqlx::{Error, MigrationSet, NewTenant, Tenantry, TransferReport};
use tenantry_testing::TestDb;

use data_support::{assert_nothing_left, assert_same_rows, fill_demo, rows_by_table};
use support::{catalog_snapshot, demo_set_with, demo_tenantry};

/// Exports `schema` into memory.
async fn export(t: &Tenantry, schema: &str) -> Vec<u8> {
    let (bytes, report) = t
        .admin()
        .export_tenant(schema, Vec::new())
        .await
        .expect("export");
    assert_eq!(report.archive_bytes, bytes.len() as u64);
    bytes
}

#[tokio::test]
async fn export_then_import_gives_identical_rows() {
    let db = TestDb::new().await;
    let t = demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    let pool = t.raw_pool().clone();
    t.admin()
        .create_tenant(
            NewTenant::new("acme", "acme.example.com")
                .display_name("Acme Corp")
                .data(&serde_json::json!({"plan": "pro"}))
                .unwrap(),
        )
        .await
        .unwrap();
    t.admin()
        .add_domain("acme", "www.acme.example.com", false)
        .await
        .unwrap();
    fill_demo(&t, "acme", 300).await;
    let before = rows_by_table(&pool, "acme").await;

    let progress = std::sync::Mutex::new(Vec::new());
    let (bytes, report) = t
        .admin()
        .export_tenant_reporting("acme", Vec::new(), &|p| {
            progress.lock().unwrap().push(format!("{p:?}"))
        })
        .await
        .expect("export");
    assert_eq!(report.tables.len(), before.len());
    assert_eq!(
        report.rows(),
        before.values().map(|r| r.len() as u64).sum::<u64>()
    );
    assert!(progress.lock().unwrap().len() >= before.len() + 2);

    // The archive: a tar.gz with the manifest first.
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut entries = tar.entries().unwrap();
    let mut first = entries.next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().to_str(), Some("manifest.json"));
    let mut text = String::new();
    first.read_to_string(&mut text).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(manifest["format"], "tenantry-tenant-archive");
    assert_eq!(manifest["tenant"]["display_name"], "Acme Corp");
    assert_eq!(manifest["migrations"].as_array().unwrap().len(), 5);
    assert_eq!(manifest["domains"][0]["domain"], "acme.example.com");
    assert_eq!(manifest["domains"][1]["domain"], "www.acme.example.com");

    // Into the same database under another name.
    let imported = import_as(&t, bytes.clone(), "acme_restored", "restored.example.com")
        .await
        .expect("import");
    assert_eq!(imported.tenant.display_name, "Acme Corp");
    assert_eq!(imported.tenant.data["plan"], "pro");
    assert_eq!(imported.source_version, Some(5));
    assert!(imported.applied.is_empty());
    assert_eq!(imported.rows(), report.rows());
    let restored = rows_by_table(&pool, "acme_restored").await;
    assert_same_rows(&before, &restored, "import vs source");
    assert_same_rows(&before, &rows_by_table(&pool, "acme").await, "source after");
    let (a, b) = (
        catalog_snapshot(db.url(), "acme").await,
        catalog_snapshot(db.url(), "acme_restored").await,
    );
    for (kind, rows) in &a {
        assert_eq!(rows, &b[kind], "{kind} differ between source and import");
    }
    // Sequences continue, and the import is its own tenant.
    let mut tx = t.admin().begin_schema("acme_restored").await.unwrap();
    let id: i64 =
        sqlx::query_scalar("INSERT INTO users (email) VALUES ('new@example.com') RETURNING id")
            .fetch_one(&mut tx)
            .await
            .unwrap();
    assert_eq!(id, 301);
    tx.commit().await.unwrap();
    assert_eq!(rows_by_table(&pool, "acme").await["users"].len(), 300);

    // Into another database, under the same name (a staging copy, a move).
    let other = TestDb::new().await;
    let t2 = demo_tenantry(other.url(), demo_set_with(&[]).await).await;
    import_as(&t2, bytes, "acme", "acme.example.com")
        .await
        .expect("import elsewhere");
    assert_same_rows(
        &before,
        &rows_by_table(t2.raw_pool(), "acme").await,
        "import in another database",
    );
}

/// Imports `bytes` as tenant `schema` with `domain`.
async fn import_as(
    t: &Tenantry,
    bytes: Vec<u8>,
    schema: &str,
    domain: &str,
) -> tenantry_sqlx::Result<TransferReport> {
    t.admin()
        .import_tenant(std::io::Cursor::new(bytes), NewTenant::new(schema, domain))
        .await
}

/// A handle on `db` whose default tenant type has `set`.
async fn with_set(db: &TestDb, set: MigrationSet) -> Tenantry {
    db.tenantry(
        Tenantry::builder()
            .tenant_migration_set("default", set)
            .listen_for_changes(false),
    )
    .await
}

const V1: (i64, &str, &str) = (1, "notes", tenantry_testing::NOTES_TABLE);
const V2: (i64, &str, &str) = (
    2,
    "pinned",
    "ALTER TABLE notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE",
);

#[tokio::test]
async fn an_older_archive_is_migrated_forward() {
    let db = TestDb::new().await;
    let old = with_set(&db, MigrationSet::from_sql(&[V1])).await;
    old.admin()
        .create_tenant(NewTenant::new("old", "old.example.com"))
        .await
        .unwrap();
    let mut tx = old.admin().begin_schema("old").await.unwrap();
    sqlx::query("INSERT INTO notes (title) VALUES (E'tab\\there'), ('two')")
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let bytes = export(&old, "old").await;

    let other = TestDb::new().await;
    let new = with_set(&other, MigrationSet::from_sql(&[V1, V2])).await;
    let report = import_as(&new, bytes, "old", "old.example.com")
        .await
        .expect("import");
    assert_eq!(report.source_version, Some(1));
    assert_eq!(report.applied, vec![2]);
    let mut tx = new.admin().begin_schema("old").await.unwrap();
    let rows: Vec<(i64, String, bool)> =
        sqlx::query_as("SELECT id, title, pinned FROM notes ORDER BY id")
            .fetch_all(&mut tx)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "tab\there".to_owned(), false),
            (2, "two".to_owned(), false)
        ]
    );
    let id: i64 = sqlx::query_scalar("INSERT INTO notes (title) VALUES ('3') RETURNING id")
        .fetch_one(&mut tx)
        .await
        .unwrap();
    assert_eq!(id, 3);
}

#[tokio::test]
async fn incompatible_archives_are_refused_and_leave_nothing() {
    let db = TestDb::new().await;
    let newer = with_set(&db, MigrationSet::from_sql(&[V1, V2])).await;
    newer
        .admin()
        .create_tenant(NewTenant::new("src", "src.example.com"))
        .await
        .unwrap();
    let bytes = export(&newer, "src").await;

    // Applications whose migrations do not fit the archive's: one that only knows migration 1,
    // one whose migration 2 is another SQL (the histories diverge), one with a migration 0
    // the archive never had, applied before the others.
    let other = TestDb::new().await;
    let pool = sqlx::PgPool::connect(other.url()).await.unwrap();
    let refusals = [
        (
            vec![V1],
            "migration 2 (pinned), newer than this application's latest \"default\" migration 1",
        ),
        (
            vec![V1, (2, "pinned", "ALTER TABLE notes ADD COLUMN pinned INT")],
            "checksums differ",
        ),
        (vec![(0, "zero", "SELECT 1"), V1, V2], "lacks it"),
    ];
    for (migrations, reason) in refusals {
        let app = with_set(&other, MigrationSet::from_sql(&migrations)).await;
        let err = import_as(&app, bytes.clone(), "imp", "imp.example.com")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::ArchiveIncompatible { reason: r } if r.contains(reason)),
            "{reason}: {err}"
        );
        assert_nothing_left(&pool, "imp").await;
    }

    // The same migrations, but the source's table was changed by hand: refused at the tables.
    let same = with_set(&other, MigrationSet::from_sql(&[V1, V2])).await;
    sqlx::raw_sql("ALTER TABLE src.notes ADD COLUMN extra TEXT")
        .execute(newer.raw_pool())
        .await
        .unwrap();
    let drifted = export(&newer, "src").await;
    let err = import_as(&same, drifted, "imp", "imp.example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ArchiveIncompatible { reason } if reason.contains("table notes")),
        "{err}"
    );
    assert_nothing_left(&pool, "imp").await;
    // And the good archive still imports there.
    import_as(&same, bytes, "imp", "imp.example.com")
        .await
        .expect("import");
}

#[tokio::test]
async fn damaged_archives_are_refused_and_leave_nothing() {
    let db = TestDb::new().await;
    let t = with_set(&db, MigrationSet::from_sql(&[V1])).await;
    let pool = t.raw_pool().clone();
    t.admin()
        .create_tenant(NewTenant::new("src", "src.example.com"))
        .await
        .unwrap();
    let mut tx = t.admin().begin_schema("src").await.unwrap();
    sqlx::query("INSERT INTO notes (title) SELECT md5(i::text) FROM generate_series(1, 20000) i")
        .execute(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let bytes = export(&t, "src").await;

    let import = |bytes: Vec<u8>| import_as(&t, bytes, "imp", "imp.example.com");
    for (what, damaged) in [
        ("empty", Vec::new()),
        ("not gzip", b"hello, this is not an archive".to_vec()),
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("cut before the end", bytes[..bytes.len() - 40].to_vec()),
    ] {
        let err = import(damaged).await.unwrap_err();
        assert!(
            matches!(err, Error::ArchiveInvalid { .. }),
            "{what}: {err:?}"
        );
        assert_nothing_left(&pool, "imp").await;
    }
    // A flipped byte in the middle: gzip's checks (or COPY) refuse it.
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let err = import(flipped).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ArchiveInvalid { .. } | Error::ArchiveIncompatible { .. }
        ),
        "flipped: {err:?}"
    );
    assert_nothing_left(&pool, "imp").await;
    // A name or domain that is taken: refused like create_tenant, nothing imported.
    let err = import_as(&t, bytes.clone(), "src", "other.example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TenantNameTaken { .. }), "{err}");
    let err = import_as(&t, bytes.clone(), "imp", "src.example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DomainTaken { .. }), "{err}");
    assert_nothing_left(&pool, "imp").await;
    // The intact one imports.
    let report = import(bytes).await.expect("import");
    assert_eq!(report.rows(), 20_001);
}
