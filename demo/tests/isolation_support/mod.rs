//! Shared harness of the `isolation_*` tests: a small app on `TenantRouter` with handlers that
//! misbehave on purpose (error after a write, panic, savepoint games, timeouts, slow queries the
//! client walks away from), a load generator that checks every response for another tenant's
//! data, post-run checks of the pool, and helpers that start a private PostgreSQL cluster and a
//! PgBouncer.

#![allow(dead_code)]

pub mod churn;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
use tenantry::axum::{CurrentTenant, HttpError, PublicDb, TenantContext, TenantDb, TenantRouter};
use tenantry::{BoxError, MigrationSet, NewTenant, Tenant, TenantHooks, Tenantry};

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

/// What a handler saw inside its transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Obs {
    /// Schema of the tenant the transaction was opened for (`TenantTx::tenant`), or `public`.
    pub tenant: String,
    /// That tenant's registry id (0 for public).
    pub id: i64,
    /// Registry id of the tenant the router resolved (`CurrentTenant`): the same tenant, maybe
    /// an older record of it (the `BEGIN` may have resolved the request again after a rename).
    pub resolved_id: i64,
    /// The tenant's label (display name): the tag of its marker rows.
    pub label: String,
    /// `current_schema()`.
    pub schema: Option<String>,
    /// `current_setting('search_path')`.
    pub path: String,
    /// `current_user`.
    pub user: String,
    /// Distinct `tenant` values of the `markers` table reachable through the path.
    pub markers: Vec<String>,
    /// When the markers were read (`clock_timestamp()`, seconds since the Unix epoch).
    pub read_at: f64,
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

/// The bodies of the deliberate 500s (any other 500 is a failure).
pub const DELIBERATE_500: [&str; 3] = [
    "deliberate failure after a write",
    "handler panicked",
    "statement_timeout fired (deliberate)",
];

/// Whom a handler works for: the transaction's tenant and the id the router resolved.
struct Who {
    schema: String,
    id: i64,
    resolved_id: i64,
    label: String,
}

impl Who {
    fn of(tenant: &Tenant, resolved: &CurrentTenant) -> Self {
        Self {
            schema: tenant.schema.clone(),
            id: tenant.id,
            resolved_id: resolved.id,
            label: tenant.display_name.clone(),
        }
    }

    fn public() -> Self {
        Self {
            schema: "public".into(),
            id: 0,
            resolved_id: 0,
            label: "public".into(),
        }
    }
}

async fn observe(conn: &mut PgConnection, ctx: &Ctx, who: Who) -> Result<Obs, sqlx::Error> {
    use sqlx::Row;
    let row = q!(
        ctx,
        "SELECT current_schema()::text, current_setting('search_path'), current_user::text, \
         CASE WHEN to_regclass('markers') IS NULL THEN NULL ELSE 1 END, \
         extract(epoch FROM clock_timestamp())::float8"
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
        tenant: who.schema,
        id: who.id,
        resolved_id: who.resolved_id,
        label: who.label,
        schema: row.get(0),
        path: row.get(1),
        user: row.get(2),
        markers,
        read_at: row.get(4),
    })
}

async fn read(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    let who = Who::of(db.tenant(), &t);
    let obs = observe(&mut db, &ctx, who).await?;
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
    .bind(db.tenant().display_name.clone())
    .execute(&mut *db)
    .await?;
    let who = Who::of(db.tenant(), &t);
    let obs = observe(&mut db, &ctx, who).await?;
    db.commit().await?;
    Ok(Json(obs))
}

/// Writes a row that must never be seen, then fails: the transaction is rolled back.
async fn write_then_fail(
    Extension(ctx): Extension<Ctx>,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(db.tenant().display_name.clone())
    .execute(&mut *db)
    .await?;
    Err(HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        DELIBERATE_500[0],
    ))
}

/// Writes a row that must never be seen, then panics while holding the transaction.
async fn write_then_panic(Extension(ctx): Extension<Ctx>, mut db: TenantDb) -> Json<Obs> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(db.tenant().display_name.clone())
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
    let who = Who::of(db.tenant(), &t);
    let obs = observe(&mut db, &ctx, who).await?;
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
    let who = Who::of(db.tenant(), &t);
    let obs = observe(&mut db, &ctx, who).await?;
    db.commit().await?;
    Ok(Json(obs))
}

