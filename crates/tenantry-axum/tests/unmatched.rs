//! What the router answers when no strategy identifies a tenant: each policy over HTTP.

mod common;

use axum::http::StatusCode;
use common::{Server, probe_router, public_router, setup, tenant};
use tenantry_axum::{RequestHost, TenantRouter, Unmatched};

#[tokio::test]
async fn not_found_by_default() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let s = Server::start(
        TenantRouter::new(tenantry)
            .public(public_router())
            .tenant(probe_router()),
    )
    .await;
    assert_eq!(
        s.fetch("unknown.example.com", "/whoami").await,
        (404, "Not Found".into())
    );
    assert_eq!(s.json("acme.localhost", "/whoami").await["tenant"], "acme");
}

#[tokio::test]
async fn fall_back_to_a_default_tenant() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    tenant(&tenantry, "main").await;
    let app = TenantRouter::new(tenantry)
        .unmatched(Unmatched::DefaultTenant("main".into()))
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;
    let me = s.json("unknown.example.com", "/whoami").await;
    assert_eq!(me["tenant"], "main");
    assert_eq!(me["db_schema"], "main");
    assert_eq!(me["host"], "unknown.example.com");
    // Identified requests are unaffected.
    assert_eq!(s.json("acme.localhost", "/whoami").await["tenant"], "acme");
}

#[tokio::test]
async fn missing_default_tenant_is_404() {
    let (_db, tenantry) = setup().await;
    let app = TenantRouter::new(tenantry)
        .unmatched(Unmatched::DefaultTenant("ghost".into()))
        .tenant(probe_router());
    let s = Server::start(app).await;
    assert_eq!(s.fetch("unknown.example.com", "/whoami").await.0, 404);
}

#[tokio::test]
async fn fall_back_to_the_public_router() {
    let (_db, tenantry) = setup().await;
    let app = TenantRouter::new(tenantry)
        .unmatched(Unmatched::Public)
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;
    assert_eq!(
        s.fetch("unknown.example.com", "/anything").await,
        (200, "public".into())
    );
}

#[tokio::test]
async fn custom_handler() {
    let (_db, tenantry) = setup().await;
    let app = TenantRouter::new(tenantry)
        .unmatched(Unmatched::handler(
            |RequestHost(host): RequestHost| async move {
                (
                    StatusCode::MISDIRECTED_REQUEST,
                    format!("no site at {host}"),
                )
            },
        ))
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;
    assert_eq!(
        s.fetch("unknown.example.com", "/x").await,
        (421, "no site at unknown.example.com".into())
    );
    assert_eq!(s.fetch("localhost", "/x").await, (200, "public".into()));
}
