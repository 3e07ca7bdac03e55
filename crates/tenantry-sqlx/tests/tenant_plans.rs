//! Per-tenant prepared statements: queries through `&mut TenantTx` are tagged with the tenant
//! (within the budget), so each tenant keeps its own plan; the answers are each tenant's own
//! whatever the tagging, and the budget bounds how many pairs get tagged.

mod resolve_support;

use std::sync::Arc;
use std::time::Duration;

use resolve_support::wire::WireCounter;
use resolve_support::{tenant_migrations, tenant_with_a_note};
use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{Tenant, Tenantry};
use tenantry_testing::TestDb;

const TITLES: &str = "SELECT title FROM notes WHERE id > $1 ORDER BY id";

async fn handle(url: &str, budget: usize) -> Tenantry {
    let t = Tenantry::builder()
        .tenant_migration_set("default", tenant_migrations())
        .tenant_plans(budget)
        .pool_options(
            PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10)),
        )
        .listen_for_changes(false)
        .connect(url)
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

async fn tenants(t: &Tenantry, names: &[&str]) -> Vec<Arc<Tenant>> {
    let mut out = Vec::new();
    for name in names {
        out.push(tenant_with_a_note(t, name, format!("{name}.example.com")).await);
    }
    out
}

/// Reads the tenant's titles through the tagging executor (`&mut tx`).
async fn titles(t: &Tenantry, tenant: &Arc<Tenant>) -> Vec<String> {
    let mut tx = t.begin(tenant).await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar(TITLES)
        .bind(0_i64)
        .fetch_all(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

#[tokio::test]
async fn each_tenant_gets_its_own_statement_and_its_own_rows() {
    let db = TestDb::new().await;
    let wire = WireCounter::start(db.url()).await;
    let t = handle(&wire.url(db.url()), 16).await;
    let all = tenants(&t, &["acme", "beta", "gamma"]).await;
    wire.reset();
    // One connection, tenants interleaved: every switch would re-plan a shared statement.
    for round in 0..3 {
        for tenant in &all {
            assert_eq!(
                titles(&t, tenant).await,
                vec![format!("note of {}", tenant.schema)],
                "round {round}"
            );
        }
    }
    for tenant in &all {
        let tag = format!("/* tenantry:{} */", tenant.schema);
        assert_eq!(
            wire.executions_of(&tag),
            3,
            "{tag}: three executions of the tenant's own statement"
        );
    }
    // Each (tenant, statement) pair was prepared once: three Parse messages for three tenants.
    let parses = wire
        .bursts()
        .iter()
        .flat_map(|b| b.messages.clone())
        .filter(|m| *m == 'P')
        .count();
    assert_eq!(parses, 3, "one prepare per tenant, then reuse");
    assert_eq!(t.stats().await.statement_budget_admitted, 3);
}

#[tokio::test]
async fn the_budget_bounds_tagging_and_untagged_queries_stay_correct() {
    let db = TestDb::new().await;
    let wire = WireCounter::start(db.url()).await;
    let t = handle(&wire.url(db.url()), 1).await;
    let all = tenants(&t, &["acme", "beta", "gamma"]).await;
    wire.reset();
    for _ in 0..2 {
        for tenant in &all {
            assert_eq!(
                titles(&t, tenant).await,
                vec![format!("note of {}", tenant.schema)]
            );
        }
    }
    // The first pair seen takes the only slot; the others share the untagged statement.
    assert_eq!(t.stats().await.statement_budget_admitted, 1);
    assert_eq!(wire.executions_of("/* tenantry:acme */"), 2);
    assert_eq!(wire.executions_of("/* tenantry:beta */"), 0);
    assert_eq!(wire.executions_of("/* tenantry:gamma */"), 0);

    // Budget 0: nothing is tagged.
    let off = handle(&wire.url(db.url()), 0).await;
    wire.reset();
    for tenant in &all {
        assert_eq!(
            titles(&off, tenant).await,
            vec![format!("note of {}", tenant.schema)]
        );
    }
    assert_eq!(wire.executions_of("/* tenantry:"), 0);
    assert_eq!(off.stats().await.statement_budget_admitted, 0);
}

#[tokio::test]
async fn simple_and_one_shot_queries_are_not_tagged() {
    let db = TestDb::new().await;
    let wire = WireCounter::start(db.url()).await;
    let t = handle(&wire.url(db.url()), 16).await;
    let all = tenants(&t, &["acme"]).await;
    wire.reset();
    let mut tx = t.begin(&all[0]).await.unwrap();
    // No arguments: simple protocol, nothing prepared, nothing to tag.
    sqlx::Executor::execute(&mut tx, "SELECT 1").await.unwrap();
    // Not persistent: an unnamed statement, not kept, nothing to tag.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes WHERE id > $1")
        .bind(0_i64)
        .persistent(false)
        .fetch_one(&mut tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
    assert_eq!(wire.executions_of("/* tenantry:"), 0);
    assert_eq!(t.stats().await.statement_budget_admitted, 0);
}
