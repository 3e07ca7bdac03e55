//! The demo's exports over real HTTP, on the real PostgreSQL-backed queue and the real
//! filesystem store: `POST /api/exports` -> 202 `{"id"}`; `GET /api/exports/{id}` -> 202 while
//! pending, 200 `{"notes": [...]}` once the in-process worker wrote it, 404 on another
//! tenant's host and for an unknown id.

mod serve_support;

use std::time::Duration;

use serde_json::Value;
use tenantry_demo::attachments::Stores;
use tenantry_demo::{DemoConfig, build, exports};
use tenantry_testing::{TestDb, eventually};

struct Server {
    base: String,
    client: reqwest::Client,
    tenantry: tenantry::Tenantry,
    config: DemoConfig,
    _files_dir: tempfile::TempDir,
    _db: TestDb,
}

impl Server {
    async fn start(export_worker: bool) -> Self {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let db = TestDb::new().await;
        let files_dir = tempfile::tempdir().unwrap();
        let mut config = DemoConfig::new(db.url());
        config.rate_limits = false;
        config.files_dir = files_dir.path().to_owned();
        config.export_worker = export_worker;
        let (tenantry, app) = build(&config).await.expect("demo builds");
        let addr = serve_support::serve(app).await;
        let client = serve_support::client();
        Server {
            base: format!("http://{addr}"),
            client,
            tenantry,
            config,
            _files_dir: files_dir,
            _db: db,
        }
    }

    async fn signup(&self, subdomain: &str) {
        serve_support::signup(&self.client, &self.base, subdomain).await;
    }

    async fn note(&self, tenant: &str, title: &str) {
        let r = self
            .client
            .post(format!("{}/api/notes", self.base))
            .header("host", format!("{tenant}.localhost"))
            .json(&serde_json::json!({ "title": title, "body": format!("{tenant}'s") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    async fn post_export(&self, tenant: &str) -> String {
        let r = self
            .client
            .post(format!("{}/api/exports", self.base))
            .header("host", format!("{tenant}.localhost"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "POST /api/exports");
        let body: Value = r.json().await.unwrap();
        body["id"].as_str().expect("an id").to_owned()
    }

    async fn get_export(&self, tenant: &str, id: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}/api/exports/{id}", self.base))
            .header("host", format!("{tenant}.localhost"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn titles(export: &Value) -> Vec<String> {
    export["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_export_is_pending_then_done_with_the_tenants_notes_and_hidden_from_others() {
    // No worker yet: the export stays pending, whatever the timing.
    let s = Server::start(false).await;
    s.signup("acme").await;
    s.signup("globex").await;
    s.note("acme", "acme plan").await;
    s.note("acme", "acme budget").await;
    s.note("globex", "globex secret").await;

    let id = s.post_export("acme").await;
    let (status, body) = s.get_export("acme", &id).await;
    assert_eq!(status, 202, "pending export: {body}");
    assert_eq!(body["id"], Value::from(id.clone()));
    assert_eq!(
        s.get_export("globex", &id).await.0,
        404,
        "another tenant sees the export"
    );
    assert_eq!(
        s.get_export("acme", "01JZZZZZZZZZZZZZZZZZZZZZZZ").await.0,
        404,
        "unknown id"
    );
    assert_eq!(
        s.get_export("acme", "..%2F..%2Fetc").await.0,
        404,
        "not an id"
    );

    // The worker, as `build` starts it in the demo process.
    let _worker = exports::spawn_worker(&s.tenantry, Stores::new(&s.config).files);
    let mut done = Value::Null;
    let finished = eventually(Duration::from_secs(30), async || {
        let (status, body) = s.get_export("acme", &id).await;
        done = body;
        status == 200
    })
    .await;
    assert!(finished, "the export never finished: {done}");
    let got = titles(&done);
    assert_eq!(
        got,
        vec!["Welcome to acme", "acme plan", "acme budget"],
        "the export holds exactly acme's notes"
    );
    assert_eq!(
        s.get_export("globex", &id).await.0,
        404,
        "another tenant sees the export"
    );

    // globex's own export holds only globex's notes.
    let theirs = s.post_export("globex").await;
    let mut body = Value::Null;
    let finished = eventually(Duration::from_secs(30), async || {
        let (status, b) = s.get_export("globex", &theirs).await;
        body = b;
        status == 200
    })
    .await;
    assert!(finished, "globex's export never finished: {body}");
    assert_eq!(titles(&body), vec!["Welcome to globex", "globex secret"]);
    assert_eq!(s.get_export("acme", &theirs).await.0, 404);
}

#[tokio::test]
async fn the_demo_process_runs_exports_by_itself() {
    let s = Server::start(true).await;
    s.signup("initech").await;
    let id = s.post_export("initech").await;
    let mut body = Value::Null;
    let finished = eventually(Duration::from_secs(30), async || {
        let (status, b) = s.get_export("initech", &id).await;
        body = b;
        status == 200
    })
    .await;
    assert!(finished, "the built-in worker never ran the export: {body}");
    assert_eq!(titles(&body), vec!["Welcome to initech"]);
}
