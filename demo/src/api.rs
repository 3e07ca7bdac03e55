//! Errors of the demo's JSON routes (`/api/*`): `{"error": "...", "code": "..."}`.
//!
//! * [`ApiError`]: the demo's own refusals (bad input, unknown note...), with a specific code.
//! * [`json_errors`]: middleware that rewrites every other plain-text error under `/api/`
//!   (axum's body rejections, unknown routes and methods, Tenantry and database errors) into
//!   the same shape, with a code named after the status (`not_found`, `bad_request`...).
//!
//! HTML routes (`/`, `/signup`) keep plain answers.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenantry::axum::HttpError;

/// An error answered as JSON on an `/api/*` route.
#[derive(Debug)]
pub enum ApiError {
    /// The demo's own refusal.
    Own {
        /// HTTP status.
        status: StatusCode,
        /// Machine-readable code (`invalid_input`, `note_not_found`...).
        code: &'static str,
        /// Message for people.
        message: String,
    },
    /// A Tenantry or database error: its status, message and `Retry-After` are kept, and
    /// [`json_errors`] turns its body into JSON.
    Http(HttpError),
}

impl ApiError {
    /// A refusal with its own status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Own {
            status,
            code,
            message: message.into(),
        }
    }

    /// 422 `invalid_input`: the request's data was understood but is not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }
}

impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Http(e.into())
    }
}

impl From<tenantry::Error> for ApiError {
    fn from(e: tenantry::Error) -> Self {
        Self::Http(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Own {
                status,
                code,
                message,
            } => json_body(status, code, &message),
            Self::Http(e) => e.into_response(),
        }
    }
}

/// `{"error": message, "code": code}` with `status`.
fn json_body(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": message, "code": code })),
    )
        .into_response()
}

/// Middleware: error answers under `/api/` that are not JSON yet become
/// `{"error": <their text>, "code": <status name>}`; headers such as `Retry-After` are kept.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path == "/api" || path.starts_with("/api/");
    let response = next.run(req).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Error bodies are short texts; anything unreadable falls back to the status's name.
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("Error");
    let message = if text.is_empty() { reason } else { &text };
    let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
    let body = serde_json::to_vec(&json!({ "error": message, "code": code }))
        .expect("a JSON object of two strings");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"))
}
