//! Routes of the two tenant types besides the default one: `clinic` (patients) and `lab`
//! (samples). Each type has its own migration folder (`migrations/clinic`, `migrations/lab`)
//! and its own router (the notes site plus the type's API); Tenantry picks the router from the
//! tenant's type.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tenantry::axum::TenantDb;

use crate::api::ApiError;
use crate::live::NotesFeed;
use crate::{no_nul, tenant_site};

/// A clinic's patient.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Patient {
    /// Id within the clinic.
    pub id: i64,
    /// Name.
    pub name: String,
    /// E-mail (case-insensitive: `citext` from the shared `extensions` schema).
    pub email: Option<String>,
}

/// Body of `POST /api/patients`.
#[derive(Debug, Deserialize)]
pub struct NewPatient {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: Option<String>,
}

/// A lab's sample.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Sample {
    /// Id within the lab.
    pub id: i64,
    /// Sample code (case-insensitive).
    pub code: String,
    /// `received`, `testing` or `done` (a shared enum in the `extensions` schema).
    pub status: String,
}

/// Body of `POST /api/samples`.
#[derive(Debug, Deserialize)]
pub struct NewSample {
    /// Sample code.
    pub code: String,
}

/// Clinic tenants: the notes site plus `GET/POST /api/patients`.
pub fn clinic_router(feed: NotesFeed) -> Router {
    let api = Router::new().route("/api/patients", get(list_patients).post(add_patient));
    tenant_site::router_extended(feed, api)
}

/// Lab tenants: the notes site plus `GET/POST /api/samples`.
pub fn lab_router(feed: NotesFeed) -> Router {
    let api = Router::new().route("/api/samples", get(list_samples).post(add_sample));
    tenant_site::router_extended(feed, api)
}

async fn list_patients(mut db: TenantDb) -> Result<Json<Vec<Patient>>, ApiError> {
    let rows = sqlx::query_as("SELECT id, name, email::text AS email FROM patients ORDER BY id")
        .fetch_all(&mut *db)
        .await?;
    Ok(Json(rows))
}

async fn add_patient(
    mut db: TenantDb,
    Json(new): Json<NewPatient>,
) -> Result<(StatusCode, Json<Patient>), ApiError> {
    no_nul("name", &new.name)
        .and(no_nul("email", new.email.as_deref().unwrap_or_default()))
        .map_err(ApiError::invalid)?;
    let row: Patient = sqlx::query_as(
        "INSERT INTO patients (name, email) VALUES ($1, $2) RETURNING id, name, email::text AS email",
    )
    .bind(&new.name)
    .bind(&new.email)
    .fetch_one(&mut *db)
    .await
    .map_err(|e| conflict(e, "a patient with this e-mail exists"))?;
    db.commit().await?;
    Ok((StatusCode::CREATED, Json(row)))
}

async fn list_samples(mut db: TenantDb) -> Result<Json<Vec<Sample>>, ApiError> {
    let rows = sqlx::query_as(
        "SELECT id, code::text AS code, status::text AS status FROM samples ORDER BY id",
    )
    .fetch_all(&mut *db)
    .await?;
    Ok(Json(rows))
}

async fn add_sample(
    mut db: TenantDb,
    Json(new): Json<NewSample>,
) -> Result<(StatusCode, Json<Sample>), ApiError> {
    no_nul("code", &new.code).map_err(ApiError::invalid)?;
    let row: Sample = sqlx::query_as(
        "INSERT INTO samples (code) VALUES ($1) RETURNING id, code::text AS code, status::text AS status",
    )
    .bind(&new.code)
    .fetch_one(&mut *db)
    .await
    .map_err(|e| conflict(e, "a sample with this code exists"))?;
    db.commit().await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// A unique violation (23505) is the client's 409; anything else goes through [`ApiError`].
fn conflict(e: sqlx::Error, message: &str) -> ApiError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            ApiError::new(StatusCode::CONFLICT, "conflict", message)
        }
        _ => e.into(),
    }
}
