//! `tenantry`: the command-line tool of a Tenantry deployment.
//!
//! Migrations (shared schema, then every tenant schema, in parallel, atomically per schema),
//! tenant and domain management, and SQL run in every tenant's schema. See `tenantry --help`.

mod cli;
mod config;
mod exec;
mod migrate;
mod output;
mod tenants;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, TenantCommand};
use crate::config::Settings;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1 like every other error: 2 means "pending" for `migrate --check`.
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            // sqlx's "slow statement" warnings are noise for long migrations: errors only.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,sqlx::query=error")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in log files and pipes.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();

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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&cli)?;
    if let Command::Tenant(TenantCommand::Create { tenant_type, .. }) = &cli.command {
        settings.require_tenant_migrations(
            tenant_type
                .as_deref()
                .unwrap_or(tenantry::DEFAULT_TENANT_TYPE),
        )?;
    }
    // Enough connections for the parallel commands, plus one for planning.
    let connections = match &cli.command {
        Command::Migrate(args) => args.jobs.map_or(16, u32::from) + 1,
        Command::Exec(args) => u32::from(args.jobs) + 1,
        _ => 4,
    };
    let t = settings.connect(connections).await?;
    let code = match &cli.command {
        Command::Migrate(args) => migrate::run(&t, args).await?,
        Command::Exec(args) => exec::run(&t, args).await?,
        Command::Tenant(cmd) => {
            tenants::tenant(&t, cmd).await?;
            ExitCode::SUCCESS
        }
        Command::Domain(cmd) => {
            tenants::domain(&t, cmd).await?;
            ExitCode::SUCCESS
        }
    };
    t.close().await;
    Ok(code)
}

/// One line from an error chain: causes joined with ": ", repeated text skipped, and a
/// PostgreSQL error shown as its message and SQLSTATE rather than sqlx's wrapper text.
fn render_error(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        if let Some(db) = database_error(cause) {
            let mut msg = match db.code() {
                Some(code) => format!("{} (SQLSTATE {code})", db.message()),
                None => db.message().to_owned(),
            };
            // The registry's tables are missing: the database was never migrated.
            if db.code().as_deref() == Some("42P01") && db.message().contains("tenantry_") {
                msg.push_str(" (run `tenantry migrate` first)");
            }
            parts.push(msg);
            break;
        }
        let msg = cause.to_string();
        if !parts.last().is_some_and(|p| p.ends_with(&msg)) {
            parts.push(msg);
        }
    }
    parts.join(": ")
}

fn database_error<'a>(
    cause: &'a (dyn std::error::Error + 'static),
) -> Option<&'a dyn sqlx::error::DatabaseError> {
    let sqlx_error = match cause.downcast_ref::<tenantry::Error>() {
        Some(tenantry::Error::Database(e)) => e,
        Some(_) => return None,
        None => cause.downcast_ref::<sqlx::Error>()?,
    };
    match sqlx_error {
        sqlx::Error::Database(db) => Some(db.as_ref()),
        _ => None,
    }
}
