//! Fleet migrations on Citus: 200 tenant schemas spread over 2 workers migrated in parallel,
//! statement by statement; a schema whose migration fails is reported by name and left
//! untouched, the others are migrated, and the next run resumes with the failed one only.

mod citus_support;

use citus_support::{TENANT_V1, builder, create_many, start, tenant_set};
use tenantry_sqlx::{Error, MigrateOptions, MigrationSet};

const V2: &str = "CREATE TABLE extra (id bigint PRIMARY KEY, note text);\n\
                  CREATE INDEX extra_note ON extra (note);\n\
                  INSERT INTO extra VALUES (1, 'a;b');";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tenants_on_two_workers_migrate_and_a_failure_names_its_schema() {
    let Some((citus, t)) = start(tenant_set()).await else {
        return;
    };
    create_many(&t, "f", 200, 4).await;
    let nodes = t.placement().nodes().await.unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.tenants).sum::<i64>(),
        200,
        "{nodes:?}"
    );
    assert!(nodes[1].tenants > 0 && nodes[2].tenants > 0, "{nodes:?}");

    // One schema already has a table the new migration creates: its migration fails there.
    sqlx::raw_sql("CREATE TABLE f17.extra (other int)")
        .execute(t.raw_pool())
        .await
        .unwrap();
    let v2 = MigrationSet::from_sql(&[(1, "notes", TENANT_V1), (2, "extra", V2)]);
    let t2 = builder(v2.clone()).connect(&citus.url()).await.unwrap();
    let report = t2
        .fleet()
        .migrate_tenants(MigrateOptions {
            jobs: 4,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.pending, 200);
    let failures: Vec<(&str, &Error)> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "f17");
    assert!(
        matches!(failures[0].1, Error::Migration { schema, version: 2, .. } if schema == "f17"),
        "{}",
        failures[0].1
    );
    assert_eq!(report.migrated(), 199);

    // Migrated: 199 new `extra` tables (distributed, one row each) besides f17's own.
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM citus_tables WHERE table_name::text LIKE 'f%.extra'",
    )
    .fetch_one(t.raw_pool())
    .await
    .unwrap();
    assert_eq!(tables, 200);
    let row: String = sqlx::query_scalar("SELECT note FROM f123.extra")
        .fetch_one(t.raw_pool())
        .await
        .unwrap();
    assert_eq!(row, "a;b");
    // f17 untouched: its own table as it was, version 2 not recorded.
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = 'f17' AND table_name = 'extra'",
    )
    .fetch_all(t.raw_pool())
    .await
    .unwrap();
    assert_eq!(cols, ["other"]);
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM f17._sqlx_migrations ORDER BY 1")
            .fetch_all(t.raw_pool())
            .await
            .unwrap();
    assert_eq!(versions, [1]);

    // Fixed by hand, the next run opens f17 only.
    sqlx::raw_sql("DROP TABLE f17.extra")
        .execute(t.raw_pool())
        .await
        .unwrap();
    let report = t2
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!(report.pending, 1);
    assert!(
        report.is_ok(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(report.migrated(), 1);
}
