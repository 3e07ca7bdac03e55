//! Tenant life cycle against a real PostgreSQL: delete, rename, domains, status and
//! application data of an existing tenant.

mod lifecycle_support;

use lifecycle_support::*;
use tenantry_sqlx::{Error, NewTenant, SchemaOnDelete, TenantStatus};

#[tokio::test]
async fn delete_drops_or_keeps_the_schema() {
    let (_db, t) = with_tenants(&["acme", "globex"]).await;
    t.admin()
        .delete_tenant("acme", SchemaOnDelete::Drop)
        .await
        .unwrap();
    assert!(!schema_exists(&t, "acme").await);
    t.admin()
        .delete_tenant("globex", SchemaOnDelete::Keep)
        .await
        .unwrap();
    assert!(schema_exists(&t, "globex").await);
    assert!(t.admin().tenants().await.unwrap().is_empty());
    assert_eq!(count(&t, "SELECT count(*) FROM tenantry_domains").await, 0);
    assert!(matches!(
        t.admin().delete_tenant("acme", SchemaOnDelete::Drop).await,
        Err(Error::TenantNotFound(_))
    ));
}

#[tokio::test]
async fn rename_moves_schema_rows_and_ledger() {
    let (_db, t) = with_tenants(&["acme", "globex"]).await;
    let renamed = t.admin().rename_tenant("acme", "acme_corp").await.unwrap();
    assert_eq!(renamed.schema, "acme_corp");
    assert_eq!(renamed.primary_domain.as_deref(), Some("acme.localhost"));
    assert!(schema_exists(&t, "acme_corp").await && !schema_exists(&t, "acme").await);
    let ledger: String = sqlx::query_scalar(
        "SELECT string_agg(schema_name, ',' ORDER BY schema_name) FROM tenantry_migration_ledger \
         WHERE schema_name NOT LIKE 'tenantry_template%'",
    )
    .fetch_one(t.raw_pool())
    .await
    .unwrap();
    assert_eq!(ledger, "acme_corp,globex");
    // Onto an existing schema, or to an invalid name: refused, nothing changed.
    assert!(matches!(
        t.admin().rename_tenant("acme_corp", "globex").await,
        Err(Error::TenantNameTaken { schema }) if schema == "globex"
    ));
    assert!(matches!(
        t.admin().rename_tenant("acme_corp", "Bad").await,
        Err(Error::InvalidName(_))
    ));
    assert!(schema_exists(&t, "acme_corp").await);
    // Resolution follows the rename.
    match t.resolve_host("acme.localhost").await.unwrap() {
        tenantry_sqlx::Resolution::Tenant(tenant) => assert_eq!(tenant.schema, "acme_corp"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn domains_add_remove_set_primary() {
    let (_db, t) = with_tenants(&["acme", "globex"]).await;
    t.admin()
        .add_domain("acme", "www.acme.test", false)
        .await
        .unwrap();
    t.admin()
        .add_domain("acme", "acme.test", true)
        .await
        .unwrap();
    let domains = t.admin().domains("acme").await.unwrap();
    let listed: Vec<(&str, bool)> = domains
        .iter()
        .map(|d| (d.domain.as_str(), d.is_primary))
        .collect();
    assert_eq!(
        listed,
        [
            ("acme.test", true),
            ("acme.localhost", false),
            ("www.acme.test", false)
        ]
    );
    assert_eq!(
        t.admin()
            .tenant("acme")
            .await
            .unwrap()
            .primary_domain
            .as_deref(),
        Some("acme.test")
    );
    // Taken by another tenant, invalid, or the primary: refused.
    assert!(matches!(
        t.admin().add_domain("globex", "acme.test", false).await,
        Err(Error::DomainTaken { domain }) if domain == "acme.test"
    ));
    assert!(matches!(
        t.admin().add_domain("acme", "bad domain", false).await,
        Err(Error::InvalidDomain { domain, .. }) if domain == "bad domain"
    ));
    assert!(matches!(
        t.admin().remove_domain("acme.test").await,
        Err(Error::PrimaryDomainRemoval { domain }) if domain == "acme.test"
    ));
    t.admin()
        .set_primary_domain("acme.localhost")
        .await
        .unwrap();
    t.admin().remove_domain("acme.test").await.unwrap();
    assert!(matches!(
        t.resolve_host("acme.test").await.unwrap(),
        tenantry_sqlx::Resolution::Unknown
    ));
    assert!(matches!(
        t.resolve_host("www.acme.test:443").await.unwrap(),
        tenantry_sqlx::Resolution::Tenant(_)
    ));
    let primaries: i64 = count(&t, "SELECT count(*) FROM tenantry_domains WHERE is_primary").await;
    assert_eq!(primaries, 2, "exactly one primary per tenant");
}
#[tokio::test]
async fn application_fields_read_back_typed_and_status_changes() {
    let (_db, t) = with_tenants(&[]).await;
    let new = NewTenant::new("acme", "acme.localhost")
        .data(&Billing {
            plan: "pro".into(),
            on_trial: true,
        })
        .unwrap();
    let acme = t.admin().create_tenant(new).await.unwrap();
    assert_eq!(
        acme.data_as::<Billing>().unwrap(),
        Billing {
            plan: "pro".into(),
            on_trial: true
        }
    );
    t.admin()
        .set_data(
            "acme",
            &Billing {
                plan: "pro".into(),
                on_trial: false,
            },
        )
        .await
        .unwrap();
    t.admin()
        .set_status("acme", TenantStatus::Suspended)
        .await
        .unwrap();
    let acme = t.admin().tenant("acme").await.unwrap();
    assert!(!acme.data_as::<Billing>().unwrap().on_trial);
    assert_eq!(acme.status, TenantStatus::Suspended);
    assert!(matches!(
        t.admin().set_status("nobody", TenantStatus::Active).await,
        Err(Error::TenantNotFound(_))
    ));
}
