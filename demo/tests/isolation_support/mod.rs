//! Shared harness of the `isolation_*` tests: a small app on `TenantRouter` with handlers that
//! misbehave on purpose (error after a write, panic, savepoint games, timeouts, slow queries the
//! client walks away from), a load generator that checks every response for another tenant's
//! data, post-run checks of the pool, and helpers that start a private PostgreSQL cluster and a
//! PgBouncer.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Query, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use futures::{FutureExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Executor, PgConnection};
use tenantry::axum::{CurrentTenant, HttpError, PublicDb, TenantDb, TenantRouter, TenantryExt};
use tenantry::{BoxError, MigrationSet, NewTenant, Tenant, TenantHooks, Tenantry};

/// Shared schema: one public marker row.
pub const SHARED_SQL: &str = "CREATE TABLE public_notice (msg TEXT NOT NULL); \
     INSERT INTO public_notice VALUES ('public-marker');";
/// Tenant schema: marker rows naming their tenant.
pub const TENANT_SQL: &str = "CREATE TABLE markers (\
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
     tenant TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'seed');";

/// Seeds three marker rows naming the tenant, inside the creation transaction.
pub struct MarkerHooks;

#[tenantry::async_trait]
impl TenantHooks for MarkerHooks {
    async fn after_create(&self, tenant: &Tenant, conn: &mut PgConnection) -> Result<(), BoxError> {
        sqlx::query("INSERT INTO markers (tenant) SELECT $1 FROM generate_series(1, 3)")
            .bind(&tenant.schema)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// What a handler saw inside its transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Obs {
    /// The tenant the router resolved (from `CurrentTenant`), or `public`.
    pub tenant: String,
    /// `current_schema()`.
    pub schema: Option<String>,
    /// `current_setting('search_path')`.
    pub path: String,
    /// `current_user`.
    pub user: String,
    /// Distinct `tenant` values of the `markers` table reachable through the path.
    pub markers: Vec<String>,
}

/// Counters the handlers keep (to prove the mean cases really happened on the server).
#[derive(Debug, Default)]
pub struct Counters {
    /// Handlers whose future was dropped before it finished (client disconnects, mostly).
    pub dropped_mid_handler: AtomicU64,
    /// Handlers that panicked on purpose.
    pub panicked: AtomicU64,
    /// Savepoint rollbacks that undid a `SET search_path` to another tenant.
    pub savepoint_rollbacks: AtomicU64,
}

/// Settings of the app the harness builds.
#[derive(Clone, Copy)]
pub struct AppOptions {
    /// Use unnamed (non-persistent) statements in handlers (needed behind PgBouncer < 1.21).
    pub unnamed_statements: bool,
}

#[derive(Clone)]
struct Ctx {
    counters: Arc<Counters>,
    opts: AppOptions,
    /// Schema names of all tenants (to point a rolled-back `SET search_path` at another one).
    schemas: Arc<Vec<String>>,
}

/// Counts a handler as dropped unless it reached its end.
struct DropGuard<'a>(&'a AtomicU64, bool);
impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

macro_rules! q {
    ($ctx:expr, $sql:expr) => {
        sqlx::query($sql).persistent(!$ctx.opts.unnamed_statements)
    };
}

async fn observe(conn: &mut PgConnection, ctx: &Ctx, tenant: &str) -> Result<Obs, sqlx::Error> {
    use sqlx::Row;
    let row = q!(
        ctx,
        "SELECT current_schema()::text, current_setting('search_path'), current_user::text, \
         CASE WHEN to_regclass('markers') IS NULL THEN NULL ELSE 1 END"
    )
    .fetch_one(&mut *conn)
    .await?;
    let has_markers: Option<i32> = row.get(3);
    let markers = if has_markers.is_some() {
        q!(ctx, "SELECT DISTINCT tenant FROM markers ORDER BY 1")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Obs {
        tenant: tenant.to_owned(),
        schema: row.get(0),
        path: row.get(1),
        user: row.get(2),
        markers,
    })
}

async fn read(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    let obs = observe(&mut db, &ctx, &t.schema).await?;
    db.commit().await?;
    Ok(Json(obs))
}

