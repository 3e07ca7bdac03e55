//! [`TenantAdmission`]: a check between resolution and the inner service, before the body.

use std::sync::Arc;

use axum::response::Response;
use tenantry_sqlx::{Tenant, Tenantry, async_trait};

/// Decides whether a tenant's request may go on, once its tenant is resolved and its status
/// allows it, **before the request body is read** and before the inner service runs. A refusal
/// is answered at once: a throttled client costs no body read, no buffer and no connection.
///
/// Set it with [`crate::TenantLayer::admission`] / [`crate::TenantRouter::admission`]. The
/// per-tenant rate limit of the `limits` feature
/// ([`TenantLimiter`](crate::limits::TenantLimiter)) implements it.
///
/// ```
/// use std::sync::Arc;
/// use axum::response::{IntoResponse, Response};
/// use http::StatusCode;
/// use tenantry_axum::admission::TenantAdmission;
/// use tenantry_sqlx::{Tenant, Tenantry, async_trait};
///
/// /// Only tenants on a paid plan may use this router.
/// struct PaidOnly;
///
/// #[async_trait]
/// impl TenantAdmission for PaidOnly {
///     async fn admit(&self, _: &Tenantry, tenant: &Arc<Tenant>) -> Result<(), Response> {
///         match tenant.data["plan"].as_str() {
///             Some("free") | None => Err(StatusCode::PAYMENT_REQUIRED.into_response()),
///             Some(_) => Ok(()),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait TenantAdmission: Send + Sync + 'static {
    /// `Ok(())` lets the request go on; `Err(response)` answers it with `response`.
    async fn admit(&self, tenantry: &Tenantry, tenant: &Arc<Tenant>) -> Result<(), Response>;
}
