//! Background jobs with their tenant: `POST /api/exports` and `GET /api/exports/{id}` over
//! [`tenantry::jobs`] (apalis + apalis-postgres).
//!
//! * `POST /api/exports` (tenant site) enqueues an export job on the request's own tenant
//!   transaction (the job row exists iff that transaction commits) -> 202 `{"id": ...}`.
//! * A worker in the demo process ([`spawn_worker`], started by [`crate::build`]) runs it in the
//!   tenant's scope: it reads the tenant's notes through the tenant's transaction and writes
//!   them as JSON (`{"notes": [...]}`) into the tenant's file store (the attachments' store),
//!   under `exports/<id>.json`.
//! * `GET /api/exports/{id}` -> 200 with that JSON once written; 202 `{"id", "status"}` while the
//!   job is pending (or waiting for its suspended tenant); 404 `export_not_found` for an
//!   unknown id and for another tenant's export (the job's tenant is checked, and the file is
//!   looked up in this tenant's store only); 500 `export_failed` if the job was given up.

use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router, middleware};
use serde::{Deserialize, Serialize};
use tenantry::Tenantry;
use tenantry::axum::{TenantContext, TenantDb};
use tenantry::jobs::apalis::prelude::{BoxDynError, TaskId, WorkerBuilder};
use tenantry::jobs::{JobTenant, TenantJobLayer, TenantQueue, job_state};
use tenantry_files::TenantFiles;

use crate::api::{self, ApiError};
use crate::tenant_site::Note;

/// The queue's name (`job_type` in `apalis.jobs`).
pub const EXPORTS_QUEUE: &str = "tenantry-demo-exports";

/// How many times a failing export runs before it is given up.
pub const EXPORT_ATTEMPTS: usize = 5;

/// The job's arguments: none, the job's tenant and id say it all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportNotes {}

/// What an export file holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Export {
    /// Every note of the tenant, by id.
    pub notes: Vec<Note>,
}

/// The export queue.
pub fn queue() -> TenantQueue<ExportNotes> {
    TenantQueue::new(EXPORTS_QUEUE).max_attempts(EXPORT_ATTEMPTS)
}

/// The file key of export `id`, if `id` looks like a job id (a ULID: 26 letters and digits).
fn file_key(id: &str) -> Option<String> {
    (id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| format!("exports/{id}.json"))
}

/// The export job: the tenant's notes, read in the tenant's transaction, into its file store.
async fn export_notes(
    _args: ExportNotes,
    id: TaskId,
    tenant: JobTenant,
    files: tenantry::jobs::apalis::prelude::Data<TenantFiles>,
) -> Result<(), BoxDynError> {
    let key = file_key(&id.to_string()).ok_or("the job id is not a ULID")?;
    let mut tx = tenant.begin().await?;
    let notes: Vec<Note> = sqlx::query_as("SELECT id, title, body FROM notes ORDER BY id")
        .fetch_all(&mut tx)
        .await?;
    tx.commit().await?;
    let body = serde_json::to_vec(&Export { notes })?;
    files.for_tenant(tenant.tenant()).put(&key, body).await?;
    tracing::info!(notes_file = %key, "notes exported");
    Ok(())
}

/// Starts the export worker on the runtime: it polls the queue (woken at once by new jobs,
/// every second for jobs that waited for their tenant) until the runtime stops.
pub fn spawn_worker(tenantry: &Tenantry, files: TenantFiles) -> tokio::task::JoinHandle<()> {
    let worker = WorkerBuilder::new(format!("tenantry-demo-exports-{}", std::process::id()))
        .backend(queue().backend(tenantry, Duration::from_secs(1)))
        .data(files)
        .layer(TenantJobLayer::new(tenantry.clone()))
        .build(export_notes);
    tokio::spawn(async move {
        if let Err(e) = worker.run().await {
            tracing::error!(error = %e, "the export worker stopped");
        }
    })
}

/// Adds `POST /api/exports` and `GET /api/exports/{id}` to a tenant router (the
/// [`crate::attachments::Stores`] come from its `Extension`, like the attachments').
pub fn with_routes(router: Router) -> Router {
    router.merge(
        Router::new()
            .route("/api/exports", post(create_export))
            .route("/api/exports/{id}", get(get_export))
            .layer(middleware::from_fn(api::json_errors)),
    )
}

async fn create_export(mut db: TenantDb) -> Result<Response, ApiError> {
    // On the request's transaction: committed with it, or never enqueued.
    let id = queue()
        .push(&mut db, &ExportNotes {})
        .await
        .map_err(|e| internal("enqueue_failed", e))?;
    db.commit().await?;
    let body = Json(serde_json::json!({ "id": id.to_string() }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}

async fn get_export(
    ctx: TenantContext,
    Extension(stores): Extension<crate::attachments::Stores>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "export_not_found",
            format!("no export {id:?}"),
        )
    };
    let Some(key) = file_key(&id) else {
        return Err(not_found());
    };
    let tenant = ctx.tenant();
    let store = stores.files.for_tenant(tenant);
    if let Some(bytes) = store
        .get(&key)
        .await
        .map_err(|e| internal("storage_error", e))?
    {
        let export: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| internal("storage_error", e))?;
        return Ok(Json(export).into_response());
    }
    let state = job_state(ctx.tenantry(), tenant, EXPORTS_QUEUE, &id)
        .await
        .map_err(|e| internal("database_error", e))?
        .ok_or_else(not_found)?;
    if state.is_given_up(EXPORT_ATTEMPTS as i32) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "export_failed",
            "the export failed",
        ));
    }
    let body = Json(serde_json::json!({ "id": id, "status": state.status.to_string() }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}

fn internal(code: &'static str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, code, "export request failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, "the export failed")
}
