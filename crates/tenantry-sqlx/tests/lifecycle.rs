//! Tenant life cycle against a real PostgreSQL: create, delete, rename, domains, status, data,
//! hooks, and atomicity (a failed create leaves no schema and no row).

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use tenantry_sqlx::{
    BoxError, Error, MigrationSet, NewTenant, SchemaOnDelete, Tenant, TenantHooks, TenantStatus,
    Tenantry,
};
use tenantry_testing::{NOTES_TABLE, TestDb};

fn notes_set() -> MigrationSet {
    MigrationSet::from_sql(&[
        (1, "notes", NOTES_TABLE),
        (
            2,
            "body",
            "ALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT ''",
        ),
    ])
}

async fn tenantry_with(db: &TestDb, set: MigrationSet) -> Tenantry {
    let t = Tenantry::builder()
        .tenant_migration_set("default", set)
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

async fn schema_exists(t: &Tenantry, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(t.raw_pool())
        .await
        .unwrap()
}

async fn count(t: &Tenantry, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.raw_pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn create_migrates_and_registers_the_tenant() {
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
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
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
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
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
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

#[tokio::test]
async fn delete_drops_or_keeps_the_schema() {
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
    t.admin()
        .create_tenant(NewTenant::new("globex", "globex.localhost"))
        .await
        .unwrap();
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
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
    t.admin()
        .create_tenant(NewTenant::new("globex", "globex.localhost"))
        .await
        .unwrap();
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
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
    t.admin()
        .create_tenant(NewTenant::new("globex", "globex.localhost"))
        .await
        .unwrap();
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

/// Each refusal is its own variant, naming what the caller gave; nothing is created or changed.
#[tokio::test]
async fn refusals_are_matchable_variants() {
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
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

#[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
struct Billing {
    plan: String,
    on_trial: bool,
}

#[tokio::test]
async fn application_fields_read_back_typed_and_status_changes() {
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
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
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.localhost"))
        .await
        .unwrap();
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
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
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
