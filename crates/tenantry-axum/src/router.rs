//! [`TenantRouter`]: the convenience of "a public router + a tenant router (+ a router per tenant
//! type)", built on [`TenantLayer`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::response::Response;
use axum::routing::IntoMakeService;
use futures::future::BoxFuture;
use http::Request;
use tenantry_sqlx::{Tenant, Tenantry};
use tower::{Layer, Service, ServiceExt};

use crate::layer::TenantLayer;
use crate::strategy::TenantStrategy;
use crate::unmatched::Unmatched;
use crate::urls::TenantUrls;

/// The routers behind the layer: the tenant's type picks one for tenant requests, public
/// requests go to `public`.
#[derive(Clone, Default)]
struct Sites {
    public: Router,
    tenant: Router,
    typed: HashMap<String, Router>,
}

impl Service<Request<Body>> for Sites {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let router = match req.extensions().get::<Arc<Tenant>>() {
            Some(tenant) => self.typed.get(&tenant.tenant_type).unwrap_or(&self.tenant),
            None => &self.public,
        }
        .clone();
        Box::pin(router.oneshot(req))
    }
}

/// A public router and tenant routers behind a [`TenantLayer`]: public requests to the public
/// router, tenant requests to the router of the tenant's type (with the tenant in the request's
/// extensions and in the task-local scope).
///
/// ```no_run
/// # async fn doc(tenantry: tenantry_sqlx::Tenantry) {
/// use axum::{Router, routing::get};
/// use tenantry_axum::strategy::{HostStrategy, SubfolderStrategy};
/// let app = tenantry_axum::TenantRouter::new(tenantry)
///     .strategy(SubfolderStrategy::new("/t")) // localhost/t/acme/... -> tenant acme
///     .strategy(HostStrategy) // acme.example.com -> tenant acme
///     .redirect_to_primary(true) // other domains of a tenant -> 308 to its primary one
///     .public(Router::new().route("/", get(|| async { "public" })))
///     .tenant(Router::new().route("/", get(|| async { "tenant" })))
///     .tenant_type_router("lab", Router::new().route("/", get(|| async { "lab" })));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
/// axum::serve(listener, app.into_make_service_with_connect_info()).await.unwrap();
/// # }
/// ```
///
/// Everything about identification, status answers, redirects and request bodies is the
/// layer's: the settings below are [`TenantLayer`]'s, forwarded. To add tenancy to one existing
/// router instead, use [`TenantLayer`] directly.
#[derive(Clone)]
pub struct TenantRouter {
    layer: TenantLayer,
    sites: Arc<Sites>,
}

