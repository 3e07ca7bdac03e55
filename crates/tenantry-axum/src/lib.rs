//! Tenantry for axum: one service in front of the public and tenant routers.
//!
//! A request's path through Tenantry:
//!
//! 1. [`TenantRouter`] (a `tower::Service`) runs its identification chain ([`strategy`]
//!    module): by default the host only ([`strategy::HostStrategy`]); add
//!    [`strategy::SubfolderStrategy`] (`/t/<name>/...`), [`strategy::HeaderStrategy`]
//!    (`X-Tenant` from trusted proxies) or your own [`strategy::TenantStrategy`]. The first key
//!    the registry resolves (from memory on a hit) wins.
//! 2. It dispatches: public -> public router; tenant -> the router of the tenant's type, inside
//!    a task-local tenant scope (after the suspended/maintenance check and the optional 308 to
//!    the primary domain); nothing -> the [`Unmatched`] policy (404 by default); malformed
//!    host -> 400; registry unreachable -> 503.
//! 3. Handlers take what they need through extractors: [`CurrentTenant`], [`TenantDb`] (a
//!    transaction with the tenant's `search_path`), [`PublicDb`], [`RequestHost`],
//!    [`TenantryExt`], [`TenantBase`] (link prefix), [`TenantUrls`] (canonical URLs),
//!    [`TenantContext`] / [`TenantWebSocket`] (realtime routes that outlive the handler).
//!
//! See `docs/routing.md` for every mode.

#![warn(missing_docs)]

pub mod extract;
pub mod host;
mod identity;
mod realtime;
mod response;
mod service;
mod status;
pub mod strategy;
mod urls;

pub use async_trait::async_trait;
pub use extract::{CurrentTenant, PublicDb, RequestHost, TenantDb, TenantryExt};
pub use realtime::{ScopedStream, TenantContext, TenantWebSocket};
pub use response::HttpError;
pub use service::{
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, TenantConnection, TenantMakeService, TenantRouter,
    Unmatched,
};
pub use status::{StatusResponder, default_status_response};
pub use urls::{TenantBase, TenantUrls};
