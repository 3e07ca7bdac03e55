//! "Run this future in tenant X": a task-local current tenant.
//!
//! The HTTP layer runs every tenant request inside [`scope`], so handlers, and anything they
//! `.await`, can ask for [`current_tenant`]. A spawned task does not inherit task-locals: wrap it
//! with [`scope`] (or use [`crate::Tenantry::spawn_in`]).

use std::future::Future;
use std::sync::Arc;

use tenantry_core::Tenant;

tokio::task_local! {
    static CURRENT: Arc<Tenant>;
}

/// Runs `fut` with `tenant` as the current tenant.
pub async fn scope<F: Future>(tenant: Arc<Tenant>, fut: F) -> F::Output {
    CURRENT.scope(tenant, fut).await
}

/// The tenant of the surrounding [`scope`], if any.
pub fn current_tenant() -> Option<Arc<Tenant>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs the synchronous `f` with `tenant` as the current tenant. Used to poll streams (SSE
/// bodies, WebSocket loops) inside the tenant's scope, one poll at a time.
pub fn sync_scope<R>(tenant: Arc<Tenant>, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(tenant, f)
}
