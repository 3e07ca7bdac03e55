//! Building tenant URLs: canonical URLs for e-mails and redirects ([`TenantUrls`]) and the path
//! prefix of the current request for links ([`TenantBase`]).

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use http::request::Parts;
use tenantry_sqlx::Tenant;

/// How to build a tenant's canonical URL: `scheme://<primary domain>[:port]` when the tenant
/// has a primary domain, else (or when [`TenantUrls::prefer_subfolder`] is set)
/// `scheme://<public host>[:port]<prefix>/<name>`.
///
/// Set it on the router with [`crate::TenantRouter::urls`]; handlers extract it as
/// `TenantUrls`, and [`crate::TenantRouter::urls_config`] gives it to code outside requests
/// (mailers, jobs).
#[derive(Debug, Clone)]
pub struct TenantUrls {
    scheme: String,
    port: Option<u16>,
    public_host: Option<String>,
    subfolder_prefix: Option<String>,
    prefer_subfolder: bool,
}

impl Default for TenantUrls {
    fn default() -> Self {
        Self {
            scheme: "https".into(),
            port: None,
            public_host: None,
            subfolder_prefix: None,
            prefer_subfolder: false,
        }
    }
}

impl TenantUrls {
    /// `https`, no port, no subfolder URLs.
    pub fn new() -> Self {
        Self::default()
    }

    /// The scheme (`https` by default; also used for primary-domain redirects).
    pub fn scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = scheme.into();
        self
    }

    /// A port to add to built URLs (e.g. 8000 in development).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Enables subfolder URLs `scheme://public_host<prefix>/<name>` (used for tenants without a
    /// primary domain, or for all with [`TenantUrls::prefer_subfolder`]).
    pub fn subfolder(mut self, public_host: impl Into<String>, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.public_host = Some(public_host.into());
        self.subfolder_prefix = Some(format!("/{}", prefix.trim_matches('/')).replace("//", "/"));
        self
    }

    /// Build subfolder URLs even for tenants that have a primary domain.
    pub fn prefer_subfolder(mut self, prefer: bool) -> Self {
        self.prefer_subfolder = prefer;
        self
    }

    /// The configured scheme.
    pub fn scheme_str(&self) -> &str {
        &self.scheme
    }

    /// The tenant's canonical base URL, without a trailing slash (`https://acme.example.com`,
    /// `http://localhost:8000/t/acme`). `None` if the tenant has no primary domain and subfolder
    /// URLs are not configured.
    pub fn base_url(&self, tenant: &Tenant) -> Option<String> {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let subfolder = || {
            let host = self.public_host.as_ref()?;
            let prefix = self.subfolder_prefix.as_ref()?;
            let prefix = prefix.trim_end_matches('/');
            Some(format!(
                "{}://{host}{port}{prefix}/{}",
                self.scheme, tenant.schema
            ))
        };
        if self.prefer_subfolder
            && let Some(url) = subfolder()
        {
            return Some(url);
        }
        match &tenant.primary_domain {
            Some(domain) => Some(format!("{}://{domain}{port}", self.scheme)),
            None => subfolder(),
        }
    }

    /// The canonical URL of `path` (e.g. `/notes/3`) on the tenant's site.
    pub fn url_for(&self, tenant: &Tenant, path: &str) -> Option<String> {
        let base = self.base_url(tenant)?;
        let path = path.trim_start_matches('/');
        Some(format!("{base}/{path}"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantUrls {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        // The router shares one `Arc<TenantUrls>` with every request; copied only when extracted.
        Ok(parts
            .extensions
            .get::<std::sync::Arc<TenantUrls>>()
            .map(|u| TenantUrls::clone(u))
            .or_else(|| parts.extensions.get::<TenantUrls>().cloned())
            .unwrap_or_default())
    }
}

/// The path prefix under which the current tenant is served: `/t/acme` when identified by
/// subfolder, `""` on the tenant's own domain. Build links with [`TenantBase::link`]:
///
/// ```
/// use axum::response::Html;
/// use tenantry_axum::TenantBase;
///
/// // `/t/acme/api/notes` under `localhost/t/acme/`, `/api/notes` on acme's own domain.
/// async fn home(base: TenantBase) -> Html<String> {
///     Html(format!(r#"<a href="{}">notes</a>"#, base.link("/api/notes")))
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(home));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantBase(pub String);

impl TenantBase {
    /// `prefix + path` (e.g. `/t/acme` + `/api/notes`).
    pub fn link(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantBase {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<TenantBase>()
            .cloned()
            .unwrap_or_default())
    }
}
