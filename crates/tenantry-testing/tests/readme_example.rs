//! The README's "Testing your app" example (and the crate documentation's), compiled and run.

use tenantry::Tenantry;
use tenantry_testing::{TestDb, TestTenants, notes_migrations};

#[tokio::test]
async fn notes_stay_in_their_tenant() {
    let db = TestDb::new().await;
    let app = db
        .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
        .await;
    let tenants = TestTenants::new(&app).with_spares(2).await.unwrap();
    let (a, b) = (
        tenants.create().await.unwrap(),
        tenants.create().await.unwrap(),
    );

    let mut tx = app.begin(&a.tenant).await.unwrap();
    sqlx::query("INSERT INTO notes (title) VALUES ('hello')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = app.begin(&b.tenant).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0, "tenant b sees tenant a's note");
}

/// The README's "Testing your app" shows the test above, verbatim.
#[test]
fn the_readme_shows_this_test() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let this = include_str!("readme_example.rs");
    let shown = readme
        .split("## Testing your app")
        .nth(1)
        .and_then(|s| s.split("```rust\n").nth(1))
        .and_then(|s| s.split("\n```").next())
        .expect("a rust block under \"Testing your app\" in README.md");
    let test = this
        .split_once("\n\n")
        .map(|(_, rest)| rest)
        .and_then(|s| s.split("\n\n/// The README").next())
        .unwrap();
    assert_eq!(shown, test, "README.md and tests/readme_example.rs differ");
}
