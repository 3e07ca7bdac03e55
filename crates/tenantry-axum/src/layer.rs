//! [`TenantLayer`]: tenancy for any axum router or tower service, as one `tower::Layer`.
//!
//! The path of a request: **identify** (the strategy chain reads the host, a path prefix, a
//! header...) -> **resolve** (the key through the registry cache) -> **status / redirect**
//! (suspended 403, maintenance 503, other domains 308 to the primary one) -> **scope** (the
//! tenant into the request's extensions and the task-local scope, the body read in full, the
//! path prefix stripped) -> the inner service.
//!
//! Public requests (a public domain, or unmatched ones with [`Unmatched::Public`]) reach the
//! inner service without a tenant; the [`crate::CurrentTenant`] / [`crate::TenantDb`] extractors
//! then answer 404. [`crate::TenantRouter`] builds "public router + tenant router" on top.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, StatusCode, header};
use tenantry_sqlx::{Resolution, ResolveError, Tenant, Tenantry};
use tracing::{Instrument, Level, Span};

use crate::HttpError;
use crate::admission::TenantAdmission;
use crate::body_buffer::BodyBuffer;
use crate::extract::RequestHost;
use crate::identity::RequestIdentity;
use crate::observe::{self, Probe, Who};
use crate::status::{StatusResponder, respond};
use crate::strategy::subfolder::strip_prefix;
use crate::strategy::{
    HostStrategy, Identification, Identified, RequestInfo, TenantKey, TenantStrategy,
};
use crate::unmatched::Unmatched;
use crate::urls::{TenantBase, TenantUrls};

/// Default [`TenantLayer::request_body_limit`]: axum's own default body limit.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Default [`TenantLayer::request_body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings of a [`TenantLayer`], shared by every request.
#[derive(Clone)]
struct Settings {
    tenantry: Tenantry,
    strategies: Vec<Arc<dyn TenantStrategy>>,
    /// `strategies` is still the default chain (`[HostStrategy]`).
    default_chain: bool,
    unmatched: Unmatched,
    redirect_to_primary: bool,
    status_responder: Option<StatusResponder>,
    retry_after_secs: u64,
    urls: Arc<TenantUrls>,
    /// Tenant request bodies are read in full before the inner service (`None`: streamed).
    body: Option<BodyBuffer>,
    /// The level of the request span (`None`: no span).
    span_level: Option<Level>,
    /// Tenant label values of the request metrics (feature `metrics`).
    labels: observe::Labels,
    /// Checked before the body is read (e.g. the per-tenant rate limit).
    admission: Option<Arc<dyn TenantAdmission>>,
}

/// Adds tenancy to a router or service: see the module docs.
///
/// Two ways to use it:
///
/// ```no_run
/// # async fn doc(tenantry: tenantry_sqlx::Tenantry) {
/// use axum::{Router, routing::get};
/// use tenantry_axum::{CurrentTenant, TenantLayer};
/// use tenantry_axum::strategy::SubfolderStrategy;
/// use tower::Layer;
///
/// // 1. As a layer of the app's router (host and header strategies):
/// let app: Router = Router::new()
///     .route("/", get(|t: CurrentTenant| async move { t.display_name.clone() }))
///     .layer(TenantLayer::new(tenantry.clone()));
///
/// // 2. Around a finished router, where a strategy rewrites the path (subfolders): routing
/// //    must see the path without the `/t/<name>` prefix.
/// let inner = Router::new().route("/", get(|| async { "home" }));
/// let app: Router = Router::new().fallback_service(
///     TenantLayer::new(tenantry).strategy(SubfolderStrategy::new("/t")).layer(inner),
/// );
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
/// axum::serve(
///     listener,
///     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
/// )
/// .await
/// .unwrap();
/// # }
/// ```
///
/// What it answers by itself: 400 for a missing or malformed `Host` (host strategy), 404 (or
/// the [`Unmatched`] policy) when no strategy identifies a tenant, 403/503 for suspended /
/// maintenance tenants ([`TenantLayer::status_response`]), 308 to the primary domain when
/// enabled, 408/413 for tenant request bodies that are too slow or too large, 503 when the
/// registry cannot be read.
#[derive(Clone)]
pub struct TenantLayer {
    settings: Arc<Settings>,
}

