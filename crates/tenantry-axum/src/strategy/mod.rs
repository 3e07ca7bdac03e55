//! Identification strategies: how a request names its tenant.
//!
//! A strategy only *identifies* (it reads the request and returns a [`TenantKey`]); the
//! registry *resolves* the key (through the cache of [`tenantry_sqlx::Tenantry`]). The
//! [`crate::TenantRouter`] tries its strategies in order; the first one whose key resolves to a
//! tenant (or that answers [`Identification::Public`]) wins. A key that resolves to nothing
//! lets the next strategy try; when none is left, the router's
//! [`crate::Unmatched`] policy answers.
//!
//! Built-in strategies:
//! * [`HostStrategy`] (the default chain): the `Host` header; public domains go to the public
//!   router.
//! * [`SubfolderStrategy`]: `/t/<name>/...` (configurable prefix); the prefix is stripped
//!   before the tenant router sees the path, and handlers get it back from
//!   [`crate::TenantBase`] to build links.
//! * [`HeaderStrategy`]: `X-Tenant: <name>` (configurable), honoured only from trusted proxy
//!   addresses.
//!
//! Write your own by implementing [`TenantStrategy`].

mod header;
mod host;
pub(crate) mod subfolder;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Uri};
use tenantry_sqlx::{Tenant, Tenantry};

use crate::HttpError;
use crate::host::{HostReadError, raw_host};

pub use header::{HeaderStrategy, TrustedProxies};
pub use host::HostStrategy;
pub use subfolder::SubfolderStrategy;

/// What a strategy sees of a request (built by the layer; fields may be added).
#[derive(Debug)]
#[non_exhaustive]
pub struct RequestInfo<'a> {
    /// The request target (path and query; the authority for absolute-form requests).
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The address of the directly connected peer, when the server was started with
    /// [`crate::TenantRouter::into_make_service_with_connect_info`].
    pub peer: Option<SocketAddr>,
    /// The Tenantry handle (configuration, public domains).
    pub tenantry: &'a Tenantry,
    /// The normalised host, as computed once per request by [`crate::TenantRouter`] (`None`:
    /// not computed, or the request has no valid host). Strategies read it through
    /// [`RequestInfo::host`] / [`RequestInfo::normalized_host`] instead of normalising again.
    pub normalized_host: Option<&'a str>,
}

impl RequestInfo<'_> {
    /// The raw host of the request (see [`crate::host::raw_host`]).
    pub fn raw_host(&self) -> Result<&str, HostReadError> {
        raw_host(self.uri, self.headers)
    }

    /// The normalised host, if the request has a valid one.
    pub fn host(&self) -> Option<String> {
        self.normalized_host().map(str::to_owned).or_else(|| {
            let raw = self.raw_host().ok()?;
            tenantry_core::normalize_host(raw, self.tenantry.config().host_policy).ok()
        })
    }

    /// The normalised host computed by the router, without allocating (`None` when the router
    /// did not compute it or the host is missing or invalid; [`RequestInfo::host`] then
    /// normalises itself).
    pub fn normalized_host(&self) -> Option<&str> {
        self.normalized_host
    }

    /// Whether the request came in on one of the public domains.
    pub fn is_public_host(&self) -> bool {
        let public = &self.tenantry.config().public_domains;
        match self.normalized_host {
            Some(h) => public.iter().any(|p| p == h),
            None => self.host().is_some_and(|h| public.contains(&h)),
        }
    }
}

/// How a strategy names a tenant; the router resolves it.
#[derive(Debug, Clone)]
pub enum TenantKey {
    /// A host (normalised or not): looked up in the registry's domains.
    Domain(String),
    /// A tenant (schema) name: looked up by name. Untrusted text is fine: invalid names are
    /// answered "unknown" without a query.
    Name(String),
    /// A tenant the strategy resolved itself (e.g. from its own store).
    Resolved(Arc<Tenant>),
}

/// A positive identification.
#[derive(Debug, Clone)]
pub struct Identified {
    /// Which tenant.
    pub key: TenantKey,
    /// A path prefix to strip before the tenant router sees the request (e.g. `/t/acme`);
    /// handlers read it back through [`crate::TenantBase`].
    pub strip_prefix: Option<String>,
}

impl Identified {
    /// Identified by `key`, path unchanged.
    pub fn new(key: TenantKey) -> Self {
        Self {
            key,
            strip_prefix: None,
        }
    }

    /// Identified by `key`; `prefix` is stripped from the path.
    pub fn with_prefix(key: TenantKey, prefix: impl Into<String>) -> Self {
        Self {
            key,
            strip_prefix: Some(prefix.into()),
        }
    }
}

/// A strategy's answer.
#[derive(Debug, Clone)]
pub enum Identification {
    /// This strategy does not apply to the request: try the next one.
    NotIdentified,
    /// The request is for the public router (e.g. a public domain).
    Public,
    /// The request names a tenant.
    Tenant(Identified),
}

/// A way to identify the tenant of a request. Implement it for your own schemes (a claim in a
/// token, an API key...):
///
/// ```
/// use tenantry_axum::strategy::{Identification, Identified, RequestInfo, TenantKey, TenantStrategy};
/// use tenantry_axum::HttpError;
///
/// /// `?tenant=acme` (for a demo; never trust a query parameter in production).
/// struct QueryStrategy;
///
/// #[tenantry_axum::async_trait]
/// impl TenantStrategy for QueryStrategy {
///     async fn identify(&self, req: &RequestInfo<'_>) -> Result<Identification, HttpError> {
///         let name = req.uri.query().and_then(|q| q.strip_prefix("tenant="));
///         Ok(match name {
///             Some(n) => Identification::Tenant(Identified::new(TenantKey::Name(n.to_owned()))),
///             None => Identification::NotIdentified,
///         })
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait TenantStrategy: Send + Sync + 'static {
    /// Identifies the tenant of a request. An `Err` is answered to the client as is (e.g. 400).
    async fn identify(&self, req: &RequestInfo<'_>) -> Result<Identification, HttpError>;
}
