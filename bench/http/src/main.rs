//! The control app of the HTTP benchmark: the demo's `GET /api/notes` and `GET /api/whoami`
//! handlers as a plain single-tenant axum + sqlx service (no Tenantry), one schema, same pool
//! size as the demo.
//!
//! `--tx` runs the notes query inside a transaction (`BEGIN`, query, rollback on drop),
//! the single-tenant equivalent of what `TenantDb` does.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tenantry_demo::tenant_site::Note;

/// Command line of the control server.
#[derive(Parser)]
struct Args {
    /// The control database (notes in its `public` schema).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/tenantry_bench_control"
    )]
    database_url: String,
    /// Listen address.
    #[arg(long, env = "CONTROL_ADDR", default_value = "127.0.0.1:8002")]
    addr: String,
    /// Pool size (the demo uses 16).
    #[arg(long, env = "CONTROL_MAX_CONNECTIONS", default_value_t = 16)]
    max_connections: u32,
    /// Run the notes query in a transaction, like `TenantDb` does.
    #[arg(long)]
    tx: bool,
}

#[derive(Clone)]
struct App {
    pool: PgPool,
    tx: bool,
}

const NOTES_SQL: &str = "SELECT id, title, body FROM notes ORDER BY id LIMIT 10";

async fn list_notes(State(app): State<App>) -> Result<Json<Vec<Note>>, StatusCode> {
    let notes = if app.tx {
        let mut tx = app.pool.begin().await.map_err(internal)?;
        sqlx::query_as(NOTES_SQL).fetch_all(&mut *tx).await
    } else {
        sqlx::query_as(NOTES_SQL).fetch_all(&app.pool).await
    };
    Ok(Json(notes.map_err(internal)?))
}

fn internal(e: sqlx::Error) -> StatusCode {
    eprintln!("database error: {e}");
    StatusCode::INTERNAL_SERVER_ERROR
}

#[derive(Serialize)]
struct WhoAmI {
    tenant: &'static str,
    domain: String,
}

async fn whoami(headers: HeaderMap) -> Json<WhoAmI> {
    // Same answer shape as the demo; a single-tenant app only echoes its host.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let host = host
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    Json(WhoAmI {
        tenant: "control",
        domain: host,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pool = PgPoolOptions::new()
        .max_connections(args.max_connections)
        .connect(&args.database_url)
        .await?;
    let app = Router::new()
        .route("/api/notes", get(list_notes))
        .route("/api/whoami", get(whoami))
        .with_state(App { pool, tx: args.tx });
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    eprintln!("control app on http://{} (tx={})", args.addr, args.tx);
    axum::serve(listener, app).await?;
    Ok(())
}
