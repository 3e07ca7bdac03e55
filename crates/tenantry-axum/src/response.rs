//! Turning Tenantry's errors into HTTP responses.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An error a handler can return with `?` from Tenantry or sqlx calls.
///
/// Bodies stay generic ("Not Found", "Service Unavailable"...) so that nothing about other
/// tenants or the database leaks to clients; details go to the log.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    /// An error with a status and a message shown to the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<tenantry_sqlx::Error> for HttpError {
    fn from(e: tenantry_sqlx::Error) -> Self {
        use tenantry_sqlx::Error as E;
        let status = match &e {
            E::InvalidName(_) | E::Domain(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::TenantNotFound(_) => StatusCode::NOT_FOUND,
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
        (self.status, self.message).into_response()
    }
}
