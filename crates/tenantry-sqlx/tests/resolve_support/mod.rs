//! Shared by the `resolve_*` tests: the wire counter and small helpers.

#![allow(dead_code)]

pub(crate) mod wire;

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{MigrationSet, Resolution, Tenantry};

/// The SQL text of the host lookup (a join on the domains table), to count its executions.
pub(crate) const HOST_LOOKUP: &str = "tenantry_domains d ON d.tenant_id";

/// A tiny tenant schema.
pub(crate) fn tenant_migrations() -> MigrationSet {
    MigrationSet::from_sql(&[(
        1,
        "notes",
        "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title TEXT NOT NULL)",
    )])
}

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

/// Polls `check` until it returns true or `deadline` passes; returns the last answer.
pub(crate) async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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
