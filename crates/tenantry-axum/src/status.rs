//! Answers for tenants that are not active: suspended (403) and maintenance (503 with
//! `Retry-After`), replaceable by the application.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tenantry_sqlx::{Tenant, TenantStatus};

/// The application's answer for a tenant that is not active: see
/// [`crate::TenantRouter::status_response`].
pub type StatusResponder = Arc<dyn Fn(&Tenant) -> Response + Send + Sync>;

/// Tenantry's default answer for a tenant that is not active: 403 "This site is suspended." for
/// a suspended tenant, 503 "This site is down for maintenance." with `Retry-After:
/// retry_after_secs` for one in maintenance. `None` for an active tenant.
pub fn default_status_response(tenant: &Tenant, retry_after_secs: u64) -> Option<Response> {
    match tenant.status {
        TenantStatus::Active => None,
        TenantStatus::Suspended => {
            Some((StatusCode::FORBIDDEN, "This site is suspended.").into_response())
        }
        TenantStatus::Maintenance => Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                "This site is down for maintenance.",
            )
                .into_response(),
        ),
    }
}

/// The answer for a non-active tenant: the application's responder if set, else the default;
/// a 503 for a tenant in maintenance always carries `Retry-After`.
pub(crate) fn respond(
    tenant: &Tenant,
    custom: Option<&StatusResponder>,
    retry_after_secs: u64,
) -> Option<Response> {
    if tenant.status == TenantStatus::Active {
        return None;
    }
    let mut response = match custom {
        Some(f) => f(tenant),
        None => default_status_response(tenant, retry_after_secs)?,
    };
    if tenant.status == TenantStatus::Maintenance
        && response.status() == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    Some(response)
}
