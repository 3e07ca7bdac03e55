//! Fast provisioning: a tenant cloned from the template is the same schema as one migrated from
//! scratch, behaves like any other tenant afterwards, and creation stays atomic.

mod support;

use sqlx::PgConnection;
use tenantry_sqlx::{
    BoxError, Error, MigrateOptions, MigrationSet, NewTenant, Provision, Tenant, TenantHooks,
    Tenantry, async_trait,
};
use tenantry_testing::TestDb;

use support::{catalog_snapshot, demo_set_with, demo_tenantry};

async fn create(t: &Tenantry, schema: &str, provision: Provision) -> Tenant {
    t.admin()
        .create_tenant(
            NewTenant::new(schema, format!("{}.example.com", schema.replace('_', "-")))
                .provision(provision),
        )
        .await
        .unwrap_or_else(|e| panic!("create {schema}: {e}"))
}

async fn scalar_i64(t: &Tenantry, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.raw_pool())
        .await
        .expect(sql)
}

fn assert_same(a: &str, b: &str, left: &support::Snapshot, right: &support::Snapshot) {
    for (kind, rows) in left {
        let other = &right[kind];
        let only_left: Vec<_> = rows.iter().filter(|r| !other.contains(r)).collect();
        let only_right: Vec<_> = other.iter().filter(|r| !rows.contains(r)).collect();
        assert!(
            only_left.is_empty() && only_right.is_empty() && rows.len() == other.len(),
            "{kind} differ\nonly in {a}: {only_left:#?}\nonly in {b}: {only_right:#?}"
        );
    }
}

#[tokio::test]
async fn cloned_schema_equals_migrated_schema() {
    let db = TestDb::new().await;
    let t = demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    assert_eq!(
        t.fleet()
            .refresh_template("default")
            .await
            .expect("template"),
        Ok(())
    );

    create(&t, "cloned", Provision::Clone).await;
    create(&t, "migrated", Provision::Migrate).await;

    let cloned = catalog_snapshot(db.url(), "cloned").await;
    let migrated = catalog_snapshot(db.url(), "migrated").await;
    // The demo schema really uses every kind of object.
    let tables = cloned["relations"]
        .iter()
        .filter(|r| r.contains("kind=r"))
        .count();
    assert!(tables >= 30, "only {tables} tables");
    for kind in [
        "columns",
        "constraints",
        "indexes",
        "sequences",
        "views",
        "functions",
        "triggers",
        "comments",
        "data",
    ] {
        assert!(!cloned[kind].is_empty(), "no {kind} in the demo schema");
    }
    for needle in [
        "kind=m",                 // materialized view
        "EXCLUDE USING gist",     // exclusion constraint
        "REFERENCES countries",   // FK to the shared schema
        "WHERE (NOT archived)",   // partial index
        "lower(name)",            // expression index
        "identity=a",             // identity column
        "generated=s",            // generated column
        "nextval('teams_id_seq'", // serial
        "kind=p",                 // procedure
        "mood",                   // enum from the shared schema
    ] {
        assert!(
            cloned.values().flatten().any(|r| r.contains(needle)),
            "demo schema lacks {needle}"
        );
    }
    assert_same("cloned", "migrated", &cloned, &migrated);
}

#[tokio::test]
async fn clone_takes_later_migrations_and_template_is_rebuilt() {
    let db = TestDb::new().await;
    let v1 = demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    create(&v1, "zz_early", Provision::Auto).await;
    let fingerprint_v1 = v1
        .tenant_migration_set("default")
        .unwrap()
        .fingerprint()
        .to_owned();

    // Next release: one more migration.
    let set_v2 = demo_set_with(&[(
        6,
        "nickname",
        "ALTER TABLE users ADD COLUMN nickname TEXT NOT NULL DEFAULT '';",
    )])
    .await;
    let v2 = demo_tenantry(db.url(), set_v2.clone()).await;
    let (_, plan) = v2.fleet().plan_tenants(None, false).await.unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].pending_versions, vec![6]);
    let report = v2
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.results[0].result.as_ref().unwrap().applied, vec![6]);

    // A new tenant by clone: the template is rebuilt at the new fingerprint first.
    create(&v2, "zz_late", Provision::Clone).await;
    let template_fp: String = sqlx::query_scalar(
        "SELECT fingerprint FROM tenantry_migration_ledger WHERE schema_name = 'tenantry_template'",
    )
    .fetch_one(v2.raw_pool())
    .await
    .unwrap();
    assert_eq!(template_fp, set_v2.fingerprint());
    assert_ne!(template_fp, fingerprint_v1);
    // Migrated in two steps or cloned at v2: the same schema (`nickname` after `phone`).
    assert_same(
        "zz_early",
        "zz_late",
        &catalog_snapshot(db.url(), "zz_early").await,
        &catalog_snapshot(db.url(), "zz_late").await,
    );
    let (_, plan) = v2.fleet().plan_tenants(None, false).await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");
}

