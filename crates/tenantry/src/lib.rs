//! # Tenantry
//!
//! Schema-per-tenant multi-tenancy for Rust web services on PostgreSQL: each tenant's data
//! lives in its own schema, shared data in a shared schema; requests are routed by host, and
//! every query of a request runs with the tenant's `search_path`.
//!
//! This crate re-exports the pieces:
//! * [`core`]: tenant model, name/domain validation, host normalisation (no I/O);
//! * the database layer ([`Tenantry`], scoped transactions, migrations, life cycle) at the root;
//! * `axum` (feature `axum`, on by default): [`axum::TenantLayer`], [`axum::TenantRouter`]
//!   and the extractors;
//! * `limits` (feature `limits`, off by default): [`axum::limits`], per-tenant request rate
//!   limits and caps on concurrent transactions;
//! * `cli` (feature `cli`, off by default): [`cli::Cli`], the command line hosted in the
//!   application's own binary with its own builder, and [`cli::AppCommand`], its per-tenant
//!   commands;
//! * `cache` and `files` (features `cache`, `files`, off by default): [`cache::TenantCache`]
//!   and [`files::TenantFiles`], a tenant's cache keys and files under its registry id, with
//!   hooks that drop them when it is deleted;
//! * `jobs` (feature `jobs`, off by default): [`jobs`], background jobs with their tenant on
//!   apalis + apalis-postgres ([`jobs::TenantQueue`], [`jobs::TenantJobLayer`],
//!   [`jobs::JobTenant`]).
//!
//! See the README for a five-minute guide; `examples/quick_start.rs` is its code, and
//! `examples/existing_app.rs` adds tenancy to an ordinary axum app with one layer. The guides
//! of the repository's `docs/` folder are in the [`docs`] module.

pub use tenantry_core as core;
pub use tenantry_sqlx::*;

/// axum integration: [`axum::TenantLayer`], [`axum::TenantRouter`] and the extractors.
#[cfg(feature = "axum")]
pub mod axum {
    pub use tenantry_axum::*;
}

/// Background jobs with their tenant (feature `jobs`): see [`jobs::TenantQueue`] and
/// [`jobs::TenantJobLayer`].
#[cfg(feature = "jobs")]
pub mod jobs {
    pub use tenantry_apalis::*;
}

/// The guides of the repository's `docs/` folder, as rustdoc pages. Their Rust examples are
/// compiled by `cargo test --doc -p tenantry` (needs the default `axum` feature).
#[cfg(feature = "axum")]
pub mod docs {
    /// Every [`Error`](crate::Error) variant, when it happens and how
    /// [`HttpError`](crate::axum::HttpError) answers it.
    #[doc = include_str!("../../../docs/errors.md")]
    pub mod errors {}

    /// Identification strategies, unmatched requests, several domains, tenant types, status
    /// answers, URL building, realtime routes.
    #[doc = include_str!("../../../docs/routing.md")]
    pub mod routing {}
}

/// The app-hosted command line: [`cli::Cli`] (`migrate`, `tenant ...`, `domain ...`, `exec` with
/// the application's own [`TenantryBuilder`]) and [`cli::AppCommand`] (the application's commands,
/// run in one tenant or in all of them).
#[cfg(feature = "cli")]
pub mod cli {
    pub use tenantry_cli::*;
}

/// Cache with its tenant: [`cache::TenantCache`] (Redis or in process), keys under the tenant's
/// registry id, [`cache::CacheHooks`] to drop them when it is deleted.
#[cfg(feature = "cache")]
pub mod cache {
    pub use tenantry_cache::*;
}

/// Files with their tenant: [`files::TenantFiles`] over `object_store`, a prefix per tenant
/// registry id, hostile keys refused, [`files::FilesHooks`] to drop them when it is deleted.
#[cfg(feature = "files")]
pub mod files {
    pub use tenantry_files::*;
}

/// The operator console (feature `console`): see [`tenantry_console`].
#[cfg(feature = "console")]
pub mod console {
    pub use tenantry_console::*;
}
