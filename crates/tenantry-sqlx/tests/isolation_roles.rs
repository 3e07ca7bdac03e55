//! Database-enforced isolation (`TenantryBuilder::tenant_roles`): the attack is hand-written,
//! schema-qualified SQL inside tenant A's transaction reading tenant B's table.
//!
//! * mode off: PostgreSQL serves it. `search_path` is a default, not a security boundary.
//! * mode on: refused by PostgreSQL (42501), also through `session`, also after rename; roles
//!   live and die with their tenant.
//!
//! The cost of the mode is printed (`--nocapture`): N × (begin + select + commit), with and
//! without roles, in one run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{Error, MigrationSet, NewTenant, SchemaOnDelete, Tenant, Tenantry};
use tenantry_testing::TestDb;

const SHARED: &str =
    "CREATE TABLE plans (code TEXT PRIMARY KEY); INSERT INTO plans VALUES ('free');";
const TENANT: &str = "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body TEXT NOT NULL); \
                      CREATE TABLE counters (id SERIAL PRIMARY KEY, n INT NOT NULL DEFAULT 0);";

async fn tenantry(db: &TestDb, roles: Option<&str>) -> Tenantry {
    let mut b = Tenantry::builder()
        .shared_migration_set(MigrationSet::from_sql(&[(1, "plans", SHARED)]))
        .tenant_migration_set("default", MigrationSet::from_sql(&[(1, "notes", TENANT)]))
        .pool_options(
            PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10)),
        )
        .listen_for_changes(false);
    if let Some(prefix) = roles {
        b = b.tenant_roles(prefix);
    }
    let t = b.connect(db.url()).await.unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

async fn tenant(t: &Tenantry, schema: &str) -> Arc<Tenant> {
    let tenant = t
        .admin()
        .create_tenant(NewTenant::new(schema, format!("{schema}.test")))
        .await
        .unwrap();
    let mut tx = t.begin(&Arc::new(tenant.clone())).await.unwrap();
    sqlx::query("INSERT INTO notes (body) VALUES ($1)")
        .bind(format!("secret of {schema}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Arc::new(tenant)
}

/// The attack: tenant A's transaction, schema-qualified read of B's notes.
async fn attack(t: &Tenantry, a: &Arc<Tenant>, b_schema: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = t.begin(a).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT body FROM {b_schema}.notes"
    )))
    .fetch_all(&mut *tx)
    .await
}

/// Roles are cluster-wide: a prefix unique to the test database (its roles are dropped with it).
fn prefix(db: &TestDb) -> String {
    db.role_prefix()
}

#[tokio::test]
async fn without_roles_search_path_is_no_security_boundary() {
    let db = TestDb::new().await;
    let t = tenantry(&db, None).await;
    let a = tenant(&t, "alpha").await;
    tenant(&t, "beta").await;
    let stolen = attack(&t, &a, "beta")
        .await
        .expect("mode off: PostgreSQL serves the qualified read");
    assert_eq!(stolen, vec!["secret of beta".to_owned()]);
    t.close().await;
}

