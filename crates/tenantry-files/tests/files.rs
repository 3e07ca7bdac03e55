//! Real filesystem (a temporary directory per test), real PostgreSQL for deletion and rename.

use std::path::Path;

use tenantry_files::{Error, FilesHooks, TenantFiles};
use tenantry_sqlx::{SchemaOnDelete, Tenant, Tenantry};
use tenantry_testing::{TestDb, create_named, rename_and_reuse};

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The file `doc` of `tenant`, if any.
async fn doc(files: &TenantFiles, tenant: &Tenant) -> Option<bytes::Bytes> {
    files.for_tenant(tenant).get("doc").await.unwrap()
}

const CLIMBING: &[&str] = &[
    "..",
    "../x",
    "../tenant-2/secret",
    "a/../../tenant-2/secret",
    "./secret",
    "/etc/passwd",
    "/tenant-2/secret",
    "a//secret",
    "secret/",
    "..\\tenant-2\\secret",
    "a\\b",
    "%2e%2e/tenant-2/secret",
    "..%2Ftenant-2%2Fsecret",
    "..%2ftenant-2",
    "%5c",
    "secret\0.txt",
    "\0",
    "a\r\nb",
    "",
];

#[tokio::test]
async fn keys_that_climb_out_are_refused_and_touch_nothing() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("store");
    let files = TenantFiles::local(&dir).unwrap();
    let a = files.for_tenant_id(1);
    let b = files.for_tenant_id(2);
    b.put("secret", b"b's".to_vec()).await.unwrap();
    let long = "x".repeat(2_000);
    for key in CLIMBING.iter().copied().chain([long.as_str()]) {
        let put = a.put(key, b"a's".to_vec()).await;
        assert!(
            matches!(put, Err(Error::InvalidKey { .. })),
            "{key:?}: {put:?}"
        );
        let msg = put.unwrap_err().to_string();
        assert!(msg.starts_with("invalid file key"), "{msg}");
        assert!(
            matches!(a.get(key).await, Err(Error::InvalidKey { .. })),
            "{key:?}"
        );
        assert!(
            matches!(a.delete(key).await, Err(Error::InvalidKey { .. })),
            "{key:?}"
        );
    }
    assert_eq!(files_under(outer.path()), ["store/tenant-2/secret"]);
    assert_eq!(b.get("secret").await.unwrap().as_deref(), Some(&b"b's"[..]));
}

#[tokio::test]
async fn same_key_two_tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let files = TenantFiles::local(dir.path()).unwrap();
    let a = files.for_tenant_id(1);
    let b = files.for_tenant_id(2);
    let c = files.for_tenant_id(12);
    let keys = [
        "report.pdf",
        "a/b/c.txt",
        "...",
        "é🦀 ß.txt",
        ".hidden",
        "a..b",
    ];
    for key in keys {
        a.put(key, format!("a:{key}").into_bytes()).await.unwrap();
        assert_eq!(b.get(key).await.unwrap(), None, "{key}");
        assert_eq!(c.get(key).await.unwrap(), None, "{key}");
        b.put(key, format!("b:{key}").into_bytes()).await.unwrap();
    }
    for key in keys {
        assert_eq!(
            a.get(key).await.unwrap().unwrap(),
            format!("a:{key}").as_bytes()
        );
        assert_eq!(
            b.get(key).await.unwrap().unwrap(),
            format!("b:{key}").as_bytes()
        );
    }
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(a.list(None).await.unwrap(), expected);
    assert_eq!(c.list(None).await.unwrap(), Vec::<String>::new());
    assert_eq!(a.list(Some("a")).await.unwrap(), ["a/b/c.txt"]);
    assert!(matches!(
        a.list(Some("..")).await,
        Err(Error::InvalidKey { .. })
    ));

    a.delete("report.pdf").await.unwrap();
    a.delete("report.pdf").await.unwrap(); // idempotent
    assert_eq!(a.get("report.pdf").await.unwrap(), None);
    assert!(b.get("report.pdf").await.unwrap().is_some());

    // Dropping tenant 1 leaves 12 (whose id starts with 1) and 2 alone.
    c.put("k", b"12".to_vec()).await.unwrap();
    assert_eq!(files.drop_tenant(1).await.unwrap(), keys.len() as u64 - 1);
    assert_eq!(a.list(None).await.unwrap(), Vec::<String>::new());
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"12"[..]));
    assert_eq!(b.list(None).await.unwrap().len(), keys.len());
    assert!(
        !dir.path().join("tenant-1").exists(),
        "empty folders are removed"
    );
}

