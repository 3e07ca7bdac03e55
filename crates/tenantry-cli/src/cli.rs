//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Configuration:
  Settings come from flags, then environment, then a tenantry.toml file (the one given with
  --config, else ./tenantry.toml if present). Precedence: flag > env > file.
  The database URL: --database-url > DATABASE_URL > database_url in the file.
  Migration folders: flags > [migrations] in the file (file paths are relative to the file).

  Example tenantry.toml:
    database_url = \"postgres://app@localhost/app\"
    shared_schema = \"public\"
    public_domains = [\"localhost\"]
    [migrations]
    shared = \"migrations/shared\"
    tenant = \"migrations/tenant\"
    [migrations.tenant_types]
    lab = \"migrations/lab\"

Exit codes: 0 success, 1 error (including usage errors), 2 `migrate --check` found pending work.
Logs go to stderr, filtered by RUST_LOG (default: warn, sqlx::query=error).";

/// Manage a Tenantry deployment: migrations, tenants, domains, SQL across tenants.
#[derive(Debug, Parser)]
#[command(name = "tenantry", version, after_long_help = AFTER_HELP, after_help = AFTER_HELP)]
pub struct Cli {
    /// PostgreSQL URL (else DATABASE_URL, else `database_url` in tenantry.toml).
    // DATABASE_URL is read by `Settings::load`, not by clap: with `env`, clap counts the
    // variable as a given flag and lists `--database-url` in every usage line.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Configuration file (default: ./tenantry.toml if it exists).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Shared migrations folder (applied once, in the shared schema).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub shared_migrations: Option<PathBuf>,

    /// Tenant migrations folder for tenants of the default type.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub tenant_migrations: Option<PathBuf>,

    /// Tenant migrations folder for one tenant type (repeatable).
    #[arg(long, global = true, help_heading = "Global options", value_name = "TYPE=DIR", value_parser = parse_type_dir)]
    pub tenant_type_migrations: Vec<(String, PathBuf)>,

    /// Schema holding shared data and the registry (default `public`).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME"
    )]
    pub shared_schema: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

fn parse_type_dir(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((ty, dir)) if !ty.is_empty() && !dir.is_empty() => {
            Ok((ty.to_owned(), PathBuf::from(dir)))
        }
        _ => Err(format!("expected TYPE=DIR, got {s:?}")),
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations: shared schema (registry + app), then every tenant schema.
    Migrate(MigrateArgs),
    /// Create, list, show, rename, delete tenants; change their status.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Add, remove, list a tenant's domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Run SQL in tenant schemas (each in its own tenant-scoped transaction).
    Exec(ExecArgs),
}

/// `tenantry migrate`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").args(["shared", "tenants", "schema"])))]
pub struct MigrateArgs {
    /// Only the shared schema (Tenantry's registry and the app's shared migrations).
    #[arg(long)]
    pub shared: bool,
    /// Only tenant schemas (all of them).
    #[arg(long)]
    pub tenants: bool,
    /// Only this tenant schema.
    #[arg(long, value_name = "NAME")]
    pub schema: Option<String>,
    /// Tenant schemas migrated at once (default: 2 x CPU cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Stop starting new schemas after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Print what would run where; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Change nothing; exit 2 if anything is pending, 0 if up to date.
    #[arg(long)]
    pub check: bool,
    /// Open every tenant schema even if the ledger says it is up to date.
    #[arg(long)]
    pub ignore_ledger: bool,
    /// Wait for a WAL disk sync at every tenant schema's commit. By default schemas commit
    /// asynchronously and the run ends with one synchronous commit that makes them all durable
    /// before the summary is printed; a server crash mid-run can then lose the last schema
    /// commits (each whole), which the next run re-applies.
    #[arg(long)]
    pub sync_commit: bool,
}

/// `tenantry tenant ...`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: schema, migrations, registry rows, in one transaction.
    Create {
        /// Schema name (^[a-z_][a-z0-9_]{0,62}$).
        name: String,
        /// Primary domain.
        #[arg(long, value_name = "HOST")]
        domain: String,
        /// Human-readable name (default: the schema name).
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// Tenant type (selects the migration set; default `default`).
        #[arg(long = "type", value_name = "TYPE")]
        tenant_type: Option<String>,
        /// Application fields, a JSON object.
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
    },
    /// List tenants.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant.
    Show {
        /// Schema name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a tenant (drops its schema unless --keep-schema); asks first, or pass --yes.
    Delete {
        /// Schema name.
        name: String,
        /// Keep the schema and its data; only remove the registry rows.
        #[arg(long)]
        keep_schema: bool,
        /// Don't ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Rename a tenant's schema.
    Rename {
        /// Current schema name.
        old: String,
        /// New schema name.
        new: String,
    },
    /// Suspend a tenant (not served, data kept).
    Suspend {
        /// Schema name.
        name: String,
    },
    /// Put a tenant in maintenance (temporarily not served).
    Maintenance {
        /// Schema name.
        name: String,
    },
    /// Make a tenant active again.
    Resume {
        /// Schema name.
        name: String,
    },
}

/// `tenantry domain ...`.
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a domain to a tenant.
    Add {
        /// Tenant schema name.
        name: String,
        /// The domain.
        host: String,
        /// Make it the primary domain.
        #[arg(long)]
        primary: bool,
    },
    /// Remove a (non-primary) domain.
    Remove {
        /// The domain.
        host: String,
    },
    /// Make a domain its tenant's primary domain.
    SetPrimary {
        /// The domain.
        host: String,
    },
    /// List a tenant's domains (primary first).
    List {
        /// Tenant schema name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tenantry exec`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").args(["all", "schema"]).required(true)))]
pub struct ExecArgs {
    /// Every tenant.
    #[arg(long)]
    pub all: bool,
    /// One tenant.
    #[arg(long, value_name = "NAME")]
    pub schema: Option<String>,
    /// The SQL (may hold several statements; the rows of the last one are printed).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub sql: String,
    /// Tenants processed at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
}
