//! The app's handlers: each reports what it saw inside its transaction ([`Obs`]); some fail,
//! panic, time out or play savepoint games on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Executor, PgConnection};
use tenantry::Tenant;
use tenantry::axum::{CurrentTenant, HttpError, PublicDb, TenantContext, TenantDb};

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

/// What every handler shares (an `Extension`).
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) counters: Arc<Counters>,
    pub(super) opts: AppOptions,
    /// Schema names of all tenants (to point a rolled-back `SET search_path` at another one).
    pub(super) schemas: Arc<Vec<String>>,
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

pub(super) async fn read(
    Extension(ctx): Extension<Ctx>,
    t: CurrentTenant,
    mut db: TenantDb,
) -> Result<Json<Obs>, HttpError> {
    let who = Who::of(db.tenant(), &t);
    let obs = observe(&mut db, &ctx, who).await?;
    db.commit().await?;
    Ok(Json(obs))
}

pub(super) async fn write(
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
pub(super) async fn write_then_fail(
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
pub(super) async fn write_then_panic(
    Extension(ctx): Extension<Ctx>,
    mut db: TenantDb,
) -> Json<Obs> {
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
pub(super) async fn slow(
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

/// The `/savepoint` query: which other tenant's path to try.
#[derive(Deserialize)]
pub(super) struct Other {
    other: usize,
}

/// `SET search_path` (and `SET ROLE`-free variants of it) to another tenant inside a savepoint
/// that is rolled back: the path must come back to this tenant's.
pub(super) async fn savepoint(
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
pub(super) async fn statement_timeout(
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
pub(super) async fn tokio_timeout(
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
pub(super) async fn session(
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

pub(super) async fn public_read(
    Extension(ctx): Extension<Ctx>,
    mut db: PublicDb,
) -> Result<Json<Obs>, HttpError> {
    let obs = observe(&mut db, &ctx, Who::public()).await?;
    db.commit().await?;
    Ok(Json(obs))
}
