//! [`SubfolderStrategy`]: `/t/<name>/...`.

use http::Uri;

use super::{Identification, Identified, RequestInfo, TenantKey, TenantStrategy};
use crate::HttpError;

/// Identifies by the first path segments: with the default prefix `/t`, `/t/acme/api/notes`
/// is tenant `acme`'s `/api/notes`. The tenant router sees the path without the prefix
/// (`/api/notes`); handlers get `/t/acme` from [`crate::TenantBase`] to build links, and the
/// full original URI from `axum::extract::OriginalUri`.
///
/// By default it only applies on the public domains (so that a tenant's own site keeps its
/// `/t/...` paths); [`SubfolderStrategy::on_any_host`] lifts that. Put it *before*
/// [`super::HostStrategy`] in the chain, since the host strategy claims public domains.
#[derive(Debug, Clone)]
pub struct SubfolderStrategy {
    prefix: String,
    any_host: bool,
}

impl Default for SubfolderStrategy {
    fn default() -> Self {
        Self::new("/t")
    }
}

impl SubfolderStrategy {
    /// A strategy for `<prefix>/<name>/...`; `prefix` is e.g. `/t` or `/tenants` (`""`, or
    /// `/`, means `/<name>/...`).
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let prefix = format!("/{}", prefix.trim_matches('/'));
        Self {
            prefix: if prefix == "/" { String::new() } else { prefix },
            any_host: false,
        }
    }

    /// Also apply on tenant domains and unknown hosts (default: public domains only).
    pub fn on_any_host(mut self) -> Self {
        self.any_host = true;
        self
    }

    /// The prefix (e.g. `/t`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Splits `path` into (tenant name, prefix to strip) if it is under the prefix.
    pub fn split<'p>(&self, path: &'p str) -> Option<(&'p str, &'p str)> {
        let rest = path.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?;
        let name = rest.split('/').next().unwrap_or_default();
        if name.is_empty() {
            return None;
        }
        let end = self.prefix.len() + 1 + name.len();
        Some((name, &path[..end]))
    }
}

#[async_trait::async_trait]
impl TenantStrategy for SubfolderStrategy {
    async fn identify(&self, req: &RequestInfo<'_>) -> Result<Identification, HttpError> {
        if !self.any_host && !req.is_public_host() {
            return Ok(Identification::NotIdentified);
        }
        Ok(match self.split(req.uri.path()) {
            Some((name, prefix)) => Identification::Tenant(Identified::with_prefix(
                TenantKey::Name(name.to_owned()),
                prefix,
            )),
            None => Identification::NotIdentified,
        })
    }
}

/// `uri` without the leading `prefix` (`/t/acme/api?x` -> `/api?x`, `/t/acme` -> `/`).
pub(crate) fn strip_prefix(uri: &Uri, prefix: &str) -> Option<Uri> {
    let rest = uri.path().strip_prefix(prefix)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}
