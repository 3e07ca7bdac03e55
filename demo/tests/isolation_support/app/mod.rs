//! The app under test: a small app on `TenantRouter` whose handlers (in [`handlers`])
//! misbehave on purpose, served on an ephemeral port, and the handles it runs on.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures::{FutureExt, StreamExt};
use sqlx::PgConnection;
use sqlx::postgres::PgPoolOptions;
use tenantry::axum::TenantRouter;
use tenantry::{BoxError, MigrationSet, NewTenant, Tenant, TenantHooks, Tenantry};

mod handlers;

pub use handlers::{AppOptions, Counters, DELIBERATE_500, Obs};
use handlers::{
    Ctx, public_read, read, savepoint, session, slow, statement_timeout, tokio_timeout, write,
    write_then_fail, write_then_panic,
};

/// Shared schema: one public marker row.
pub const SHARED_SQL: &str = "CREATE TABLE public_notice (msg TEXT NOT NULL); \
     INSERT INTO public_notice VALUES ('public-marker');";
/// Tenant schema: marker rows tagged with their tenant's label (its display name, which a rename
/// leaves alone; the harness gives every tenant a unique one, equal to the schema name unless
/// the tenant was created under another label).
pub const TENANT_SQL: &str = "CREATE TABLE markers (\
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
     tenant TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'seed');";

/// Seeds three marker rows tagged with the tenant's label, inside the creation transaction.
pub struct MarkerHooks;

#[tenantry::async_trait]
impl TenantHooks for MarkerHooks {
    async fn after_create(&self, tenant: &Tenant, conn: &mut PgConnection) -> Result<(), BoxError> {
        sqlx::query("INSERT INTO markers (tenant) SELECT $1 FROM generate_series(1, 3)")
            .bind(&tenant.display_name)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Turns a handler panic into a 500 so that the server (and the request's connection) survive.
async fn catch_panic(req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, DELIBERATE_500[1]).into_response(),
    }
}

/// Keeps the deliberate panics out of the test output; other panics print as usual.
pub fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.contains("deliberate panic") {
                default(info);
            }
        }));
    });
}

/// The app under test, served on an ephemeral port.
pub struct Stack {
    /// The handle.
    pub tenantry: Tenantry,
    /// Where the app listens.
    pub addr: SocketAddr,
    /// Tenant schemas (tenant `i` is `t{i:03}` at `t{i:03}.test`).
    pub schemas: Arc<Vec<String>>,
    /// Server-side counters.
    pub counters: Arc<Counters>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Builds the handle (migrations in code) on `options` with a pool of `pool_size`.
pub async fn connect(
    options: sqlx::postgres::PgConnectOptions,
    pool_size: u32,
    acquire_timeout: Duration,
    configure: impl FnOnce(tenantry::TenantryBuilder) -> tenantry::TenantryBuilder,
) -> Tenantry {
    let builder = Tenantry::builder()
        .shared_migration_set(MigrationSet::from_sql(&[(1, "notice", SHARED_SQL)]))
        .tenant_migration_set(
            "default",
            MigrationSet::from_sql(&[(1, "markers", TENANT_SQL)]),
        )
        .public_domains(["public.test"])
        .hooks(MarkerHooks)
        .pool_options(
            PgPoolOptions::new()
                .max_connections(pool_size)
                .acquire_timeout(acquire_timeout),
        );
    let tenantry = configure(builder)
        .connect_with(options)
        .await
        .expect("connect");
    tenantry
        .fleet()
        .migrate_shared()
        .await
        .expect("migrate shared");
    tenantry
}

/// Like [`connect`] without running migrations (for a handle behind PgBouncer).
pub async fn connect_only(
    options: sqlx::postgres::PgConnectOptions,
    pool_size: u32,
    configure: impl FnOnce(tenantry::TenantryBuilder) -> tenantry::TenantryBuilder,
) -> Tenantry {
    let builder = Tenantry::builder()
        .tenant_migration_set(
            "default",
            MigrationSet::from_sql(&[(1, "markers", TENANT_SQL)]),
        )
        .public_domains(["public.test"])
        .pool_options(
            PgPoolOptions::new()
                .max_connections(pool_size)
                .acquire_timeout(Duration::from_secs(30)),
        );
    configure(builder)
        .connect_with(options)
        .await
        .expect("connect")
}

/// Schema name of tenant `i`.
pub fn schema(i: usize) -> String {
    format!("t{i:03}")
}

/// Host of tenant `i`.
pub fn host(i: usize) -> String {
    format!("t{i:03}.test")
}

/// Creates `n` tenants (4 at a time), each seeded with marker rows.
pub async fn create_tenants(tenantry: &Tenantry, n: usize) {
    futures::stream::iter(0..n)
        .map(|i| {
            let t = tenantry.clone();
            async move {
                t.admin()
                    .create_tenant(NewTenant::new(schema(i), host(i)))
                    .await
                    .unwrap_or_else(|e| panic!("create tenant {i}: {e}"));
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
}

/// Serves the misbehaving app for `tenantry` (which has `n` tenants).
pub async fn serve(tenantry: Tenantry, n: usize, opts: AppOptions) -> Stack {
    quiet_deliberate_panics();
    let schemas = Arc::new((0..n).map(schema).collect::<Vec<_>>());
    let counters = Arc::new(Counters::default());
    let ctx = Ctx {
        counters: Arc::clone(&counters),
        opts,
        schemas: Arc::clone(&schemas),
    };
    let tenant = Router::new()
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/write-fail", get(write_then_fail))
        .route("/panic", get(write_then_panic))
        .route("/slow", get(slow))
        .route("/savepoint", get(savepoint))
        .route("/statement-timeout", get(statement_timeout))
        .route("/tokio-timeout", get(tokio_timeout))
        .route("/session", get(session))
        .layer(axum::middleware::from_fn(catch_panic))
        .layer(Extension(ctx.clone()));
    let public = Router::new()
        .route("/read", get(public_read))
        .layer(Extension(ctx));
    let app = TenantRouter::new(tenantry.clone())
        .public(public)
        .tenant(tenant);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .unwrap();
    });
    Stack {
        tenantry,
        addr,
        schemas,
        counters,
        server,
    }
}
