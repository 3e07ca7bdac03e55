//! [`HostStrategy`]: the tenant is named by the request's host.

use http::StatusCode;

use super::{Identification, Identified, RequestInfo, TenantKey, TenantStrategy};
use crate::HttpError;

/// Identifies by host: a public domain answers [`Identification::Public`], any other valid host
/// is looked up in the registry's domains. A missing or malformed host is refused with 400.
/// This is the default chain of [`crate::TenantRouter`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HostStrategy;

#[async_trait::async_trait]
impl TenantStrategy for HostStrategy {
    async fn identify(&self, req: &RequestInfo<'_>) -> Result<Identification, HttpError> {
        let bad = || {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                "Bad Request: missing or invalid Host",
            )
        };
        // Normalised once per request by the router; normalise here only when called outside it.
        let host = match req.normalized_host() {
            Some(h) => h.to_owned(),
            None => {
                let raw = req.raw_host().map_err(|_| bad())?;
                tenantry_core::normalize_host(raw, req.tenantry.config().host_policy)
                    .map_err(|_| bad())?
            }
        };
        if req.tenantry.config().public_domains.contains(&host) {
            return Ok(Identification::Public);
        }
        Ok(Identification::Tenant(Identified::new(TenantKey::Domain(
            host,
        ))))
    }
}
