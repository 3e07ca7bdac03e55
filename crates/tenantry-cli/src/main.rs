//! `tenantry`: the command-line tool of a Tenantry deployment, configured by flags and
//! `tenantry.toml`.
//!
//! Migrations (shared schema, then every tenant schema, in parallel, atomically per schema),
//! tenant and domain management, and SQL run in every tenant's schema. See `tenantry --help`.
//! An application with hooks or role mode hosts the same CLI in its own binary instead
//! ([`tenantry_cli::Cli::new`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    tenantry_cli::Cli::standalone().run()
}
