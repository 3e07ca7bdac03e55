//! Citus mode on a real cluster (coordinator + 2 workers): tenant schemas are distributed and
//! spread over both workers, nothing shared is, migrations with several statements apply,
//! isolation holds, the life cycle works (another instance hears it through LISTEN/NOTIFY),
//! and what Citus mode refuses is refused clearly.

mod citus_support;

use citus_support::{create, create_many, port_of, start, tenant_set};
use std::time::Duration;

use tenantry_sqlx::{Error, NewTenant, Provision, Resolution, SchemaOnDelete, TenantStatus};
use tenantry_testing::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_schemas_are_distributed_over_both_workers_and_nothing_shared_is() {
    let Some((citus, t)) = start(tenant_set()).await else {
        return;
    };
    create_many(&t, "t", 8, 2).await;
    let pool = t.raw_pool();

    // Every tenant schema is a distributed schema; the shared ones are not.
    let distributed: Vec<String> =
        sqlx::query_scalar("SELECT schema_name::text FROM citus_schemas ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    let expected: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    assert_eq!(distributed, expected, "only tenant schemas are distributed");
    // `plans` is a reference table; the registry stays local to the coordinator.
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, citus_table_type FROM citus_tables \
         WHERE table_name::text NOT LIKE 't%.%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(kinds, [("plans".to_owned(), "reference".to_owned())]);

    // Spread over both workers, none on the coordinator.
    let nodes = t.placement().nodes().await.unwrap();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(nodes[0].role, "coordinator");
    assert_eq!(nodes[0].tenants, 0, "{nodes:?}");
    for w in &nodes[1..] {
        assert!(w.tenants > 0, "a worker holds no tenant: {nodes:?}");
        assert!(w.bytes > 0, "{nodes:?}");
    }
    assert_eq!(nodes.iter().map(|n| n.tenants).sum::<i64>(), 8);
    let ports = citus.worker_ports();
    for i in 0..8 {
        assert!(ports.contains(&port_of(&t, &format!("t{i}")).await));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_migrations_and_the_life_cycle_work_on_citus() {
    let Some((_citus, t)) = start(tenant_set()).await else {
        return;
    };
    let a = std::sync::Arc::new(create(&t, "alpha").await);
    let b = std::sync::Arc::new(create(&t, "beta").await);
    for (tenant, n) in [(&a, 3), (&b, 5)] {
        let mut tx = t.begin(tenant).await.unwrap();
        for i in 0..n {
            sqlx::query("INSERT INTO notes (title) VALUES ($1)")
                .bind(format!("{} {i}", tenant.schema))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    for (tenant, n) in [(&a, 3i64), (&b, 5)] {
        let mut tx = t.begin(tenant).await.unwrap();
        // The tenant's rows only, joined with the shared reference table, through the tenant's
        // PL/pgSQL function.
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT n.title, p.name, note_label(n.title) FROM notes n JOIN plans p ON p.code = n.plan",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(rows.len() as i64, n);
        assert!(rows.iter().all(|(title, plan, stamp)| {
            title.starts_with(tenant.schema.as_str())
                && plan == "Free; the first"
                && *stamp == format!("stamped's;{title}")
        }));
        // The other tenant's table is not on this search path.
        let other = if tenant.schema == "alpha" {
            "beta"
        } else {
            "alpha"
        };
        let own: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            own, n,
            "{} sees only its rows ({other} has others)",
            tenant.schema
        );
        tx.commit().await.unwrap();
    }

    // Provisioning: cloning is refused with its reason; Auto migrated (above).
    let err = t
        .admin()
        .create_tenant(NewTenant::new("gamma", "gamma.test").provision(Provision::Clone))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CannotClone { .. }), "{err}");
    assert!(matches!(
        t.fleet().fill_spares("default", 1).await.unwrap_err(),
        Error::CannotClone { .. }
    ));
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'gamma')")
            .fetch_one(t.raw_pool())
            .await
            .unwrap();
    assert!(!exists, "a refused creation leaves nothing behind");

    // A failing creation (bad domain taken) leaves no distributed schema behind.
    let err = t
        .admin()
        .create_tenant(NewTenant::new("delta", "alpha.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DomainTaken { .. }), "{err}");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM citus_schemas WHERE schema_name::text = 'delta'")
            .fetch_one(t.raw_pool())
            .await
            .unwrap();
    assert_eq!(left, 0);

    // Another instance (its own handle, listening): it resolves beta, and hears the rename.
    let other = citus_support::builder(tenant_set())
        .connect(&_citus.url())
        .await
        .unwrap();
    let resolved = |t: tenantry_sqlx::Tenantry| async move {
        match t.resolve_host("beta.test").await {
            Ok(Resolution::Tenant(tenant)) => Some(tenant.schema.clone()),
            _ => None,
        }
    };
    assert_eq!(resolved(other.clone()).await.as_deref(), Some("beta"));

    // Rename, domains, status, delete.
    let renamed = t.admin().rename_tenant("beta", "beta2").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), async || {
            resolved(other.clone()).await.as_deref() == Some("beta2")
        })
        .await,
        "the other instance's cache was invalidated by NOTIFY"
    );
    assert_eq!(renamed.schema, "beta2");
    let dist: Vec<String> =
        sqlx::query_scalar("SELECT schema_name::text FROM citus_schemas ORDER BY 1")
            .fetch_all(t.raw_pool())
            .await
            .unwrap();
    assert_eq!(dist, ["alpha", "beta2"]);
    let beta2 = std::sync::Arc::new(t.admin().tenant("beta2").await.unwrap());
    let mut tx = t.begin(&beta2).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 5, "the rows followed the rename");
    tx.commit().await.unwrap();
    t.admin()
        .add_domain("beta2", "www.beta2.test", false)
        .await
        .unwrap();
    assert_eq!(t.admin().domains("beta2").await.unwrap().len(), 2);
    t.admin()
        .set_status("beta2", TenantStatus::Suspended)
        .await
        .unwrap();
    let beta2 = std::sync::Arc::new(t.admin().tenant("beta2").await.unwrap());
    assert!(
        t.begin(&beta2).await.is_err(),
        "a suspended tenant is refused"
    );
    t.admin()
        .delete_tenant("beta2", SchemaOnDelete::Drop)
        .await
        .unwrap();
    let dist: Vec<String> =
        sqlx::query_scalar("SELECT schema_name::text FROM citus_schemas ORDER BY 1")
            .fetch_all(t.raw_pool())
            .await
            .unwrap();
    assert_eq!(dist, ["alpha"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_mode_and_placement_misuse_are_refused_clearly() {
    let Some((citus, t)) = start(tenant_set()).await else {
        return;
    };
    let err = citus_support::builder(tenant_set())
        .tenant_roles("tr_")
        .connect(&citus.url())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CitusUnsupported { .. }),
        "role mode on Citus: {err}"
    );
    create(&t, "solo").await;
    let err = t
        .placement()
        .move_tenant("solo", "127.0.0.1", 1, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NodeNotFound { .. }), "{err}");
    let err = t
        .placement()
        .move_tenant("nosuch", "127.0.0.1", citus.worker_ports()[0], |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TenantNotFound(_)), "{err}");
    // Moving to where it already is: nothing to do.
    let here = port_of(&t, "solo").await;
    let report = t
        .placement()
        .move_tenant("solo", "127.0.0.1", here, |_| {})
        .await
        .unwrap();
    assert!(!report.moved);
}

/// Two instances starting together on a fresh cluster both make `plans` a reference table (or
/// find it made): before a lock serialised it, the second one's `create_reference_table`
/// failed with "already distributed" and that instance did not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_both_start() {
    let Some(citus) = tenantry_testing::CitusCluster::start(2).await else {
        tenantry_testing::skip(tenantry_testing::CITUS_INSTALL_HINT);
        return;
    };
    let url = citus.url();
    let start_one = || async {
        let t = citus_support::builder(tenant_set())
            .connect(&url)
            .await
            .expect("connect");
        t.fleet().migrate_shared().await.map(|_| t)
    };
    let (a, b) = tokio::join!(start_one(), start_one());
    let a = a.expect("the first instance starts");
    b.expect("the second instance starts");
    let kind: String = sqlx::query_scalar(
        "SELECT citus_table_type FROM citus_tables WHERE table_name::text = 'plans'",
    )
    .fetch_one(a.raw_pool())
    .await
    .unwrap();
    assert_eq!(kind, "reference");
}
