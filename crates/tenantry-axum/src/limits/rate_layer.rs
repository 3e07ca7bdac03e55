//! The request rate limit of a [`TenantLimiter`]: as a [`TenantAdmission`] of the
//! [`crate::TenantLayer`] (checked before the request body is read: the recommended way) or as a
//! tower layer on tenant routers ([`TenantLimiter::layer`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, StatusCode, header};
use tenantry_sqlx::{Tenant, Tenantry, async_trait};

use super::TenantLimiter;
use crate::admission::TenantAdmission;

/// The rate limit, checked by the [`crate::TenantLayer`] right after resolution, before the
/// body is read: a throttled client costs no body read and no connection.
#[async_trait]
impl TenantAdmission for TenantLimiter {
    async fn admit(&self, tenantry: &Tenantry, tenant: &Arc<Tenant>) -> Result<(), Response> {
        self.check_rate(tenantry, tenant)
            .await
            .map_err(|throttled| too_many_requests(throttled.retry_after))
    }
}

/// The tower layer of [`TenantLimiter::layer`]: the per-tenant request rate limit.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    pub(super) limiter: TenantLimiter,
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            limiter: self.limiter.clone(),
            inner,
        }
    }
}

/// The service of a [`RateLimitLayer`]: a tenant over its rate gets `429 Too Many Requests`
/// with `Retry-After` (whole seconds, at least 1); requests without a tenant pass.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    limiter: TenantLimiter,
    inner: S,
}

impl<S> tower::Service<Request<Body>> for RateLimit<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The inner service is driven through `oneshot` on a clone (it polls readiness).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        use tower::ServiceExt;
        let limiter = self.limiter.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let tenant = req.extensions().get::<Arc<Tenant>>().cloned();
            let tenantry = req.extensions().get::<Tenantry>().cloned();
            if let (Some(tenant), Some(tenantry)) = (tenant, tenantry)
                && let Err(throttled) = limiter.check_rate(&tenantry, &tenant).await
            {
                return Ok(too_many_requests(throttled.retry_after));
            }
            inner.oneshot(req).await
        })
    }
}

/// 429 with `Retry-After` in whole seconds, rounded up (at least 1).
fn too_many_requests(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_at_least_one() {
        let secs = |d| too_many_requests(d).headers()[header::RETRY_AFTER].clone();
        assert_eq!(secs(Duration::ZERO), "1");
        assert_eq!(secs(Duration::from_millis(50)), "1");
        assert_eq!(secs(Duration::from_secs(1)), "1");
        assert_eq!(secs(Duration::from_millis(1001)), "2");
        assert_eq!(
            too_many_requests(Duration::ZERO).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
