//! Fleet migration guarantees: concurrent runs never apply a migration twice nor deadlock; a run
//! killed half way leaves each schema fully migrated or untouched and the next run resumes;
//! failures name the schema, the migration and PostgreSQL's error; `fail_fast` stops early.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tenantry_sqlx::{Error, MigrateOptions, MigrationSet, NewTenant, Tenantry};
use tenantry_testing::TestDb;

const V1: (i64, &str, &str) = (
    1,
    "items",
    "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT);",
);

async fn handle(url: &str, list: &[(i64, &'static str, &'static str)]) -> Tenantry {
    Tenantry::builder()
        .tenant_migration_set("default", MigrationSet::from_sql(list))
        .listen_for_changes(false)
        .connect(url)
        .await
        .expect("connect")
}

/// A database with `n` tenants `s000..` at V1, and a shared table recording applications.
async fn fleet(n: usize) -> (TestDb, Vec<String>) {
    let db = TestDb::new().await;
    let t = handle(db.url(), &[V1]).await;
    t.fleet().migrate_shared().await.unwrap();
    sqlx::query("CREATE TABLE public.applied (schema_name TEXT NOT NULL)")
        .execute(t.raw_pool())
        .await
        .unwrap();
    let mut schemas = Vec::new();
    for i in 0..n {
        let s = format!("s{i:03}");
        t.admin()
            .create_tenant(NewTenant::new(&s, format!("{s}.example.com")))
            .await
            .unwrap();
        schemas.push(s);
    }
    t.close().await;
    (db, schemas)
}

async fn count(t: &Tenantry, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.raw_pool())
        .await
        .expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_apply_each_migration_once() {
    let (db, schemas) = fleet(24).await;
    let v2 = (
        2,
        "record",
        "INSERT INTO public.applied VALUES (current_schema()); ALTER TABLE items ADD COLUMN note TEXT;",
    );
    let a = handle(db.url(), &[V1, v2]).await;
    let b = handle(db.url(), &[V1, v2]).await;
    let opts = MigrateOptions {
        jobs: 4,
        ..MigrateOptions::default()
    };
    let (ra, rb) = tokio::join!(
        a.fleet().migrate_tenants(opts.clone()),
        b.fleet().migrate_tenants(opts)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
    // Each schema was migrated by exactly one of the runs; the other found it done.
    assert_eq!(ra.migrated() + rb.migrated(), schemas.len());
    assert_eq!(
        count(&a, "SELECT count(DISTINCT schema_name) FROM public.applied").await,
        24
    );
    assert_eq!(count(&a, "SELECT count(*) FROM public.applied").await, 24);
    let (_, plan) = a.fleet().plan_tenants(None, false).await.unwrap();
    assert!(plan.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_leaves_whole_schemas_and_next_run_resumes() {
    let (db, schemas) = fleet(30).await;
    let v2 = (
        2,
        "slow",
        "ALTER TABLE items ADD COLUMN note TEXT; SELECT pg_sleep(0.05); \
         INSERT INTO public.applied VALUES (current_schema());",
    );
    let t = handle(db.url(), &[V1, v2]).await;
    let finished = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let opts = MigrateOptions {
        jobs: 3,
        on_schema: Some({
            let finished = Arc::clone(&finished);
            let notify = Arc::clone(&notify);
            Arc::new(move |_| {
                if finished.fetch_add(1, Ordering::SeqCst) + 1 >= 6 {
                    notify.notify_one();
                }
            })
        }),
        ..MigrateOptions::default()
    };
    let run = {
        let t = t.clone();
        tokio::spawn(async move { t.fleet().migrate_tenants(opts).await })
    };
    notify.notified().await;
    run.abort(); // killed with migrations in flight
    assert!(run.await.unwrap_err().is_cancelled());
    t.close().await;

    let t = handle(db.url(), &[V1, v2]).await;
    let fingerprint = t
        .tenant_migration_set("default")
        .unwrap()
        .fingerprint()
        .to_owned();
    let mut done = 0;
    for s in &schemas {
        let has_column: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'note')",
        )
        .bind(s)
        .fetch_one(t.raw_pool())
        .await
        .unwrap();
        let history: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{s}\"._sqlx_migrations WHERE version = 2"
        )))
        .fetch_one(t.raw_pool())
        .await
        .unwrap();
        let ledger_current: bool = sqlx::query_scalar(
            "SELECT fingerprint = $2 FROM tenantry_migration_ledger WHERE schema_name = $1",
        )
        .bind(s)
        .bind(&fingerprint)
        .fetch_one(t.raw_pool())
        .await
        .unwrap();
        // All or nothing, and the ledger tells the truth.
        assert_eq!(has_column, history == 1, "{s}");
        assert_eq!(has_column, ledger_current, "{s}");
        done += usize::from(has_column);
    }
    assert!(
        done >= 6 && done < schemas.len(),
        "{done} schemas migrated before the kill"
    );

    let (_, plan) = t.fleet().plan_tenants(None, false).await.unwrap();
    assert_eq!(plan.len(), schemas.len() - done);
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        report.pending,
        schemas.len() - done,
        "the rerun opens only the rest"
    );
    assert_eq!(report.migrated(), schemas.len() - done);
    assert_eq!(count(&t, "SELECT count(*) FROM public.applied").await, 30);
}

