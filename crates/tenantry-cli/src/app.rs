//! [`Cli`]: the entry point, for the stand-alone `tenantry` binary and for applications that host
//! the CLI in their own binary.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgMatches, FromArgMatches, Subcommand};
use futures::future::BoxFuture;
use tenantry_sqlx::{BoxError, DEFAULT_TENANT_TYPE, Tenantry, TenantryBuilder};
use tracing_subscriber::EnvFilter;

use crate::cli::{self, Command, ConfigArgs, DATABASE_URL_ID, TenantCommand};
use crate::commands::AppCommand;
use crate::config::{self, Settings};
use crate::migrate::SetupStep;

/// Help text of an app-hosted CLI (the stand-alone binary has [`cli::AFTER_HELP`]).
const APP_AFTER_HELP: &str = "\
Configuration comes from the application (its tenant types, migrations, hooks, role mode).
The database URL: --database-url > DATABASE_URL > the application's default.

Exit codes: 0 success, 1 error (including usage errors), 2 `migrate --check` found pending work.
Logs go to stderr, filtered by RUST_LOG (default: warn, sqlx::query=error).";

/// Names an [`AppCommand`] can't take.
const BUILTIN_COMMANDS: &[&str] = &["migrate", "tenant", "domain", "exec", "help"];

/// Where the [`TenantryBuilder`] comes from.
enum Source {
    /// The stand-alone binary: flags and `tenantry.toml`.
    ConfigFile,
    /// The application's own builder.
    App(Box<TenantryBuilder>),
}

/// The Tenantry command line (`migrate`, `tenant`, `domain`, `exec`, plus the application's own
/// commands), run with an application's own [`TenantryBuilder`], like Django's `manage.py`: CLI
/// and app then share tenant types, migrations, [`tenantry_sqlx::TenantHooks`] and role mode
/// ([`TenantryBuilder::tenant_roles`]), so a tenant made, renamed or deleted from the command line
/// gets exactly what one made by the app gets.
///
/// ```no_run
/// use std::process::ExitCode;
/// use tenantry_cli::{AppCommand, Cli};
///
/// fn main() -> ExitCode {
///     let builder = tenantry_sqlx::Tenantry::builder()
///         .shared_migrations("migrations/shared")
///         .tenant_migrations("migrations/tenant")
///         .tenant_roles("app_");
///     Cli::new(builder)
///         .name("myapp")
///         .command(AppCommand::new(
///             "count-notes",
///             "Print how many notes each tenant has",
///             async |ctx| {
///                 let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
///                     .fetch_one(&mut ctx.tx)
///                     .await?;
///                 ctx.say(format!("{n} note(s)"));
///                 Ok(())
///             },
///         ))
///         .run()
/// }
/// ```
///
/// The builder's pool settings and LISTEN are replaced by ones fit for a one-shot command (a
/// pool sized for `--jobs`, no LISTEN); everything else is used as given.
pub struct Cli {
    source: Source,
    name: String,
    about: Option<String>,
    version: Option<String>,
    after_help: Option<String>,
    database_url: Option<String>,
    commands: Vec<AppCommand>,
    setup: Vec<SetupStep>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("name", &self.name)
            .field("app_builder", &matches!(self.source, Source::App(_)))
            .field("commands", &self.commands)
            .finish_non_exhaustive()
    }
}

/// Runs the CLI with the application's `builder` and the process's arguments (shorthand for
/// `Cli::new(builder).run()`).
pub fn run(builder: TenantryBuilder) -> ExitCode {
    Cli::new(builder).run()
}

