//! The request span: `tenant`, `tenant_id` and `request_id` on every event logged while a
//! request is handled, seen through tracing-subscriber's JSON formatter.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use common::{public_router, setup, tenant};
use tenantry_axum::{CurrentTenant, TenantRouter};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

/// Collects what the formatter writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn events_in_a_request_carry_its_tenant_and_request_id() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let acme = tenantry.resolve_schema("acme").await.unwrap().unwrap();
    let app = TenantRouter::new(tenantry)
        .public(public_router())
        .tenant(Router::new().route(
            "/hello",
            get(|t: CurrentTenant| async move {
                tracing::info!("hello from the handler");
                t.display_name.clone()
            }),
        ))
        .into_router();

    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(out.clone())
        .finish();
    // Thread-local: the current-thread runtime polls the requests on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let send = |host: &str, path: &str, request_id: &str| {
        app.clone().oneshot(
            Request::get(path)
                .header("host", host)
                .header("x-request-id", request_id)
                .body(Body::empty())
                .unwrap(),
        )
    };
    assert_eq!(
        send("acme.localhost", "/hello", "req-1")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(send("localhost", "/", "req-2").await.unwrap().status(), 200);
    assert_eq!(
        send("nobody.example.com", "/", "req-3")
            .await
            .unwrap()
            .status(),
        404
    );

    let lines = out.lines();
    let hello = lines
        .iter()
        .find(|l| l["fields"]["message"] == "hello from the handler")
        .expect("the handler's event");
    assert_eq!(hello["span"]["name"], "request");
    assert_eq!(hello["span"]["tenant"], "acme");
    assert_eq!(hello["span"]["tenant_id"], acme.id);
    assert_eq!(hello["span"]["request_id"], "req-1");
    assert_eq!(hello["span"]["path"], "/hello");

    let finished = |request_id: &str| {
        lines
            .iter()
            .find(|l| {
                l["fields"]["message"] == "request finished"
                    && l["span"]["request_id"] == request_id
            })
            .unwrap_or_else(|| panic!("`request finished` of {request_id} in {lines:#?}"))
    };
    assert_eq!(finished("req-1")["fields"]["status"], 200);
    assert_eq!(finished("req-1")["target"], "tenantry_axum::request");
    assert_eq!(finished("req-2")["span"]["tenant"], "public");
    assert_eq!(finished("req-3")["span"]["tenant"], "unknown");
    assert_eq!(finished("req-3")["fields"]["status"], 404);
}

#[tokio::test(flavor = "current_thread")]
async fn no_span_when_turned_off() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let app = TenantRouter::new(tenantry)
        .request_span(None)
        .tenant(Router::new().route(
            "/hello",
            get(|| async {
                tracing::info!("hello from the handler");
                "hi"
            }),
        ))
        .into_router();
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(out.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let r = app
        .oneshot(
            Request::get("/hello")
                .header("host", "acme.localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = out.lines();
    let hello = lines
        .iter()
        .find(|l| l["fields"]["message"] == "hello from the handler")
        .expect("the handler's event");
    assert!(hello.get("span").is_none(), "{hello}");
    assert!(
        !lines
            .iter()
            .any(|l| l["fields"]["message"] == "request finished")
    );
}
