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
//! * Tenant data tools on a tenant's page: clone it, export it as a download, import an
//!   uploaded archive as a new tenant (streamed both ways; uploads up to
//!   [`Console::max_archive_bytes`]).
//! * Fleet: migration state, failures with their error, start a fleet migration and watch it
//!   (server-sent events).
//! * Charts: tenants over time, requests per tenant (from the application's metrics).
//!
//! Every action calls the same library functions as the `tenantry` CLI (`tenantry.admin()`,
//! `tenantry.fleet()`, `admin().clone_tenant/export_tenant/import_tenant`), so validation, hooks, roles and the audit log line are the same; the
//! console adds its own `tenantry::console` log line naming the action.
//!
//! ```no_run
//! # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> Result<(), tenantry_console::ConsoleError> {
//! use tenantry_console::{Console, hash_password};
//!
//! let hash = hash_password("correct horse battery staple")?; // or read from configuration
//! let console = Console::new(tenantry, &hash)?.mount_path("/admin");
//! let public_site = axum::Router::new().merge(console.router()); // /admin/, /admin/login, ...
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
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};

pub use config::{Console, ConsoleError, DEFAULT_MAX_ARCHIVE_BYTES, RequestCounts, hash_password};

use config::Shared;

impl Console {
    /// The console's routes, with the mount path (see [`Console::mount_path`]) in front of
    /// each: merge them into the application's router (`router.merge(console.router())`). The
    /// home page is `<mount>/`; `<mount>` alone redirects there.
    pub fn router(self) -> Router {
        let shared: Arc<Shared> = Arc::new(self.into_shared());
        let at = |path: &str| shared.link(path);
        let mut router = Router::new()
            .route(&at("/"), get(pages::tenants::list))
            .route(&at("/style.css"), get(pages::layout::stylesheet))
            .route(&at("/login"), get(auth::login_page).post(auth::login))
            .route(&at("/logout"), post(auth::logout))
            .route(&at("/tenants"), post(pages::tenants::create))
            .route(&at("/tenants/new"), get(pages::tenants::new_form))
            .route(&at("/tenants/{name}"), get(pages::tenant::show))
            .route(
                &at("/tenants/{name}/status"),
                post(pages::tenant::set_status),
            )
            .route(&at("/tenants/{name}/data"), post(pages::tenant::set_data))
            .route(&at("/tenants/{name}/rename"), post(pages::tenant::rename))
            .route(&at("/tenants/{name}/delete"), post(pages::tenant::delete))
            .route(&at("/tenants/{name}/clone"), post(pages::tools::clone))
            .route(&at("/tenants/{name}/export"), post(pages::archive::export))
            .route(
                &at("/tenants/{name}/import"),
                post(pages::archive::import).layer(DefaultBodyLimit::max(shared.max_archive_bytes)),
            )
            .route(&at("/tenants/{name}/domains"), post(pages::domains::add))
            .route(
                &at("/tenants/{name}/domains/remove"),
                post(pages::domains::remove),
            )
            .route(
                &at("/tenants/{name}/domains/primary"),
                post(pages::domains::make_primary),
            )
            .route(&at("/fleet"), get(pages::fleet::show))
            .route(&at("/fleet/migrate"), post(pages::fleet::start))
            .route(&at("/fleet/events"), get(pages::fleet::events))
            .route(&at("/charts"), get(pages::charts::show));
        if !shared.base.is_empty() {
            let home = at("/");
            router = router.route(
                &shared.base,
                get(move || async move { Redirect::to(&home) }),
            );
        }
        router.with_state(shared)
    }
}