impl std::fmt::Debug for TenantLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantLayer")
            .field("strategies", &self.settings.strategies.len())
            .field("unmatched", &self.settings.unmatched)
            .field("redirect_to_primary", &self.settings.redirect_to_primary)
            .finish_non_exhaustive()
    }
}

impl TenantLayer {
    /// A layer identifying tenants by host only ([`HostStrategy`]).
    pub fn new(tenantry: Tenantry) -> Self {
        Self {
            settings: Arc::new(Settings {
                tenantry,
                strategies: vec![Arc::new(HostStrategy)],
                default_chain: true,
                unmatched: Unmatched::NotFound,
                redirect_to_primary: false,
                status_responder: None,
                retry_after_secs: 120,
                urls: Arc::new(TenantUrls::default()),
                body: Some(BodyBuffer {
                    limit: DEFAULT_BODY_LIMIT,
                    timeout: DEFAULT_BODY_TIMEOUT,
                }),
                span_level: Some(Level::INFO),
                labels: Default::default(),
                admission: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// Appends a strategy to the identification chain. The first call replaces the default
    /// chain (`[HostStrategy]`): the chain is then exactly the strategies added, in order, and
    /// the first that identifies a known tenant (or the public site) wins. Add
    /// [`HostStrategy`] last if hosts should still count.
    pub fn strategy(self, strategy: impl TenantStrategy) -> Self {
        self.edit(|s| {
            if s.default_chain {
                s.strategies.clear();
                s.default_chain = false;
            }
            s.strategies.push(Arc::new(strategy))
        })
    }

    /// What to answer when no strategy identifies a tenant (default [`Unmatched::NotFound`]).
    pub fn unmatched(self, policy: Unmatched) -> Self {
        self.edit(|s| s.unmatched = policy)
    }

    /// With `true`, a request identified by one of a tenant's non-primary domains is answered
    /// 308 Permanent Redirect to the same path and query on the primary domain (scheme from
    /// [`TenantUrls`], port kept from the request).
    pub fn redirect_to_primary(self, on: bool) -> Self {
        self.edit(|s| s.redirect_to_primary = on)
    }

    /// The application's answer for suspended and maintenance tenants (default
    /// [`crate::default_status_response`]). A 503 for a tenant in maintenance gets a
    /// `Retry-After` header if the answer has none.
    pub fn status_response<F>(self, f: F) -> Self
    where
        F: Fn(&Tenant) -> Response + Send + Sync + 'static,
    {
        self.edit(|s| s.status_responder = Some(Arc::new(f)))
    }

    /// `Retry-After` seconds for tenants in maintenance (default 120).
    pub fn retry_after(self, secs: u64) -> Self {
        self.edit(|s| s.retry_after_secs = secs)
    }

    /// How tenant URLs are built (redirects, [`TenantUrls`] extractor).
    pub fn urls(self, urls: TenantUrls) -> Self {
        self.edit(|s| s.urls = Arc::new(urls))
    }

    /// The URL settings, for building links outside requests (e-mails, jobs).
    pub fn urls_config(&self) -> &TenantUrls {
        &self.settings.urls
    }

    /// The Tenantry handle.
    pub fn tenantry(&self) -> &Tenantry {
        &self.settings.tenantry
    }

    /// The largest tenant request body read (default 2 MiB, axum's own default; larger ones
    /// get 413). Tenant request bodies are read in full before the inner service runs, so that
    /// a `TenantDb` (always extracted before the body) never holds a transaction, and a pooled
    /// connection, open while a slow or hostile client withholds the body.
    pub fn request_body_limit(self, bytes: usize) -> Self {
        self.edit(|s| {
            if let Some(b) = &mut s.body {
                b.limit = bytes;
            }
        })
    }

    /// How long a tenant request body may take to arrive (default 30 s; then 408).
    pub fn request_body_timeout(self, timeout: Duration) -> Self {
        self.edit(|s| {
            if let Some(b) = &mut s.body {
                b.timeout = timeout;
            }
        })
    }

    /// The level of the request span (default INFO; `None`: no span). The span (target
    /// `tenantry_axum::request`) carries `tenant`, `tenant_id`, `request_id` (the
    /// `x-request-id` header), `method` and `path`: see the [`crate::observe`] module. It costs
    /// nothing when tracing is off for that level.
    pub fn request_span(self, level: Option<Level>) -> Self {
        self.edit(|s| s.span_level = level)
    }

    /// The tenant label budget of the request metrics (feature `metrics`; default: a budget of
    /// [`tenantry_sqlx::metrics::DEFAULT_LABEL_BUDGET`] of the layer's own). Pass one shared
    /// with other instrumented parts (job workers) to keep one budget for the app.
    #[cfg(feature = "metrics")]
    pub fn metrics_labels(self, labels: Arc<tenantry_sqlx::metrics::TenantLabels>) -> Self {
        self.edit(|s| {
            s.labels = Arc::new(crate::observe::request_metrics::RequestMetrics::new(labels))
        })
    }

    /// The tenant label budget of the request metrics (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub fn metrics_labels_config(&self) -> &Arc<tenantry_sqlx::metrics::TenantLabels> {
        self.settings.labels.budget()
    }

    /// A check every tenant request passes after its tenant is resolved and its status allows
    /// it, before its body is read: see [`TenantAdmission`] (e.g. the `limits` feature's
    /// per-tenant rate limit, `.admission(limiter.clone())`). Replaces an earlier one.
    pub fn admission(self, admission: impl TenantAdmission) -> Self {
        self.edit(|s| s.admission = Some(Arc::new(admission)))
    }

    /// With `false`, tenant request bodies are streamed to handlers instead of read first (for
    /// large uploads). Then open transactions only after the body has arrived (take the
    /// `TenantContext` extractor and call [`crate::TenantContext::db`] in the handler body),
    /// and apply your own read timeouts: a `TenantDb` argument opens its transaction before
    /// the body is read.
    pub fn buffer_request_bodies(self, on: bool) -> Self {
        self.edit(|s| {
            s.body = on.then_some(s.body.unwrap_or(BodyBuffer {
                limit: DEFAULT_BODY_LIMIT,
                timeout: DEFAULT_BODY_TIMEOUT,
            }))
        })
    }
}

impl<S> tower::Layer<S> for TenantLayer {
    type Service = TenantService<S>;

    fn layer(&self, inner: S) -> TenantService<S> {
        TenantService {
            settings: Arc::clone(&self.settings),
            inner,
        }
    }
}

/// The service a [`TenantLayer`] wraps around `S`.
#[derive(Clone)]
pub struct TenantService<S> {
    settings: Arc<Settings>,
    inner: S,
}

impl<S> std::fmt::Debug for TenantService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantService").finish_non_exhaustive()
    }
}

impl<S> tower::Service<Request<Body>> for TenantService<S>
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
        let settings = Arc::clone(&self.settings);
        let inner = self.inner.clone();
        let span = observe::request_span(settings.span_level, &req);
        let probe = Probe::start(&span);
        let fut_span = span.clone();
        Box::pin(
            async move {
                let mut who = Who::Unknown;
                let response = settings.dispatch(req, inner, &span, &mut who).await;
                probe.finish(&span, &settings.labels, &who, &response);
                Ok(response)
            }
            .instrument(fut_span),
        )
    }
}

