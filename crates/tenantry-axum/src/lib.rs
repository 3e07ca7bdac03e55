//! Tenantry for axum: a `tower::Layer` that puts each request in its tenant.
//!
//! A request's path through Tenantry:
//!
//! 1. [`TenantLayer`] runs its identification chain ([`strategy`] module): by default the host
//!    only ([`strategy::HostStrategy`]); add [`strategy::SubfolderStrategy`]
//!    (`/t/<name>/...`), [`strategy::HeaderStrategy`] (`X-Tenant` from trusted proxies) or your
//!    own [`strategy::TenantStrategy`]. The first key the registry resolves (from memory on a
//!    hit) wins.
//! 2. It answers what is not the app's business (malformed host 400, unknown 404 or the
//!    [`Unmatched`] policy, suspended 403, maintenance 503, the optional 308 to the primary
//!    domain, registry unreachable 503), reads a tenant request's body, and calls the inner
//!    service inside a task-local tenant scope. Public requests reach it without a tenant.
//!    [`TenantRouter`] puts a public router and tenant routers (per type) behind the layer.
//! 3. Handlers take what they need through extractors: [`CurrentTenant`], [`TenantDb`] (a
//!    transaction with the tenant's `search_path`, its identity checked in the same round
//!    trip), [`PublicDb`], [`RequestHost`], [`TenantryExt`], [`TenantBase`] (link prefix),
//!    [`TenantUrls`] (canonical URLs), [`TenantContext`] / [`TenantWebSocket`] (realtime
//!    routes that outlive the handler).
//!
//! See `docs/routing.md` for every mode.

pub mod admission;
mod body_buffer;
pub mod extract;
pub mod host;
mod identity;
mod layer;
#[cfg(feature = "limits")]
pub mod limits;
pub mod observe;
mod realtime;
mod response;
mod router;
mod status;
pub mod strategy;
mod unmatched;
mod urls;

pub use async_trait::async_trait;
pub use extract::{CurrentTenant, PublicDb, RequestHost, TenantDb, TenantryExt};
pub use layer::{DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, TenantLayer, TenantService};
pub use realtime::{ScopedStream, TenantContext, TenantWebSocket};
pub use response::HttpError;
pub use router::TenantRouter;
pub use status::{StatusResponder, default_status_response};
pub use unmatched::Unmatched;
pub use urls::{TenantBase, TenantUrls};