impl Cli {
    /// A CLI over the application's builder. The program name in help and usage lines is the
    /// binary's file name until [`Cli::name`] sets it.
    pub fn new(builder: TenantryBuilder) -> Self {
        let name = std::env::args_os()
            .next()
            .and_then(|arg0| {
                std::path::Path::new(&arg0)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "tenantry".to_owned());
        Self::with_source(Source::App(Box::new(builder)), name)
    }

    /// The stand-alone `tenantry` binary: its builder is made from flags and `tenantry.toml`
    /// (`--config`, `--shared-migrations`, ... are offered only here).
    pub fn standalone() -> Self {
        Self::with_source(Source::ConfigFile, "tenantry".to_owned())
            .about(
                "Manage a Tenantry deployment: migrations, tenants, domains, SQL across tenants.",
            )
            .version(env!("CARGO_PKG_VERSION"))
    }

    fn with_source(source: Source, name: String) -> Self {
        Self {
            source,
            name,
            about: None,
            version: None,
            after_help: None,
            database_url: None,
            commands: Vec::new(),
            setup: Vec::new(),
        }
    }

    /// The program name shown in help and usage lines.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The one-line description at the top of `--help`.
    pub fn about(mut self, about: impl Into<String>) -> Self {
        self.about = Some(about.into());
        self
    }

    /// The version printed by `--version` (off until set).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Text shown after the built-in help (e.g. the application's other modes).
    pub fn after_help(mut self, text: impl Into<String>) -> Self {
        self.after_help = Some(text.into());
        self
    }

    /// The database URL used when neither `--database-url` nor `DATABASE_URL` gives one.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Registers an application command (see [`AppCommand`]).
    ///
    /// # Panics
    ///
    /// If its name is one of the built-in commands (`migrate`, `tenant`, `domain`, `exec`,
    /// `help`) or of a command registered before: a programming error, caught at start-up.
    pub fn command(mut self, command: AppCommand) -> Self {
        let name = command.name();
        assert!(
            !BUILTIN_COMMANDS.contains(&name),
            "app command {name:?} would hide the built-in command of that name"
        );
        assert!(
            !self.commands.iter().any(|c| c.name() == name),
            "app command {name:?} is registered twice"
        );
        self.commands.push(command);
        self
    }

    /// A setup step of the application's own that `migrate` runs right after the shared
    /// migrations, before the tenant schemas (for example a job queue's tables:
    /// `tenantry::jobs::setup`). It must be idempotent: `migrate` runs it on every call that
    /// covers the shared schema (not with `--tenants`, `--schema`, `--plan` or `--check`), even
    /// when no migration is pending. A failure stops `migrate` (exit 1) before any tenant schema.
    ///
    /// ```no_run
    /// # let builder = tenantry_sqlx::Tenantry::builder();
    /// tenantry_cli::Cli::new(builder).shared_setup("audit tables", |t| {
    ///     Box::pin(async move {
    ///         sqlx::raw_sql("CREATE TABLE IF NOT EXISTS shared.audit (line text)")
    ///             .execute(t.raw_pool())
    ///             .await?;
    ///         Ok(())
    ///     })
    /// });
    /// ```
    pub fn shared_setup<F>(mut self, name: impl Into<String>, step: F) -> Self
    where
        F: Fn(Tenantry) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync + 'static,
    {
        self.setup.push(SetupStep {
            name: name.into(),
            run: Box::new(step),
        });
        self
    }

    /// Parses the process's arguments, runs the command on a runtime of its own and returns the
    /// exit code (0 success, 1 error, 2 `migrate --check` found pending work). Call it from
    /// `main`, outside any async runtime (use [`Cli::run_async`] inside one).
    pub fn run(self) -> ExitCode {
        let parsed = match self.parse(std::env::args_os()) {
            Ok(parsed) => parsed,
            Err(code) => return code,
        };
        init_logging();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        runtime.block_on(self.execute(parsed))
    }

    /// [`Cli::run`] for a caller already inside a Tokio runtime (multi-threaded).
    pub async fn run_async(self) -> ExitCode {
        self.run_async_from(std::env::args_os()).await
    }

    /// [`Cli::run_async`] with explicit arguments (the first one is the program name).
    pub async fn run_async_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let parsed = match self.parse(args) {
            Ok(parsed) => parsed,
            Err(code) => return code,
        };
        init_logging();
        self.execute(parsed).await
    }

