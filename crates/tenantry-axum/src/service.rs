//! [`TenantRouter`]: identifies the tenant of each request (a chain of strategies), resolves it
//! through the registry and dispatches to the public router or the tenant's router.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::OriginalUri;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use tenantry_sqlx::{Resolution, ResolveError, Tenant, Tenantry};

use crate::HttpError;
use crate::extract::RequestHost;
use crate::identity::RequestIdentity;
use crate::status::{StatusResponder, respond};
use crate::strategy::{
    HostStrategy, Identification, Identified, RequestInfo, TenantKey, TenantStrategy,
};
use crate::urls::{TenantBase, TenantUrls};

/// What to do with a request no strategy identified (e.g. an unknown host).
#[derive(Clone, Default)]
pub enum Unmatched {
    /// 404 Not Found (the default).
    #[default]
    NotFound,
    /// Serve the public router.
    Public,
    /// Serve this tenant (by name), as if it had been identified.
    DefaultTenant(String),
    /// Answer with the application's handler/router (it has no tenant).
    Handler(Router),
}

impl Unmatched {
    /// An axum handler as the unmatched answer.
    pub fn handler<H, T>(handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        Unmatched::Handler(Router::new().fallback(handler))
    }
}

#[derive(Clone)]
struct Inner {
    tenantry: Tenantry,
    strategies: Vec<Arc<dyn TenantStrategy>>,
    /// `strategies` is still the default chain (`[HostStrategy]`), built once.
    default_chain: bool,
    public: Router,
    tenant: Router,
    typed: HashMap<String, Router>,
    unmatched: Unmatched,
    redirect_to_primary: bool,
    status_responder: Option<StatusResponder>,
    retry_after_secs: u64,
    /// Shared with every request (an `Arc` clone, not a copy of its strings).
    urls: Arc<TenantUrls>,
    /// Tenant request bodies are read in full before the handler runs (`None`: streamed).
    body: Option<BodyBuffer>,
}

/// How tenant request bodies are read before their handler runs (see
/// [`TenantRouter::request_body_limit`]).
#[derive(Clone, Copy, Debug)]
struct BodyBuffer {
    limit: usize,
    timeout: std::time::Duration,
}

impl BodyBuffer {
    /// The request with its body read into memory: 408 if it takes longer than the timeout,
    /// 413 past the limit, 400 if the client breaks it off.
    async fn buffer(self, req: Request<Body>) -> Result<Request<Body>, Response> {
        use http_body::Body as _;
        let (parts, body) = req.into_parts();
        if body.is_end_stream() {
            return Ok(Request::from_parts(parts, body));
        }
        if body.size_hint().lower() > self.limit as u64 {
            return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large"));
        }
        match tokio::time::timeout(self.timeout, axum::body::to_bytes(body, self.limit)).await {
            Err(_elapsed) => Err(plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout")),
            Ok(Err(e)) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if too_large {
                    Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large"))
                } else {
                    Err(plain(StatusCode::BAD_REQUEST, "Bad Request"))
                }
            }
            Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        }
    }
}

/// Default [`TenantRouter::request_body_limit`]: axum's own default body limit.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Default [`TenantRouter::request_body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A `tower::Service` that identifies the tenant of each request and routes it: public
/// requests to the public router, tenant requests to the router of the tenant's type (with the
/// tenant in the request's extensions and in the task-local scope).
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
/// What it answers by itself: 400 for a missing or malformed `Host` (host strategy), 404 (or
/// the [`Unmatched`] policy) when no strategy identifies a tenant, 403/503 for suspended /
/// maintenance tenants ([`TenantRouter::status_response`]), 308 to the primary domain when
/// enabled, 503 when the registry cannot be read.
#[derive(Clone)]
pub struct TenantRouter {
    inner: Arc<Inner>,
}

