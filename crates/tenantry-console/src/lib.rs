//! Tenantry's operator console: an axum [`Router`] the application mounts (for example under
//! `/admin` on its public host), server-rendered, usable without JavaScript except for the
//! live progress of a fleet migration.
//!
//! * Sign-in with one password, checked against an argon2 hash from configuration
//!   ([`hash_password`] makes one); the session is an encrypted, authenticated cookie
//!   (`HttpOnly`, `SameSite=Strict`, `Secure` over https) that expires after 12 hours; every
//!   form carries a CSRF token tied to the session and is refused without it.
//! * Tenants: search and keyset pagination ([`tenantry_sqlx::Admin::tenant_page`]), with
//!   status, type, primary domain, created date, schema size and migration state; a tenant's
//!   page (domains, status, application data, rename, delete, open its site); create a tenant.
//! * Fleet: migration state, failures with their error, start a fleet migration and watch it
//!   (server-sent events).
//! * Charts: tenants over time, requests per tenant (from the application's metrics).
//!
//! Every action calls the same library functions as the `tenantry` CLI (`tenantry.admin()`,
//! `tenantry.fleet()`), so validation, hooks, roles and the audit log line are the same; the
//! console adds its own `tenantry::console` log line naming the action.
//!
//! ```no_run
//! # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> Result<(), tenantry_console::ConsoleError> {
//! use tenantry_console::{Console, hash_password};
//!
//! let hash = hash_password("correct horse battery staple")?; // or read from configuration
//! let console = Console::new(tenantry, &hash)?.mount_path("/admin");
//! let public_site = axum::Router::new().nest("/admin", console.router());
//! # let _ = public_site;
//! # Ok(())
//! # }
//! ```
//!
//! The console runs only where it is mounted: tenant routes don't pass through it.

#![warn(missing_docs)]

mod auth;
mod config;
mod fleet_run;
mod pages;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use config::{Console, ConsoleError, RequestCounts, hash_password};

use config::Shared;

impl Console {
    /// The console's routes, relative to where the application mounts them (see
    /// [`Console::mount_path`]).
    pub fn router(self) -> Router {
        let shared: Arc<Shared> = Arc::new(self.into_shared());
        Router::new()
            .route("/", get(pages::tenants::list))
            .route("/style.css", get(pages::layout::stylesheet))
            .route("/login", get(auth::login_page).post(auth::login))
            .route("/logout", post(auth::logout))
            .route("/tenants", post(pages::tenants::create))
            .route("/tenants/new", get(pages::tenants::new_form))
            .route("/tenants/{name}", get(pages::tenant::show))
            .route("/tenants/{name}/status", post(pages::tenant::set_status))
            .route("/tenants/{name}/data", post(pages::tenant::set_data))
            .route("/tenants/{name}/rename", post(pages::tenant::rename))
            .route("/tenants/{name}/delete", post(pages::tenant::delete))
            .route("/tenants/{name}/domains", post(pages::domains::add))
            .route(
                "/tenants/{name}/domains/remove",
                post(pages::domains::remove),
            )
            .route(
                "/tenants/{name}/domains/primary",
                post(pages::domains::make_primary),
            )
            .route("/fleet", get(pages::fleet::show))
            .route("/fleet/migrate", post(pages::fleet::start))
            .route("/fleet/events", get(pages::fleet::events))
            .route("/charts", get(pages::charts::show))
            .with_state(shared)
    }
}
