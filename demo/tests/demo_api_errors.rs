//! The demo over real HTTP: error statuses (NUL bytes refused, not 500; `/api/*` errors in
//! JSON).

mod demo_api_support;

use demo_api_support::*;
use serde_json::{Value, json};

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