enum Found {
    Public,
    Tenant(Arc<Tenant>, Identified),
    Nothing,
}

impl Settings {
    async fn dispatch<S>(
        &self,
        req: Request<Body>,
        inner: S,
        span: &Span,
        who: &mut Who,
    ) -> Response
    where
        S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
    {
        let (mut parts, body) = req.into_parts();
        let tenantry = &self.tenantry;
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
                Err(e) => {
                    observe::record(span, who);
                    return e;
                }
            }
        };
        parts.extensions.insert(tenantry.clone());
        parts
            .extensions
            .insert(RequestHost(host.clone().unwrap_or_default()));
        parts.extensions.insert(Arc::clone(&self.urls));
        let req = Request::from_parts(parts, body);
        *who = match &found {
            Found::Public => Who::Public,
            Found::Tenant(tenant, _) => Who::Tenant(Arc::clone(tenant)),
            Found::Nothing => match &self.unmatched {
                Unmatched::Public => Who::Public,
                _ => Who::Unknown,
            },
        };
        observe::record(span, who);
        match found {
            Found::Public => call(inner, req).await,
            Found::Tenant(tenant, id) => {
                self.serve_tenant(req, tenant, id, host.as_deref(), inner)
                    .await
            }
            Found::Nothing => match &self.unmatched {
                Unmatched::NotFound => plain(StatusCode::NOT_FOUND, "Not Found"),
                Unmatched::Public => call(inner, req).await,
                Unmatched::Handler(router) => call(router.clone(), req).await,
                Unmatched::DefaultTenant(name) => match tenantry.resolve_schema(name).await {
                    Ok(Some(tenant)) => {
                        *who = Who::Tenant(Arc::clone(&tenant));
                        observe::record(span, who);
                        let id = Identified::new(TenantKey::Name(name.clone()));
                        self.serve_tenant(req, tenant, id, host.as_deref(), inner)
                            .await
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
        let tenantry = &self.tenantry;
        for strategy in &self.strategies {
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

    async fn serve_tenant<S>(
        &self,
        mut req: Request<Body>,
        tenant: Arc<Tenant>,
        id: Identified,
        request_host: Option<&str>,
        inner: S,
    ) -> Response
    where
        S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
    {
        if self.redirect_to_primary
            && let TenantKey::Domain(matched) = &id.key
            && let Some(primary) = &tenant.primary_domain
            && (if request_host == Some(matched.as_str()) {
                matched != primary
            } else {
                tenantry_core::normalize_host(matched, self.tenantry.config().host_policy)
                    .is_ok_and(|h| h != *primary)
            })
        {
            return self.redirect(&req, primary);
        }
        if let Some(answer) = respond(
            &tenant,
            self.status_responder.as_ref(),
            self.retry_after_secs,
        ) {
            return answer;
        }
        if let Some(admission) = &self.admission
            && let Err(answer) = admission.admit(&self.tenantry, &tenant).await
        {
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
        let domain = match &id.key {
            TenantKey::Domain(matched) if request_host == Some(matched.as_str()) => {
                Some(matched.clone())
            }
            TenantKey::Domain(matched) => {
                tenantry_core::normalize_host(matched, self.tenantry.config().host_policy).ok()
            }
            _ => None,
        };
        req.extensions_mut().insert(RequestIdentity {
            key: id.key,
            domain,
            responder: self.status_responder.clone(),
            retry_after_secs: self.retry_after_secs,
        });
        // The whole body before the handler runs: its extractors (a `TenantDb` is extracted
        // before any body extractor) must not hold a transaction open while a client takes its
        // time to send the body.
        let req = match &self.body {
            Some(body) => match body.buffer(req).await {
                Ok(req) => req,
                Err(answer) => return answer,
            },
            None => req,
        };
        tenantry_sqlx::scope(tenant, call(inner, req)).await
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
        let location = format!("{}://{primary}{port}{path}", self.urls.scheme_str());
        match HeaderValue::from_str(&location) {
            Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
            Err(_) => plain(StatusCode::BAD_REQUEST, "Bad Request"),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "tenant resolution failed");
    HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
}

async fn call<S>(service: S, req: Request<Body>) -> Response
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
{
    use tower::ServiceExt;
    match service.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}
