//! Realtime routes (WebSocket, server-sent events) in the tenant's context for their whole life.
//!
//! A handler's future runs inside the tenant's task-local scope, but what it hands back often
//! outlives it: an SSE body stream is polled by the connection task after the handler returned,
//! and a WebSocket callback runs on a task spawned by the upgrade. Neither inherits the scope.
//! [`TenantContext`] carries the tenant and the Tenantry handle into them:
//! [`TenantContext::stream`] polls a stream inside the scope, [`TenantWebSocket::on_upgrade`]
//! runs the socket loop inside it, and [`TenantContext::db`] opens a [`TenantDb`] anywhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::StatusCode;
use http::request::Parts;
use tenantry_sqlx::{Tenant, Tenantry};

use crate::{HttpError, TenantDb};

/// The tenant of the request and the Tenantry handle, owned (`'static`, cheap to clone): move it
/// into streams, WebSocket loops and spawned tasks.
#[derive(Clone)]
pub struct TenantContext {
    tenantry: Tenantry,
    tenant: Arc<Tenant>,
}

impl TenantContext {
    /// A context for `tenant`.
    pub fn new(tenantry: Tenantry, tenant: Arc<Tenant>) -> Self {
        Self { tenantry, tenant }
    }

    /// The tenant.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// The Tenantry handle.
    pub fn tenantry(&self) -> &Tenantry {
        &self.tenantry
    }

    /// Opens a transaction scoped to the tenant (like the [`TenantDb`] extractor).
    pub async fn db(&self) -> Result<TenantDb, HttpError> {
        Ok(TenantDb(self.tenantry.begin(&self.tenant).await?))
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
    pub fn stream<S: Stream>(&self, stream: S) -> ScopedStream<S> {
        ScopedStream {
            tenant: Arc::clone(&self.tenant),
            inner: Box::pin(stream),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantContext {
    type Rejection = HttpError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        let tenant = parts.extensions.get::<Arc<Tenant>>().cloned();
        let tenantry = parts.extensions.get::<Tenantry>().cloned();
        match (tenantry, tenant) {
            (Some(tenantry), Some(tenant)) => Ok(Self { tenantry, tenant }),
            _ => {
                tracing::error!(
                    "TenantContext extractor used on a route not served through TenantRouter"
                );
                Err(HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                ))
            }
        }
    }
}

/// A stream polled inside a tenant's scope; see [`TenantContext::stream`].
pub struct ScopedStream<S> {
    tenant: Arc<Tenant>,
    inner: Pin<Box<S>>,
}

impl<S: Stream> Stream for ScopedStream<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let tenant = Arc::clone(&self.tenant);
        tenantry_sqlx::sync_scope(tenant, || self.inner.as_mut().poll_next(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// A WebSocket upgrade whose connection runs in the tenant's scope. Use it instead of
/// `WebSocketUpgrade` on tenant routes.
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
    /// life and gets the [`TenantContext`] (for [`TenantContext::db`]).
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket, TenantContext) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let ctx = self.ctx;
        self.upgrade
            .on_upgrade(move |socket| {
                let tenant = Arc::clone(&ctx.tenant);
                tenantry_sqlx::scope(tenant, callback(socket, ctx))
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
