//! Extractors for handlers behind a [`crate::TenantLayer`] (or a [`crate::TenantRouter`]).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use sqlx::PgConnection;
use tenantry_sqlx::{PublicTx, Tenant, TenantTx, Tenantry};

use crate::HttpError;

/// An extractor found no [`crate::TenantLayer`] in front of its route (500, and a log line that
/// says how to fix it).
fn misrouted(what: &str) -> HttpError {
    tracing::error!(
        "the {what} extractor found no Tenantry in the request: serve this route through \
         `TenantLayer` (`router.layer(tenantry_axum::TenantLayer::new(tenantry))`) or \
         `TenantRouter`"
    );
    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// The tenant of the request: 404 on a public request (the layer is there, the request has no
/// tenant), the misrouting 500 when no layer is.
fn request_tenant(parts: &Parts, what: &str) -> Result<Arc<Tenant>, HttpError> {
    if let Some(tenant) = parts.extensions.get::<Arc<Tenant>>() {
        return Ok(Arc::clone(tenant));
    }
    if parts.extensions.get::<Tenantry>().is_some() {
        return Err(HttpError::new(StatusCode::NOT_FOUND, "Not Found"));
    }
    Err(misrouted(what))
}

/// The tenant of the request.
#[derive(Debug, Clone)]
pub struct CurrentTenant(pub Arc<Tenant>);

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = HttpError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        request_tenant(parts, "CurrentTenant").map(CurrentTenant)
    }
}

impl Deref for CurrentTenant {
    type Target = Tenant;
    fn deref(&self) -> &Tenant {
        &self.0
    }
}

/// The normalised host the request came in on (e.g. `acme.localhost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestHost {
    type Rejection = HttpError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .get::<RequestHost>()
            .cloned()
            .ok_or_else(|| misrouted("RequestHost"))
    }
}

/// The [`Tenantry`] handle (for life-cycle calls from handlers, e.g. sign-up).
#[derive(Debug, Clone)]
pub struct TenantryExt(pub Tenantry);

impl<S: Send + Sync> FromRequestParts<S> for TenantryExt {
    type Rejection = HttpError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        parts
            .extensions
            .get::<Tenantry>()
            .cloned()
            .map(TenantryExt)
            .ok_or_else(|| misrouted("TenantryExt"))
    }
}

/// A transaction scoped to the request's tenant. Use it like a sqlx transaction:
/// `sqlx::query(..).fetch_all(&mut *db)`, then `db.commit().await?` to keep writes; dropping it
/// rolls back. The tenant's `search_path` is set with `SET LOCAL` in the `BEGIN` round trip.
#[derive(Debug)]
pub struct TenantDb(pub TenantTx);

impl TenantDb {
    /// Commits.
    pub async fn commit(self) -> Result<(), HttpError> {
        Ok(self.0.commit().await?)
    }
}

/// Opening it checks the tenant's identity in the `BEGIN` round trip; if the tenant changed since
/// the request was resolved (renamed, deleted, suspended), the request is resolved again and
/// answered as it would be after the change (see `identity.rs`): the rejection is then a 404,
/// the tenant's status answer, or a 503 with `Retry-After`.
impl<S: Send + Sync> FromRequestParts<S> for TenantDb {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let tenant = request_tenant(parts, "TenantDb").map_err(IntoResponse::into_response)?;
        let tenantry = parts
            .extensions
            .get::<Tenantry>()
            .cloned()
            .ok_or_else(|| misrouted("TenantDb").into_response())?;
        crate::identity::begin_for_request(&tenantry, parts, tenant)
            .await
            .map(TenantDb)
    }
}

// To the `TenantTx`, so `&mut *db` is its per-tenant-plan executor (and, one deref further,
// the `PgConnection` wherever one is expected).
impl Deref for TenantDb {
    type Target = TenantTx;
    fn deref(&self) -> &TenantTx {
        &self.0
    }
}

impl DerefMut for TenantDb {
    fn deref_mut(&mut self) -> &mut TenantTx {
        &mut self.0
    }
}

/// A transaction on the shared schema, for public routes.
#[derive(Debug)]
pub struct PublicDb(pub PublicTx);

impl PublicDb {
    /// Commits.
    pub async fn commit(self) -> Result<(), HttpError> {
        Ok(self.0.commit().await?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PublicDb {
    type Rejection = HttpError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HttpError> {
        let tenantry = parts
            .extensions
            .get::<Tenantry>()
            .ok_or_else(|| misrouted("PublicDb"))?;
        Ok(PublicDb(tenantry.begin_public().await?))
    }
}

impl Deref for PublicDb {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl DerefMut for PublicDb {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}
