//! The demo over real HTTP: routing by host, sign-up, notes isolation, error statuses.

use serde_json::{Value, json};
use tenantry_demo::{DemoConfig, build};
use tenantry_testing::TestDb;

struct Server {
    base: String,
    client: reqwest::Client,
    tenantry: tenantry::Tenantry,
    _db: TestDb,
}

impl Server {
    async fn start() -> Self {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let db = TestDb::new().await;
        let (tenantry, app) = build(&DemoConfig::new(db.url()))
            .await
            .expect("demo builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service())
                .await
                .unwrap()
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Server {
            base,
            client,
            tenantry,
            _db: db,
        }
    }

    fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header("host", host)
    }

    fn post(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("host", host)
    }

    async fn signup(&self, name: &str, subdomain: &str) -> reqwest::Response {
        self.post("localhost:8000", "/signup")
            .form(&[("name", name), ("subdomain", subdomain)])
            .send()
            .await
            .unwrap()
    }
}

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

/// The JSON body of an `/api/*` error: `{"error", "code"}`, served as `application/json`.
async fn api_error(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{status}: {content_type}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    (
        status,
        body["error"].as_str().unwrap().to_owned(),
        body["code"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn nul_bytes_are_refused_not_500() {
    let s = Server::start().await;
    assert_eq!(s.signup("Acme", "acme").await.status(), 303);

    // PostgreSQL text can't hold U+0000: refused before the INSERT.
    for note in [
        json!({"title": "a\u{0}b", "body": "x"}),
        json!({"title": "ok", "body": "x\u{0}"}),
    ] {
        let r = s
            .post("acme.localhost", "/api/notes")
            .json(&note)
            .send()
            .await
            .unwrap();
        let (status, error, code) = api_error(r).await;
        assert_eq!(status, 422, "{note}");
        assert!(error.contains("NUL"), "{error}");
        assert_eq!(code, "invalid_input");
    }

    // Sign-up (an HTML form: the answer stays plain text).
    let r = s.signup("Ac\u{0}me", "nul").await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(text.contains("name") && text.contains("NUL"), "{text}");
    let r = s.signup("Nul", "nu\u{0}l").await;
    assert_eq!(r.status(), 422);
    // Other text a name can't usefully hold: control characters, a megabyte.
    let r = s.signup("Tab\tCo", "tab").await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("U+0009"));
    let r = s.signup(&"n".repeat(1 << 20), "huge").await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(text.contains("at most 200"), "{text}");

    // The same in the tenant types' APIs.
    let r = s
        .post("localhost", "/signup")
        .form(&[
            ("name", "Clinic"),
            ("subdomain", "clinic"),
            ("type", "clinic"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = s
        .post("clinic.localhost", "/api/patients")
        .json(&json!({"name": "Ann\u{0}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r).await.0, 422);

    let tenants: Vec<Value> = s
        .get("localhost", "/api/tenants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenants.len(), 2, "{tenants:?}");
    let notes: Vec<Value> = s
        .get("acme.localhost", "/api/notes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "only the welcome note: {notes:?}");
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

#[tokio::test]
async fn api_routes_answer_errors_in_json() {
    let s = Server::start().await;
    assert_eq!(s.signup("Acme", "acme").await.status(), 303);

    // The demo's own refusals: specific codes.
    let r = s
        .post("acme.localhost", "/api/notes")
        .json(&json!({"title": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(r).await,
        (
            422,
            "title must not be empty".into(),
            "invalid_input".into()
        )
    );
    let r = s
        .get("acme.localhost", "/api/notes/999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(r).await,
        (404, "no note 999".into(), "note_not_found".into())
    );
    // ...and through the subfolder route.
    let r = s
        .get("localhost", "/t/acme/api/notes/999")
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r).await.2, "note_not_found");

    // Bodies axum refuses before the handler runs, unknown routes and methods.
    let r = s
        .post("acme.localhost", "/api/notes")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, error, code) = api_error(r).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"), "{error}");
    let r = s
        .post("acme.localhost", "/api/notes")
        .json(&json!({"body": "no title"}))
        .send()
        .await
        .unwrap();
    let (status, error, code) = api_error(r).await;
    assert_eq!(status, 422);
    assert_eq!(code, "unprocessable_entity");
    assert!(error.contains("title"), "{error}");
    let r = s
        .post("acme.localhost", "/api/notes")
        .body("title=x")
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r).await.0, 415);
    let r = s
        .get("acme.localhost", "/api/notes/abc")
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r).await.0, 400);
    let r = s.get("acme.localhost", "/api/nosuch").send().await.unwrap();
    assert_eq!(
        api_error(r).await,
        (404, "Not Found".into(), "not_found".into())
    );
    let r = s.get("localhost", "/api/nosuch").send().await.unwrap();
    assert_eq!(api_error(r).await.2, "not_found");
    let r = s
        .client
        .delete(format!("{}/api/notes", s.base))
        .header("host", "acme.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r).await.2, "method_not_allowed");

    // A tenant type's API: a duplicate is a 409 in JSON.
    let r = s
        .post("localhost", "/signup")
        .form(&[("name", "Lab"), ("subdomain", "lab"), ("type", "lab")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    for expected in [201, 409] {
        let r = s
            .post("lab.localhost", "/api/samples")
            .json(&json!({"code": "S-1"}))
            .send()
            .await
            .unwrap();
        if expected == 409 {
            assert_eq!(
                api_error(r).await,
                (
                    409,
                    "a sample with this code exists".into(),
                    "conflict".into()
                )
            );
        } else {
            assert_eq!(r.status(), 201);
        }
    }

    // A note that exists, by id.
    let created: Value = s
        .post("acme.localhost", "/api/notes")
        .json(&json!({"title": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fetched: Value = s
        .get("acme.localhost", &format!("/api/notes/{}", created["id"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, created);

    // HTML routes keep plain answers.
    let r = s.signup("Bad", "my_co").await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let r = s.get("acme.localhost", "/nosuch").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        !r.headers()
            .get("content-type")
            .is_some_and(|t| t.to_str().unwrap().contains("json"))
    );
}