impl TenantRouter {
    /// A router identifying by host only ([`HostStrategy`]), with empty public and tenant
    /// routers (every path answers 404).
    pub fn new(tenantry: Tenantry) -> Self {
        Self {
            inner: Arc::new(Inner {
                tenantry,
                strategies: vec![Arc::new(HostStrategy)],
                default_chain: true,
                public: Router::new(),
                tenant: Router::new(),
                typed: HashMap::new(),
                unmatched: Unmatched::NotFound,
                redirect_to_primary: false,
                status_responder: None,
                retry_after_secs: 120,
                urls: Arc::new(TenantUrls::default()),
                body: Some(BodyBuffer {
                    limit: DEFAULT_BODY_LIMIT,
                    timeout: DEFAULT_BODY_TIMEOUT,
                }),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// The router for the public domains.
    pub fn public(self, router: Router) -> Self {
        self.edit(|i| i.public = router)
    }

    /// The router for tenants (of any type without a router of its own).
    pub fn tenant(self, router: Router) -> Self {
        self.edit(|i| i.tenant = router)
    }

    /// The router for tenants of type `tenant_type` (see `NewTenant::tenant_type`); other
    /// types use [`TenantRouter::tenant`].
    pub fn tenant_type_router(self, tenant_type: impl Into<String>, router: Router) -> Self {
        self.edit(|i| {
            i.typed.insert(tenant_type.into(), router);
        })
    }

    /// Appends a strategy to the identification chain. The first call replaces the default
    /// chain (`[HostStrategy]`): the chain is then exactly the strategies added, in order, and
    /// the first that identifies a known tenant (or the public site) wins. Add
    /// [`HostStrategy`] last if hosts should still count.
    pub fn strategy(self, strategy: impl TenantStrategy) -> Self {
        self.edit(|i| {
            if i.default_chain {
                i.strategies.clear();
                i.default_chain = false;
            }
            i.strategies.push(Arc::new(strategy))
        })
    }

    /// What to answer when no strategy identifies a tenant (default [`Unmatched::NotFound`]).
    pub fn unmatched(self, policy: Unmatched) -> Self {
        self.edit(|i| i.unmatched = policy)
    }

    /// With `true`, a request identified by one of a tenant's non-primary domains is answered
    /// 308 Permanent Redirect to the same path and query on the primary domain (scheme from
    /// [`TenantUrls`], port kept from the request).
    pub fn redirect_to_primary(self, on: bool) -> Self {
        self.edit(|i| i.redirect_to_primary = on)
    }

    /// The application's answer for suspended and maintenance tenants (default
    /// [`crate::default_status_response`]). A 503 for a tenant in maintenance gets a
    /// `Retry-After` header if the answer has none.
    pub fn status_response<F>(self, f: F) -> Self
    where
        F: Fn(&Tenant) -> Response + Send + Sync + 'static,
    {
        self.edit(|i| i.status_responder = Some(Arc::new(f)))
    }

    /// `Retry-After` seconds for tenants in maintenance (default 120).
    pub fn retry_after(self, secs: u64) -> Self {
        self.edit(|i| i.retry_after_secs = secs)
    }

    /// The largest tenant request body read (default 2 MiB, axum's own default; larger ones
    /// get 413). Tenant request bodies are read in full before the handler runs, so that a
    /// `TenantDb` (always extracted before the body) never holds a transaction, and a pooled
    /// connection, open while a slow or hostile client withholds the body.
    pub fn request_body_limit(self, bytes: usize) -> Self {
        self.edit(|i| {
            if let Some(b) = &mut i.body {
                b.limit = bytes;
            }
        })
    }

    /// How long a tenant request body may take to arrive (default 30 s; then 408).
    pub fn request_body_timeout(self, timeout: std::time::Duration) -> Self {
        self.edit(|i| {
            if let Some(b) = &mut i.body {
                b.timeout = timeout;
            }
        })
    }

    /// With `false`, tenant request bodies are streamed to handlers instead of read first (for
    /// large uploads). Then open transactions only after the body has arrived (take the
    /// `TenantContext` extractor and call [`crate::TenantContext::db`] in the handler body),
    /// and apply your own read timeouts: a `TenantDb` argument opens its transaction before
    /// the body is read.
    pub fn buffer_request_bodies(self, on: bool) -> Self {
        self.edit(|i| {
            i.body = on.then_some(i.body.unwrap_or(BodyBuffer {
                limit: DEFAULT_BODY_LIMIT,
                timeout: DEFAULT_BODY_TIMEOUT,
            }))
        })
    }

    /// How tenant URLs are built (redirects, [`TenantUrls`] extractor).
    pub fn urls(self, urls: TenantUrls) -> Self {
        self.edit(|i| i.urls = Arc::new(urls))
    }

    /// The URL settings, for building links outside requests (e-mails, jobs).
    pub fn urls_config(&self) -> &TenantUrls {
        &self.inner.urls
    }

    /// The Tenantry handle.
    pub fn tenantry(&self) -> &Tenantry {
        &self.inner.tenantry
    }

    /// For `axum::serve`, without peer addresses ([`crate::strategy::HeaderStrategy`] then
    /// never trusts anyone).
    pub fn into_make_service(self) -> tower::make::Shared<Self> {
        tower::make::Shared::new(self)
    }

    /// For `axum::serve`, with the peer address of each connection available to strategies
    /// (required by [`crate::strategy::HeaderStrategy`]) and to handlers as
    /// `ConnectInfo<SocketAddr>`.
    pub fn into_make_service_with_connect_info(self) -> TenantMakeService {
        TenantMakeService { router: self }
    }

    async fn dispatch(self, req: Request<Body>) -> Response {
        let (mut parts, body) = req.into_parts();
        let inner = &*self.inner;
        let tenantry = &inner.tenantry;
        // Normalised once here; strategies, resolution and the redirect check reuse it.
        let host = crate::host::raw_host(&parts.uri, &parts.headers)
            .ok()
            .and_then(|raw| tenantry_core::normalize_host(raw, tenantry.config().host_policy).ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let found = {
            let info = RequestInfo {
                uri: &parts.uri,
                headers: &parts.headers,
                peer,
                tenantry,
                normalized_host: host.as_deref(),
            };
            match self.identify(&info).await {
                Ok(found) => found,
                Err(e) => return e.into_response(),
            }
        };
        parts.extensions.insert(tenantry.clone());
        parts
            .extensions
            .insert(RequestHost(host.clone().unwrap_or_default()));
        parts.extensions.insert(Arc::clone(&inner.urls));
        let req = Request::from_parts(parts, body);
        match found {
            Found::Public => call(&inner.public, req).await,
            Found::Tenant(tenant, id) => self.serve_tenant(req, tenant, id, host.as_deref()).await,
            Found::Nothing => match &inner.unmatched {
                Unmatched::NotFound => plain(StatusCode::NOT_FOUND, "Not Found"),
                Unmatched::Public => call(&inner.public, req).await,
                Unmatched::Handler(router) => call(router, req).await,
                Unmatched::DefaultTenant(name) => match tenantry.resolve_schema(name).await {
                    Ok(Some(tenant)) => {
                        let id = Identified::new(TenantKey::Name(name.clone()));
                        self.serve_tenant(req, tenant, id, host.as_deref()).await
                    }
                    Ok(None) => {
                        tracing::error!(tenant = %name, "the configured default tenant does not exist");
                        plain(StatusCode::NOT_FOUND, "Not Found")
                    }
                    Err(e) => unavailable(e),
                },
            },
        }
    }

    /// Runs the strategy chain; the first key that resolves wins.
    async fn identify(&self, info: &RequestInfo<'_>) -> Result<Found, Response> {
        let tenantry = &self.inner.tenantry;
        for strategy in &self.inner.strategies {
            let id = match strategy.identify(info).await {
                Ok(Identification::NotIdentified) => continue,
                Ok(Identification::Public) => return Ok(Found::Public),
                Ok(Identification::Tenant(id)) => id,
                Err(e) => return Err(e.into_response()),
            };
            let resolved = match &id.key {
                TenantKey::Resolved(t) => Some(Arc::clone(t)),
                TenantKey::Name(name) => {
                    tenantry.resolve_schema(name).await.map_err(unavailable)?
                }
                TenantKey::Domain(host) => match if info.normalized_host == Some(host.as_str()) {
                    // The request's own host, normalised by `dispatch`: don't normalise again.
                    tenantry.resolve_normalized_host(host).await
                } else {
                    tenantry.resolve_host(host).await
                } {
                    Ok(Resolution::Tenant(t)) => Some(t),
                    Ok(Resolution::Public) => return Ok(Found::Public),
                    Ok(Resolution::Unknown) | Err(ResolveError::BadHost(_)) => None,
                    Err(e) => return Err(unavailable(e)),
                },
            };
            if let Some(tenant) = resolved {
                return Ok(Found::Tenant(tenant, id));
            }
        }
        Ok(Found::Nothing)
    }

    async fn serve_tenant(
        &self,
        mut req: Request<Body>,
        tenant: Arc<Tenant>,
        id: Identified,
        request_host: Option<&str>,
    ) -> Response {
        let inner = &*self.inner;
        if inner.redirect_to_primary
            && let TenantKey::Domain(matched) = &id.key
            && let Some(primary) = &tenant.primary_domain
            && (if request_host == Some(matched.as_str()) {
                matched != primary
            } else {
                tenantry_core::normalize_host(matched, inner.tenantry.config().host_policy)
                    .is_ok_and(|h| h != *primary)
            })
        {
            return self.redirect(&req, primary);
        }
        if let Some(answer) = respond(
            &tenant,
            inner.status_responder.as_ref(),
            inner.retry_after_secs,
        ) {
            return answer;
        }
        if req.extensions().get::<OriginalUri>().is_none() {
            let original = OriginalUri(req.uri().clone());
            req.extensions_mut().insert(original);
        }
        let base = match &id.strip_prefix {
            Some(prefix) => match strip_prefix(req.uri(), prefix) {
                Some(uri) => {
                    *req.uri_mut() = uri;
                    prefix.clone()
                }
                None => return plain(StatusCode::BAD_REQUEST, "Bad Request"),
            },
            None => String::new(),
        };
        req.extensions_mut().insert(TenantBase(base));
        req.extensions_mut().insert(Arc::clone(&tenant));
        req.extensions_mut().insert(RequestIdentity {
            key: id.key,
            responder: inner.status_responder.clone(),
            retry_after_secs: inner.retry_after_secs,
        });
        // The whole body before the handler runs: its extractors (a `TenantDb` is extracted
        // before any body extractor) must not hold a transaction open while a client takes its
        // time to send the body.
        let req = match &inner.body {
            Some(body) => match body.buffer(req).await {
                Ok(req) => req,
                Err(answer) => return answer,
            },
            None => req,
        };
        let router = inner
            .typed
            .get(&tenant.tenant_type)
            .unwrap_or(&inner.tenant);
        tenantry_sqlx::scope(tenant, call(router, req)).await
    }

    fn redirect(&self, req: &Request<Body>, primary: &str) -> Response {
        let port = crate::host::raw_host(req.uri(), req.headers())
            .ok()
            .and_then(|raw| raw.rsplit_once(':'))
            .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, p)| format!(":{p}"))
            .unwrap_or_default();
        let path = req
            .uri()
            .path_and_query()
            .map(PathAndQuery::as_str)
            .unwrap_or("/");
        let location = format!("{}://{primary}{port}{path}", self.inner.urls.scheme_str());
        match HeaderValue::from_str(&location) {
            Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
            Err(_) => plain(StatusCode::BAD_REQUEST, "Bad Request"),
        }
    }
}

enum Found {
    Public,
    Tenant(Arc<Tenant>, Identified),
    Nothing,
}

/// `uri` without the leading `prefix` (`/t/acme/api?x` -> `/api?x`, `/t/acme` -> `/`).
fn strip_prefix(uri: &Uri, prefix: &str) -> Option<Uri> {
    let rest = uri.path().strip_prefix(prefix)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "tenant resolution failed");
    HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
}

async fn call(router: &Router, req: Request<Body>) -> Response {
    use tower::ServiceExt;
    match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

/// Makes one [`TenantConnection`] per accepted connection (see
/// [`TenantRouter::into_make_service_with_connect_info`]). Serves the router directly: no outer
/// axum `Router` just to carry the peer address.
#[derive(Clone)]
pub struct TenantMakeService {
    router: TenantRouter,
}

impl<T> tower::Service<T> for TenantMakeService
where
    SocketAddr: Connected<T>,
{
    type Response = TenantConnection;
    type Error = Infallible;
    type Future = std::future::Ready<Result<TenantConnection, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, target: T) -> Self::Future {
        std::future::ready(Ok(TenantConnection {
            router: self.router.clone(),
            peer: SocketAddr::connect_info(target),
        }))
    }
}

/// The router serving one connection, with its peer address (added to every request as
/// `ConnectInfo<SocketAddr>`).
#[derive(Clone)]
pub struct TenantConnection {
    router: TenantRouter,
    peer: SocketAddr,
}

impl tower::Service<Request<Body>> for TenantConnection {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<Request<Body>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        self.router.call(req)
    }
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
