//! What happens when a request's tenant changed after it was resolved.
//!
//! A request carries the tenant it resolved (id, schema name, schema OID). Every scoped `BEGIN`
//! checks that identity in its own round trip; when the check refuses (the tenant was renamed,
//! deleted, suspended, or its domain moved while the request waited), the request is resolved
//! once more, the way it was identified, and answered as it would be after the change:
//!
//! * same tenant, new schema name (a rename): the request goes on with the fresh record;
//! * nothing there any more: 404;
//! * the tenant is not active now: its status answer (403, or 503 with `Retry-After`);
//! * another tenant now (a swap of names, a domain moved): 503 with `Retry-After: 1`, never
//!   the other tenant's data inside a request that started as this one.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use tenantry_sqlx::{Error, Resolution, Tenant, TenantStatus, TenantTx, Tenantry};

use crate::HttpError;
use crate::status::{StatusResponder, respond};
use crate::strategy::TenantKey;

/// How the router identified the request's tenant, kept in the request's extensions so the
/// tenant can be looked up again the same way.
#[derive(Clone)]
pub(crate) struct RequestIdentity {
    pub key: TenantKey,
    /// The normalised domain the tenant was found by (host strategy): it must still be the
    /// tenant's when the transaction starts.
    pub domain: Option<String>,
    pub responder: Option<StatusResponder>,
    pub retry_after_secs: u64,
}

/// Opens the request's tenant transaction, resolving the tenant once more if its identity
/// changed since it was resolved (see the module docs).
pub(crate) async fn begin_for_request(
    tenantry: &Tenantry,
    parts: &mut Parts,
    tenant: Arc<Tenant>,
) -> Result<TenantTx, Response> {
    // The hot path borrows the identity; only a refusal clones it.
    let first = {
        let domain = parts
            .extensions
            .get::<RequestIdentity>()
            .and_then(|i| i.domain.as_deref());
        begin(tenantry, &tenant, domain).await
    };
    match first {
        Ok(tx) => return Ok(tx),
        Err(Error::TenantMoved(_) | Error::SchemaMissing(_) | Error::TenantNotServing { .. }) => {}
        Err(e) => return Err(HttpError::from(e).into_response()),
    }
    let identity = parts.extensions.get::<RequestIdentity>().cloned();
    let domain = identity.as_ref().and_then(|i| i.domain.as_deref());
    tracing::info!(tenant = %tenant.schema, id = tenant.id, "tenant changed under a request; resolving again");
    let mut fresh = resolve_again(tenantry, identity.as_ref(), &tenant).await?;
    if fresh.as_deref().is_some_and(|f| same_record(f, &tenant)) {
        // The cache still holds what the database refused: empty it (the listener would do so
        // shortly) and look again. Only the first request to notice a change pays for this.
        tenantry.invalidate_cache();
        fresh = resolve_again(tenantry, identity.as_ref(), &tenant).await?;
    }
    let Some(fresh) = fresh else {
        return Err((StatusCode::NOT_FOUND, "Not Found").into_response());
    };
    if fresh.id != tenant.id {
        return Err(retry_soon());
    }
    if fresh.status != TenantStatus::Active {
        let (responder, secs) = identity
            .as_ref()
            .map_or((None, 120), |i| (i.responder.as_ref(), i.retry_after_secs));
        if let Some(answer) = respond(&fresh, responder, secs) {
            return Err(answer);
        }
    }
    parts.extensions.insert(Arc::clone(&fresh));
    match begin(tenantry, &fresh, domain).await {
        Ok(tx) => Ok(tx),
        Err(Error::TenantMoved(_) | Error::SchemaMissing(_)) => Err(retry_soon()),
        Err(e) => Err(HttpError::from(e).into_response()),
    }
}

/// The tenant the request's key names now (`None`: nobody).
async fn resolve_again(
    tenantry: &Tenantry,
    identity: Option<&RequestIdentity>,
    tenant: &Tenant,
) -> Result<Option<Arc<Tenant>>, Response> {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "tenant resolution failed");
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    };
    match identity.map(|i| &i.key) {
        Some(TenantKey::Domain(host)) => match tenantry.resolve_host(host).await {
            Ok(Resolution::Tenant(t)) => Ok(Some(t)),
            Ok(Resolution::Public | Resolution::Unknown) => Ok(None),
            Err(tenantry_sqlx::ResolveError::BadHost(_)) => Ok(None),
            Err(e) => Err(unavailable(&e)),
        },
        Some(TenantKey::Name(name)) => tenantry
            .resolve_schema(name)
            .await
            .map_err(|e| unavailable(&e)),
        // Resolved by the application's strategy, or outside the router: by id.
        Some(TenantKey::Resolved(_)) | None => match tenantry.admin().tenant_by_id(tenant.id).await
        {
            Ok(t) => Ok(t.map(Arc::new)),
            Err(e) => Err(unavailable(&e)),
        },
    }
}

/// A scoped `BEGIN`, with the domain check when the tenant was reached through a domain.
pub(crate) async fn begin(
    tenantry: &Tenantry,
    tenant: &Arc<Tenant>,
    domain: Option<&str>,
) -> Result<TenantTx, Error> {
    match domain {
        Some(domain) => tenantry.begin_via_domain(tenant, domain).await,
        None => tenantry.begin(tenant).await,
    }
}

/// Whether two records say the same thing about a tenant's identity and status.
fn same_record(a: &Tenant, b: &Tenant) -> bool {
    a.id == b.id && a.schema == b.schema && a.schema_oid == b.schema_oid && a.status == b.status
}

fn retry_soon() -> Response {
    HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        .retry_after(1)
        .into_response()
}
