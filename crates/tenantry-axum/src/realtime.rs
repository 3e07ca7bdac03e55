//! Realtime routes (WebSocket, server-sent events) in the tenant's context for their whole life.
//!
//! A handler's future runs inside the tenant's task-local scope, but what it hands back often
//! outlives it: an SSE body stream is polled by the connection task after the handler returned,
//! and a WebSocket callback runs on a task spawned by the upgrade. Neither inherits the scope.
//! [`TenantContext`] carries the tenant and the Tenantry handle into them:
//! [`TenantContext::stream`] polls a stream inside the scope, [`TenantWebSocket::on_upgrade`]
//! runs the socket loop inside it, and [`TenantContext::db`] opens a [`TenantDb`] anywhere.
//!
//! A stream can outlive its tenant's identity: the tenant is renamed away, deleted or suspended
//! while the connection stays open. Every [`TenantContext::db`] checks identity in its `BEGIN`
//! (a changed tenant gets an error, never another tenant's schema), and both wrappers end the
//! stream or socket once [`TenantContext::revoked`] says the tenant is gone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::request::Parts;
use tenantry_sqlx::{Tenant, Tenantry};

use crate::{HttpError, TenantDb};

/// The tenant of the request and the Tenantry handle, owned (`'static`, cheap to clone): move it
/// into streams, WebSocket loops and spawned tasks.
///
/// An SSE route whose events are read from the tenant's schema while the stream lives:
///
/// ```no_run
/// use std::convert::Infallible;
/// use axum::response::sse::{Event, Sse};
/// use futures::{Stream, StreamExt};
/// use tenantry_axum::TenantContext;
///
/// async fn titles(ctx: TenantContext) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
///     let reader = ctx.clone();
///     // Each item opens its own transaction, checked against the tenant's identity.
///     let events = futures::stream::iter(1..=3_i64).then(move |id| {
///         let ctx = reader.clone();
///         async move {
///             let title: Option<String> = match ctx.db().await {
///                 Ok(mut db) => sqlx::query_scalar("SELECT title FROM notes WHERE id = $1")
///                     .bind(id)
///                     .fetch_optional(&mut *db)
///                     .await
///                     .ok()
///                     .flatten(),
///                 Err(_) => None,
///             };
///             Ok(Event::default().data(title.unwrap_or_default()))
///         }
///     });
///     // Polled in the tenant's scope; ends if the tenant is renamed, deleted or suspended.
///     Sse::new(ctx.stream(events))
/// }
/// # let _: axum::Router = axum::Router::new().route("/titles", axum::routing::get(titles));
/// ```
#[derive(Debug, Clone)]
pub struct TenantContext {
    tenantry: Tenantry,
    tenant: Arc<Tenant>,
    /// The normalised domain the request came in on (host strategy): it must stay the
    /// tenant's for the context's transactions to run and its streams to stay open.
    domain: Option<Arc<str>>,
}

impl TenantContext {
    /// A context for `tenant`.
    pub fn new(tenantry: Tenantry, tenant: Arc<Tenant>) -> Self {
        Self {
            tenantry,
            tenant,
            domain: None,
        }
    }

    /// A context for `tenant` reached through `domain` (normalised): its transactions and
    /// sessions also check that the domain is still the tenant's, and it is revoked once the
    /// domain moves. The extractor does this for host-routed requests.
    pub fn via_domain(
        tenantry: Tenantry,
        tenant: Arc<Tenant>,
        domain: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            tenantry,
            tenant,
            domain: Some(domain.into()),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// The Tenantry handle.
    pub fn tenantry(&self) -> &Tenantry {
        &self.tenantry
    }

    /// Opens a transaction scoped to the tenant (like the [`TenantDb`] extractor). Fails (503
    /// or the status answer) once the tenant was renamed, deleted or suspended since the
    /// context was made: a long-lived stream should then end.
    pub async fn db(&self) -> Result<TenantDb, HttpError> {
        let tx =
            crate::identity::begin(&self.tenantry, &self.tenant, self.domain.as_deref()).await?;
        Ok(TenantDb(tx))
    }

    /// A session-scoped connection for the tenant ([`Tenantry::session`]), with the same
    /// identity (and domain) checks as [`TenantContext::db`]. Release it when done.
    pub async fn session(&self) -> Result<tenantry_sqlx::TenantConn, tenantry_sqlx::Error> {
        match &self.domain {
            Some(domain) => self.tenantry.session_via_domain(&self.tenant, domain).await,
            None => self.tenantry.session(&self.tenant).await,
        }
    }

    /// Completes when the tenant this context was made for is no longer served under the same
    /// identity: renamed, deleted, not active, or its schema name now belongs to another tenant.
    /// Checked on every registry change heard by the listener (within milliseconds), and every
    /// few seconds when no listener runs.
    pub fn revoked(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let (tenantry, tenant) = (self.tenantry.clone(), Arc::clone(&self.tenant));
        let domain = self.domain.clone();
        // Subscribed now, not at the first poll: a change in between is not missed.
        let mut changes = tenantry.registry_changes();
        async move {
            // The tenant may have changed since the request was resolved: check once first.
            let mut waited = false;
            loop {
                if waited {
                    let fallback = if tenantry.stats().await.listener_connected {
                        REVOKE_POLL_LISTENING
                    } else {
                        REVOKE_POLL_DEAF
                    };
                    tokio::select! {
                        changed = changes.changed() => if changed.is_err() {
                            // The handle is gone: nothing will be served any more.
                            return;
                        },
                        _ = tokio::time::sleep(fallback) => {}
                    }
                }
                waited = true;
                let now = match &domain {
                    Some(domain) => match tenantry.resolve_normalized_host(domain).await {
                        Ok(tenantry_sqlx::Resolution::Tenant(t)) => Ok(Some(t)),
                        Ok(_) => Ok(None),
                        Err(e) => Err(e),
                    },
                    None => tenantry.resolve_schema(&tenant.schema).await,
                };
                match now {
                    Ok(Some(now))
                        if now.id == tenant.id
                            && now.schema == tenant.schema
                            && now.status == tenantry_sqlx::TenantStatus::Active => {}
                    Ok(_) => return,
                    // Registry unreachable: keep the stream; its transactions check anyway.
                    Err(_) => {}
                }
            }
        }
    }

    /// Runs `fut` inside the tenant's scope.
    pub fn scope<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        tenantry_sqlx::scope(Arc::clone(&self.tenant), fut)
    }

