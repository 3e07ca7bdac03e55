//! Tenantry for axum: one service in front of two routers.
//!
//! A request's path through Tenantry:
//!
//! 1. [`TenantRouter`] (a `tower::Service`) reads the host ([`host`] module: `Host` header, or
//!    the authority of an absolute-form / HTTP/2 request), asks [`tenantry_sqlx::Tenantry`] to
//!    resolve it (from memory on a hit) and dispatches:
//!    public domain -> public router; tenant domain -> tenant router, inside a task-local tenant
//!    scope; unknown -> 404; malformed -> 400; registry unreachable -> 503.
//! 2. Handlers take what they need through extractors ([`extract`] module): [`CurrentTenant`],
//!    [`TenantDb`] (a transaction with the tenant's `search_path`), [`PublicDb`],
//!    [`RequestHost`], [`TenantryExt`].

pub mod extract;
pub mod host;
mod response;
mod service;

pub use extract::{CurrentTenant, PublicDb, RequestHost, TenantDb, TenantryExt};
pub use response::HttpError;
pub use service::TenantRouter;