#[tokio::test]
async fn with_roles_postgres_refuses_another_tenants_schema() {
    let db = TestDb::new().await;
    let prefix = prefix(&db);
    let t = tenantry(&db, Some(&prefix)).await;
    let a = tenant(&t, "alpha").await;
    let b = tenant(&t, "beta").await;

    // The attack, from both sides.
    for (me, other) in [(&a, "beta"), (&b, "alpha")] {
        match attack(&t, me, other).await {
            Err(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some("42501"), "{e}"),
            other => panic!("expected permission denied, got {other:?}"),
        }
    }
    // Also the registry and the other tenant's sequence/functions are off limits.
    let mut tx = t.begin(&a).await.unwrap();
    let err = sqlx::query("SELECT * FROM public.tenantry_tenants")
        .fetch_all(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);

    // Normal work still works: own tables (incl. serial sequences), shared table granted by
    // the application to the group role, who am I.
    let group = t.admin().tenant_group_role().unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "GRANT SELECT ON public.plans TO \"{group}\""
    )))
    .execute(t.raw_pool())
    .await
    .unwrap();
    let mut tx = t.begin(&a).await.unwrap();
    let (user, notes, plan): (String, i64, String) = sqlx::query_as(
        "SELECT current_user::text, (SELECT count(*) FROM notes), (SELECT code FROM plans LIMIT 1)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(user, t.admin().tenant_role("alpha").unwrap());
    assert_eq!((notes, plan.as_str()), (1, "free"));
    sqlx::query("INSERT INTO counters DEFAULT VALUES")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Session-scoped access runs as the role too, and the role is reset on release.
    let mut conn = t.session(&a).await.unwrap();
    let err = sqlx::query("SELECT * FROM beta.notes")
        .fetch_all(&mut *conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    conn.release().await.unwrap();

    // A table added later by a migration (run as the connecting user) is usable by the role.
    sqlx::raw_sql("CREATE TABLE alpha.later (x INT); INSERT INTO alpha.later VALUES (1)")
        .execute(t.raw_pool())
        .await
        .unwrap();
    let mut tx = t.begin(&a).await.unwrap();
    let x: i32 = sqlx::query_scalar("SELECT x FROM later")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(x, 1);
    drop(tx);

    // Rename moves the role with the schema; delete drops it.
    let renamed = Arc::new(t.admin().rename_tenant("alpha", "gamma").await.unwrap());
    let roles = |names: Vec<String>| async {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1",
        )
        .bind(names)
        .fetch_all(t.raw_pool())
        .await
        .unwrap();
        found
    };
    let alpha_role = format!("{prefix}alpha");
    let gamma_role = format!("{prefix}gamma");
    assert_eq!(
        roles(vec![alpha_role.clone(), gamma_role.clone()]).await,
        vec![gamma_role.clone()]
    );
    match attack(&t, &renamed, "beta").await {
        Err(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some("42501")),
        other => panic!("expected permission denied after rename, got {other:?}"),
    }
    t.admin()
        .delete_tenant("gamma", SchemaOnDelete::Drop)
        .await
        .unwrap();
    t.admin()
        .delete_tenant("beta", SchemaOnDelete::Keep)
        .await
        .unwrap();
    assert!(
        roles(vec![gamma_role, format!("{prefix}beta")])
            .await
            .is_empty()
    );
    // A failed creation (duplicate domain) leaves no role behind.
    t.admin()
        .create_tenant(NewTenant::new("delta", "delta.test"))
        .await
        .unwrap();
    assert!(matches!(
        t.admin().create_tenant(NewTenant::new("epsilon", "delta.test"))
            .await,
        Err(Error::DomainTaken { domain }) if domain == "delta.test"
    ));
    assert!(roles(vec![format!("{prefix}epsilon")]).await.is_empty());
    t.admin()
        .delete_tenant("delta", SchemaOnDelete::Drop)
        .await
        .unwrap();
    t.close().await;
    drop_group(&prefix).await;
}

/// Roles are cluster-wide: remove the group role the test created.
async fn drop_group(prefix: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&tenantry_testing::admin_url())
        .await
        .unwrap();
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS \"{prefix}all-tenants\""
    )))
    .execute(&mut admin)
    .await;
}

#[tokio::test]
async fn role_mode_cost() {
    const N: u32 = 500;
    let db_plain = TestDb::new().await;
    let db_roles = TestDb::new().await;
    let prefix = prefix(&db_roles);
    let plain = tenantry(&db_plain, None).await;
    let roles = tenantry(&db_roles, Some(&prefix)).await;
    let a_plain = tenant(&plain, "alpha").await;
    let a_roles = tenant(&roles, "alpha").await;
    async fn lap(t: &Tenantry, a: &Arc<Tenant>) -> Duration {
        let start = Instant::now();
        for _ in 0..N {
            let mut tx = t.begin(a).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            assert_eq!(n, 1);
            tx.commit().await.unwrap();
        }
        start.elapsed()
    }
    // Warm up, then alternate to share the machine's noise.
    lap(&plain, &a_plain).await;
    lap(&roles, &a_roles).await;
    let (mut p, mut r) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        p += lap(&plain, &a_plain).await;
        r += lap(&roles, &a_roles).await;
    }
    eprintln!(
        "[role cost] {} x (begin + select + commit): search_path only {:.1} µs/tx, with SET LOCAL ROLE {:.1} µs/tx, ratio {:.3}",
        3 * N,
        p.as_secs_f64() * 1e6 / f64::from(3 * N),
        r.as_secs_f64() * 1e6 / f64::from(3 * N),
        r.as_secs_f64() / p.as_secs_f64()
    );
    roles
        .admin()
        .delete_tenant("alpha", SchemaOnDelete::Drop)
        .await
        .unwrap();
    plain.close().await;
    roles.close().await;
    drop_group(&prefix).await;
}
