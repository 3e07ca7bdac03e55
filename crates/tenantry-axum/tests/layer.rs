//! `TenantLayer` on an ordinary axum app: as `Router::layer` (with state and nesting), around a
//! finished router (subfolders rewrite the path before routing), served with axum's own
//! make-service helpers; and what extractors say when the layer is missing.

mod common;

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use common::{setup, tenant};
use tenantry_axum::strategy::{HostStrategy, SubfolderStrategy};
use tenantry_axum::{CurrentTenant, TenantDb, TenantLayer};
use tower::Layer;

/// An app that knows nothing of Tenantry but its extractors: state, a nested API.
fn app() -> Router<&'static str> {
    let api = Router::new().route("/notes", get(list).post(add)).route(
        "/whoami",
        get(|t: CurrentTenant| async move { t.schema.clone() }),
    );
    Router::new()
        .route(
            "/",
            get(|State(name): State<&'static str>| async move { name }),
        )
        .nest("/api", api)
}

async fn list(mut db: TenantDb) -> Json<Vec<String>> {
    let titles = sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
        .fetch_all(&mut *db)
        .await
        .unwrap();
    Json(titles)
}

async fn add(mut db: TenantDb, title: String) -> &'static str {
    sqlx::query("INSERT INTO notes (title) VALUES ($1)")
        .bind(title)
        .execute(&mut *db)
        .await
        .unwrap();
    db.commit().await.unwrap();
    "added"
}

async fn serve(app: Router) -> (SocketAddr, reqwest::Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (addr, reqwest::Client::new())
}

async fn get_as(
    client: &reqwest::Client,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> (u16, String) {
    let r = client
        .get(format!("http://{addr}{path}"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn as_a_router_layer() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    tenant(&tenantry, "beta").await;
    let app = app()
        .with_state("the app")
        .layer(TenantLayer::new(tenantry.clone()));
    let (addr, client) = serve(app).await;

    let r = client
        .post(format!("http://{addr}/api/notes"))
        .header("host", "acme.localhost")
        .body("acme's note")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get_as(&client, addr, "acme.localhost", "/api/notes").await,
        (200, r#"["acme's note"]"#.into())
    );
    assert_eq!(
        get_as(&client, addr, "beta.localhost", "/api/notes").await,
        (200, "[]".into())
    );
    assert_eq!(
        get_as(&client, addr, "beta.localhost", "/api/whoami").await,
        (200, "beta".into())
    );
    // Routes without tenant extractors serve every site, with the app's state.
    assert_eq!(
        get_as(&client, addr, "acme.localhost", "/").await,
        (200, "the app".into())
    );
    assert_eq!(
        get_as(&client, addr, "localhost", "/").await,
        (200, "the app".into())
    );
    // A public request on a tenant route: no tenant, 404 (not a 500).
    assert_eq!(
        get_as(&client, addr, "localhost", "/api/notes").await.0,
        404
    );
    // Unknown hosts never reach the app.
    assert_eq!(get_as(&client, addr, "nobody.localhost", "/").await.0, 404);
}

#[tokio::test]
async fn around_a_finished_router_with_subfolders() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    let inner = app().with_state("the app");
    let layer = TenantLayer::new(tenantry.clone())
        .strategy(SubfolderStrategy::new("/t"))
        .strategy(HostStrategy);
    let app = Router::new().fallback_service(layer.layer(inner));
    let (addr, client) = serve(app).await;

    // The prefix is stripped before the app routes: /t/acme/api/whoami is /api/whoami.
    assert_eq!(
        get_as(&client, addr, "localhost", "/t/acme/api/whoami").await,
        (200, "acme".into())
    );
    assert_eq!(
        get_as(&client, addr, "acme.localhost", "/api/whoami").await,
        (200, "acme".into())
    );
    assert_eq!(
        get_as(&client, addr, "localhost", "/t/nobody/api/whoami")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn extractors_without_the_layer_fail_loudly() {
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    drop(tenantry);
    let (addr, client) = serve(app().with_state("the app")).await;
    // A 500 (the log names the fix), never a silent run without a tenant.
    assert_eq!(
        get_as(&client, addr, "acme.localhost", "/api/notes")
            .await
            .0,
        500
    );
    assert_eq!(
        get_as(&client, addr, "acme.localhost", "/api/whoami")
            .await
            .0,
        500
    );
}