async fn write(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'write')"
    )
    .bind(&t.schema)
    .execute(&mut *db)
    .await?;
    let obs = observe(&mut db, &ctx, &t.schema).await?;
    db.commit().await?;
    Ok(Json(obs))
}

/// Writes a row that must never be seen, then fails: the transaction is rolled back.
async fn write_then_fail(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(&t.schema)
    .execute(&mut *db)
    .await?;
    Err(HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "deliberate failure after a write",
    ))
}

/// Writes a row that must never be seen, then panics while holding the transaction.
async fn write_then_panic(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Json<Obs> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(&t.schema)
    .execute(&mut *db)
    .await
    .expect("insert");
    ctx.counters.panicked.fetch_add(1, Ordering::Relaxed);
    panic!("deliberate panic in a tenant handler (isolation stress)");
}

/// A slow query the client walks away from: the handler future is dropped mid-query.
async fn slow(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    let mut guard = DropGuard(&ctx.counters.dropped_mid_handler, false);
    q!(ctx, "SELECT pg_sleep(0.1)").execute(&mut *db).await?;
    let obs = observe(&mut db, &ctx, &t.schema).await?;
    db.commit().await?;
    guard.1 = true;
    Ok(Json(obs))
}

#[derive(Deserialize)]
struct Other {
    other: usize,
}

/// `SET search_path` (and `SET ROLE`-free variants of it) to another tenant inside a savepoint
/// that is rolled back: the path must come back to this tenant's.
async fn savepoint(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    Query(o): Query<Other>,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    let other = &ctx.schemas[o.other % ctx.schemas.len()];
    db.execute("SAVEPOINT hop").await?;
    db.execute(AssertSqlSafe(format!(
        "SET search_path TO \"{other}\", public"
    )))
    .await?;
    // Inside the savepoint the handler itself chose another tenant's path: not checked.
    q!(ctx, "SELECT count(*) FROM markers")
        .fetch_one(&mut *db)
        .await?;
    db.execute("ROLLBACK TO SAVEPOINT hop").await?;
    ctx.counters
        .savepoint_rollbacks
        .fetch_add(1, Ordering::Relaxed);
    // Also a failed statement inside a savepoint, rolled back.
    db.execute("SAVEPOINT bad").await?;
    let _ = db.execute("SELECT * FROM no_such_table").await;
    db.execute("ROLLBACK TO SAVEPOINT bad").await?;
    let obs = observe(&mut db, &ctx, &t.schema).await?;
    db.commit().await?;
    Ok(Json(obs))
}

/// Cancelled by PostgreSQL's `statement_timeout` (57014): answers 500, transaction rolled back.
async fn statement_timeout(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(&t.schema)
    .execute(&mut *db)
    .await?;
    db.execute("SET LOCAL statement_timeout = '15ms'").await?;
    q!(ctx, "SELECT pg_sleep(1)").execute(&mut *db).await?;
    Err(HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "statement_timeout did not fire",
    ))
}

/// Cancelled by a Tokio timeout: the query future is dropped mid-query (504).
async fn tokio_timeout(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(&t.schema)
    .execute(&mut *db)
    .await?;
    let slow = q!(ctx, "SELECT pg_sleep(0.1)").execute(&mut *db);
    match tokio::time::timeout(Duration::from_millis(15), slow).await {
        Err(_) => Err(HttpError::new(StatusCode::GATEWAY_TIMEOUT, "timed out")),
        Ok(_) => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "timeout did not fire",
        )),
    }
}

/// Session-scoped access, released properly.
async fn session(
    Extension(ctx): Extension<Ctx>,
    TenantryExt(tenantry): TenantryExt,
    t: CurrentTenant,
) -> Result<Json<Obs>, HttpError> {
    let result: Result<Obs, tenantry::Error> = async {
        let mut conn = tenantry.session(&t.0).await?;
        let obs = observe(&mut conn, &ctx, &t.schema).await?;
        conn.release().await?;
        Ok(obs)
    }
    .await;
    match result {
        Ok(obs) => Ok(Json(obs)),
        Err(e) => {
            // Shown with its cause (the body stays generic); refusals are expected behind a pooler.
            if !matches!(e, tenantry::Error::Refused(_)) {
                eprintln!("[session] error: {e:?}");
            }
            Err(e.into())
        }
    }
}

