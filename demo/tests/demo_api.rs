//! The demo over real HTTP: routing by host and notes isolation. Sign-up:
//! `demo_api_signup.rs`; error statuses: `demo_api_errors.rs` (shared server: `demo_api_support`).

mod demo_api_support;

use demo_api_support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn public_and_tenant_sites_are_routed_by_host() {
    let s = Server::start().await;

    let landing = s.get("localhost", "/").send().await.unwrap();
    assert_eq!(landing.status(), 200);
    let html = landing.text().await.unwrap();
    assert!(
        html.contains("<form") && html.contains("name=\"subdomain\""),
        "{html}"
    );
    assert!(
        html.contains("Pro"),
        "landing page lists the shared plans: {html}"
    );

    let r = s.signup("Acme Corp", "acme").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "http://acme.localhost:8000/");

    // Same path, different site.
    let page = s.get("acme.localhost", "/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Acme Corp"), "{html}");
    assert!(
        html.contains("Plan: <strong>Free</strong>"),
        "plan read from the shared schema: {html}"
    );

    let who: Value = s
        .get("ACME.localhost.:8000", "/api/whoami")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who, json!({"tenant": "acme", "domain": "acme.localhost"}));

    // Tenant routes don't exist on the public site and vice versa.
    assert_eq!(
        s.get("localhost", "/api/whoami")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.get("acme.localhost", "/api/tenants")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let tenants: Value = s
        .get("localhost", "/api/tenants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenants[0]["name"], "acme");
    assert_eq!(tenants[0]["domain"], "acme.localhost");
    assert_eq!(tenants[0]["plan"], "free");
}

#[tokio::test]
async fn unknown_missing_and_malformed_hosts() {
    let s = Server::start().await;
    s.signup("Acme", "acme").await;

    let unknown = s.get("nosuch.localhost", "/").send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body = unknown.text().await.unwrap();
    assert!(
        !body.contains("acme"),
        "404 body must not reveal tenants: {body}"
    );

    for bad in [
        "a b",
        "acme.localhost:99999",
        "user@acme.localhost",
        "a..localhost",
        "-x.localhost",
    ] {
        let r = s.get(bad, "/").send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
    }

    // No Host header at all: HTTP/1.0 request written by hand.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(
        out.starts_with("HTTP/1.0 400") || out.starts_with("HTTP/1.1 400"),
        "{out}"
    );
}

#[tokio::test]
async fn two_tenants_never_see_each_others_notes() {
    let s = Server::start().await;
    s.signup("Acme", "acme").await;
    s.signup("Globex", "globex").await;

    for (host, title) in [
        ("acme.localhost", "acme secret"),
        ("globex.localhost", "globex secret"),
    ] {
        let r = s
            .post(host, "/api/notes")
            .json(&json!({"title": title, "body": format!("only for {host}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let note: Value = r.json().await.unwrap();
        assert_eq!(note["title"], title);
        assert!(note["id"].as_i64().is_some());
    }

    let acme: Vec<Value> = s
        .get("acme.localhost", "/api/notes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let globex: Vec<Value> = s
        .get("globex.localhost", "/api/notes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let titles = |notes: &[Value]| {
        notes
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(&acme), ["Welcome to Acme", "acme secret"]);
    assert_eq!(titles(&globex), ["Welcome to Globex", "globex secret"]);
    // Each note has exactly id, title, body.
    assert_eq!(acme[1].as_object().unwrap().len(), 3);
}
