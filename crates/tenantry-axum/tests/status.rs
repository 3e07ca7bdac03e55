//! Tenant status over HTTP: suspended (403), maintenance (503 + Retry-After), custom pages,
//! by host and by subfolder, and propagation to another instance within a second.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::{Server, builder, probe_router, public_router, setup, tenant};
use tenantry_axum::strategy::{HostStrategy, SubfolderStrategy};
use tenantry_axum::{TenantRouter, default_status_response};
use tenantry_sqlx::{Resolution, TenantStatus};
use tenantry_testing::eventually;

fn app(tenantry: tenantry_sqlx::Tenantry) -> TenantRouter {
    TenantRouter::new(tenantry)
        .strategy(SubfolderStrategy::default())
        .strategy(HostStrategy)
        .public(public_router())
        .tenant(probe_router())
}

#[tokio::test]
async fn suspended_and_maintenance_by_host_and_subfolder() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let s = Server::start(app(tenantry.clone()).retry_after(30)).await;
    assert_eq!(s.json("acme.localhost", "/whoami").await["tenant"], "acme");

    tenantry
        .admin()
        .set_status("acme", TenantStatus::Suspended)
        .await
        .unwrap();
    for (host, path) in [
        ("acme.localhost", "/whoami"),
        ("localhost", "/t/acme/whoami"),
    ] {
        let (status, body) = s.fetch(host, path).await;
        assert_eq!(status, 403, "{host}{path}");
        assert_eq!(body, "This site is suspended.");
    }

    tenantry
        .admin()
        .set_status("acme", TenantStatus::Maintenance)
        .await
        .unwrap();
    for (host, path) in [
        ("acme.localhost", "/whoami"),
        ("localhost", "/t/acme/whoami"),
    ] {
        let r = s.get(host, path).send().await.unwrap();
        assert_eq!(r.status(), 503, "{host}{path}");
        assert_eq!(r.headers()["retry-after"], "30");
    }

    tenantry
        .admin()
        .set_status("acme", TenantStatus::Active)
        .await
        .unwrap();
    assert_eq!(
        s.json("localhost", "/t/acme/whoami").await["tenant"],
        "acme"
    );
}

#[tokio::test]
async fn custom_status_pages() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let app = app(tenantry.clone()).status_response(|t| match t.status {
        TenantStatus::Suspended => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} is suspended: contact billing", t.display_name),
        )
            .into_response(),
        // No Retry-After here: the router adds it to a 503 in maintenance.
        TenantStatus::Maintenance => (StatusCode::SERVICE_UNAVAILABLE, "back soon").into_response(),
        TenantStatus::Active => default_status_response(t, 1).unwrap_or_default(),
    });
    let s = Server::start(app).await;
    tenantry
        .admin()
        .set_status("acme", TenantStatus::Suspended)
        .await
        .unwrap();
    let r = s.get("acme.localhost", "/").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(
        r.text().await.unwrap(),
        "acme is suspended: contact billing"
    );
    tenantry
        .admin()
        .set_status("acme", TenantStatus::Maintenance)
        .await
        .unwrap();
    let r = s.get("acme.localhost", "/").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "120");
    assert_eq!(r.text().await.unwrap(), "back soon");
}

#[tokio::test]
async fn a_status_change_reaches_another_instance_within_a_second() {
    let (db, tenantry_a) = setup().await;
    tenant(&tenantry_a, "acme").await;
    // A second, independent instance on the same database (its own pool, cache and LISTEN).
    let tenantry_b = builder().connect(db.url()).await.unwrap();
    let s = Server::start(app(tenantry_b.clone())).await;
    // Warm B's cache with the active tenant, by host and by name.
    assert_eq!(s.json("acme.localhost", "/whoami").await["tenant"], "acme");
    assert_eq!(
        s.json("localhost", "/t/acme/whoami").await["tenant"],
        "acme"
    );
    // Both instances' listeners connect in the background: wait until both have run LISTEN,
    // so that the change below is not made before B listens.
    let listening = eventually(Duration::from_secs(10), async || {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(tenantry_a.raw_pool())
        .await
        .unwrap();
        n >= 2
    })
    .await;
    assert!(listening, "the registry listeners did not start");

    for (status, code) in [
        (TenantStatus::Suspended, 403),
        (TenantStatus::Maintenance, 503),
        (TenantStatus::Active, 200),
    ] {
        tenantry_a.admin().set_status("acme", status).await.unwrap();
        let seen = eventually(Duration::from_secs(1), async || {
            let by_host = matches!(
                tenantry_b.resolve_host("acme.localhost").await,
                Ok(Resolution::Tenant(t)) if t.status == status
            );
            let by_name = matches!(
                tenantry_b.resolve_schema("acme").await,
                Ok(Some(t)) if t.status == status
            );
            by_host && by_name
        })
        .await;
        assert!(seen, "instance B did not see {status} within 1 s");
        assert_eq!(s.fetch("acme.localhost", "/whoami").await.0, code);
        assert_eq!(s.fetch("localhost", "/t/acme/whoami").await.0, code);
    }
}
