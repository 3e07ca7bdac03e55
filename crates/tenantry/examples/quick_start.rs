//! The README's five-minute guide, compiled by `cargo test`.
//!
//! Run it: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/quick_start cargo run -p tenantry
//! --example quick_start` (the database must exist), then
//! `curl -H 'Host: acme.example.com' localhost:8000/notes`.

use axum::{Json, Router, routing::get};
use tenantry::axum::{CurrentTenant, HttpError, TenantDb, TenantRouter};
use tenantry::{NewTenant, Tenantry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migrations");
    let tenantry = Tenantry::builder()
        .shared_migrations(format!("{dir}/shared"))
        .tenant_migrations(format!("{dir}/tenant"))
        .public_domains(["example.com"])
        .connect(&std::env::var("DATABASE_URL")?)
        .await?;
    tenantry.fleet().migrate_shared().await?; // registry + your shared migrations
    tenantry.fleet().migrate_tenants(Default::default()).await?; // every tenant schema, in parallel

    // Atomic: schema + migrations + tenant row + primary domain, or nothing at all.
    if let Err(e) = tenantry
        .admin()
        .create_tenant(NewTenant::new("acme", "acme.example.com"))
        .await
    {
        eprintln!("acme: {e}"); // already there on a second run
    }

    let public = Router::new().route("/", get(|| async { "marketing site" }));
    let tenant = Router::new().route("/notes", get(notes));
    let app = TenantRouter::new(tenantry).public(public).tenant(tenant);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8000").await?;
    axum::serve(listener, app.into_make_service()).await?;
    Ok(())
}

// `TenantDb` is a transaction whose search_path is "acme", "public": unqualified table names
// resolve in the tenant's schema, shared tables stay reachable. Dropping it rolls back;
// call `db.commit().await?` to keep writes.
async fn notes(tenant: CurrentTenant, mut db: TenantDb) -> Result<Json<Vec<String>>, HttpError> {
    let titles = sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
        .fetch_all(&mut *db)
        .await?;
    tracing::info!(tenant = %tenant.schema, "listed notes");
    Ok(Json(titles))
}
