//! Several domains per tenant: optional 308 to the primary domain; canonical URL building.

mod common;

use common::{Server, probe_router, public_router, setup, tenant};
use tenantry_axum::strategy::{HostStrategy, SubfolderStrategy};
use tenantry_axum::{TenantRouter, TenantUrls};

#[tokio::test]
async fn non_primary_domains_redirect_to_the_primary_one() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    tenantry
        .admin()
        .add_domain("acme", "acme-old.example.com", false)
        .await
        .unwrap();
    let app = TenantRouter::new(tenantry.clone())
        .strategy(SubfolderStrategy::default())
        .strategy(HostStrategy)
        .redirect_to_primary(true)
        .urls(TenantUrls::new().scheme("http"))
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;

    let r = s
        .get("acme-old.example.com:8000", "/whoami?a=1&b=2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        "http://acme.localhost:8000/whoami?a=1&b=2"
    );
    let r = s.get("ACME-OLD.example.com", "/").send().await.unwrap();
    assert_eq!(r.headers()["location"], "http://acme.localhost/");
    // The primary domain and subfolder requests are served.
    assert_eq!(s.json("acme.localhost", "/whoami").await["tenant"], "acme");
    assert_eq!(
        s.json("localhost", "/t/acme/whoami").await["tenant"],
        "acme"
    );

    // Make the other domain primary: the redirect turns around (cache invalidated).
    tenantry
        .admin()
        .set_primary_domain("acme-old.example.com")
        .await
        .unwrap();
    let r = s.get("acme.localhost", "/x").send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "http://acme-old.example.com/x");
}

#[tokio::test]
async fn without_the_option_every_domain_is_served() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    tenantry
        .admin()
        .add_domain("acme", "acme-old.example.com", false)
        .await
        .unwrap();
    let s = Server::start(TenantRouter::new(tenantry).tenant(probe_router())).await;
    let me = s.json("acme-old.example.com", "/whoami").await;
    assert_eq!(
        (me["tenant"].as_str(), me["host"].as_str()),
        (Some("acme"), Some("acme-old.example.com"))
    );
}

#[tokio::test]
async fn canonical_urls() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let acme = tenantry.admin().tenant("acme").await.unwrap();
    let urls = TenantUrls::new();
    assert_eq!(
        urls.base_url(&acme).as_deref(),
        Some("https://acme.localhost")
    );
    assert_eq!(
        urls.url_for(&acme, "/notes/1").as_deref(),
        Some("https://acme.localhost/notes/1")
    );

    let dev = TenantUrls::new()
        .scheme("http")
        .port(8000)
        .subfolder("localhost", "/t");
    assert_eq!(
        dev.url_for(&acme, "notes").as_deref(),
        Some("http://acme.localhost:8000/notes")
    );
    let sub = dev.clone().prefer_subfolder(true);
    assert_eq!(
        sub.base_url(&acme).as_deref(),
        Some("http://localhost:8000/t/acme")
    );

    let mut no_domain = acme.clone();
    no_domain.primary_domain = None;
    assert_eq!(
        dev.base_url(&no_domain).as_deref(),
        Some("http://localhost:8000/t/acme")
    );
    assert_eq!(TenantUrls::new().base_url(&no_domain), None);

    // Handlers get the router's settings as an extractor.
    let app = TenantRouter::new(tenantry)
        .urls(sub)
        .tenant(axum::Router::new().route(
            "/link",
            axum::routing::get(
                |t: tenantry_axum::CurrentTenant, u: TenantUrls| async move {
                    u.url_for(&t, "/welcome").unwrap()
                },
            ),
        ));
    let s = Server::start(app).await;
    assert_eq!(
        s.fetch("acme.localhost", "/link").await,
        (200, "http://localhost:8000/t/acme/welcome".into())
    );
}