#[tokio::test]
async fn root_prefix_keeps_apps_apart() {
    let dir = tempfile::tempdir().unwrap();
    let one = TenantFiles::local(dir.path())
        .unwrap()
        .root("app-one")
        .unwrap();
    let two = TenantFiles::local(dir.path())
        .unwrap()
        .root("app-two/uploads")
        .unwrap();
    assert!(
        TenantFiles::local(dir.path())
            .unwrap()
            .root("../x")
            .is_err()
    );
    one.for_tenant_id(1).put("k", b"1".to_vec()).await.unwrap();
    assert_eq!(two.for_tenant_id(1).get("k").await.unwrap(), None);
    assert_eq!(
        files_under(dir.path()),
        [format!("app-one{0}tenant-1{0}k", std::path::MAIN_SEPARATOR)]
    );
}

/// Deleting a tenant then calling `drop_tenant` removes its files; a rename keeps them (same
/// id) and the tenant that takes the old name sees none.
#[tokio::test]
async fn delete_and_rename_through_tenantry() {
    let dir = tempfile::tempdir().unwrap();
    let files = TenantFiles::local(dir.path()).unwrap();
    let db = TestDb::new().await;
    let tenantry: Tenantry = db.tenantry(Tenantry::builder()).await;
    let admin = tenantry.admin();
    let [acme, globex] = create_named(&tenantry, ["acme", "globex"]).await.unwrap();
    files
        .for_tenant(&acme)
        .put("doc", b"acme's".to_vec())
        .await
        .unwrap();
    files
        .for_tenant(&globex)
        .put("doc", b"globex's".to_vec())
        .await
        .unwrap();

    let (renamed, newcomer) = rename_and_reuse(&tenantry, "acme", "acme2").await.unwrap();
    assert_eq!(doc(&files, &newcomer).await, None);
    assert_eq!(doc(&files, &renamed).await.as_deref(), Some(&b"acme's"[..]));

    admin
        .delete_tenant("acme2", SchemaOnDelete::Drop)
        .await
        .unwrap();
    assert_eq!(files.drop_tenant(renamed.id).await.unwrap(), 1);
    assert_eq!(doc(&files, &acme).await, None);
    assert_eq!(
        doc(&files, &globex).await.as_deref(),
        Some(&b"globex's"[..])
    );
    assert_eq!(
        files_under(dir.path()),
        [format!(
            "tenant-{}{}doc",
            globex.id,
            std::path::MAIN_SEPARATOR
        )]
    );
}

/// Refuses every deletion in `before_delete` (inside the deletion's transaction).
struct RefuseDelete;

#[tenantry_sqlx::async_trait]
impl tenantry_sqlx::TenantHooks for RefuseDelete {
    async fn before_delete(
        &self,
        _: &tenantry_sqlx::Tenant,
        _: &mut sqlx::PgConnection,
    ) -> Result<(), tenantry_sqlx::BoxError> {
        Err("deletions are refused".into())
    }
}

/// With `FilesHooks`, a committed deletion removes exactly the deleted tenant's files; a
/// deletion that rolls back (here refused by the app's own hook) keeps them.
#[tokio::test]
async fn files_hooks_drop_files_only_once_the_deletion_committed() {
    let dir = tempfile::tempdir().unwrap();
    let files = TenantFiles::local(dir.path()).unwrap();
    let db = TestDb::new().await;
    let refusing: Tenantry = db
        .tenantry(Tenantry::builder().hooks(FilesHooks::new(files.clone(), RefuseDelete)))
        .await;
    let [acme, globex] = create_named(&refusing, ["acme", "globex"]).await.unwrap();
    for (tenant, body) in [(&acme, "acme's"), (&globex, "globex's")] {
        let store = files.for_tenant(tenant);
        store.put("doc", body.as_bytes().to_vec()).await.unwrap();
        store.put("a/b/c", body.as_bytes().to_vec()).await.unwrap();
    }

    let refused = refusing
        .admin()
        .delete_tenant("acme", SchemaOnDelete::Drop)
        .await;
    assert!(refused.is_err(), "the hook refuses");
    assert_eq!(
        files_under(dir.path()).len(),
        4,
        "a rolled-back deletion keeps the files"
    );

    let tenantry = Tenantry::builder()
        .hooks(FilesHooks::new(files.clone(), tenantry_sqlx::NoHooks))
        .connect(db.url())
        .await
        .unwrap();
    tenantry
        .admin()
        .delete_tenant("acme", SchemaOnDelete::Drop)
        .await
        .unwrap();
    let sep = std::path::MAIN_SEPARATOR;
    assert_eq!(
        files_under(dir.path()),
        [
            format!("tenant-{}{sep}a{sep}b{sep}c", globex.id),
            format!("tenant-{}{sep}doc", globex.id),
        ]
    );
    assert_eq!(doc(&files, &acme).await, None);
}
