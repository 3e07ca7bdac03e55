//! Tenant sites: every query here runs in the tenant's schema, through `TenantDb`.
//!
//! A site is served on the tenant's domain (`acme.localhost`) and, by subfolder, on the public
//! domain (`localhost/t/acme/...`); links are built with [`TenantBase`] so they work on both.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Extension, Json, Router, middleware};
use serde::{Deserialize, Serialize};
use tenantry::axum::{CurrentTenant, HttpError, RequestHost, TenantBase, TenantDb};

use crate::api::{self, ApiError};
use crate::attachments::{self, Stores};
use crate::live::{self, NotesFeed};
use crate::note_forms;
use crate::public_site::escape;
use crate::{TenantData, no_nul};

/// Routes of a tenant site, with a live feed of its own (tests, tools). The app uses
/// [`router_with`] so that every tenant type shares one feed.
pub fn router() -> Router {
    router_with(NotesFeed::default())
}

/// Routes of a tenant site; new notes are announced on `feed`.
pub fn router_with(feed: NotesFeed) -> Router {
    router_extended(feed, Router::new())
}

/// Routes of a tenant site plus `extra` routes (a tenant type's API), with the live feed and
/// JSON errors under `/api/` for all of them.
pub fn router_extended(feed: NotesFeed, extra: Router) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/api/notes", get(list_notes).post(create_note))
        .route("/api/notes/{id}", get(get_note))
        .route("/api/notes/stream", get(live::notes_stream))
        .route("/ws", get(live::notes_ws))
        .route("/api/whoami", get(whoami))
        .route("/notes", post(note_forms::create))
        .route("/notes/{id}", post(note_forms::update))
        .route("/notes/{id}/delete", post(note_forms::delete))
        .merge(extra)
        .layer(Extension(feed))
        .layer(middleware::from_fn(api::json_errors))
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

async fn home(
    tenant: CurrentTenant,
    base: TenantBase,
    stores: Option<Extension<Stores>>,
    mut db: TenantDb,
) -> Result<impl IntoResponse, HttpError> {
    let plan_code = tenant
        .data_as::<TenantData>()
        .map(|d| d.plan)
        .unwrap_or_else(|_| "free".into());
    // `plans` is in the shared schema: reachable from tenant code through the search path.
    let plan: Option<(String, i32)> =
        sqlx::query_as("SELECT name, note_limit FROM plans WHERE code = $1")
            .bind(&plan_code)
            .fetch_optional(&mut *db)
            .await?;
    let (plan_name, limit) = plan.unwrap_or_else(|| (plan_code.clone(), 0));
    let (count, cache_state) = attachments::note_count(&tenant, stores.as_deref(), &mut db).await?;
    let notes: Vec<Note> =
        sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id DESC LIMIT 100")
            .fetch_all(&mut *db)
            .await?;
    let items: String = notes
        .iter()
        .map(|n| note_forms::note_item(&base, n))
        .collect();
    let body = format!(
        r#"<section class="card">
<p>Plan: <strong>{plan}</strong> (<span id="note-count">{count}</span> of up to {limit} notes)</p>
<p class="muted">Type: {kind} &middot; API: <a href="{notes}">{notes}</a> &middot; live feed: <code>{stream}</code></p>
</section>
<section class="card">
<h2>New note</h2>
<form method="post" action="{create}" id="new-note">
  <label>Title <input name="title" required maxlength="500"></label>
  <label>Body <textarea name="body"></textarea></label>
  <button type="submit">Add note</button>
</form>
</section>
<section class="card">
<h2>Notes <span class="muted" id="live-state"></span></h2>
<ul class="notes" id="notes">{items}</ul>
</section>
<script>
  // New notes appear without reloading (server-sent events, in this tenant's context),
  // whoever adds them: this page, another browser, the JSON API.
  const feed = new EventSource("{stream}"), state = document.getElementById("live-state");
  feed.onopen = () => {{ state.textContent = "· live"; }};
  feed.onerror = () => {{ state.textContent = "· reconnecting"; }};
  feed.addEventListener("note", (e) => {{
    const n = JSON.parse(e.data);
    if (document.getElementById("note-" + n.id)) return;
    const li = document.createElement("li"), b = document.createElement("strong"), p = document.createElement("div");
    li.id = "note-" + n.id; li.className = "fresh"; b.textContent = n.title; p.textContent = n.body;
    li.append(b, p);
    document.getElementById("notes").prepend(li);
    const count = document.getElementById("note-count");
    count.textContent = String(Number(count.textContent) + 1);
  }});
</script>"#,
        plan = escape(&plan_name),
        kind = escape(&tenant.tenant_type),
        notes = escape(&base.link("/api/notes")),
        stream = escape(&base.link("/api/notes/stream")),
        create = escape(&base.link("/notes")),
    );
    let page = Html(crate::layout::page(
        &tenant.display_name,
        "your workspace",
        &body,
    ));
    // `x-note-count-cache`: hit, miss, off or error (see `attachments::note_count`).
    Ok(([("x-note-count-cache", cache_state)], page))
}

async fn list_notes(mut db: TenantDb) -> Result<Json<Vec<Note>>, ApiError> {
    let notes = sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id LIMIT 10")
        .fetch_all(&mut *db)
        .await?;
    Ok(Json(notes))
}

async fn get_note(mut db: TenantDb, Path(id): Path<i64>) -> Result<Json<Note>, ApiError> {
    sqlx::query_as("SELECT id, title, body FROM notes WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *db)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "note_not_found",
                format!("no note {id}"),
            )
        })
}

async fn create_note(
    tenant: CurrentTenant,
    Extension(feed): Extension<NotesFeed>,
    stores: Option<Extension<Stores>>,
    mut db: TenantDb,
    Json(new): Json<NewNote>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    if new.title.trim().is_empty() {
        return Err(ApiError::invalid("title must not be empty"));
    }
    no_nul("title", &new.title)
        .and(no_nul("body", &new.body))
        .map_err(ApiError::invalid)?;
    let note: Note =
        sqlx::query_as("INSERT INTO notes (title, body) VALUES ($1, $2) RETURNING id, title, body")
            .bind(&new.title)
            .bind(&new.body)
            .fetch_one(&mut *db)
            .await?;
    db.commit().await?;
    // The cached count is stale from the commit on.
    if let Some(stores) = &stores {
        attachments::notes_changed(stores, &tenant).await;
    }
    // Announced after the commit, on this tenant's channel only.
    feed.publish(tenant.id, note.id);
    Ok((StatusCode::CREATED, Json(note)))
}

#[derive(Serialize)]
struct WhoAmI {
    tenant: String,
    domain: String,
}

async fn whoami(tenant: CurrentTenant, RequestHost(host): RequestHost) -> Json<WhoAmI> {
    Json(WhoAmI {
        tenant: tenant.schema.clone(),
        domain: host,
    })
}
