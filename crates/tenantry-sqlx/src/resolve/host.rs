//! Where a request goes: a host (or a schema name from a path or header) resolved to a tenant,
//! answered from the resolution cache.

use std::sync::Arc;

use tenantry_core::{Tenant, normalize_host, validate_domain, validate_schema_name};

use super::lookup::RegistryReader;
use crate::error::Error;
use crate::handle::Tenantry;

/// Where a request goes, decided from its host.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// One of the public domains.
    Public,
    /// A tenant's domain.
    Tenant(Arc<Tenant>),
    /// No tenant has this domain.
    Unknown,
}

/// Why a host could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The `Host` value is not a valid host (400).
    #[error(transparent)]
    BadHost(tenantry_core::HostError),
    /// The registry could not be read (503).
    #[error("registry unavailable: {0}")]
    Database(Arc<Error>),
}

impl Tenantry {
    /// Decides where a request for `raw_host` (a `Host` header value) goes.
    pub async fn resolve_host(&self, raw_host: &str) -> Result<Resolution, ResolveError> {
        let host = normalize_host(raw_host, self.inner.config.host_policy)
            .map_err(ResolveError::BadHost)?;
        self.resolve_normalized(&host).await
    }

    /// [`Tenantry::resolve_host`] for a host already normalised with
    /// `tenantry_core::normalize_host` and this handle's [`crate::Config::host_policy`] (the HTTP layer
    /// normalises once per request). A host that is not in normal form is simply unknown.
    pub async fn resolve_normalized_host(&self, host: &str) -> Result<Resolution, ResolveError> {
        self.resolve_normalized(host).await
    }

    async fn resolve_normalized(&self, host: &str) -> Result<Resolution, ResolveError> {
        if self.inner.config.public_domains.iter().any(|d| d == host) {
            return Ok(Resolution::Public);
        }
        // Only syntactically valid domains can be in the table; skip the lookup for the rest
        // (IP literals, all-numeric names).
        if validate_domain(host).is_err() {
            return Ok(Resolution::Unknown);
        }
        match self
            .inner
            .cache
            .get(&self.registry_reader(), host)
            .await
            .map_err(ResolveError::Database)?
        {
            Some(t) => Ok(Resolution::Tenant(t)),
            None => Ok(Resolution::Unknown),
        }
    }

    /// The tenant whose schema is `name`, answered from memory on a hit (the cache is shared
    /// with [`Tenantry::resolve_host`] and emptied by the same registry notifications).
    ///
    /// `Ok(None)` for an unknown tenant and for any text that is not a valid schema name (no
    /// query is sent for those), so untrusted input (a path segment, a header) can be passed as is.
    pub async fn resolve_schema(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<Tenant>>, ResolveError> {
        if validate_schema_name(name, &[]).is_err() || self.is_shared_schema(name) {
            return Ok(None);
        }
        self.inner
            .cache
            .get_schema(&self.registry_reader(), name)
            .await
            .map_err(ResolveError::Database)
    }

    fn is_shared_schema(&self, name: &str) -> bool {
        let c = self.config();
        c.shared_schema == name || c.extra_search_path.iter().any(|s| s == name)
    }

    /// What a cache miss reads the registry with.
    fn registry_reader(&self) -> RegistryReader<'_> {
        RegistryReader {
            pool: &self.inner.pool,
            sql: &self.inner.sql,
            transaction_pooler: self.inner.config.transaction_pooler,
            node_epochs: self.node_epochs_ready(),
        }
    }
}
