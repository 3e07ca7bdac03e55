//! `create_named` and `rename_and_reuse`: tenants by name, and a rename whose old name is taken
//! again by a new tenant with its own id.

use tenantry::Tenantry;
use tenantry_testing::{TestDb, create_named, rename_and_reuse};

#[tokio::test]
async fn a_renamed_tenant_keeps_its_id_and_the_newcomer_gets_another() {
    let db = TestDb::new().await;
    let app = db.tenantry(Tenantry::builder()).await;
    let [acme, globex] = create_named(&app, ["acme", "globex"]).await.unwrap();
    assert_eq!(
        (acme.schema.as_str(), acme.primary_domain.as_deref()),
        ("acme", Some("acme.test"))
    );
    assert_eq!(globex.primary_domain.as_deref(), Some("globex.test"));

    let (renamed, newcomer) = rename_and_reuse(&app, "acme", "acme2").await.unwrap();
    assert_eq!((renamed.id, renamed.schema.as_str()), (acme.id, "acme2"));
    assert_eq!(newcomer.schema, "acme");
    assert_eq!(newcomer.primary_domain.as_deref(), Some("new-acme.test"));
    assert!(newcomer.id != acme.id && newcomer.id != globex.id);
    // A name that is taken is refused, as by `create_tenant`.
    assert!(create_named(&app, ["globex"]).await.is_err());
}
