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

impl From<tenantry_sqlx::Error> for HttpError {
    fn from(e: tenantry_sqlx::Error) -> Self {
        use tenantry_sqlx::Error as E;
        let status = match &e {
            E::InvalidName(_) | E::Domain(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::TenantNotFound(_) => StatusCode::NOT_FOUND,
            // The tenant changed under the request (rename, delete): the client may retry.
            E::TenantMoved(_) | E::SchemaMissing(_) | E::TenantBusy { .. } => {
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