impl std::fmt::Debug for TenantRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRouter")
            .field("layer", &self.layer)
            .field("tenant_types", &self.sites.typed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TenantRouter {
    /// A router identifying by host only, with empty public and tenant routers (every path
    /// answers 404).
    pub fn new(tenantry: Tenantry) -> Self {
        Self {
            layer: TenantLayer::new(tenantry),
            sites: Arc::new(Sites::default()),
        }
    }

    fn with_layer(mut self, f: impl FnOnce(TenantLayer) -> TenantLayer) -> Self {
        self.layer = f(self.layer);
        self
    }

    fn with_sites(mut self, f: impl FnOnce(&mut Sites)) -> Self {
        f(Arc::make_mut(&mut self.sites));
        self
    }

    /// The router for the public domains.
    pub fn public(self, router: Router) -> Self {
        self.with_sites(|s| s.public = router)
    }

    /// The router for tenants (of any type without a router of its own).
    pub fn tenant(self, router: Router) -> Self {
        self.with_sites(|s| s.tenant = router)
    }

    /// The router for tenants of type `tenant_type` (see `NewTenant::tenant_type`); other
    /// types use [`TenantRouter::tenant`].
    pub fn tenant_type_router(self, tenant_type: impl Into<String>, router: Router) -> Self {
        self.with_sites(|s| {
            s.typed.insert(tenant_type.into(), router);
        })
    }

    /// See [`TenantLayer::strategy`].
    pub fn strategy(self, strategy: impl TenantStrategy) -> Self {
        self.with_layer(|l| l.strategy(strategy))
    }

    /// See [`TenantLayer::unmatched`] ([`Unmatched::Public`] serves the public router).
    pub fn unmatched(self, policy: Unmatched) -> Self {
        self.with_layer(|l| l.unmatched(policy))
    }

    /// See [`TenantLayer::redirect_to_primary`].
    pub fn redirect_to_primary(self, on: bool) -> Self {
        self.with_layer(|l| l.redirect_to_primary(on))
    }

    /// See [`TenantLayer::status_response`].
    pub fn status_response<F>(self, f: F) -> Self
    where
        F: Fn(&Tenant) -> Response + Send + Sync + 'static,
    {
        self.with_layer(|l| l.status_response(f))
    }

    /// See [`TenantLayer::retry_after`].
    pub fn retry_after(self, secs: u64) -> Self {
        self.with_layer(|l| l.retry_after(secs))
    }

    /// See [`TenantLayer::urls`].
    pub fn urls(self, urls: TenantUrls) -> Self {
        self.with_layer(|l| l.urls(urls))
    }

    /// See [`TenantLayer::request_body_limit`].
    pub fn request_body_limit(self, bytes: usize) -> Self {
        self.with_layer(|l| l.request_body_limit(bytes))
    }

    /// See [`TenantLayer::request_body_timeout`].
    pub fn request_body_timeout(self, timeout: std::time::Duration) -> Self {
        self.with_layer(|l| l.request_body_timeout(timeout))
    }

    /// The level of the request span: see [`TenantLayer::request_span`].
    pub fn request_span(self, level: Option<tracing::Level>) -> Self {
        self.with_layer(|l| l.request_span(level))
    }

    /// The tenant label budget of the request metrics: see [`TenantLayer::metrics_labels`].
    #[cfg(feature = "metrics")]
    pub fn metrics_labels(self, labels: Arc<tenantry_sqlx::metrics::TenantLabels>) -> Self {
        self.with_layer(|l| l.metrics_labels(labels))
    }

    /// See [`TenantLayer::admission`].
    pub fn admission(self, admission: impl crate::admission::TenantAdmission) -> Self {
        self.with_layer(|l| l.admission(admission))
    }

    /// See [`TenantLayer::buffer_request_bodies`].
    pub fn buffer_request_bodies(self, on: bool) -> Self {
        self.with_layer(|l| l.buffer_request_bodies(on))
    }

    /// The URL settings, for building links outside requests (e-mails, jobs).
    pub fn urls_config(&self) -> &TenantUrls {
        self.layer.urls_config()
    }

    /// The Tenantry handle.
    pub fn tenantry(&self) -> &Tenantry {
        self.layer.tenantry()
    }

    /// The layer this router is built on.
    pub fn layer(&self) -> &TenantLayer {
        &self.layer
    }

    /// The whole app as one axum [`Router`] (to nest, add layers, or serve with axum's own
    /// helpers).
    pub fn into_router(self) -> Router {
        Router::new().fallback_service(self)
    }

    /// For `axum::serve`, without peer addresses ([`crate::strategy::HeaderStrategy`] then
    /// never trusts anyone). Same as `into_router().into_make_service()`.
    pub fn into_make_service(self) -> IntoMakeService<Router> {
        self.into_router().into_make_service()
    }

    /// For `axum::serve`, with the peer address of each connection available to strategies
    /// (required by [`crate::strategy::HeaderStrategy`]) and to handlers as
    /// `ConnectInfo<SocketAddr>`. Same as
    /// `into_router().into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn into_make_service_with_connect_info(
        self,
    ) -> IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
        self.into_router()
            .into_make_service_with_connect_info::<SocketAddr>()
    }
}

impl Service<Request<Body>> for TenantRouter {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.layer.layer(Sites::clone(&self.sites)).call(req)
    }
}