    /// The clap command: built-in subcommands, the application's commands, global flags.
    fn clap_command(&self) -> clap::Command {
        let standalone = matches!(self.source, Source::ConfigFile);
        // The derived parts first: they would set `about` from their doc comments.
        let mut cmd = Command::augment_subcommands(clap::Command::new(self.name.clone()))
            .subcommand_required(true)
            .arg_required_else_help(true);
        cmd = cmd.arg(cli::database_url_arg(if standalone {
            "PostgreSQL URL (else DATABASE_URL, else `database_url` in tenantry.toml)"
        } else {
            "PostgreSQL URL (else DATABASE_URL, else the application's default)"
        }));
        if standalone {
            cmd = <ConfigArgs as clap::Args>::augment_args(cmd);
        }
        if let Some(about) = &self.about {
            cmd = cmd.about(about.clone());
        }
        if let Some(version) = &self.version {
            cmd = cmd.version(version.clone());
        }
        let mut after = if standalone {
            cli::AFTER_HELP.to_owned()
        } else {
            APP_AFTER_HELP.to_owned()
        };
        if let Some(extra) = &self.after_help {
            after = format!("{extra}\n\n{after}");
        }
        cmd = cmd.after_help(after);
        for app in &self.commands {
            cmd = cmd.subcommand(app.clap_command());
        }
        cmd
    }

    /// Parses `args`: the command to run, or the exit code of a usage error / `--help`.
    fn parse<I, T>(&self, args: I) -> Result<Parsed, ExitCode>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = match self.clap_command().try_get_matches_from(args) {
            Ok(m) => m,
            Err(e) => {
                let _ = e.print();
                // Usage errors exit 1 like every other error: 2 means "pending" for
                // `migrate --check`.
                return Err(if e.use_stderr() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                });
            }
        };
        let standalone = matches!(self.source, Source::ConfigFile);
        Parsed::from_matches(&matches, &self.commands, standalone).map_err(|e| {
            let _ = e.print();
            ExitCode::FAILURE
        })
    }

    async fn execute(self, parsed: Parsed) -> ExitCode {
        match self.execute_inner(parsed).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", crate::errors::render(&e));
                ExitCode::FAILURE
            }
        }
    }

    async fn execute_inner(self, parsed: Parsed) -> Result<ExitCode> {
        let Parsed {
            action,
            database_url,
            config,
        } = parsed;
        // The builder, and what to say when no URL is found.
        let (builder, url, missing) = match self.source {
            Source::ConfigFile => {
                // `Parsed::from_matches` reads them whenever the source is the config file.
                let config = config.expect("config flags are parsed for the config-file source");
                let settings = Settings::load(&config, database_url.as_deref())?;
                if let Action::Builtin(Command::Tenant(
                    TenantCommand::Create { tenant_type, .. }
                    | TenantCommand::Adopt { tenant_type, .. },
                )) = &action
                {
                    settings.require_tenant_migrations(
                        tenant_type.as_deref().unwrap_or(DEFAULT_TENANT_TYPE),
                    )?;
                }
                (
                    settings.builder()?,
                    settings.database_url.clone(),
                    "no database URL: pass --database-url, set DATABASE_URL, or set database_url in tenantry.toml",
                )
            }
            Source::App(builder) => (
                *builder,
                database_url
                    .or_else(config::database_url_from_env)
                    .or(self.database_url),
                "no database URL: pass --database-url or set DATABASE_URL",
            ),
        };
        let url = url.context(missing)?;
        // Enough connections for the parallel commands, plus one for planning.
        let connections = match &action {
            Action::Builtin(Command::Migrate(args)) => args.jobs.map_or(16, u32::from) + 1,
            Action::Builtin(Command::Exec(args)) => u32::from(args.jobs) + 1,
            Action::App { jobs, .. } => u32::from(*jobs) + 1,
            Action::Builtin(_) => 4,
        };
        let t = config::connect(builder, &url, connections).await?;
        let result = match action {
            Action::Builtin(command) => run_builtin(&t, &command, &self.setup).await,
            Action::App {
                index,
                target,
                jobs,
                args,
            } => crate::commands::run(&t, &self.commands[index], target, jobs.into(), args).await,
        };
        t.close().await;
        result
    }
}