    /// Spawns `fut` on the runtime inside the tenant's scope.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tenantry.spawn_in(Arc::clone(&self.tenant), fut)
    }

    /// Wraps `stream` so that every poll runs inside the tenant's scope (for SSE bodies:
    /// `Sse::new(ctx.stream(events))`).
    ///
    /// The stream ends once the tenant is revoked ([`TenantContext::revoked`]).
    pub fn stream<S: Stream>(&self, stream: S) -> ScopedStream<S> {
        ScopedStream {
            tenant: Arc::clone(&self.tenant),
            inner: Box::pin(stream),
            revoked: Box::pin(self.revoked()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantContext {
    type Rejection = HttpError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let crate::CurrentTenant(tenant) =
            crate::CurrentTenant::from_request_parts(parts, state).await?;
        let crate::TenantryExt(tenantry) =
            crate::TenantryExt::from_request_parts(parts, state).await?;
        let domain = parts
            .extensions
            .get::<crate::identity::RequestIdentity>()
            .and_then(|i| i.domain.as_deref())
            .map(Arc::from);
        Ok(Self {
            tenantry,
            tenant,
            domain,
        })
    }
}

/// How often a revocation check runs without registry notifications to wake it.
const REVOKE_POLL_DEAF: Duration = Duration::from_secs(2);

/// The same while the listener runs (a safety net only: notifications wake it at once).
const REVOKE_POLL_LISTENING: Duration = Duration::from_secs(30);

/// A stream polled inside a tenant's scope, ended when the tenant is revoked; see
/// [`TenantContext::stream`].
pub struct ScopedStream<S> {
    tenant: Arc<Tenant>,
    inner: Pin<Box<S>>,
    revoked: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl<S> std::fmt::Debug for ScopedStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedStream")
            .field("tenant", &self.tenant.schema)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Stream for ScopedStream<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.revoked.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let tenant = Arc::clone(&self.tenant);
        tenantry_sqlx::sync_scope(tenant, || self.inner.as_mut().poll_next(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// A WebSocket upgrade whose connection runs in the tenant's scope. Use it instead of
/// `WebSocketUpgrade` on tenant routes.
///
/// ```no_run
/// use axum::extract::ws::Message;
/// use axum::response::Response;
/// use tenantry_axum::TenantWebSocket;
///
/// // Echoes each text message with the tenant's name; the socket closes when the tenant is
/// // revoked (renamed away, deleted, suspended).
/// async fn echo(socket: TenantWebSocket) -> Response {
///     socket.on_upgrade(|mut socket, ctx| async move {
///         while let Some(Ok(Message::Text(text))) = socket.recv().await {
///             let reply = format!("{}: {}", ctx.tenant().schema, text.as_str());
///             if socket.send(Message::Text(reply.into())).await.is_err() {
///                 break;
///             }
///         }
///     })
/// }
/// # let _: axum::Router = axum::Router::new().route("/ws", axum::routing::get(echo));
/// ```
#[derive(Debug)]
pub struct TenantWebSocket {
    upgrade: WebSocketUpgrade,
    ctx: TenantContext,
}

impl TenantWebSocket {
    /// Adjusts the underlying upgrade (message sizes, protocols...).
    pub fn map(mut self, f: impl FnOnce(WebSocketUpgrade) -> WebSocketUpgrade) -> Self {
        self.upgrade = f(self.upgrade);
        self
    }

    /// Completes the upgrade; `callback` runs inside the tenant's scope for the socket's whole
    /// life and gets the [`TenantContext`] (for [`TenantContext::db`]). When the tenant is
    /// revoked ([`TenantContext::revoked`]) the callback is dropped, which closes the socket.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket, TenantContext) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let ctx = self.ctx;
        self.upgrade
            .on_upgrade(move |socket| {
                let tenant = Arc::clone(&ctx.tenant);
                let revoked = ctx.revoked();
                let session = tenantry_sqlx::scope(tenant, callback(socket, ctx));
                async move {
                    tokio::select! {
                        () = session => {}
                        () = revoked => {}
                    }
                }
            })
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantWebSocket {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let ctx = TenantContext::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self { upgrade, ctx })
    }
}
