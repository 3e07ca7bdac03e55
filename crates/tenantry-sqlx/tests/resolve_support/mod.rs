//! Shared by the `resolve_*` tests: the wire counter and small helpers.

#![allow(dead_code)]

pub(crate) mod wire;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{Resolution, Tenantry};

/// The SQL text of the host lookup (a join on the domains table), to count its executions.
pub(crate) const HOST_LOOKUP: &str = "tenantry_domains d ON d.tenant_id";

/// A tiny tenant schema (the test kit's `notes` fixture).
pub(crate) use tenantry_testing::notes_migrations as tenant_migrations;

/// A migrated handle on `url`, listening for registry changes or not.
pub(crate) async fn tenantry(url: &str, listen: bool) -> Tenantry {
    let t = Tenantry::builder()
        .tenant_migration_set("default", tenant_migrations())
        .pool_options(
            PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10)),
        )
        .listen_for_changes(listen)
        .connect(url)
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

/// Waits until the handle's listener has LISTENed at least once (its first full refresh bumps
/// the generation), so that registry changes made from now on reach it.
pub(crate) async fn wait_listening(t: &Tenantry) {
    let ok = eventually(Duration::from_secs(10), || async {
        t.stats().await.resolver_generation >= 1
    })
    .await;
    assert!(ok, "the registry listener never started listening");
}

pub(crate) use tenantry_testing::eventually;

/// The schema a host resolves to (None for unknown or public hosts).
pub(crate) async fn schema_of(
    t: &Tenantry,
    host: &str,
) -> Option<(String, tenantry_sqlx::TenantStatus)> {
    match t.resolve_host(host).await.unwrap() {
        Resolution::Tenant(t) => Some((t.schema.clone(), t.status)),
        _ => None,
    }
}
