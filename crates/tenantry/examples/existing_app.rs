//! Adding Tenantry to an existing axum app: the lines marked `// + tenantry` are all it takes
//! (7 of them); everything else is an ordinary axum app with state and a nested API.
//!
//! Run it: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/existing_app cargo run -p tenantry
//! --example existing_app`, then `curl -H 'Host: acme.localhost' localhost:8000/api/notes`.

use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router, routing::get};
use tenantry::axum::{HttpError, TenantDb, TenantLayer}; // + tenantry

/// The app's own state, untouched by tenancy.
#[derive(Clone)]
struct AppState {
    greeting: Arc<str>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migrations");
    let tenantry = tenantry::Tenantry::builder() // + tenantry
        .tenant_migrations(format!("{dir}/tenant")) // + tenantry
        .connect(&std::env::var("DATABASE_URL")?) // + tenantry
        .await?; // + tenantry
    tenantry.fleet().migrate_shared().await?; // + tenantry
    let _ = tenantry
        .admin()
        .create_tenant(tenantry::NewTenant::new("acme", "acme.localhost"))
        .await; // (demo data: one tenant)

    let api = Router::new().route("/notes", get(list_notes));
    let app = Router::new()
        .route("/", get(hello))
        .nest("/api", api)
        .with_state(AppState {
            greeting: "hello".into(),
        })
        .layer(TenantLayer::new(tenantry)); // + tenantry
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn hello(State(state): State<AppState>) -> String {
    state.greeting.to_string()
}

/// Was `State(pool): State<PgPool>` and `&pool`: now the tenant's transaction.
async fn list_notes(mut db: TenantDb) -> Result<Json<Vec<String>>, HttpError> {
    let titles = sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
        .fetch_all(&mut *db)
        .await?;
    Ok(Json(titles))
}
