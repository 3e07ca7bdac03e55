//! Tenant life cycle against a real PostgreSQL: hooks run inside the operation (atomic with
//! it), background work in the tenant scope, and a missing schema is an error.

mod lifecycle_support;

use lifecycle_support::*;
use sqlx::PgConnection;
use tenantry_sqlx::{BoxError, Error, NewTenant, SchemaOnDelete, Tenant, TenantHooks, Tenantry};
use tenantry_testing::TestDb;

/// Seeds a row after create, refuses to delete tenants named `keep_me`, and fails creation of
/// `seed_fails` after its schema was created.
struct Hooks;

#[tenantry_sqlx::async_trait]
impl TenantHooks for Hooks {
    async fn after_create(&self, tenant: &Tenant, conn: &mut PgConnection) -> Result<(), BoxError> {
        sqlx::query("INSERT INTO notes (title) VALUES ('seeded')")
            .execute(&mut *conn)
            .await?;
        if tenant.schema == "seed_fails" {
            return Err("seed failed on purpose".into());
        }
        Ok(())
    }

    async fn before_delete(
        &self,
        tenant: &Tenant,
        _conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        if tenant.schema == "keep_me" {
            return Err("this tenant is protected".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn hooks_run_inside_the_operation() {
    let db = TestDb::new().await;
    let t = Tenantry::builder()
        .tenant_migration_set("default", notes_set())
        .hooks(Hooks)
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM acme.notes").await, 1);

    let err = t
        .admin()
        .create_tenant(NewTenant::new("seed_fails", "s.localhost"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Hook {
                hook: "after_create",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!schema_exists(&t, "seed_fails").await);

    t.admin()
        .create_tenant(NewTenant::new("keep_me", "k.localhost"))
        .await
        .unwrap();
    let err = t
        .admin()
        .delete_tenant("keep_me", SchemaOnDelete::Drop)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Hook {
                hook: "before_delete",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(schema_exists(&t, "keep_me").await);
    assert_eq!(t.admin().tenants().await.unwrap().len(), 2);
}

#[tokio::test]
async fn background_work_runs_in_the_tenant_scope() {
    let (_db, t) = with_tenants(&["acme"]).await;
    assert!(matches!(
        t.begin_current().await,
        Err(Error::NoCurrentTenant)
    ));
    let t2 = t.clone();
    let path = t
        .run_in("acme", async move {
            // A spawned job inherits nothing by itself: spawn_in carries the scope over.
            let tenant = tenantry_sqlx::current_tenant().unwrap();
            let t3 = t2.clone();
            t2.spawn_in(tenant, async move {
                let mut tx = t3.begin_current().await.unwrap();
                sqlx::query_scalar::<_, String>("SELECT current_setting('search_path')")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap()
            })
            .await
            .unwrap()
        })
        .await
        .unwrap();
    assert_eq!(path, "acme, public");
}

#[tokio::test]
async fn a_missing_schema_is_an_error_not_a_silent_fallback() {
    let (_db, t) = with_tenants(&[]).await;
    let acme = std::sync::Arc::new(
        t.admin()
            .create_tenant(NewTenant::new("acme", "acme.localhost"))
            .await
            .unwrap(),
    );
    sqlx::query("DROP SCHEMA acme CASCADE")
        .execute(t.raw_pool())
        .await
        .unwrap();
    match t.begin(&acme).await {
        Err(Error::SchemaMissing(s)) => assert_eq!(s, "acme"),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("begin must fail when the schema is gone"),
    }
}