async fn public_read(
    Extension(ctx): Extension<Ctx>,
    mut db: PublicDb,
) -> Result<Json<Obs>, HttpError> {
    let obs = observe(&mut db, &ctx, "public").await?;
    db.commit().await?;
    Ok(Json(obs))
}

/// Turns a handler panic into a 500 so that the server (and the request's connection) survive.
async fn catch_panic(req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "handler panicked").into_response(),
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
    tenantry.migrate_shared().await.expect("migrate shared");
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
                t.create_tenant(NewTenant::new(schema(i), host(i)))
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

/// The kinds of request the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Read,
    Write,
    WriteFail,
    Panic,
    Disconnect,
    Savepoint,
    StatementTimeout,
    TokioTimeout,
    Session,
    Public,
}

/// Relative weights of the request kinds.
pub const MIX: &[(Kind, u32)] = &[
    (Kind::Read, 36),
    (Kind::Write, 14),
    (Kind::WriteFail, 5),
    (Kind::Panic, 3),
    (Kind::Disconnect, 4),
    (Kind::Savepoint, 10),
    (Kind::StatementTimeout, 3),
    (Kind::TokioTimeout, 3),
    (Kind::Session, 7),
    (Kind::Public, 15),
];

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests sent.
    pub requests: u64,
    /// Responses (or observations) carrying another tenant's data or path.
    pub violations: u64,
    /// The first few violations, for the failure message.
    pub examples: Vec<String>,
    /// Count per (kind, status); status 0 = client disconnected on purpose, 1 = transport error.
    pub statuses: std::collections::BTreeMap<(String, u16), u64>,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.requests += other.requests;
        self.violations += other.violations;
        self.examples.extend(other.examples.into_iter().take(10));
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
    }

    /// Number of responses with `status` over all kinds.
    pub fn count_status(&self, status: u16) -> u64 {
        self.statuses
            .iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, v)| v)
            .sum()
    }
}

/// The number of stress requests: `TENANTRY_STRESS_REQUESTS` or `default`.
pub fn requested_size(default: u64) -> u64 {
    std::env::var("TENANTRY_STRESS_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pick(mix: &[(Kind, u32)], rng: &mut impl Rng) -> Kind {
    let total: u32 = mix.iter().map(|m| m.1).sum();
    let mut x = rng.random_range(0..total);
    for (k, w) in mix {
        if x < *w {
            return *k;
        }
        x -= w;
    }
    unreachable!()
}

/// Checks one observation; returns a description of the violation, if any.
pub fn check(obs: &Obs, expected: &str) -> Option<String> {
    let ok = if expected == "public" {
        obs.tenant == "public"
            && obs.schema.as_deref() == Some("public")
            && obs.markers.is_empty()
            && obs.path == "public"
    } else {
        obs.tenant == expected
            && obs.schema.as_deref() == Some(expected)
            && obs.markers.iter().all(|m| m == expected)
            && !obs.markers.is_empty()
            && obs.path.starts_with(expected)
    };
    (!ok).then(|| format!("expected {expected}, saw {obs:?}"))
}

/// Sends `total` requests from `concurrency` clients on random tenants and checks every body.
pub async fn run_load(
    addr: SocketAddr,
    n_tenants: usize,
    total: u64,
    concurrency: usize,
) -> Report {
    run_load_with(addr, n_tenants, total, concurrency, MIX, None).await
}

/// Like [`run_load`] with another mix of request kinds, stopping early when `stop` is set.
pub async fn run_load_with(
    addr: SocketAddr,
    n_tenants: usize,
    total: u64,
    concurrency: usize,
    mix: &'static [(Kind, u32)],
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Report {
    let next = Arc::new(AtomicU64::new(0));
    let workers = (0..concurrency).map(|_| {
        let next = Arc::clone(&next);
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
            let mut report = Report::default();
            while next.fetch_add(1, Ordering::Relaxed) < total
                && !stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
            {
                let kind = pick(mix, &mut rng);
                let i = rng.random_range(0..n_tenants);
                let (host, expected) = if kind == Kind::Public {
                    ("public.test".to_owned(), "public".to_owned())
                } else {
                    (host(i), schema(i))
                };
                let path = match kind {
                    Kind::Read | Kind::Public => "/read".to_owned(),
                    Kind::Write => "/write".to_owned(),
                    Kind::WriteFail => "/write-fail".to_owned(),
                    Kind::Panic => "/panic".to_owned(),
                    Kind::Disconnect => "/slow".to_owned(),
                    Kind::Savepoint => {
                        format!("/savepoint?other={}", rng.random_range(0..n_tenants))
                    }
                    Kind::StatementTimeout => "/statement-timeout".to_owned(),
                    Kind::TokioTimeout => "/tokio-timeout".to_owned(),
                    Kind::Session => "/session".to_owned(),
                };
                report.requests += 1;
                let send = client
                    .get(format!("http://{addr}{path}"))
                    .header("host", &host)
                    .send();
                let status = if kind == Kind::Disconnect {
                    // Walk away while the handler's pg_sleep runs.
                    let wait = Duration::from_millis(rng.random_range(5..40));
                    match tokio::time::timeout(wait, send).await {
                        Err(_) => 0,
                        Ok(r) => check_response(r, &expected, &mut report).await,
                    }
                } else {
                    check_response(send.await, &expected, &mut report).await
                };
                *report
                    .statuses
                    .entry((format!("{kind:?}"), status))
                    .or_default() += 1;
            }
            report
        })
    });
    let mut report = Report::default();
    for w in futures::future::join_all(workers).await {
        report.merge(w.expect("load worker"));
    }
    report
}

