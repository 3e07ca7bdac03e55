//! The crate documentation's example (and the README's "Testing your app"), compiled and run.

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
