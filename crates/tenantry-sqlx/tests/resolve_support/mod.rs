//! Shared by the `resolve_*` tests: the wire counter and small helpers.

#![allow(dead_code)]

pub(crate) mod wire;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{NewTenant, Resolution, Tenant, TenantStatus, Tenantry};
use tenantry_testing::TestDb;

use wire::WireCounter;

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

/// A fresh database holding tenant `acme` (host `acme.example.com`), its handle (not listening)
/// and a wire counter in front of the server. The tenant exists before any handle under test
/// starts, so no notification will empty that handle's cache during the test.
pub(crate) async fn acme_behind_wire() -> (TestDb, Tenantry, WireCounter) {
    let db = TestDb::new().await;
    let admin = tenantry(db.url(), false).await;
    create_acme(&admin).await;
    let wire = WireCounter::start(db.url()).await;
    (db, admin, wire)
}

/// A migrated handle connected through `wire`; one that listens is returned once it listens.
pub(crate) async fn through_wire(db: &TestDb, wire: &WireCounter, listen: bool) -> Tenantry {
    let t = tenantry(&wire.url(db.url()), listen).await;
    if listen {
        wait_listening(&t).await;
    }
    t
}

/// Creates tenant `acme` with host `acme.example.com`.
pub(crate) async fn create_acme(t: &Tenantry) {
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.example.com"))
        .await
        .unwrap();
}

/// Creates tenant `schema` at `domain` and writes one note in it, titled `note of <schema>`.
pub(crate) async fn tenant_with_a_note(t: &Tenantry, schema: &str, domain: String) -> Arc<Tenant> {
    let tenant = Arc::new(
        t.admin()
            .create_tenant(NewTenant::new(schema, domain))
            .await
            .unwrap(),
    );
    let mut tx = t.begin(&tenant).await.unwrap();
    sqlx::query("INSERT INTO notes (title) VALUES ($1)")
        .bind(format!("note of {schema}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tenant
}

/// How many hosts the handle's cache holds: (known, unknown).
pub(crate) async fn cached_hosts(t: &Tenantry) -> (u64, u64) {
    let s = t.stats().await;
    (s.known_hosts, s.unknown_hosts)
}

/// Whether `host` resolves to `expected` (schema and status) within one second.
pub(crate) async fn resolves_within_a_second(
    t: &Tenantry,
    host: &str,
    expected: &Option<(String, TenantStatus)>,
) -> bool {
    eventually(Duration::from_secs(1), || async {
        schema_of(t, host).await == *expected
    })
    .await
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
