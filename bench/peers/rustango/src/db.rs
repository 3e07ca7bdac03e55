//! The request's tenant and its connection, through rustango's own API: the `TenantContext` the
//! `Builder` mounts (its `ChainResolver` and `TenantPools`), `TenantPools::acquire` in `shared`
//! mode, the `TenantScope` extractor's pool in `scoped` mode.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rustango::extractors::{TenantContext, TenantScope};
use rustango::sql::sqlx::pool::PoolConnection;
use rustango::sql::sqlx::{PgConnection, Postgres};
use rustango::tenancy::{Org, OrgResolver, TenantConn};

use crate::Mode;

/// A handler's error: logged, 500 (404 when no tenant matches).
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) StatusCode, pub(crate) String);

impl From<rustango::sql::sqlx::Error> for Failure {
    fn from(e: rustango::sql::sqlx::Error) -> Self {
        eprintln!("database error: {e}");
        Self(StatusCode::INTERNAL_SERVER_ERROR, "database error".into())
    }
}

impl From<rustango::tenancy::TenancyError> for Failure {
    fn from(e: rustango::tenancy::TenancyError) -> Self {
        eprintln!("tenancy error: {e}");
        Self(StatusCode::INTERNAL_SERVER_ERROR, "tenancy error".into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// The request's org, resolved by the Builder's resolver chain (cached), and its host.
pub(crate) struct Resolved {
    /// The org.
    pub(crate) org: Org,
    /// The `Host` header, without its port.
    pub(crate) host: String,
}

fn context(parts: &Parts) -> Result<Arc<TenantContext>, Failure> {
    parts
        .extensions
        .get::<Arc<TenantContext>>()
        .cloned()
        .ok_or_else(|| Failure(StatusCode::INTERNAL_SERVER_ERROR, "no TenantContext".into()))
}

impl<S: Send + Sync> FromRequestParts<S> for Resolved {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Failure> {
        let ctx = context(parts)?;
        let org = ctx
            .resolver
            .resolve(parts, &ctx.pools.registry_pool())
            .await?
            .ok_or_else(|| Failure(StatusCode::NOT_FOUND, "tenant not found".into()))?;
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let host = host
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(Self { org, host })
    }
}

/// A connection in the tenant's schema.
pub(crate) enum Conn {
    /// `TenantPools::acquire` (reset when dropped).
    Shared(TenantConn),
    /// From the tenant's scoped pool.
    Scoped(PoolConnection<Postgres>),
}

impl std::ops::Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            Self::Shared(c) => c,
            Self::Scoped(c) => c,
        }
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Shared(c) => c,
            Self::Scoped(c) => c,
        }
    }
}

/// The request's org and a connection in its schema.
pub(crate) struct Db {
    /// The org.
    pub(crate) org: Org,
    /// The connection.
    pub(crate) conn: Conn,
}

impl<S: Send + Sync> FromRequestParts<S> for Db {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        let mode = parts
            .extensions
            .get::<Arc<Mode>>()
            .map_or(Mode::Shared, |m| **m);
        match mode {
            Mode::Shared => {
                let ctx = context(parts)?;
                let r = Resolved::from_request_parts(parts, state).await?;
                let conn = ctx.pools.acquire(&r.org).await?;
                Ok(Self {
                    org: r.org,
                    conn: Conn::Shared(conn),
                })
            }
            Mode::Scoped => {
                let scope = TenantScope::from_request_parts(parts, state)
                    .await
                    .map_err(|e| {
                        let r = e.into_response();
                        Failure(r.status(), "tenant rejected".into())
                    })?;
                let pool = scope.pool().as_postgres().ok_or_else(|| {
                    Failure(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "not a Postgres pool".into(),
                    )
                })?;
                let conn = pool.acquire().await?;
                Ok(Self {
                    org: scope.org,
                    conn: Conn::Scoped(conn),
                })
            }
        }
    }
}
