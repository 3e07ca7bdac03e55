//! The demo's routing contract over HTTP: `/t/<name>/` on the public domain, status answers
//! (also by subfolder), 308 from non-primary domains, tenant types, trusted `X-Tenant`.

mod routing_support;

use routing_support::Demo;
use serde_json::json;
use tenantry::TenantStatus;

#[tokio::test]
async fn subfolder_serves_the_tenant_site_and_api() {
    let d = Demo::start().await;
    d.signup("acme", "").await;
    d.signup("globex", "").await;

    let notes = d.json("localhost:8000", "/t/acme/api/notes").await;
    assert_eq!(notes[0]["title"], "Welcome to acme");
    let r = d
        .post("localhost", "/t/acme/api/notes")
        .json(&json!({"title": "by subfolder", "body": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Same data by host; none of it at globex.
    let titles = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        titles(d.json("acme.localhost", "/api/notes").await),
        ["Welcome to acme", "by subfolder"]
    );
    assert_eq!(
        titles(d.json("localhost", "/t/globex/api/notes").await),
        ["Welcome to globex"]
    );

    let me = d.json("localhost:8000", "/t/acme/api/whoami").await;
    assert_eq!(me, json!({"tenant": "acme", "domain": "localhost"}));

    // The site's links carry the prefix by subfolder, not on the tenant's own domain.
    let (status, html) = d.fetch("localhost", "/t/acme/").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/t/acme/api/notes\""), "{html}");
    assert!(html.contains("/t/acme/api/notes/stream"), "{html}");
    let (_, html) = d.fetch("acme.localhost", "/").await;
    assert!(html.contains("href=\"/api/notes\""), "{html}");

    // Unknown tenant by subfolder: the public site has no such page.
    assert_eq!(d.fetch("localhost", "/t/nobody/api/notes").await.0, 404);
    // The public site is still there.
    assert_eq!(d.fetch("localhost", "/").await.0, 200);
}

#[tokio::test]
async fn suspended_and_maintenance_tenants_by_host_and_subfolder() {
    let d = Demo::start().await;
    d.signup("acme", "").await;
    let both = [
        ("acme.localhost", "/api/notes"),
        ("localhost", "/t/acme/api/notes"),
    ];

    d.tenantry
        .admin()
        .set_status("acme", TenantStatus::Suspended)
        .await
        .unwrap();
    for (host, path) in both {
        assert_eq!(d.fetch(host, path).await.0, 403, "{host}{path}");
    }
    d.tenantry
        .admin()
        .set_status("acme", TenantStatus::Maintenance)
        .await
        .unwrap();
    for (host, path) in both {
        let r = d.get(host, path).send().await.unwrap();
        assert_eq!(r.status(), 503, "{host}{path}");
        assert!(r.headers().contains_key("retry-after"));
    }
    d.tenantry
        .admin()
        .set_status("acme", TenantStatus::Active)
        .await
        .unwrap();
    for (host, path) in both {
        assert_eq!(d.fetch(host, path).await.0, 200, "{host}{path}");
    }
    // The directory shows the status.
    d.tenantry
        .admin()
        .set_status("acme", TenantStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(
        d.json("localhost", "/api/tenants").await[0]["status"],
        "suspended"
    );
}

#[tokio::test]
async fn non_primary_domains_redirect_to_the_primary_one() {
    let d = Demo::start().await;
    d.signup("acme", "").await;
    // What `tenantry domain add acme acme-corp.localhost` does.
    d.tenantry
        .admin()
        .add_domain("acme", "acme-corp.localhost", false)
        .await
        .unwrap();
    let r = d
        .get("acme-corp.localhost:8000", "/api/notes?limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        "http://acme.localhost:8000/api/notes?limit=5"
    );
    assert_eq!(d.fetch("acme.localhost:8000", "/api/notes").await.0, 200);
}

#[tokio::test]
async fn clinic_and_lab_tenants_have_their_own_tables_and_routes() {
    let d = Demo::start().await;
    d.signup("mercy", "clinic").await;
    d.signup("biolab", "lab").await;
    d.signup("plain", "").await;
    let r = d
        .post("localhost", "/signup")
        .form(&[("name", "x"), ("subdomain", "x"), ("type", "garage")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    let r = d
        .post("mercy.localhost", "/api/patients")
        .json(&json!({"name": "Ann", "email": "Ann@Example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        d.json("localhost", "/t/mercy/api/patients").await[0]["email"],
        "Ann@Example.com"
    );
    // citext from the shared extensions schema: the same e-mail in another case is a duplicate.
    let r = d
        .post("mercy.localhost", "/api/patients")
        .json(&json!({"name": "Ann again", "email": "ann@example.COM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    let r = d
        .post("biolab.localhost", "/api/samples")
        .json(&json!({"code": "S-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sample: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (sample["code"].as_str(), sample["status"].as_str()),
        (Some("S-1"), Some("received"))
    );
    let r = d
        .post("biolab.localhost", "/api/samples")
        .json(&json!({"code": "s-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "sample codes are citext");

    // Each type's routes only exist for that type; notes exist for all three.
    assert_eq!(d.fetch("mercy.localhost", "/api/samples").await.0, 404);
    assert_eq!(d.fetch("biolab.localhost", "/api/patients").await.0, 404);
    assert_eq!(d.fetch("plain.localhost", "/api/patients").await.0, 404);
    for name in ["mercy", "biolab", "plain"] {
        assert_eq!(
            d.json("localhost", &format!("/t/{name}/api/notes")).await[0]["title"],
            format!("Welcome to {name}")
        );
    }
    let tenants = d.json("localhost", "/api/tenants").await;
    let types: Vec<(&str, &str)> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["tenant_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [("biolab", "lab"), ("mercy", "clinic"), ("plain", "default")]
    );
}

#[tokio::test]
async fn the_tenant_header_needs_a_trusted_peer() {
    let off = Demo::start().await;
    off.signup("acme", "").await;
    let r = off
        .get("localhost", "/api/whoami")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "header strategy is off by default");

    let on = Demo::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    on.signup("acme", "").await;
    let r = on
        .get("localhost", "/api/whoami")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["tenant"],
        "acme"
    );
}
