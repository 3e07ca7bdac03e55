//! Shared by the `isolation_lifecycle*` tests (tenant life cycle against work in flight, issue
//! 11): the demo over real HTTP on a fresh database ([`Demo`]), a serialising lock, swaps by
//! renames, and raw HTTP/1.1 helpers for withheld request bodies.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tenantry::Tenantry;
use tenantry_demo::tenant_site::Note;
use tenantry_demo::{DemoConfig, build};
use tenantry_testing::TestDb;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The tests of each `isolation_lifecycle*` file run one at a time (one static per test binary;
/// `cargo test` runs the binaries one after the other): test 1 loads PostgreSQL and the CPU, and
/// tests 4 and 5 measure how fast things happen.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The demo on an ephemeral port over a fresh database. Like `routing_support::Demo`, plus what
/// these tests need: the socket address (raw HTTP/1.1 with withheld bodies) and the database
/// URL (a second handle, like the CLI; row counts read with plain SQL).
pub(crate) struct Demo {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    pub(crate) tenantry: Tenantry,
    pub(crate) server: tokio::task::JoinHandle<()>,
    pub(crate) db: TestDb,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // Then `db` drops the database (WITH (FORCE)).
        self.server.abort();
    }
}

impl Demo {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(adjust: impl FnOnce(&mut DemoConfig)) -> Self {
        // Warnings only: every refused BEGIN logs its re-resolution at info level.
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_test_writer()
            .try_init();
        let db = TestDb::new().await;
        let mut config = DemoConfig::new(db.url());
        // Far more than a plan's 20 requests per second per tenant.
        config.rate_limits = false;
        adjust(&mut config);
        let (tenantry, app) = build(&config).await.expect("demo builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info())
                .await
                .unwrap()
        });
        Demo {
            addr,
            client: client(),
            tenantry,
            server,
            db,
        }
    }

    pub(crate) fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("http://{}{path}", self.addr))
            .header("host", host)
    }

    pub(crate) fn post(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("http://{}{path}", self.addr))
            .header("host", host)
    }

    /// Signs `name` up through the public form (at `name.localhost`).
    pub(crate) async fn signup(&self, name: &str) {
        let r = self
            .post("localhost", "/signup")
            .form(&[("name", name), ("subdomain", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "sign-up of {name}");
    }

    /// `POST /api/notes`; the status.
    pub(crate) async fn post_note(&self, host: &str, title: &str) -> u16 {
        self.post(host, "/api/notes")
            .json(&json!({"title": title, "body": ""}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Registry id of the tenant whose schema is `schema` now.
    pub(crate) async fn id_of(&self, schema: &str) -> i64 {
        self.tenantry
            .admin()
            .tenant(schema)
            .await
            .expect("tenant")
            .id
    }

    /// Schema name of tenant `id` now.
    pub(crate) async fn schema_of(&self, id: i64) -> String {
        let tenants = self.tenantry.admin().tenants().await.unwrap();
        let tenant = tenants.into_iter().find(|t| t.id == id);
        tenant.expect("tenant still exists").schema
    }

    /// Every note title in `schema`, read with plain SQL (not through Tenantry).
    pub(crate) async fn titles_in(&self, schema: &str) -> Vec<String> {
        let mut conn = PgConnection::connect(self.db.url()).await.unwrap();
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT title FROM \"{schema}\".notes ORDER BY id"
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Swaps two tenants' schema names with three renames, as an operator (or attacker) would.
pub(crate) async fn swap(tenantry: &Tenantry, a: &str, b: &str) {
    for (from, to) in [(a, "swap_tmp"), (b, a), ("swap_tmp", b)] {
        tenantry
            .admin()
            .rename_tenant(from, to)
            .await
            .unwrap_or_else(|e| panic!("rename {from} -> {to}: {e}"));
    }
}

/// Titles in a `GET /api/notes` answer that are not `me`'s (or the body if it is no list).
pub(crate) fn foreign_titles(body: &[u8], me: &str, other: &str) -> Vec<String> {
    match serde_json::from_slice::<Vec<Note>>(body) {
        Ok(notes) => notes
            .into_iter()
            .map(|n| n.title)
            .filter(|t| !t.contains(me) || t.contains(other))
            .collect(),
        Err(_) => vec![format!("unparseable: {}", String::from_utf8_lossy(body))],
    }
}

/// The request line and headers of `POST /api/notes` with a body of `len` bytes to come.
pub(crate) fn post_head(host: &str, len: usize) -> String {
    format!(
        "POST /api/notes HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// A JSON note body of exactly `len` bytes.
pub(crate) fn note_body(title: &str, len: usize) -> Vec<u8> {
    let bare = json!({"title": title, "body": ""}).to_string();
    let pad = len.checked_sub(bare.len()).expect("body length too small");
    json!({"title": title, "body": "x".repeat(pad)})
        .to_string()
        .into_bytes()
}

/// Reads a whole `Connection: close` response: (status, text).
pub(crate) async fn read_response(tcp: &mut TcpStream, within: Duration) -> (u16, String) {
    let mut raw = Vec::new();
    tokio::time::timeout(within, tcp.read_to_end(&mut raw))
        .await
        .expect("no answer in time")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    (status, text)
}
