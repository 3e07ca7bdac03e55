//! Turning Tenantry's errors into HTTP responses.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An error a handler can return with `?` from Tenantry or sqlx calls.
///
/// Bodies stay generic ("Not Found", "Service Unavailable"...) so that nothing about other
/// tenants or the database leaks to clients; details go to the log.
///
/// ```
/// use axum::http::StatusCode;
/// use tenantry_axum::{HttpError, TenantDb};
///
/// async fn rename_note(mut db: TenantDb, title: String) -> Result<(), HttpError> {
///     if title.trim().is_empty() {
///         // The application's own answer: status and message as given.
///         return Err(HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "a title is required"));
///     }
///     // sqlx and Tenantry errors convert with `?` (answered as in the table below).
///     sqlx::query("UPDATE notes SET title = $1 WHERE id = 1")
///         .bind(title)
///         .execute(&mut *db)
///         .await?;
///     db.commit().await
/// }
/// # let _: axum::Router = axum::Router::new().route("/rename", axum::routing::post(rename_note));
/// ```
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl HttpError {
    /// An error with a status and a message shown to the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After: secs` header (for 503s the client may simply retry).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// How each [`tenantry_sqlx::Error`] is answered (the same table is in `docs/errors.md`).
///
/// Mistakes in what a user gave are 4xx with the error's message as the body (it names only
/// what the user gave); everything else is logged and answered with a generic body.
///
/// | Variant | Status | Body |
/// |---|---|---|
/// | `InvalidName`, `InvalidDomain`, `UnknownTenantType`, `TenantDataNotObject`, `DisplayNameTooLong`, `DisplayNameControlCharacter` | 422 Unprocessable Entity | the message |
/// | `TenantNotFound`, `DomainNotFound` | 404 Not Found | the message |
/// | `TenantNameTaken`, `RenameToSameName`, `DomainTaken`, `DomainIsPublic`, `PrimaryDomainRemoval`, `RoleExists`, `SchemaAlreadyTenant` | 409 Conflict | the message |
/// | `TenantNotServing` (suspended) | 403 Forbidden | "This site is suspended." |
/// | `TenantNotServing` (maintenance) | 503, `Retry-After: 120` | "This site is down for maintenance." |
/// | `TenantMoved`, `SchemaMissing`, `TenantBusy`, `TooManyTransactions` | 503, `Retry-After: 1` | generic |
/// | `Database` when [`tenantry_sqlx::Error::is_unavailable`] (server unreachable, restarting, full) | 503 | generic |
/// | `Database` (other), `Migration`, `MigrationState`, `MigrationSource`, `CannotClone`, `TenantDataNotSerializable`, `Hook`, `NoCurrentTenant`, `SessionScopeForbidden`, `SessionReleasedInTransaction`, `ExtraSearchPathMissing`, `InvalidPublicDomain`, `InvalidTenantRolePrefix`, and variants added later | 500 | generic |
///
/// The 500s are faults of the deployment or the application (configuration, migrations,
/// hooks, a type that can't be stored as JSON), never of a user's input.
impl From<tenantry_sqlx::Error> for HttpError {
    fn from(e: tenantry_sqlx::Error) -> Self {
        use tenantry_sqlx::Error as E;
        let status = match &e {
            E::InvalidName(_)
            | E::InvalidDomain { .. }
            | E::UnknownTenantType { .. }
            | E::TenantDataNotObject { .. }
            | E::DisplayNameTooLong { .. }
            | E::DisplayNameControlCharacter { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            E::TenantNotFound(_) | E::DomainNotFound { .. } => StatusCode::NOT_FOUND,
            E::TenantNameTaken { .. }
            | E::RenameToSameName { .. }
            | E::DomainTaken { .. }
            | E::DomainIsPublic { .. }
            | E::PrimaryDomainRemoval { .. }
            | E::RoleExists { .. }
            | E::SchemaAlreadyTenant { .. } => StatusCode::CONFLICT,
            // The tenant changed under the request (rename, delete): the client may retry.
            E::TenantMoved(_)
            | E::SchemaMissing(_)
            | E::TenantBusy { .. }
            | E::TooManyTransactions { .. } => {
                return Self::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
                    .retry_after(1);
            }
            E::TenantNotServing {
                status: tenantry_sqlx::TenantStatus::Suspended,
                ..
            } => return Self::new(StatusCode::FORBIDDEN, "This site is suspended."),
            E::TenantNotServing { .. } => {
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "This site is down for maintenance.",
                )
                .retry_after(120);
            }
            e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "tenantry error");
            Self::new(status, status.canonical_reason().unwrap_or("error"))
        } else {
            Self::new(status, e.to_string())
        }
    }
}

impl From<sqlx::Error> for HttpError {
    fn from(e: sqlx::Error) -> Self {
        tenantry_sqlx::Error::from(e).into()
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}
