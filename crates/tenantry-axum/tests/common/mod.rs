//! Shared set-up for the HTTP tests: a fresh database, a Tenantry handle, a real server on an
//! ephemeral port and a reqwest client that sets the `Host` header.

// Helpers shared by several test binaries: each uses a part (dead_code), and `pub` only
// marks what the test files call (a test binary exports nothing, so unreachable_pub is noise).
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use axum::Router;
use axum::extract::OriginalUri;
use axum::routing::get;
use tenantry_axum::{CurrentTenant, RequestHost, TenantBase, TenantDb, TenantRouter};
use tenantry_sqlx::{NewTenant, Tenantry, TenantryBuilder};
use tenantry_testing::TestDb;

/// Tenant migrations used by most tests: one `notes` table (the test kit's fixture).
pub use tenantry_testing::notes_migrations;

/// A builder with the notes migrations and `localhost` + `127.0.0.1` as public domains.
pub fn builder() -> TenantryBuilder {
    Tenantry::builder()
        .tenant_migration_set("default", notes_migrations())
        .public_domains(["localhost", "127.0.0.1"])
}

/// A fresh database with the registry migrated.
pub async fn setup() -> (TestDb, Tenantry) {
    let db = TestDb::new().await;
    let tenantry = builder().connect(db.url()).await.expect("connect");
    tenantry
        .fleet()
        .migrate_shared()
        .await
        .expect("migrate shared");
    (db, tenantry)
}

/// Creates tenant `name` at `<name>.localhost`.
pub async fn tenant(tenantry: &Tenantry, name: &str) {
    tenantry
        .admin()
        .create_tenant(NewTenant::new(name, format!("{name}.localhost")))
        .await
        .expect("create tenant");
}

/// A tenant router whose `/whoami` tells which tenant, prefix and paths a request saw, and which
/// schema its database transaction is in.
pub fn probe_router() -> Router {
    Router::new().route("/whoami", get(whoami)).route(
        "/",
        get(|t: CurrentTenant| async move { format!("home of {}", t.schema) }),
    )
}

async fn whoami(
    tenant: CurrentTenant,
    base: TenantBase,
    RequestHost(host): RequestHost,
    OriginalUri(original): OriginalUri,
    uri: axum::http::Uri,
    mut db: TenantDb,
) -> axum::Json<serde_json::Value> {
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *db)
        .await
        .unwrap();
    axum::Json(serde_json::json!({
        "tenant": tenant.schema,
        "base": base.0,
        "host": host,
        "path": uri.to_string(),
        "original": original.to_string(),
        "db_schema": schema,
        "link": base.link("/whoami"),
    }))
}

/// A public router answering "public" everywhere.
pub fn public_router() -> Router {
    Router::new().fallback(|| async { "public" })
}

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client that does not follow redirects.
    pub client: reqwest::Client,
}

impl Server {
    /// Serves `app` (with peer addresses) on 127.0.0.1:0.
    pub async fn start(app: TenantRouter) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info())
                .await
                .unwrap();
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { addr, client }
    }

    /// A GET to `path` with `Host: host`.
    pub fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("http://{}{path}", self.addr))
            .header("host", host)
    }

    /// GET, returning status and body.
    pub async fn fetch(&self, host: &str, path: &str) -> (u16, String) {
        let r = self.get(host, path).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// GET, returning the JSON body (asserting 200).
    pub async fn json(&self, host: &str, path: &str) -> serde_json::Value {
        let r = self.get(host, path).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {host}{path}");
        r.json().await.unwrap()
    }
}