async fn check_response(
    r: reqwest::Result<reqwest::Response>,
    expected: &str,
    report: &mut Report,
) -> u16 {
    let Ok(r) = r else { return 1 };
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap_or_default();
    if status == 200 {
        match serde_json::from_slice::<Obs>(&body) {
            Ok(obs) => {
                if let Some(v) = check(&obs, expected) {
                    report.violations += 1;
                    if report.examples.len() < 10 {
                        report.examples.push(v);
                    }
                }
            }
            Err(e) => {
                report.violations += 1;
                report
                    .examples
                    .push(format!("unparseable 200 body for {expected}: {e}"));
            }
        }
    } else {
        // Error bodies are generic: they must never name another tenant.
        let text = String::from_utf8_lossy(&body);
        if text.contains("\"t") || text.contains("markers") {
            report.violations += 1;
            report
                .examples
                .push(format!("error body for {expected} leaks: {text}"));
        }
    }
    status
}

/// After a run: the pool drains back to idle, every connection's session is clean, nothing is
/// left in a transaction, no rolled-back row survived and every row sits in its own tenant.
pub async fn check_after_run(tenantry: &Tenantry, n_tenants: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let pool = tenantry.raw_pool();
    // Returning connections finish asynchronously (a cancelled pg_sleep must end first).
    for _ in 0..100 {
        if pool.size() as usize == pool.num_idle() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if pool.size() as usize != pool.num_idle() {
        problems.push(format!(
            "{} of {} connections still checked out",
            pool.size() as usize - pool.num_idle(),
            pool.size()
        ));
    }
    // Hold every connection of the pool at once and look at its session.
    let size = pool.size();
    let mut conns = Vec::new();
    for _ in 0..size {
        conns.push(pool.acquire().await.expect("acquire"));
    }
    for conn in &mut conns {
        // Simple protocol: there now() = statement_timestamp() exactly when no transaction is open.
        use sqlx::Row;
        let row = sqlx::raw_sql(
            "SELECT current_setting('search_path'), current_user::text, session_user::text, now() = statement_timestamp()",
        )
        .fetch_one(&mut **conn)
        .await
        .expect("session state");
        let (path, user, session_user, idle): (String, String, String, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if path != "\"$user\", public" || user != session_user || !idle {
            problems.push(format!("dirty pooled connection: path={path} user={user} session_user={session_user} idle={idle}"));
        }
    }
    let conn = &mut conns[0];
    let in_tx: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .persistent(false)
    .fetch_one(&mut **conn)
    .await
    .unwrap();
    if in_tx != 0 {
        problems.push(format!("{in_tx} backends idle in transaction"));
    }
    let union = (0..n_tenants)
        .map(|i| {
            format!(
                "SELECT '{s}' AS schema, tenant, kind FROM \"{s}\".markers WHERE kind = 'poison' OR tenant <> '{s}'",
                s = schema(i)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let bad: Vec<(String, String, String)> = sqlx::query_as(AssertSqlSafe(union))
        .persistent(false)
        .fetch_all(&mut **conn)
        .await
        .unwrap();
    if !bad.is_empty() {
        problems.push(format!(
            "{} misplaced or rolled-back rows survive, e.g. {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        ));
    }
    problems
}

/// Prints a report in one block (visible with `--nocapture`).
pub fn print_report(label: &str, report: &Report, counters: &Counters, elapsed: Duration) {
    eprintln!(
        "[{label}] {} requests in {:.1}s, {} violations; server: {} handlers dropped mid-query, {} panics caught, {} savepoint rollbacks",
        report.requests,
        elapsed.as_secs_f64(),
        report.violations,
        counters.dropped_mid_handler.load(Ordering::Relaxed),
        counters.panicked.load(Ordering::Relaxed),
        counters.savepoint_rollbacks.load(Ordering::Relaxed),
    );
    for ((kind, status), n) in &report.statuses {
        eprintln!("[{label}]   {kind:<17} {status:>3}  x{n}");
    }
    for e in &report.examples {
        eprintln!("[{label}] VIOLATION {e}");
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a program, as the `postgres` OS user when we are root (PostgreSQL and PgBouncer refuse
/// to run as root).
fn run_as_postgres(program: &Path, args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .status()
    } else {
        Command::new(program).args(args).status()
    }
}

/// A scratch directory owned by the `postgres` OS user (when root), removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    /// Creates `$TMPDIR/tenantry-<label>-<random>`.
    pub fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tenantry-{label}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success(), "chown {}", dir.display());
        }
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private PostgreSQL cluster on a free port (PostgreSQL 15 binaries), stopped on drop.
pub struct PrivateCluster {
    bin: PathBuf,
    dir: ScratchDir,
    /// Its port.
    pub port: u16,
}

impl PrivateCluster {
    /// `initdb` + `pg_ctl start`; `None` when the server binaries are not installed.
    pub fn start() -> Option<Self> {
        let bin = [
            "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/16/bin",
            "/usr/lib/postgresql/17/bin",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|b| b.join("initdb").exists())?;
        let dir = ScratchDir::new("pg");
        let data = dir.0.join("data");
        let status = run_as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        .unwrap();
        assert!(status.success(), "initdb failed");
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
        };
        cluster.pg_ctl_start();
        Some(cluster)
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.0.join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=60",
            self.port,
            self.dir.0.display()
        );
        let log = self.dir.0.join("postgres.log");
        let status = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        )
        .unwrap();
        assert!(status.success(), "pg_ctl start failed");
    }

    /// Starts the server again after [`PrivateCluster::stop`].
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// Stops the server (`-m fast`: connections are terminated).
    pub fn stop(&self) {
        let data = self.dir.0.join("data");
        let _ = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PgBouncer in transaction pooling mode in front of 127.0.0.1:5432, killed on drop.
pub struct PgBouncer {
    child: std::process::Child,
    _dir: ScratchDir,
    /// Its port.
    pub port: u16,
    /// `pgbouncer --version`, first line.
    pub version: String,
}

/// Where PgBouncer is, if installed.
pub fn pgbouncer_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

impl PgBouncer {
    /// Starts PgBouncer with `extra` settings appended to `[pgbouncer]`.
    pub async fn start(binary: &Path, pool_size: u32, extra: &str) -> Self {
        let dir = ScratchDir::new("pgbouncer");
        let port = free_port();
        let ini = dir.0.join("pgbouncer.ini");
        let users = dir.0.join("userlist.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port=5432\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
                 default_pool_size = {pool_size}\nmax_client_conn = 500\nignore_startup_parameters = extra_float_digits\n\
                 logfile = {log}\n{extra}\n",
                users = users.display(),
                log = dir.0.join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir.0)
                .status()
                .unwrap();
        }
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        };
        let child = cmd.arg("-q").arg(&ini).spawn().expect("start pgbouncer");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            _dir: dir,
            port,
            version,
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser forwards SIGTERM to pgbouncer.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
