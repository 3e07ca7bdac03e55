//! The bench's notes app with row-level security (the approach of crates such as tenaxum): every
//! tenant's notes in one shared `notes` table with a `tenant_id` column, `FORCE ROW LEVEL
//! SECURITY` and a policy on `current_setting('app.tenant_id')`, the app connected as a
//! non-superuser role that owns the tables. A request's host is looked up in a `domains` table
//! (cached in memory like Tenantry's resolution: known hosts 10 minutes, unknown hosts 10 s, in a
//! separate bounded cache, concurrent misses coalesced); each database request runs in a
//! transaction that starts with `set_config('app.tenant_id', $1, true)`.
//!
//! `peers-rls setup --database-url URL --count N` creates and seeds the database (one statement
//! per table, generate_series); `peers-rls serve --database-url URL --addr ADDR` serves
//! `GET /api/notes`, `GET /api/whoami` and the adversarial `/stress/*` endpoints.

mod resolve;
mod setup;
mod stress;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Parser, Subcommand};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use resolve::{Resolver, TenantRef};

/// Command line.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create (if missing) and seed the database: N tenants, `--notes` notes each.
    Setup {
        /// Database URL as a superuser (the database is created if missing).
        #[arg(long)]
        database_url: String,
        /// Tenants t000001..tN at tNNNNNN.bench.local.
        #[arg(long, default_value_t = 1000)]
        count: i64,
        /// Notes per tenant.
        #[arg(long, default_value_t = 10)]
        notes: i32,
    },
    /// Serve the app.
    Serve {
        /// Database URL; the app connects to it as the `peers_rls_app` role.
        #[arg(long)]
        database_url: String,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8107")]
        addr: String,
        /// Pool size (the demo uses 16).
        #[arg(long, default_value_t = 16)]
        max_connections: u32,
    },
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) pool: PgPool,
    pub(crate) resolver: Arc<Resolver>,
}

/// A note as the API returns it (the demo's shape).
#[derive(Serialize)]
struct Note {
    id: i64,
    title: String,
    body: String,
}

/// A transaction whose rows are the tenant's: `app.tenant_id` set for this transaction only.
pub(crate) async fn begin_tenant(
    pool: &PgPool,
    tenant: &TenantRef,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.id.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Maps a database error to a 500 (logged).
pub(crate) fn internal(e: sqlx::Error) -> (StatusCode, String) {
    eprintln!("database error: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "database error".into())
}

async fn list_notes(
    State(app): State<App>,
    tenant: TenantRef,
) -> Result<Json<Vec<Note>>, (StatusCode, String)> {
    let mut tx = begin_tenant(&app.pool, &tenant).await.map_err(internal)?;
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id LIMIT 10")
            .fetch_all(&mut *tx)
            .await
            .map_err(internal)?;
    let notes = rows
        .into_iter()
        .map(|(id, title, body)| Note { id, title, body })
        .collect();
    Ok(Json(notes))
}

#[derive(Serialize)]
struct WhoAmI {
    tenant: Arc<str>,
    domain: Arc<str>,
}

async fn whoami(tenant: TenantRef) -> Json<WhoAmI> {
    Json(WhoAmI {
        tenant: tenant.name.clone(),
        domain: tenant.host.clone(),
    })
}

async fn serve(database_url: &str, addr: &str, max_connections: u32) -> anyhow::Result<()> {
    let options: PgConnectOptions = database_url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options.username(setup::APP_ROLE))
        .await?;
    let resolver = Arc::new(Resolver::new(pool.clone()));
    // Panics answer 500 (as the demo's stack does): only the stress routes can panic, so only
    // they run on a task of their own.
    let stress = Router::new()
        .route("/stress/read", get(stress::read))
        .route("/stress/write", post(stress::write))
        .route("/stress/write_fail", post(stress::write_fail))
        .route("/stress/panic", post(stress::panic))
        .route("/stress/slow", get(stress::slow))
        .route("/stress/savepoint", get(stress::savepoint))
        .route("/stress/statement_timeout", post(stress::statement_timeout))
        .route("/stress/tokio_timeout", post(stress::tokio_timeout))
        .route_layer(axum::middleware::from_fn(stress::catch_panic));
    let app = Router::new()
        .route("/api/notes", get(list_notes))
        .route("/api/whoami", get(whoami))
        .merge(stress)
        .with_state(App { pool, resolver });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("peers-rls on http://{addr} (pool {max_connections})");
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Setup {
            database_url,
            count,
            notes,
        } => setup::run(&database_url, count, notes).await,
        Command::Serve {
            database_url,
            addr,
            max_connections,
        } => serve(&database_url, &addr, max_connections).await,
    }
}
