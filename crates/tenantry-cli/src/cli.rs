//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Arg, Args, Subcommand};

/// Help text of the stand-alone `tenantry` binary.
pub(crate) const AFTER_HELP: &str = "\
Configuration:
  Settings come from flags, then environment, then a tenantry.toml file (the one given with
  --config, else ./tenantry.toml if present). Precedence: flag > env > file.
  The database URL: --database-url > DATABASE_URL > database_url in the file.
  Migration folders: flags > [migrations] in the file (file paths are relative to the file).

  Example tenantry.toml:
    database_url = \"postgres://app@localhost/app\"
    shared_schema = \"public\"
    public_domains = [\"localhost\"]
    tenant_roles = \"app_\"        # optional: role mode, one database role per tenant
    reference_tables = [\"plans\"] # Citus: shared tables tenants read, copied to every node
    [migrations]
    shared = \"migrations/shared\"
    tenant = \"migrations/tenant\"
    [migrations.tenant_types]
    lab = \"migrations/lab\"

Exit codes: 0 success, 1 error (including usage errors), 2 `migrate --check` found pending work.
Logs go to stderr, filtered by RUST_LOG (default: warn, sqlx::query=error).";

/// The stand-alone binary's configuration flags (the `tenantry.toml` side). An app-hosted CLI
/// gets its configuration from the application's builder and offers only `--database-url`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Configuration file (default: ./tenantry.toml if it exists).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub(crate) config: Option<PathBuf>,

    /// Shared migrations folder (applied once, in the shared schema).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub(crate) shared_migrations: Option<PathBuf>,

    /// Tenant migrations folder for tenants of the default type.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub(crate) tenant_migrations: Option<PathBuf>,

    /// Tenant migrations folder for one tenant type (repeatable).
    #[arg(long, global = true, help_heading = "Global options", value_name = "TYPE=DIR", value_parser = parse_type_dir)]
    pub(crate) tenant_type_migrations: Vec<(String, PathBuf)>,

    /// Schema holding shared data and the registry (default `public`).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME"
    )]
    pub(crate) shared_schema: Option<String>,
}

/// `--database-url`, offered by every CLI (stand-alone or app-hosted).
// DATABASE_URL is read by the caller, not by clap: with `env`, clap counts the variable as a
// given flag and lists `--database-url` in every usage line.
pub(crate) fn database_url_arg(help: &'static str) -> Arg {
    Arg::new(DATABASE_URL_ID)
        .long("database-url")
        .global(true)
        .help_heading("Global options")
        .value_name("URL")
        .help(help)
}

/// The clap id of `--database-url`.
pub(crate) const DATABASE_URL_ID: &str = "database_url";

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
pub(crate) enum Command {
    /// Apply migrations: shared schema (registry + app), then every tenant schema.
    Migrate(MigrateArgs),
    /// Create, list, show, adopt, rename, delete tenants; change their status.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Add, remove, list a tenant's domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Run SQL in tenant schemas (each in its own tenant-scoped transaction).
    Exec(ExecArgs),
    /// Citus: the cluster's nodes with their tenant counts and bytes.
    Nodes {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Citus: spread tenants evenly over the workers (Citus's rebalancer, online moves).
    Rebalance {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tenantry migrate`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").args(["shared", "tenants", "schema"])))]
pub(crate) struct MigrateArgs {
    /// Only the shared schema (Tenantry's registry and the app's shared migrations).
    #[arg(long)]
    pub(crate) shared: bool,
    /// Only tenant schemas (all of them).
    #[arg(long)]
    pub(crate) tenants: bool,
    /// Only this tenant schema.
    #[arg(long, value_name = "NAME")]
    pub(crate) schema: Option<String>,
    /// Tenant schemas migrated at once (default: 2 x CPU cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) jobs: Option<u16>,
    /// Stop starting new schemas after the first failure.
    #[arg(long)]
    pub(crate) fail_fast: bool,
    /// Print what would run where; change nothing.
    #[arg(long)]
    pub(crate) plan: bool,
    /// Change nothing; exit 2 if anything is pending, 0 if up to date.
    #[arg(long)]
    pub(crate) check: bool,
    /// Open every tenant schema even if the ledger says it is up to date.
    #[arg(long)]
    pub(crate) ignore_ledger: bool,
    /// Wait for a WAL disk sync at every tenant schema's commit. By default schemas commit
    /// asynchronously and the run ends with one synchronous commit that makes them all durable
    /// before the summary is printed; a server crash mid-run can then lose the last schema
    /// commits (each whole), which the next run re-applies.
    #[arg(long)]
    pub(crate) sync_commit: bool,
}

/// `tenantry tenant ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant: schema, migrations, registry rows, in one transaction.
    Create {
        /// Schema name (`^[a-z_][a-z0-9_]{0,62}$`).
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
    /// Register a tenant over an existing schema (e.g. one kept by `tenant delete
    /// --keep-schema`), after checking its migration history; pending migrations are applied in
    /// the same transaction.
    Adopt {
        /// The existing schema's name.
        name: String,
        /// Primary domain.
        #[arg(long, value_name = "HOST")]
        domain: String,
        /// Human-readable name (default: the schema name).
        #[arg(long = "name", value_name = "TEXT")]
        display_name: Option<String>,
        /// Tenant type (the migration set the schema's history is checked against; default
        /// `default`).
        #[arg(long = "type", value_name = "TYPE")]
        tenant_type: Option<String>,
        /// Application fields, a JSON object.
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
    },
    /// Copy a tenant with its data: a new tenant whose schema holds SOURCE's tables and rows
    /// (one snapshot of SOURCE, sequences continuing), in one transaction.
    Clone {
        /// The tenant to copy.
        source: String,
        /// The new tenant's schema name.
        new: String,
        /// The new tenant's primary domain.
        #[arg(long, value_name = "HOST")]
        domain: String,
        /// Human-readable name (default: the new schema name).
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Write one tenant (registry row, domains, migration history, every table's rows) to a
    /// portable archive (tar.gz), read in one snapshot while the tenant keeps being served.
    Export {
        /// The tenant's schema name.
        name: String,
        /// The archive to write (e.g. acme.tenant.tar.gz).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Create a tenant from an archive written by `tenant export`: built at the archive's
    /// migration version, filled, then migrated forward, in one transaction. Refuses an
    /// archive whose migrations this application can't accept, and says why.
    Import {
        /// The archive.
        file: PathBuf,
        /// The new tenant's schema name.
        #[arg(long = "as", value_name = "NAME")]
        name: String,
        /// The new tenant's primary domain.
        #[arg(long, value_name = "HOST")]
        domain: String,
        /// Human-readable name (default: the archived tenant's).
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
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
    /// Citus: move a tenant's schema to another node, online (its requests keep being served).
    Move {
        /// Schema name.
        name: String,
        /// The target node, as listed by `tenantry nodes`.
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_node)]
        to: (String, u16),
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_node(s: &str) -> Result<(String, u16), String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(|p| (host.to_owned(), p))
            .ok_or_else(|| format!("invalid port in {s:?} (expected HOST:PORT)")),
        _ => Err(format!("expected HOST:PORT, got {s:?}")),
    }
}

/// `tenantry domain ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DomainCommand {
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
pub(crate) struct ExecArgs {
    /// Every tenant.
    #[arg(long)]
    pub(crate) all: bool,
    /// One tenant.
    #[arg(long, value_name = "NAME")]
    pub(crate) schema: Option<String>,
    /// The SQL (may hold several statements; the rows of the last one are printed).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub(crate) sql: String,
    /// Tenants processed at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) jobs: u16,
}