/// Cancelled by PostgreSQL's `statement_timeout` (57014): answers 500, transaction rolled back.
async fn statement_timeout(
    Extension(ctx): Extension<Ctx>,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(db.tenant().display_name.clone())
    .execute(&mut *db)
    .await?;
    db.execute("SET LOCAL statement_timeout = '15ms'").await?;
    match q!(ctx, "SELECT pg_sleep(1)").execute(&mut *db).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57014") => Err(
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, DELIBERATE_500[2]),
        ),
        Err(e) => Err(e.into()),
        Ok(_) => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "statement_timeout did not fire",
        )),
    }
}

/// Cancelled by a Tokio timeout: the query future is dropped mid-query (504).
async fn tokio_timeout(
    Extension(ctx): Extension<Ctx>,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    q!(
        ctx,
        "INSERT INTO markers (tenant, kind) VALUES ($1, 'poison')"
    )
    .bind(db.tenant().display_name.clone())
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
    scope: TenantContext,
    t: CurrentTenant,
) -> Result<Json<Obs>, HttpError> {
    let result: Result<Obs, tenantry::Error> = async {
        // Through the request's context: the session also checks that the host is still the
        // tenant's (a domain may move while the request waits for a connection).
        let mut conn = scope.session().await?;
        let who = Who::of(conn.tenant(), &t);
        let obs = observe(&mut conn, &ctx, who).await?;
        conn.release().await?;
        Ok(obs)
    }
    .await;
    match result {
        Ok(obs) => Ok(Json(obs)),
        Err(e) => {
            // Shown with its cause (the body stays generic). Expected: refusals behind a
            // pooler, and a tenant that changed since the request was resolved (churn).
            use tenantry::Error as E;
            if !matches!(
                e,
                E::SessionScopeForbidden
                    | E::TenantMoved(_)
                    | E::SchemaMissing(_)
                    | E::TenantNotServing { .. }
            ) {
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
    let obs = observe(&mut db, &ctx, Who::public()).await?;
    db.commit().await?;
    Ok(Json(obs))
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
    /// Requests to churn hosts are not counted here (see `samples`).
    pub statuses: std::collections::BTreeMap<(String, u16), u64>,
    /// 500s other than the deliberate ones ([`DELIBERATE_500`]), on any host: a failure.
    pub unexpected_500: Vec<String>,
    /// Requests to churn hosts, checked after the run against the churn log (`churn::verify`).
    pub samples: Vec<churn::Sample>,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.requests += other.requests;
        self.violations += other.violations;
        self.examples.extend(other.examples.into_iter().take(10));
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.unexpected_500.extend(other.unexpected_500);
        self.samples.extend(other.samples);
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
            && obs.label == expected
            && obs.id == obs.resolved_id
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
    let load = Load {
        addr,
        n_tenants,
        total,
        concurrency,
        mix,
        stop,
        churn: None,
    };
    load.run().await
}

/// A load: `total` requests from `concurrency` clients.
pub struct Load {
    pub addr: SocketAddr,
    /// Tenants `0..n_tenants` (hosts `t{i:03}.test`) are checked strictly, response by response.
    pub n_tenants: usize,
    pub total: u64,
    pub concurrency: usize,
    pub mix: &'static [(Kind, u32)],
    /// Stops early when set.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Hosts whose tenants change during the run, and the share of tenant requests sent to them;
    /// their answers are kept as samples and checked after the run.
    pub churn: Option<(Arc<Vec<String>>, f64)>,
}

impl Load {
    /// Sends the requests and checks every answer.
    pub async fn run(self) -> Report {
        let load = Arc::new(self);
        let next = Arc::new(AtomicU64::new(0));
        let workers = (0..load.concurrency).map(|_| {
            let next = Arc::clone(&next);
            let load = Arc::clone(&load);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
                let mut report = Report::default();
                while next.fetch_add(1, Ordering::Relaxed) < load.total
                    && !load
                        .stop
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed))
                {
                    load.one(&client, &mut rng, &mut report).await;
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

    async fn one(&self, client: &reqwest::Client, rng: &mut impl Rng, report: &mut Report) {
        let kind = pick(self.mix, rng);
        let i = rng.random_range(0..self.n_tenants);
        let churn_host = match &self.churn {
            Some((hosts, share)) if kind != Kind::Public && rng.random_bool(*share) => {
                Some(hosts[rng.random_range(0..hosts.len())].clone())
            }
            _ => None,
        };
        let (host, expected) = match (&churn_host, kind) {
            (Some(h), _) => (h.clone(), String::new()),
            (None, Kind::Public) => ("public.test".to_owned(), "public".to_owned()),
            (None, _) => (host(i), schema(i)),
        };
        let path = match kind {
            Kind::Read | Kind::Public => "/read".to_owned(),
            Kind::Write => "/write".to_owned(),
            Kind::WriteFail => "/write-fail".to_owned(),
            Kind::Panic => "/panic".to_owned(),
            Kind::Disconnect => "/slow".to_owned(),
            Kind::Savepoint => {
                format!("/savepoint?other={}", rng.random_range(0..self.n_tenants))
            }
            Kind::StatementTimeout => "/statement-timeout".to_owned(),
            Kind::TokioTimeout => "/tokio-timeout".to_owned(),
            Kind::Session => "/session".to_owned(),
        };
        report.requests += 1;
        let sent = Instant::now();
        let send = client
            .get(format!("http://{}{path}", self.addr))
            .header("host", &host)
            .send();
        let answer = if kind == Kind::Disconnect {
            // Walk away while the handler's pg_sleep runs.
            let wait = Duration::from_millis(rng.random_range(5..40));
            match tokio::time::timeout(wait, send).await {
                Err(_) => Answer::walked_away(),
                Ok(r) => Answer::read(r).await,
            }
        } else {
            Answer::read(send.await).await
        };
        let done = Instant::now();
        answer.check_error_body(&host, report);
        if answer.status == 500 && !DELIBERATE_500.contains(&answer.body.as_str()) {
            report
                .unexpected_500
                .push(format!("{kind:?} on {host}: 500 {:?}", answer.body));
        }
        let obs = (answer.status == 200).then(|| serde_json::from_str::<Obs>(&answer.body));
        if let Some(host) = churn_host {
            report.samples.push(churn::Sample {
                host,
                kind,
                sent,
                done,
                status: answer.status,
                retry_after: answer.retry_after,
                obs: obs.and_then(Result::ok),
            });
            return;
        }
        let violation = match obs {
            Some(Ok(obs)) => check(&obs, &expected),
            Some(Err(e)) => Some(format!("unparseable 200 body for {expected}: {e}")),
            None => None,
        };
        if let Some(v) = violation {
            report.violations += 1;
            if report.examples.len() < 10 {
                report.examples.push(v);
            }
        }
        *report
            .statuses
            .entry((format!("{kind:?}"), answer.status))
            .or_default() += 1;
    }
}

/// An answer as the client saw it.
struct Answer {
    /// 0: the client walked away on purpose; 1: transport error.
    status: u16,
    retry_after: bool,
    body: String,
}

impl Answer {
    fn walked_away() -> Self {
        Self {
            status: 0,
            retry_after: false,
            body: String::new(),
        }
    }

    async fn read(r: reqwest::Result<reqwest::Response>) -> Self {
        let Ok(r) = r else {
            return Self {
                status: 1,
                ..Self::walked_away()
            };
        };
        Self {
            status: r.status().as_u16(),
            retry_after: r.headers().contains_key(reqwest::header::RETRY_AFTER),
            body: r.text().await.unwrap_or_default(),
        }
    }

    /// Error bodies are generic: they must never name a tenant.
    fn check_error_body(&self, host: &str, report: &mut Report) {
        if self.status != 200 && (self.body.contains("\"t") || self.body.contains("markers")) {
            report.violations += 1;
            report
                .examples
                .push(format!("error body for {host} leaks: {}", self.body));
        }
    }
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
