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

/// The tenant of the request (it derefs to [`Tenant`]: name, display name, type, domains,
/// data). On a public request (no tenant) the extractor answers 404.
///
/// ```
/// use tenantry_axum::CurrentTenant;
///
/// async fn whoami(tenant: CurrentTenant) -> String {
///     format!("{} (schema {})", tenant.display_name, tenant.schema)
/// }
/// # let _: axum::Router = axum::Router::new().route("/whoami", axum::routing::get(whoami));
/// ```
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

/// The normalised host the request came in on (e.g. `acme.localhost`: lowercase, port and
/// trailing dot removed), set by the layer for public and tenant requests alike.
///
/// ```
/// use tenantry_axum::RequestHost;
///
/// async fn host(RequestHost(host): RequestHost) -> String {
///     format!("you asked for {host}")
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(host));
/// ```
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
///
/// ```
/// use axum::Json;
/// use tenantry_axum::{HttpError, TenantryExt};
/// use tenantry_sqlx::NewTenant;
///
/// // A public sign-up route: `name` and `domain` come from the form, already checked.
/// async fn sign_up(
///     TenantryExt(tenantry): TenantryExt,
///     Json((name, domain)): Json<(String, String)>,
/// ) -> Result<String, HttpError> {
///     // Invalid or taken names answer 422 / 409 through `HttpError` (docs/errors.md).
///     let tenant = tenantry.admin().create_tenant(NewTenant::new(&name, &domain)).await?;
///     Ok(format!("created {}", tenant.schema))
/// }
/// # let _: axum::Router = axum::Router::new().route("/signup", axum::routing::post(sign_up));
/// ```
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
///
/// Unqualified table names resolve in the tenant's schema, then in the shared one:
///
/// ```no_run
/// use axum::{Json, Router, routing::get};
/// use tenantry_axum::{HttpError, TenantDb, TenantLayer};
///
/// async fn list(mut db: TenantDb) -> Result<Json<Vec<String>>, HttpError> {
///     let titles = sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
///         .fetch_all(&mut *db)
///         .await?;
///     Ok(Json(titles))
/// }
///
/// async fn add(mut db: TenantDb, title: String) -> Result<(), HttpError> {
///     sqlx::query("INSERT INTO notes (title) VALUES ($1)")
///         .bind(title)
///         .execute(&mut *db)
///         .await?;
///     db.commit().await // without it, the insert is rolled back when `db` drops
/// }
///
/// # async fn doc(tenantry: tenantry_sqlx::Tenantry) {
/// let app: Router = Router::new()
///     .route("/notes", get(list).post(add))
///     .layer(TenantLayer::new(tenantry));
/// # }
/// ```
///
/// Behind no [`crate::TenantLayer`], the extractor answers 500 and logs how to add the layer;
/// on a public request it answers 404.
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

/// A transaction on the shared schema, for public routes (e.g. the plans of a sign-up page).
/// Like [`TenantDb`]: `&mut *db` as the executor, `db.commit().await?` to keep writes.
///
/// ```no_run
/// use tenantry_axum::{HttpError, PublicDb};
///
/// async fn plans(mut db: PublicDb) -> Result<String, HttpError> {
///     let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM plans ORDER BY code")
///         .fetch_all(&mut *db)
///         .await?;
///     Ok(codes.join(", "))
/// }
/// # let _: axum::Router = axum::Router::new().route("/plans", axum::routing::get(plans));
/// ```
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