#[tokio::test]
async fn sequences_are_independent_between_clones() {
    let db = TestDb::new().await;
    let t = demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    for s in ["one", "two"] {
        create(&t, s, Provision::Clone).await;
    }
    sqlx::raw_sql(
        "INSERT INTO one.users (email) VALUES ('a@x.io'), ('b@x.io');
         SELECT nextval('one.invoice_number_seq'); SELECT nextval('one.invoice_number_seq');",
    )
    .execute(t.raw_pool())
    .await
    .unwrap();
    assert_eq!(
        scalar_i64(&t, "SELECT max(id) FROM one.users").await,
        2,
        "identity starts at 1 in a clone"
    );
    let first_in_two: i64 =
        sqlx::query_scalar("INSERT INTO two.users (email) VALUES ('c@x.io') RETURNING id")
            .fetch_one(t.raw_pool())
            .await
            .unwrap();
    assert_eq!(first_in_two, 1, "tenant two's identity did not move");
    // The template's sequence state (the migration called nextval once) is each clone's start.
    assert_eq!(
        scalar_i64(&t, "SELECT nextval('two.invoice_number_seq')").await,
        101
    );
    assert_eq!(
        scalar_i64(&t, "SELECT nextval('one.invoice_number_seq')").await,
        103
    );
    assert_eq!(
        scalar_i64(&t, "SELECT nextval('tenantry_template.invoice_number_seq')").await,
        101,
        "the template's sequence was untouched"
    );
}

/// Fails every creation from its `after_create` hook.
struct FailingSeed;

#[async_trait]
impl TenantHooks for FailingSeed {
    async fn after_create(&self, _t: &Tenant, conn: &mut PgConnection) -> Result<(), BoxError> {
        // The cloned schema is visible to the hook, inside the creation transaction.
        sqlx::query("INSERT INTO settings (key, value) VALUES ('seeded', 'true')")
            .execute(&mut *conn)
            .await?;
        Err("seed failed".into())
    }
}

#[tokio::test]
async fn failed_clone_creation_leaves_nothing() {
    let db = TestDb::new().await;
    demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    let t = Tenantry::builder()
        .tenant_migration_set("default", demo_set_with(&[]).await)
        .hooks(FailingSeed)
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    let err = t
        .admin()
        .create_tenant(NewTenant::new("doomed", "doomed.example.com").provision(Provision::Clone))
        .await
        .expect_err("hook fails");
    assert!(
        matches!(
            err,
            Error::Hook {
                hook: "after_create",
                ..
            }
        ),
        "{err}"
    );
    let leftovers = scalar_i64(
        &t,
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'doomed')
              + (SELECT count(*) FROM tenantry_tenants)
              + (SELECT count(*) FROM tenantry_domains)
              + (SELECT count(*) FROM tenantry_migration_ledger WHERE schema_name = 'doomed')",
    )
    .await;
    assert_eq!(leftovers, 0);
    // The template survived and still clones.
    let ok = demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    create(&ok, "fine", Provision::Clone).await;
}

#[tokio::test]
async fn unsupported_template_falls_back_to_migrating() {
    let db = TestDb::new().await;
    let set = MigrationSet::from_sql(&[(
        1,
        "local enum",
        "CREATE TYPE status AS ENUM ('a', 'b'); CREATE TABLE things (s status);",
    )]);
    let t = demo_tenantry(db.url(), set).await;
    let why = t
        .fleet()
        .refresh_template("default")
        .await
        .unwrap()
        .unwrap_err();
    assert!(why.contains("type status"), "{why}");
    create(&t, "auto", Provision::Auto).await;
    assert_eq!(scalar_i64(&t, "SELECT count(*) FROM auto.things").await, 0);
    let err = t
        .admin()
        .create_tenant(NewTenant::new("forced", "forced.example.com").provision(Provision::Clone))
        .await
        .expect_err("clone refused");
    assert!(
        matches!(&err, Error::CannotClone { tenant_type, reason }
            if tenant_type == "default" && reason.contains("type status")),
        "{err}"
    );
    // Template names are reserved for tenants.
    let err = t
        .admin()
        .create_tenant(NewTenant::new("tenantry_template", "tpl.example.com"))
        .await
        .expect_err("reserved");
    assert!(matches!(err, Error::InvalidName(_)), "{err}");
}

#[tokio::test]
async fn spares_are_claimed_by_sign_ups_and_equal_migrated_schemas() {
    let db = TestDb::new().await;
    let t = demo_tenantry(db.url(), demo_set_with(&[]).await).await;
    assert_eq!(t.fleet().fill_spares("default", 2).await.unwrap(), 2);
    assert_eq!(
        t.fleet().fill_spares("default", 2).await.unwrap(),
        0,
        "already full"
    );
    let spares = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry\\_spare\\_%'";
    assert_eq!(scalar_i64(&t, spares).await, 2);

    create(&t, "from_spare", Provision::Auto).await;
    assert_eq!(scalar_i64(&t, spares).await, 1, "one spare was taken");
    create(&t, "migrated", Provision::Migrate).await;
    assert_same(
        "from_spare",
        "migrated",
        &catalog_snapshot(db.url(), "from_spare").await,
        &catalog_snapshot(db.url(), "migrated").await,
    );
    let (_, plan) = t.fleet().plan_tenants(None, false).await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");

    // After a migration change the remaining spare is stale: dropped, never claimed.
    let v2 = demo_tenantry(
        db.url(),
        demo_set_with(&[(6, "nickname", "ALTER TABLE users ADD COLUMN nickname TEXT;")]).await,
    )
    .await;
    create(&v2, "after_change", Provision::Auto).await;
    assert_eq!(scalar_i64(&t, spares).await, 1, "stale spare not claimed");
    assert_eq!(v2.fleet().fill_spares("default", 1).await.unwrap(), 1);
    assert_eq!(scalar_i64(&t, spares).await, 1, "stale spare replaced");
    assert_eq!(
        scalar_i64(
            &t,
            "SELECT count(*) FROM after_change.users WHERE nickname IS NULL"
        )
        .await,
        0
    );
    let err = t
        .admin()
        .create_tenant(NewTenant::new("tenantry_spare_x", "x.example.com"))
        .await
        .expect_err("reserved prefix");
    assert!(matches!(err, Error::InvalidName(_)), "{err}");
}