/// Refuses to create (or adopt into) a tenant type the handle has no tenant migrations for: the
/// tenant would get an empty schema. `create_tenant` itself refuses unknown types.
fn require_tenant_migrations(t: &Tenantry, tenant_type: Option<&str>) -> Result<()> {
    let tenant_type = tenant_type.unwrap_or(DEFAULT_TENANT_TYPE);
    match t.tenant_migration_set(tenant_type) {
        Some(set) if !set.migrations().is_empty() => Ok(()),
        Some(_) => anyhow::bail!(
            "no tenant migrations configured for tenant type {tenant_type:?} (a tenant without \
             migrations would get an empty schema)"
        ),
        None => anyhow::bail!(
            "unknown tenant type {tenant_type:?}: the configured types are {}",
            t.tenant_types().collect::<Vec<_>>().join(", ")
        ),
    }
}

async fn run_builtin(t: &Tenantry, command: &Command, setup: &[SetupStep]) -> Result<ExitCode> {
    if let Command::Tenant(
        TenantCommand::Create { tenant_type, .. } | TenantCommand::Adopt { tenant_type, .. },
    ) = command
    {
        require_tenant_migrations(t, tenant_type.as_deref())?;
    }
    Ok(match command {
        Command::Migrate(args) => crate::migrate::run(t, args, setup).await?,
        Command::Exec(args) => crate::exec::run(t, args).await?,
        Command::Tenant(cmd) => {
            crate::tenants::tenant(t, cmd).await?;
            ExitCode::SUCCESS
        }
        Command::Domain(cmd) => {
            crate::tenants::domain(t, cmd).await?;
            ExitCode::SUCCESS
        }
        Command::Nodes { json } => {
            crate::nodes::nodes(t, *json).await?;
            ExitCode::SUCCESS
        }
        Command::Rebalance { json } => {
            crate::nodes::rebalance(t, *json).await?;
            ExitCode::SUCCESS
        }
    })
}

/// What the command line asked for.
struct Parsed {
    action: Action,
    /// `--database-url`.
    database_url: Option<String>,
    /// The stand-alone binary's configuration flags.
    config: Option<ConfigArgs>,
}

/// A built-in command, or one of the application's.
enum Action {
    Builtin(Command),
    App {
        /// Index in [`Cli::commands`].
        index: usize,
        target: crate::commands::Target,
        jobs: u16,
        /// The command's own arguments.
        args: ArgMatches,
    },
}

impl Parsed {
    fn from_matches(
        matches: &ArgMatches,
        commands: &[AppCommand],
        standalone: bool,
    ) -> Result<Self, clap::Error> {
        let database_url = matches.get_one::<String>(DATABASE_URL_ID).cloned();
        let config = if standalone {
            Some(ConfigArgs::from_arg_matches(matches)?)
        } else {
            None
        };
        let action = match matches.subcommand() {
            Some((name, sub)) if commands.iter().any(|c| c.name() == name) => {
                let index = commands
                    .iter()
                    .position(|c| c.name() == name)
                    .unwrap_or_default();
                let (target, jobs) = crate::commands::target_of(sub);
                Action::App {
                    index,
                    target,
                    jobs,
                    args: sub.clone(),
                }
            }
            _ => Action::Builtin(Command::from_arg_matches(matches)?),
        };
        Ok(Self {
            action,
            database_url,
            config,
        })
    }
}

/// Logs to stderr, filtered by `RUST_LOG`; colour only at a terminal. Leaves an application's
/// own subscriber in place if it set one.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            // sqlx's "slow statement" warnings are noise for long migrations: errors only.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,sqlx::query=error")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in log files and pipes.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
