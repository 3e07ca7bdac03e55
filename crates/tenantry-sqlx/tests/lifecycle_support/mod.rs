//! Shared by the `lifecycle_*` tests (tenant life cycle against a real PostgreSQL): a two-step
//! notes migration set, a `Tenantry` over a fresh database, and catalog/row probes.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use serde::{Deserialize, Serialize};
use tenantry_sqlx::{MigrationSet, NewTenant, Tenantry};
use tenantry_testing::{NOTES_TABLE, TestDb};

pub(crate) fn notes_set() -> MigrationSet {
    MigrationSet::from_sql(&[
        (1, "notes", NOTES_TABLE),
        (
            2,
            "body",
            "ALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT ''",
        ),
    ])
}

pub(crate) async fn tenantry_with(db: &TestDb, set: MigrationSet) -> Tenantry {
    let t = Tenantry::builder()
        .tenant_migration_set("default", set)
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

/// A fresh database with the notes set and one tenant per name in `schemas` (domain
/// `<schema>.localhost`), in that order.
pub(crate) async fn with_tenants(schemas: &[&str]) -> (TestDb, Tenantry) {
    let db = TestDb::new().await;
    let t = tenantry_with(&db, notes_set()).await;
    for schema in schemas {
        t.admin()
            .create_tenant(NewTenant::new(*schema, format!("{schema}.localhost")))
            .await
            .unwrap();
    }
    (db, t)
}

pub(crate) async fn schema_exists(t: &Tenantry, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(t.raw_pool())
        .await
        .unwrap()
}

pub(crate) async fn count(t: &Tenantry, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.raw_pool())
        .await
        .unwrap()
}

/// Application fields of a tenant (`data`), read back typed.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
pub(crate) struct Billing {
    pub(crate) plan: String,
    pub(crate) on_trial: bool,
}
