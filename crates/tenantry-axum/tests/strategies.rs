//! The identification chain over HTTP: host, subfolder, trusted header, a user strategy, order.

mod common;

use common::{Server, probe_router, public_router, setup, tenant};
use tenantry_axum::strategy::{
    HeaderStrategy, HostStrategy, Identification, Identified, RequestInfo, SubfolderStrategy,
    TenantKey, TenantStrategy, TrustedProxies,
};
use tenantry_axum::{HttpError, TenantRouter};

#[tokio::test]
async fn host_strategy_is_the_default() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let app = TenantRouter::new(tenantry)
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;
    let me = s.json("acme.localhost", "/whoami").await;
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["db_schema"], "acme");
    assert_eq!(me["base"], "");
    assert_eq!(
        s.fetch("localhost", "/whoami").await,
        (200, "public".into())
    );
    assert_eq!(s.fetch("nope.localhost", "/whoami").await.0, 404);
    // Subfolders are not on unless asked for: the public router gets the path.
    assert_eq!(
        s.fetch("localhost", "/t/acme/whoami").await,
        (200, "public".into())
    );
}

#[tokio::test]
async fn subfolder_strips_the_prefix_and_gives_it_back_for_links() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    tenant(&tenantry, "globex").await;
    let app = TenantRouter::new(tenantry)
        .strategy(SubfolderStrategy::default())
        .strategy(HostStrategy)
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;

    let me = s.json("localhost", "/t/acme/whoami?x=1").await;
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["db_schema"], "acme");
    assert_eq!(me["base"], "/t/acme");
    assert_eq!(me["path"], "/whoami?x=1");
    assert_eq!(me["original"], "/t/acme/whoami?x=1");
    assert_eq!(me["link"], "/t/acme/whoami");
    assert_eq!(
        s.json("localhost", "/t/globex/whoami").await["db_schema"],
        "globex"
    );
    // `/t/acme` alone is the tenant's `/`.
    assert_eq!(
        s.fetch("localhost", "/t/acme").await,
        (200, "home of acme".into())
    );
    // `/t/acmex` is not `/t/acme` + `x`.
    assert_eq!(
        s.fetch("localhost", "/t/acmex/whoami").await,
        (200, "public".into())
    );
    // Unknown names and non-names fall through to the host strategy (public site here).
    assert_eq!(
        s.fetch("localhost", "/t/nobody/whoami").await,
        (200, "public".into())
    );
    assert_eq!(
        s.fetch("localhost", "/t/Bad-Name/whoami").await,
        (200, "public".into())
    );
    // Only on public domains: on a tenant's domain `/t/...` is that tenant's own path.
    assert_eq!(s.fetch("globex.localhost", "/t/acme/whoami").await.0, 404);
    // Host routing still works after the subfolder strategy.
    assert_eq!(s.json("globex.localhost", "/whoami").await["base"], "");
}

#[tokio::test]
async fn subfolder_prefix_is_configurable() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let app = TenantRouter::new(tenantry)
        .strategy(SubfolderStrategy::new("/orgs/"))
        .strategy(HostStrategy)
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;
    let me = s.json("localhost", "/orgs/acme/whoami").await;
    assert_eq!(
        (me["tenant"].as_str(), me["base"].as_str()),
        (Some("acme"), Some("/orgs/acme"))
    );
    assert_eq!(
        s.fetch("localhost", "/t/acme/whoami").await,
        (200, "public".into())
    );
}

#[tokio::test]
async fn header_is_honoured_only_from_trusted_peers() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let router = |trusted: &[&str]| {
        TenantRouter::new(tenantry.clone())
            .strategy(HeaderStrategy::new(TrustedProxies::parse(trusted).unwrap()))
            .strategy(HostStrategy)
            .public(public_router())
            .tenant(probe_router())
    };
    // The test client connects from 127.0.0.1.
    let trusted = Server::start(router(&["10.0.0.0/8", "127.0.0.0/8"])).await;
    let r = trusted
        .get("localhost", "/whoami")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["tenant"], "acme");
    // Without the header: the host decides.
    assert_eq!(
        trusted.fetch("localhost", "/whoami").await,
        (200, "public".into())
    );

    let untrusted = Server::start(router(&["10.0.0.0/8"])).await;
    let r = untrusted
        .get("localhost", "/whoami")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        "public",
        "header from an untrusted peer must be ignored"
    );

    // Without peer information (plain into_make_service), nobody is trusted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(&["127.0.0.0/8"]);
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .unwrap()
    });
    let body = reqwest::Client::new()
        .get(format!("http://{addr}/whoami"))
        .header("host", "localhost")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "public");
}

#[test]
fn trusted_proxies_parse_and_match() {
    let t = TrustedProxies::parse(["10.0.0.0/8", "192.168.1.7", "::1"]).unwrap();
    assert!(t.contains("10.1.2.3".parse().unwrap()));
    assert!(t.contains("192.168.1.7".parse().unwrap()));
    assert!(!t.contains("192.168.1.8".parse().unwrap()));
    assert!(t.contains("::1".parse().unwrap()));
    assert!(t.contains("::ffff:10.0.0.1".parse().unwrap()));
    assert!(TrustedProxies::parse(["not-an-ip"]).is_err());
}

/// `?tenant=<name>`: a user strategy.
struct QueryStrategy;

#[tenantry_axum::async_trait]
impl TenantStrategy for QueryStrategy {
    async fn identify(&self, req: &RequestInfo<'_>) -> Result<Identification, HttpError> {
        match req.uri.query().and_then(|q| q.strip_prefix("tenant=")) {
            Some("teapot") => Err(HttpError::new(http::StatusCode::IM_A_TEAPOT, "teapot")),
            Some(name) => Ok(Identification::Tenant(Identified::new(TenantKey::Name(
                name.to_owned(),
            )))),
            None => Ok(Identification::NotIdentified),
        }
    }
}

#[tokio::test]
async fn user_strategy_first_match_wins() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    tenant(&tenantry, "globex").await;
    let app = TenantRouter::new(tenantry)
        .strategy(QueryStrategy)
        .strategy(HostStrategy)
        .public(public_router())
        .tenant(probe_router());
    let s = Server::start(app).await;
    // The query strategy comes first: it wins over the host.
    assert_eq!(
        s.json("acme.localhost", "/whoami?tenant=globex").await["tenant"],
        "globex"
    );
    // An unknown key lets the next strategy try.
    assert_eq!(
        s.json("acme.localhost", "/whoami?tenant=zzz").await["tenant"],
        "acme"
    );
    assert_eq!(s.json("acme.localhost", "/whoami").await["tenant"], "acme");
    // A strategy's error is the answer.
    assert_eq!(
        s.fetch("acme.localhost", "/whoami?tenant=teapot").await,
        (418, "teapot".into())
    );
}

#[tokio::test]
async fn malformed_host_is_400() {
    let (_db, tenantry) = setup().await;
    let s = Server::start(TenantRouter::new(tenantry).public(public_router())).await;
    assert_eq!(s.fetch("bad host!", "/").await.0, 400);
}
