//! The console's settings ([`Console`]) and what its handlers share.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use tenantry_sqlx::Tenantry;

use crate::fleet_run::FleetRuns;

/// Requests per tenant for the charts page: `(tenant id, requests)` pairs, read when the page
/// is shown (e.g. from the application's Prometheus recorder). Tenant ids are
/// [`tenantry_sqlx::Tenant::id`]; other labels (`other`, `public`) are shown as they are.
pub type RequestCounts = Arc<dyn Fn() -> Vec<(String, f64)> + Send + Sync>;

/// Builds the [`tenantry_sqlx::Tenant`] site URL from a domain ("open its site" links).
type SiteUrl = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Why the console can't be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The configured password hash is not an argon2 PHC string (`$argon2id$v=19$...`).
    #[error("the console's password hash is not an argon2 PHC string: {0}")]
    PasswordHash(String),
    /// The cookie key is shorter than 32 bytes.
    #[error("the console's cookie key must be at least 32 bytes, got {0}")]
    KeyTooShort(usize),
    /// The mount path is not `/` followed by a path without a trailing slash (`/admin`).
    #[error("the console's mount path must start with '/' and not end with one: {0:?}")]
    MountPath(String),
}

/// The operator console's configuration; [`Console::router`] turns it into routes.
pub struct Console {
    tenantry: Tenantry,
    password_hash: String,
    key: cookie::Key,
    base: String,
    secure: Option<bool>,
    site_url: SiteUrl,
    requests: Option<RequestCounts>,
    max_archive_bytes: usize,
}

/// The default of [`Console::max_archive_bytes`]: 512 MiB.
pub const DEFAULT_MAX_ARCHIVE_BYTES: usize = 512 << 20;

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("base", &self.base)
            .field("secure", &self.secure)
            .field("requests", &self.requests.is_some())
            .field("max_archive_bytes", &self.max_archive_bytes)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console for `tenantry`, signed into with the password whose argon2 hash (PHC string,
    /// as [`hash_password`] or the `argon2` CLI print it) is `password_hash`.
    ///
    /// Sessions are encrypted with a key made at random here: they end when the process
    /// restarts, and several instances behind one address need a shared [`Console::key`].
    pub fn new(tenantry: Tenantry, password_hash: &str) -> Result<Self, ConsoleError> {
        PasswordHash::new(password_hash).map_err(|e| ConsoleError::PasswordHash(e.to_string()))?;
        Ok(Self {
            tenantry,
            password_hash: password_hash.to_owned(),
            key: cookie::Key::generate(),
            base: String::new(),
            secure: None,
            site_url: Arc::new(|domain| format!("http://{domain}/")),
            requests: None,
            max_archive_bytes: DEFAULT_MAX_ARCHIVE_BYTES,
        })
    }

    /// The path the console's routes start with (`/admin`: `/admin/`, `/admin/login`...):
    /// routes, links, redirects and the cookie's path. Default: the root.
    ///
    /// # Panics
    ///
    /// If `path` doesn't start with `/` or ends with one (use [`Console::try_mount_path`]).
    pub fn mount_path(self, path: &str) -> Self {
        self.try_mount_path(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Console::mount_path`], refusing a bad path with an error.
    pub fn try_mount_path(mut self, path: &str) -> Result<Self, ConsoleError> {
        if !path.starts_with('/') || path.ends_with('/') || path.contains(['"', '<', '>', ' ']) {
            return Err(ConsoleError::MountPath(path.to_owned()));
        }
        self.base = path.to_owned();
        Ok(self)
    }

    /// The key that encrypts session cookies (at least 32 bytes, ideally 64 random ones;
    /// shorter keys are stretched with HKDF). Give every instance the same key so a session
    /// works on all of them.
    pub fn key(mut self, key: &[u8]) -> Result<Self, ConsoleError> {
        if key.len() < 32 {
            return Err(ConsoleError::KeyTooShort(key.len()));
        }
        self.key = if key.len() >= 64 {
            cookie::Key::from(key)
        } else {
            cookie::Key::derive_from(key)
        };
        Ok(self)
    }

    /// Whether the session cookie is `Secure`. Default (`None`): when the request came over
    /// https (an `https` URI scheme or `X-Forwarded-Proto: https`); `Some(true)` always (behind
    /// a TLS proxy that doesn't say so), `Some(false)` never.
    pub fn secure_cookies(mut self, secure: Option<bool>) -> Self {
        self.secure = secure;
        self
    }

    /// How "open its site" links are built from a tenant's primary domain (default
    /// `http://{domain}/`; the demo adds its port).
    pub fn site_url(mut self, f: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.site_url = Arc::new(f);
        self
    }

    /// Where the charts page reads requests per tenant (see [`RequestCounts`]). Without it,
    /// the chart says that no metrics are available.
    pub fn requests_per_tenant(
        mut self,
        f: impl Fn() -> Vec<(String, f64)> + Send + Sync + 'static,
    ) -> Self {
        self.requests = Some(Arc::new(f));
        self
    }

    /// The largest upload the import form accepts (the whole multipart body, in bytes;
    /// default [`DEFAULT_MAX_ARCHIVE_BYTES`]). The upload is streamed into the import, not
    /// held in memory: this bounds the work one request can cause.
    pub fn max_archive_bytes(mut self, bytes: usize) -> Self {
        self.max_archive_bytes = bytes;
        self
    }

    pub(crate) fn into_shared(self) -> Shared {
        Shared {
            tenantry: self.tenantry,
            password_hash: self.password_hash,
            key: self.key,
            base: self.base,
            secure: self.secure,
            site_url: self.site_url,
            requests: self.requests,
            max_archive_bytes: self.max_archive_bytes,
            runs: FleetRuns::default(),
        }
    }
}

/// What every handler gets (the router's state).
pub(crate) struct Shared {
    pub(crate) tenantry: Tenantry,
    pub(crate) password_hash: String,
    pub(crate) key: cookie::Key,
    pub(crate) base: String,
    pub(crate) secure: Option<bool>,
    pub(crate) site_url: SiteUrl,
    pub(crate) requests: Option<RequestCounts>,
    pub(crate) max_archive_bytes: usize,
    pub(crate) runs: FleetRuns,
}

impl Shared {
    /// A link inside the console: `path` (starting with `/`) under the mount path.
    pub(crate) fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The argon2id hash (PHC string, random salt, the crate's default cost) of `password`, for
/// the console's configuration.
pub fn hash_password(password: &str) -> Result<String, ConsoleError> {
    let salt: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ConsoleError::PasswordHash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ConsoleError::PasswordHash(e.to_string()))
}
