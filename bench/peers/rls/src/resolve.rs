//! Host -> tenant, cached in memory like Tenantry's resolution: known hosts for 10 minutes,
//! unknown hosts for 10 s in a separate bounded cache (a flood of random hosts neither evicts real
//! tenants nor reaches the database once per request), concurrent misses of one host coalesced
//! into one query. The host is normalised (lowercase, port and trailing dot stripped) and must be
//! a plausible DNS name, else 400 before any lookup.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use moka::future::Cache;
use sqlx::PgPool;

use crate::App;

/// The request's tenant.
#[derive(Clone, Debug)]
pub(crate) struct TenantRef {
    /// `tenants.id`: the value of `app.tenant_id`.
    pub(crate) id: i64,
    /// `tenants.name`.
    pub(crate) name: Arc<str>,
    /// The normalised host it was resolved from.
    pub(crate) host: Arc<str>,
}

/// The resolution cache.
pub(crate) struct Resolver {
    pool: PgPool,
    known: Cache<Arc<str>, TenantRef>,
    unknown: Cache<Arc<str>, ()>,
}

#[derive(Clone, Debug)]
enum Miss {
    Unknown,
    Database(Arc<str>),
}

impl Resolver {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            known: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
            unknown: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(10))
                .build(),
        }
    }

    async fn resolve(&self, host: Arc<str>) -> Result<TenantRef, StatusCode> {
        if let Some(t) = self.known.get(&host).await {
            return Ok(t);
        }
        if self.unknown.contains_key(&host) {
            return Err(StatusCode::NOT_FOUND);
        }
        let pool = self.pool.clone();
        let key = host.clone();
        let found = self
            .known
            .try_get_with(host.clone(), async move {
                let row: Option<(i64, String)> = sqlx::query_as(
                    "SELECT t.id, t.name FROM domains d JOIN tenants t ON t.id = d.tenant_id \
                     WHERE d.host = $1",
                )
                .bind(&*key)
                .fetch_optional(&pool)
                .await
                .map_err(|e| Miss::Database(e.to_string().into()))?;
                let (id, name) = row.ok_or(Miss::Unknown)?;
                Ok::<_, Miss>(TenantRef {
                    id,
                    name: name.into(),
                    host: key,
                })
            })
            .await;
        match found {
            Ok(t) => Ok(t),
            Err(e) => match &*e {
                Miss::Unknown => {
                    self.unknown.insert(host, ()).await;
                    Err(StatusCode::NOT_FOUND)
                }
                Miss::Database(msg) => {
                    eprintln!("resolution failed: {msg}");
                    Err(StatusCode::SERVICE_UNAVAILABLE)
                }
            },
        }
    }
}

/// Lowercase, without port or trailing dot; `None` when it is no plausible host name.
pub(crate) fn normalise(raw: &str) -> Option<String> {
    let host = raw.rsplit_once(':').map_or(raw, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            raw
        }
    });
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(host)
}

impl FromRequestParts<App> for TenantRef {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        let raw = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or(StatusCode::BAD_REQUEST)?;
        let host = normalise(raw).ok_or(StatusCode::BAD_REQUEST)?;
        app.resolver.resolve(host.into()).await
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn hosts_are_normalised_or_refused() {
        assert_eq!(
            normalise("T000001.Bench.Local.:8080").as_deref(),
            Some("t000001.bench.local")
        );
        for bad in ["", "a..b", "x' OR 1=1 --", "-a.b", "a_b.c", "a b", "é.com"] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }
}