#[tokio::test]
async fn failures_name_schema_migration_and_postgres_error() {
    let (db, _) = fleet(3).await;
    let t = handle(db.url(), &[V1]).await;
    sqlx::query("CREATE TABLE s001.extra (id INT)")
        .execute(t.raw_pool())
        .await
        .unwrap();
    let v2 = (2, "extra", "CREATE TABLE extra (id INT PRIMARY KEY);");
    let t = handle(db.url(), &[V1, v2]).await;
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.migrated(), 2);
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    let (schema, err) = failures[0];
    assert_eq!(schema, "s001");
    match err {
        Error::Migration {
            schema,
            version,
            description,
            message,
        } => {
            assert_eq!(
                (schema.as_str(), *version, description.as_str()),
                ("s001", 2, "extra")
            );
            assert!(
                message.contains("already exists") && message.contains("42P07"),
                "{message}"
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("s001") && text.contains("migration 2"),
        "{text}"
    );
    // The failed schema is untouched and still pending.
    let (_, plan) = t.fleet().plan_tenants(None, false).await.unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].schema, "s001");
    assert_eq!(plan[0].pending_versions, vec![2]);
}

#[tokio::test]
async fn fail_fast_stops_after_the_first_failure() {
    let (db, schemas) = fleet(12).await;
    let t = handle(db.url(), &[V1, (2, "boom", "SELECT 1 / 0;")]).await;
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions {
            jobs: 1,
            fail_fast: true,
            ..MigrateOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.results.len(), 1, "{report:?}");
    assert_eq!(report.skipped.len(), schemas.len() - 1);
    assert!(!report.is_ok());
    let (_, err) = report.failures().next().unwrap();
    assert!(err.to_string().contains("division by zero"), "{err}");

    // Without fail_fast every schema is attempted and reported.
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!(report.failures().count(), schemas.len());
    assert!(report.skipped.is_empty());
}

/// A migration that records, inside each schema's transaction, the commit mode in force and the
/// WAL insert position (the schema's commit record comes after it).
const V2_RECORD_COMMIT: (i64, &str, &str) = (
    2,
    "note",
    "INSERT INTO public.commits VALUES (current_setting('synchronous_commit'), pg_current_wal_insert_lsn()); \
     ALTER TABLE items ADD COLUMN note TEXT;",
);

async fn commits_table(t: &Tenantry) {
    sqlx::query("CREATE TABLE public.commits (mode TEXT NOT NULL, lsn pg_lsn NOT NULL)")
        .execute(t.raw_pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn default_run_commits_async_and_ends_with_a_wal_flush_past_every_schema_commit() {
    let (db, schemas) = fleet(6).await;
    let t = handle(db.url(), &[V1, V2_RECORD_COMMIT]).await;
    commits_table(&t).await;
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    // Read right after the run returns, before anything else.
    let flushed: String = sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text")
        .fetch_one(t.raw_pool())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.migrated(), schemas.len());
    let modes: Vec<String> = sqlx::query_scalar("SELECT DISTINCT mode FROM public.commits")
        .fetch_all(t.raw_pool())
        .await
        .unwrap();
    assert_eq!(modes, ["off"], "schemas commit asynchronously by default");
    // The final flush point lies after every schema's work (read once they had all committed),
    // and the server had flushed the WAL at least that far when the run returned.
    let run_lsn = report.flushed_lsn.clone().expect("a final flush");
    let (after_schemas, durable): (bool, bool) = sqlx::query_as(
        "SELECT $1::pg_lsn > (SELECT max(lsn) FROM public.commits), $2::pg_lsn >= $1::pg_lsn",
    )
    .bind(&run_lsn)
    .bind(&flushed)
    .fetch_one(t.raw_pool())
    .await
    .unwrap();
    assert!(
        after_schemas,
        "flush point {run_lsn} precedes a schema's work"
    );
    assert!(durable, "WAL flushed to {flushed}, run claims {run_lsn}");

    // A no-op run opens nothing and has nothing to flush.
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!((report.pending, report.flushed_lsn), (0, None));
}

#[tokio::test]
async fn synchronous_commit_opt_out_syncs_each_schema_and_records_like_the_default() {
    let (db, schemas) = fleet(5).await;
    let t = handle(db.url(), &[V1, V2_RECORD_COMMIT]).await;
    commits_table(&t).await;
    let report = t
        .fleet()
        .migrate_tenants(MigrateOptions {
            synchronous_commit: true,
            ..MigrateOptions::default()
        })
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.migrated(), schemas.len());
    assert_eq!(report.flushed_lsn, None);
    let modes: Vec<String> = sqlx::query_scalar("SELECT DISTINCT mode FROM public.commits")
        .fetch_all(t.raw_pool())
        .await
        .unwrap();
    assert_eq!(modes, ["on"]);
    let (_, plan) = t.fleet().plan_tenants(None, false).await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'"
        )
        .await,
        5
    );
}
