//! Tenant sites: every query here runs in the tenant's schema, through `TenantDb`.

use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tenantry::axum::{CurrentTenant, HttpError, RequestHost, TenantDb};

use crate::TenantData;
use crate::public_site::escape;

/// Routes of a tenant site.
pub fn router() -> Router {
    Router::new()
        .route("/", get(home))
        .route("/api/notes", get(list_notes).post(create_note))
        .route("/api/whoami", get(whoami))
}

/// A note as the API returns it.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Note {
    /// Id within the tenant.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
}

/// Body of `POST /api/notes`.
#[derive(Debug, Deserialize)]
pub struct NewNote {
    /// Title.
    pub title: String,
    /// Body.
    #[serde(default)]
    pub body: String,
}

async fn home(tenant: CurrentTenant, mut db: TenantDb) -> Result<Html<String>, HttpError> {
    let plan_code = tenant.data_as::<TenantData>().map(|d| d.plan).unwrap_or_else(|_| "free".into());
    // `plans` is in the shared schema: reachable from tenant code through the search path.
    let plan: Option<(String, i32)> = sqlx::query_as("SELECT name, note_limit FROM plans WHERE code = $1")
        .bind(&plan_code)
        .fetch_optional(&mut *db)
        .await?;
    let (plan_name, limit) = plan.unwrap_or_else(|| (plan_code.clone(), 0));
    let notes: Vec<Note> = sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id DESC LIMIT 100")
        .fetch_all(&mut *db)
        .await?;
    let items: String = notes
        .iter()
        .map(|n| format!("<li><strong>{}</strong> {}</li>", escape(&n.title), escape(&n.body)))
        .collect();
    Ok(Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>{name}</title></head>
<body>
<h1>{name}</h1>
<p>Plan: <strong>{plan}</strong> (up to {limit} notes)</p>
<h2>Notes</h2><ul id="notes">{items}</ul>
</body></html>"#,
        name = escape(&tenant.display_name),
        plan = escape(&plan_name),
    )))
}

async fn list_notes(mut db: TenantDb) -> Result<Json<Vec<Note>>, HttpError> {
    let notes = sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id LIMIT 10")
        .fetch_all(&mut *db)
        .await?;
    Ok(Json(notes))
}

async fn create_note(mut db: TenantDb, Json(new): Json<NewNote>) -> Result<(StatusCode, Json<Note>), HttpError> {
    if new.title.trim().is_empty() {
        return Err(HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "title must not be empty"));
    }
    let note: Note = sqlx::query_as("INSERT INTO notes (title, body) VALUES ($1, $2) RETURNING id, title, body")
        .bind(&new.title)
        .bind(&new.body)
        .fetch_one(&mut *db)
        .await?;
    db.commit().await?;
    Ok((StatusCode::CREATED, Json(note)))
}

#[derive(Serialize)]
struct WhoAmI {
    tenant: String,
    domain: String,
}

async fn whoami(tenant: CurrentTenant, RequestHost(host): RequestHost) -> Json<WhoAmI> {
    Json(WhoAmI { tenant: tenant.schema.clone(), domain: host })
}
