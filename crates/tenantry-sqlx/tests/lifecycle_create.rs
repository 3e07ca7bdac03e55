//! Tenant life cycle against a real PostgreSQL: create, and atomicity (a failed create leaves
//! no schema and no row); invalid names, duplicates, and each refusal as its own variant.

mod lifecycle_support;

use lifecycle_support::*;
use tenantry_sqlx::{Error, MigrationSet, NewTenant, TenantStatus};
use tenantry_testing::TestDb;

#[tokio::test]
async fn create_migrates_and_registers_the_tenant() {
    let (_db, t) = with_tenants(&[]).await;
    let acme = t
        .admin()
        .create_tenant(NewTenant::new("acme", "Acme.Example.com.").display_name("Acme Corp"))
        .await
        .unwrap();
    assert_eq!(acme.schema, "acme");
    assert_eq!(acme.display_name, "Acme Corp");
    assert_eq!(acme.status, TenantStatus::Active);
    assert_eq!(acme.primary_domain.as_deref(), Some("acme.example.com"));
    assert!(schema_exists(&t, "acme").await);
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM acme._sqlx_migrations ORDER BY version")
            .fetch_all(t.raw_pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    // The tenant's transaction sees its own table, first in the path, and the shared schema.
    let acme = std::sync::Arc::new(acme);
    let mut tx = t.begin(&acme).await.unwrap();
    sqlx::query("INSERT INTO notes (title, body) VALUES ('a', 'b')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(path, "acme, public");
    tx.commit().await.unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM acme.notes").await, 1);
}

#[tokio::test]
async fn failed_creation_leaves_no_schema_and_no_row() {
    let db = TestDb::new().await;
    let broken = MigrationSet::from_sql(&[
        (1, "ok", "CREATE TABLE notes (id INT)"),
        (2, "broken", "ALTER TABLE no_such_table ADD COLUMN x INT"),
    ]);
    let t = tenantry_with(&db, broken).await;
    let err = t
        .admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap_err();
    match &err {
        Error::Migration {
            schema,
            version,
            message,
            ..
        } => {
            // The error names the schema where the migration failed: the new tenant's, or the
            // template it is cloned from.
            assert!(
                schema == "acme" || schema.starts_with("tenantry_template"),
                "{schema}"
            );
            assert_eq!(*version, 2);
            assert!(message.contains("no_such_table"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(!schema_exists(&t, "acme").await);
    assert_eq!(count(&t, "SELECT count(*) FROM tenantry_tenants").await, 0);
    assert_eq!(count(&t, "SELECT count(*) FROM tenantry_domains").await, 0);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM tenantry_migration_ledger WHERE schema_name = 'acme'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn invalid_names_and_domains_are_refused_before_anything_runs() {
    let (_db, t) = with_tenants(&[]).await;
    for bad in [
        "Acme",
        "pg_x",
        "public",
        "information_schema",
        "a\"b",
        "a;drop",
        "",
        &"a".repeat(64),
    ] {
        let err = t
            .admin()
            .create_tenant(NewTenant::new(bad, "x.localhost"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidName(_)), "{bad:?}: {err:?}");
    }
    for bad in [
        "",
        "a b",
        "x..y",
        "-x.com",
        "a_b.com",
        "localhost",
        "1.2.3.4",
    ] {
        let err = t
            .admin()
            .create_tenant(NewTenant::new("acme", bad))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidName(_) | Error::InvalidDomain { .. } | Error::DomainIsPublic { .. }
            ),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(count(&t, "SELECT count(*) FROM tenantry_tenants").await, 0);
    assert!(!schema_exists(&t, "acme").await);
}

#[tokio::test]
async fn duplicates_conflict_and_keep_the_first() {
    let (_db, t) = with_tenants(&["acme"]).await;
    let same_schema = t
        .admin()
        .create_tenant(NewTenant::new("acme", "other.localhost"))
        .await
        .unwrap_err();
    assert!(
        matches!(&same_schema, Error::TenantNameTaken { schema } if schema == "acme"),
        "{same_schema:?}"
    );
    let same_domain = t
        .admin()
        .create_tenant(NewTenant::new("globex", "ACME.localhost"))
        .await
        .unwrap_err();
    assert!(
        matches!(&same_domain, Error::DomainTaken { domain } if domain == "acme.localhost"),
        "{same_domain:?}"
    );
    assert!(!schema_exists(&t, "globex").await);
    assert_eq!(t.admin().tenants().await.unwrap().len(), 1);
}
/// Each refusal is its own variant, naming what the caller gave; nothing is created or changed.
#[tokio::test]
async fn refusals_are_matchable_variants() {
    let (_db, t) = with_tenants(&["acme"]).await;
    let create = |new: NewTenant| t.admin().create_tenant(new);

    let err = create(NewTenant::new("b", "b.localhost").tenant_type("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTenantType { tenant_type } if tenant_type == "nope"),
        "{err:?}"
    );
    let err = create(NewTenant::new("b", "b.localhost").data(&[1, 2]).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TenantDataNotObject { found: "an array" }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "tenant data must be a JSON object, not an array"
    );
    let long = "x".repeat(tenantry_sqlx::MAX_DISPLAY_NAME_CHARS + 1);
    let err = create(NewTenant::new("b", "b.localhost").display_name(long))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DisplayNameTooLong {
                chars: 201,
                max: 200
            }
        ),
        "{err:?}"
    );
    let err = create(NewTenant::new("b", "b.localhost").display_name("a\0b"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DisplayNameControlCharacter { character: '\0' }),
        "{err:?}"
    );
    let err = create(NewTenant::new("b", "LocalHost:8000"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DomainIsPublic { domain } if domain == "localhost"),
        "{err:?}"
    );
    let err = create(NewTenant::new("b", "a b")).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidDomain { domain, .. } if domain == "a b"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), r#"domain "a b" is not a valid host name"#);
    assert!(!schema_exists(&t, "b").await);

    let err = t.admin().set_data("acme", &"plain").await.unwrap_err();
    assert!(
        matches!(err, Error::TenantDataNotObject { found: "a string" }),
        "{err:?}"
    );
    let err = t
        .admin()
        .set_data("nobody", &Billing::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TenantNotFound(s) if s == "nobody"),
        "{err:?}"
    );
    let err = t.admin().rename_tenant("acme", "acme").await.unwrap_err();
    assert!(
        matches!(&err, Error::RenameToSameName { schema } if schema == "acme"),
        "{err:?}"
    );
    for err in [
        t.admin().remove_domain("Nope.Localhost").await.unwrap_err(),
        t.admin()
            .set_primary_domain("nope.localhost")
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::DomainNotFound { domain } if domain == "nope.localhost"),
            "{err:?}"
        );
    }
    assert_eq!(t.admin().tenants().await.unwrap().len(), 1);
}
