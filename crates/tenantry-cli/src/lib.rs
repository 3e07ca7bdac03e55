//! The Tenantry command line, as a library an application hosts in its own binary (like
//! Django's `manage.py`) and as the stand-alone `tenantry` binary.
//!
//! * [`Cli::new`] takes the application's own [`TenantryBuilder`](tenantry_sqlx::TenantryBuilder)
//!   (tenant types and their migrations, [`TenantHooks`](tenantry_sqlx::TenantHooks), role mode,
//!   shared schema, extra search path), so tenants created, renamed, adopted or deleted from the
//!   command line get exactly what the application gives them, and `exec` runs as the tenant's
//!   role.
//! * [`AppCommand`]: the application's own commands, run in one tenant's scope (`--tenant NAME`)
//!   or in every tenant (`--all-tenants`, in parallel with `--jobs`), each tenant in its own
//!   transaction that commits only when the command succeeded there.
//! * [`Cli::standalone`]: the `tenantry` binary, its builder made from flags and `tenantry.toml`.
//!
//! The commands: `migrate`,
//! `tenant create|list|show|adopt|clone|export|import|rename|delete|suspend|maintenance|resume`,
//! `domain add|remove|set-primary|list`, `exec`, plus the application's. See `--help`.

pub use clap;

mod app;
mod cli;
mod commands;
mod config;
mod errors;
mod exec;
mod migrate;
mod nodes;
mod output;
mod tenants;
mod transfer;
mod view;

pub use app::{Cli, run};
pub use commands::{AppCommand, CommandContext};
