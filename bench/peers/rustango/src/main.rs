//! The bench's notes app on rustango 0.62's schema mode, built as a rustango user would: the
//! app's axum router handed to `rustango::server::Builder` (`from_pool(..).tenant_pools(..)
//! .api(router).into_router()`), which mounts rustango's host dispatch, tenant admin and operator
//! console around it, tenants as `rustango_orgs` rows (`storage_mode = 'schema'`,
//! `host_pattern = tNNNNNN.bench.local`).
//!
//! Resolution: rustango's own `ChainResolver` (the Builder's: `SubdomainResolver` on
//! `host_pattern`, then `RegisteredHostResolver`), an in-process cache per registry (host ->
//! whole `Org`, misses cached too, bounded, TTL; a throttled fingerprint query on `rustango_orgs`
//! notices other processes' writes).
//!
//! Two ways to reach the tenant's schema (`--mode`):
//! * `shared` (default; the README's "one shared pool with `SET search_path` per request"):
//!   `TenantPoolsConfig::max_cached_scoped_pools = 0`, each request takes a connection of the
//!   shared registry pool through `TenantPools::acquire`: the schema's path is checked on the
//!   catalogs, the connection's cached statements are dropped, `SET search_path`; on release
//!   `RESET search_path` (and the statements dropped again).
//! * `scoped`: the `TenantScope` extractor and `t.pool()`: a small pool per tenant with
//!   `search_path` in its connect options, LRU-cached (`--scoped-pools`, rustango's default 64;
//!   `--scoped-connections` each, default 8).
//!
//! `peers-rustango setup --database-url URL --count N` creates the registry (rustango's own
//! bootstrap migrations) and N schema-mode tenants in bulk (bench-only: SQL batches, the same
//! layout as the demo's tenants); `peers-rustango provision ...` creates tenants and migrates them
//! through rustango's provisioning instead (see `provision.rs`).

mod db;
mod provision;
mod setup;
mod stress;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Parser, Subcommand, ValueEnum};
use rustango::sql::sqlx;
use rustango::sql::sqlx::postgres::PgPoolOptions;
use rustango::tenancy::TenantPoolsConfig;
use serde::Serialize;

use db::{Db, Resolved};

/// Command line.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the registry and N schema-mode tenants (bulk, bench-only).
    Setup(setup::SetupArgs),
    /// Create tenants and migrate them through rustango's own provisioning (timed).
    Provision(provision::ProvisionArgs),
    /// Serve the app.
    Serve {
        /// The registry database.
        #[arg(long)]
        database_url: String,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8108")]
        addr: String,
        /// The registry pool's size (the demo's pool: 16).
        #[arg(long, default_value_t = 16)]
        max_connections: u32,
        /// How a request reaches its schema.
        #[arg(long, value_enum, default_value_t = Mode::Shared)]
        mode: Mode,
        /// `scoped` mode: tenant pools cached at once.
        #[arg(long, default_value_t = 64)]
        scoped_pools: usize,
        /// `scoped` mode: connections per tenant pool.
        #[arg(long, default_value_t = 8)]
        scoped_connections: u32,
        /// The apex domain (its host goes to rustango's operator console).
        #[arg(long, default_value = "bench.local")]
        apex: String,
    },
}

/// How a request reaches its tenant's schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// `TenantPools::acquire` on the shared registry pool (`SET search_path`, reset on release).
    Shared,
    /// `TenantScope::pool()`: a cached pool per tenant with `search_path` at connect.
    Scoped,
}

/// A note as the API returns it (the demo's shape).
#[derive(Serialize)]
struct Note {
    id: i64,
    title: String,
    body: String,
}

async fn list_notes(mut db: Db) -> Result<Json<Vec<Note>>, db::Failure> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id LIMIT 10")
            .fetch_all(&mut *db.conn)
            .await?;
    let notes = rows
        .into_iter()
        .map(|(id, title, body)| Note { id, title, body })
        .collect();
    Ok(Json(notes))
}

#[derive(Serialize)]
struct WhoAmI {
    tenant: String,
    domain: String,
}

async fn whoami(r: Resolved) -> Json<WhoAmI> {
    Json(WhoAmI {
        tenant: r.org.slug.clone(),
        domain: r.host,
    })
}

async fn serve(
    url: &str,
    addr: &str,
    max_connections: u32,
    mode: Mode,
    config: TenantPoolsConfig,
    apex: &str,
) -> anyhow::Result<()> {
    let registry = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(url)
        .await?;
    let api = Router::new()
        .route("/api/notes", get(list_notes))
        .route("/api/whoami", get(whoami))
        .route("/stress/read", get(stress::read))
        .route("/stress/write", post(stress::write))
        .route("/stress/write_fail", post(stress::write_fail))
        .route("/stress/panic", post(stress::panic))
        .route("/stress/slow", get(stress::slow))
        .route("/stress/savepoint", get(stress::savepoint))
        .route("/stress/statement_timeout", post(stress::statement_timeout))
        .route("/stress/tokio_timeout", post(stress::tokio_timeout))
        .layer(axum::Extension(Arc::new(mode)));
    let app = rustango::server::Builder::from_pool(registry, url, apex)
        .tenant_pools(config)
        .api(api)
        .into_router()
        .await
        .map_err(|e| anyhow::anyhow!("rustango router: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("peers-rustango on http://{addr} (mode {mode:?}, registry pool {max_connections})");
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Setup(a) => setup::run(a).await,
        Command::Provision(a) => provision::run(a).await,
        Command::Serve {
            database_url,
            addr,
            max_connections,
            mode,
            scoped_pools,
            scoped_connections,
            apex,
        } => {
            let config = TenantPoolsConfig {
                max_cached_scoped_pools: if mode == Mode::Shared {
                    0
                } else {
                    scoped_pools
                },
                scoped_pool_max_connections: scoped_connections,
                ..TenantPoolsConfig::default()
            };
            serve(&database_url, &addr, max_connections, mode, config, &apex).await
        }
    }
}
