//! [`Unmatched`]: what the [`crate::TenantLayer`] answers when no strategy identifies a tenant.

use axum::Router;
use axum::handler::Handler;

/// What to do with a request no strategy identified (e.g. an unknown host).
#[derive(Clone, Default)]
pub enum Unmatched {
    /// 404 Not Found (the default).
    #[default]
    NotFound,
    /// Serve it as a public request (the inner service, without a tenant).
    Public,
    /// Serve this tenant (by name), as if it had been identified.
    DefaultTenant(String),
    /// Answer with the application's handler/router (it has no tenant).
    Handler(Router),
}

impl std::fmt::Debug for Unmatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmatched::NotFound => f.write_str("NotFound"),
            Unmatched::Public => f.write_str("Public"),
            Unmatched::DefaultTenant(name) => f.debug_tuple("DefaultTenant").field(name).finish(),
            Unmatched::Handler(_) => f.write_str("Handler(..)"),
        }
    }
}

impl Unmatched {
    /// An axum handler as the unmatched answer.
    pub fn handler<H, T>(handler: H) -> Self
    where
        H: Handler<T, ()>,
        T: 'static,
    {
        Unmatched::Handler(Router::new().fallback(handler))
    }
}
