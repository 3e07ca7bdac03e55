//! Reading a tenant request's body into memory before the tenant's transaction can start, with
//! a size limit and a timeout (a slow client must not hold a tenant's place), for
//! [`crate::TenantLayer`].

use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Request, StatusCode};

/// How tenant request bodies are read before the inner service runs (see
/// [`crate::TenantLayer::request_body_limit`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyBuffer {
    pub(crate) limit: usize,
    pub(crate) timeout: Duration,
}

impl BodyBuffer {
    /// The request with its body read into memory: 408 if it takes longer than the timeout,
    /// 413 past the limit, 400 if the client breaks it off.
    pub(crate) async fn buffer(self, req: Request<Body>) -> Result<Request<Body>, Response> {
        use http_body::Body as _;
        let (parts, body) = req.into_parts();
        if body.is_end_stream() {
            return Ok(Request::from_parts(parts, body));
        }
        if body.size_hint().lower() > self.limit as u64 {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large").into_response());
        }
        match tokio::time::timeout(self.timeout, axum::body::to_bytes(body, self.limit)).await {
            Err(_elapsed) => Err((StatusCode::REQUEST_TIMEOUT, "Request Timeout").into_response()),
            Ok(Err(e)) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if too_large {
                    Err((StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large").into_response())
                } else {
                    Err((StatusCode::BAD_REQUEST, "Bad Request").into_response())
                }
            }
            Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        }
    }
}
