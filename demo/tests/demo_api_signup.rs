//! The demo over real HTTP: sign-up (refusals leave nothing; subdomains are host names, schema
//! names are derived from them).

mod demo_api_support;

use demo_api_support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn bad_signups_are_refused_and_leave_nothing() {
    let s = Server::start().await;
    // ("Acme" used to be refused here; sign-up now lowercases it: see
    // `signup_subdomains_are_host_names_and_schemas_are_derived`.)
    for bad in [
        "pg_acme",
        "public",
        "a;drop schema public",
        "ünï",
        &"x".repeat(64),
    ] {
        let r = s.signup("Bad", bad).await;
        assert_eq!(r.status(), 422, "{bad:?}");
    }
    assert_eq!(s.signup("Acme", "acme").await.status(), 303);
    let dup = s.signup("Acme again", "acme").await;
    assert_eq!(dup.status(), 409);
    let tenants: Vec<Value> = s
        .get("localhost", "/api/tenants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenants.len(), 1);
}
#[tokio::test]
async fn signup_subdomains_are_host_names_and_schemas_are_derived() {
    let s = Server::start().await;
    let whoami = |host: &'static str| {
        let req = s.get(host, "/api/whoami");
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    // A hyphen is normal in a host name; the schema gets an underscore instead.
    let r = s.signup("My Co", "my-co").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "http://my-co.localhost:8000/");
    assert_eq!(
        whoami("my-co.localhost").await,
        json!({"tenant": "my_co", "domain": "my-co.localhost"})
    );

    // Upper case is lowercased, surrounding blanks trimmed.
    let r = s.signup("Acme 2", " ACME2 ").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "http://acme2.localhost:8000/");
    assert_eq!(whoami("acme2.localhost").await["tenant"], "acme2");

    // A leading digit is fine in a host name, not in a schema name.
    let r = s.signup("Fast", "2fast").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        whoami("2fast.localhost").await,
        json!({"tenant": "_2fast", "domain": "2fast.localhost"})
    );

    // Refusals speak of what the user typed, never of a "Host" or a schema.
    for (typed, status, says) in [
        ("my_co", 422, "\"my_co\""),
        ("My_Co", 422, "try \"my-co\""),
        ("-x", 422, "hyphen"),
        ("a.b", 422, "dots"),
        ("ünï", 422, "letters"),
        ("pg-acme", 422, "\"pg-acme\" is reserved"),
        ("PUBLIC", 422, "\"PUBLIC\" is reserved"),
        ("", 422, "subdomain"),
        ("My-Co", 409, "\"My-Co\" is taken"),
    ] {
        let r = s.signup("X", typed).await;
        assert_eq!(r.status(), status, "{typed:?}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{typed:?}: {text}");
        for jargon in ["Host", "schema", "malformed"] {
            assert!(!text.contains(jargon), "{typed:?}: {text}");
        }
    }
    let long = "x".repeat(64);
    let r = s.signup("X", &long).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("63"));

    // Another way to collide: schema `big_co` made outside the sign-up (CLI, admin).
    s.tenantry
        .admin()
        .create_tenant(tenantry::NewTenant::new("big_co", "elsewhere.localhost"))
        .await
        .unwrap();
    let r = s.signup("Big Co", "big-co").await;
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"big-co\" is taken"), "{text}");

    let names: Vec<String> = s
        .get("localhost", "/api/tenants")
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}
