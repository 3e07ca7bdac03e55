//! Shared by the Citus tests: a private cluster (coordinator + 2 workers) and a handle on it
//! with a shared `plans` reference table, an `extensions` schema and multi-statement tenant
//! migrations (a table, an index, a PL/pgSQL trigger with semicolons in its body).
#![allow(dead_code)]

use tenantry_sqlx::{MigrationSet, NewTenant, Tenant, Tenantry, TenantryBuilder};
use tenantry_testing::{CITUS_INSTALL_HINT, CitusCluster, skip};

/// Shared migrations: plans (a reference table) and the extensions schema.
pub(crate) const SHARED: &str = "CREATE TABLE plans (code text PRIMARY KEY, name text NOT NULL);\n\
    INSERT INTO plans VALUES ('free', 'Free; the first'), ('pro', 'Pro');\n\
    CREATE SCHEMA IF NOT EXISTS extensions;\n\
    CREATE TYPE extensions.mood AS ENUM ('ok', 'good');";

/// Tenant migration 1: several statements, a dollar-quoted body with semicolons, comments.
/// (No trigger: Citus refuses triggers on distributed tables unless
/// `citus.enable_unsafe_triggers` is on.)
pub(crate) const TENANT_V1: &str = "-- notes; one per row\n\
    CREATE TABLE notes (\n\
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
        title text NOT NULL,\n\
        plan text NOT NULL DEFAULT 'free' REFERENCES plans (code)\n\
    );\n\
    CREATE INDEX notes_title ON notes (title);\n\
    /* a function; its body has semicolons */\n\
    CREATE FUNCTION note_label(t text) RETURNS text LANGUAGE plpgsql AS $fn$\n\
    BEGIN RETURN E'stamped\\'s;' || t; END $fn$;";

/// The tenant set: version 1 only.
pub(crate) fn tenant_set() -> MigrationSet {
    MigrationSet::from_sql(&[(1, "notes", TENANT_V1)])
}

/// A builder for the Citus tests (`plans` as reference table, `extensions` on the path).
pub(crate) fn builder(set: MigrationSet) -> TenantryBuilder {
    Tenantry::builder()
        .shared_migration_set(MigrationSet::from_sql(&[(1, "plans", SHARED)]))
        .tenant_migration_set(tenantry_sqlx::DEFAULT_TENANT_TYPE, set)
        .extra_search_path(["extensions"])
        .reference_tables(["plans"])
        .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(12))
}

/// A cluster with two workers and a migrated handle, or a visible skip (a failure in CI).
pub(crate) async fn start(set: MigrationSet) -> Option<(CitusCluster, Tenantry)> {
    let Some(citus) = CitusCluster::start(2).await else {
        skip(CITUS_INSTALL_HINT);
        return None;
    };
    let tenantry = builder(set).connect(&citus.url()).await.expect("connect");
    tenantry.fleet().migrate_shared().await.expect("shared");
    assert!(tenantry.is_citus(), "the citus extension is detected");
    Some((citus, tenantry))
}

/// Creates tenant `name` at `name.test`.
pub(crate) async fn create(t: &Tenantry, name: &str) -> Tenant {
    t.admin()
        .create_tenant(NewTenant::new(name, format!("{name}.test")))
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
}

/// Creates `n` tenants `prefix0..`, `jobs` at a time.
pub(crate) async fn create_many(t: &Tenantry, prefix: &str, n: usize, jobs: usize) {
    use futures::StreamExt;
    futures::stream::iter((0..n).map(|i| {
        let t = t.clone();
        let name = format!("{prefix}{i}");
        async move {
            create(&t, &name).await;
        }
    }))
    .buffer_unordered(jobs)
    .collect::<Vec<_>>()
    .await;
}

/// Port of the worker holding `schema` (from Tenantry's placement).
pub(crate) async fn port_of(t: &Tenantry, schema: &str) -> u16 {
    t.placement()
        .tenant_node(schema)
        .await
        .expect("placement")
        .expect("distributed")
        .port
}
