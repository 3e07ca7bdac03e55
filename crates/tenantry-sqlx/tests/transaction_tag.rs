//! `tag_transactions`: a tenant transaction carries `application_name = tenant=<schema>` (seen
//! by the server, e.g. in `pg_stat_activity`), the fast and the full `BEGIN` alike, and the
//! setting is gone once the transaction ends (the pooled connection is untagged again).

use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{NewTenant, Tenant, Tenantry};
use tenantry_testing::TestDb;

async fn application_name(tenantry: &Tenantry, tenant: &Arc<Tenant>) -> String {
    let mut tx = tenantry.begin(tenant).await.unwrap();
    // From the server's own view of this backend, not just the session variable.
    let name: String = sqlx::query_scalar(
        "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    name
}

#[tokio::test]
async fn tenant_transactions_carry_their_tenant_in_application_name() {
    let db = TestDb::new().await;
    let tenantry: Tenantry = db
        .tenantry(
            Tenantry::builder()
                .tag_transactions(true)
                // One connection: the untagged check below sees the same backend.
                .pool_options(PgPoolOptions::new().max_connections(1)),
        )
        .await;
    let admin = tenantry.admin();
    admin
        .create_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    admin
        .create_tenant(NewTenant::new("globex", "globex.test"))
        .await
        .unwrap();

    // Resolved records take the fast BEGIN; records by name the full one.
    let acme = match tenantry.resolve_host("acme.test").await.unwrap() {
        tenantry_sqlx::Resolution::Tenant(t) => t,
        other => panic!("{other:?}"),
    };
    let globex = Arc::new(admin.tenant("globex").await.unwrap());
    assert!(acme.registry_version.is_some() && globex.registry_version.is_none());
    assert_eq!(application_name(&tenantry, &acme).await, "tenant=acme");
    assert_eq!(application_name(&tenantry, &globex).await, "tenant=globex");

    // After the transaction, the same connection is untagged.
    let name: String = sqlx::query_scalar("SHOW application_name")
        .fetch_one(tenantry.raw_pool())
        .await
        .unwrap();
    assert!(!name.starts_with("tenant="), "{name:?}");
}

#[tokio::test]
async fn untagged_by_default() {
    let db = TestDb::new().await;
    let tenantry: Tenantry = db.tenantry(Tenantry::builder()).await;
    let acme = tenantry
        .admin()
        .create_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    let name = application_name(&tenantry, &Arc::new(acme)).await;
    assert!(!name.starts_with("tenant="), "{name:?}");
}
