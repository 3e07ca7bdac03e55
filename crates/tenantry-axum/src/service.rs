//! [`TenantRouter`]: resolves the tenant of each request and dispatches to the public or the
//! tenant router.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::{Request, StatusCode, header};
use tenantry_sqlx::{Resolution, ResolveError, TenantStatus, Tenantry};

use crate::extract::RequestHost;
use crate::host::raw_host;

/// A `tower::Service` that routes each request by host: public domains to the public router,
/// tenant domains to the tenant router (with the tenant in the request's extensions and in the
/// task-local scope), unknown hosts to 404 and malformed ones to 400.
///
/// ```no_run
/// # async fn doc(tenantry: tenantry_sqlx::Tenantry) {
/// use axum::{Router, routing::get};
/// let app = tenantry_axum::TenantRouter::new(tenantry)
///     .public(Router::new().route("/", get(|| async { "public" })))
///     .tenant(Router::new().route("/", get(|| async { "tenant" })));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
/// axum::serve(listener, app.into_make_service()).await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct TenantRouter {
    tenantry: Tenantry,
    public: Router,
    tenant: Router,
}

impl TenantRouter {
    /// A router with empty public and tenant routers (every path answers 404).
    pub fn new(tenantry: Tenantry) -> Self {
        Self {
            tenantry,
            public: Router::new(),
            tenant: Router::new(),
        }
    }

    /// The router for the public domains.
    pub fn public(mut self, router: Router) -> Self {
        self.public = router;
        self
    }

    /// The router for tenant domains.
    pub fn tenant(mut self, router: Router) -> Self {
        self.tenant = router;
        self
    }

    /// For `axum::serve`.
    pub fn into_make_service(self) -> tower::make::Shared<Self> {
        tower::make::Shared::new(self)
    }

    async fn dispatch(self, mut req: Request<Body>) -> Response {
        let raw = match raw_host(req.uri(), req.headers()) {
            Ok(h) => h.to_owned(),
            Err(_) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: missing or invalid Host",
                );
            }
        };
        let resolution = match self.tenantry.resolve_host(&raw).await {
            Ok(r) => r,
            Err(ResolveError::BadHost(_)) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: missing or invalid Host",
                );
            }
            Err(ResolveError::Database(e)) => {
                tracing::warn!(error = %e, "tenant resolution failed");
                return plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            }
        };
        let host = tenantry_core_host(&self.tenantry, &raw);
        req.extensions_mut().insert(self.tenantry.clone());
        req.extensions_mut().insert(RequestHost(host));
        match resolution {
            Resolution::Public => call(self.public, req).await,
            Resolution::Unknown => plain(StatusCode::NOT_FOUND, "Not Found"),
            Resolution::Tenant(tenant) => match tenant.status {
                TenantStatus::Suspended => plain(StatusCode::FORBIDDEN, "This site is suspended."),
                TenantStatus::Maintenance => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "120")],
                    "This site is down for maintenance.",
                )
                    .into_response(),
                TenantStatus::Active => {
                    req.extensions_mut().insert(Arc::clone(&tenant));
                    tenantry_sqlx::scope(tenant, call(self.tenant, req)).await
                }
            },
        }
    }
}

fn tenantry_core_host(tenantry: &Tenantry, raw: &str) -> String {
    tenantry_core::normalize_host(raw, tenantry.config().host_policy).unwrap_or_default()
}

async fn call(router: Router, req: Request<Body>) -> Response {
    use tower::ServiceExt;
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

impl tower::Service<Request<Body>> for TenantRouter {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.dispatch(req).await) })
    }
}
