//! The application's own commands, run in one tenant's scope or in every tenant
//! (django-tenants' `tenant_command` / `all_tenants_command`).

use std::fmt;
use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Arg, ArgAction, ArgGroup, ArgMatches};
use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use tenantry_sqlx::{BoxError, Tenant, TenantTx, Tenantry};

use crate::migrate::ms;
use crate::output::outln;

/// The erased body of an [`AppCommand`].
type RunFn =
    dyn for<'a> Fn(&'a mut CommandContext) -> LocalBoxFuture<'a, Result<(), BoxError>> + 'static;

/// Clap ids of the options every app command gets (prefixed: they can't clash with the
/// command's own arguments).
const TENANT_ID: &str = "tenantry_tenant";
const ALL_ID: &str = "tenantry_all_tenants";
const JOBS_ID: &str = "tenantry_jobs";

/// A command of the application, run by the CLI in one tenant (`--tenant NAME`) or in all of them
/// (`--all-tenants`, `--jobs N` at once). Each tenant gets its own scoped transaction
/// ([`Tenantry::begin_any_status`]: the tenant's `search_path`, and its role in role mode), which
/// commits only if the command returned `Ok` for that tenant; an error or a panic rolls that
/// tenant's work back, is listed in the failure summary, and makes the exit code 1.
///
/// ```
/// use tenantry_cli::AppCommand;
/// use tenantry_cli::clap::Arg;
///
/// let archive = AppCommand::new("archive-notes", "Archive notes older than N days", async |ctx| {
///     let days: i32 = *ctx.args.get_one("days").expect("required");
///     let done = sqlx::query("UPDATE notes SET archived = TRUE WHERE created_at < now() - make_interval(days => $1)")
///         .bind(days)
///         .execute(&mut ctx.tx)
///         .await?;
///     ctx.say(format!("{} note(s) archived", done.rows_affected()));
///     Ok(())
/// })
/// .arg(Arg::new("days").long("days").required(true).value_parser(clap::value_parser!(i32)));
/// assert_eq!(archive.name(), "archive-notes");
/// ```
pub struct AppCommand {
    name: String,
    about: String,
    args: Vec<Arg>,
    run: Arc<RunFn>,
}

impl fmt::Debug for AppCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCommand")
            .field("name", &self.name)
            .field("about", &self.about)
            .field(
                "args",
                &self.args.iter().map(Arg::get_id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl AppCommand {
    /// A command called `name` (its subcommand name), described by `about` in `--help`, whose
    /// body `run` is called once per tenant with that tenant's [`CommandContext`].
    pub fn new<F>(name: impl Into<String>, about: impl Into<String>, run: F) -> Self
    where
        F: AsyncFn(&mut CommandContext) -> Result<(), BoxError> + 'static,
    {
        let run = Arc::new(run);
        Self {
            name: name.into(),
            about: about.into(),
            args: Vec::new(),
            run: erase(move |ctx| {
                let run = Arc::clone(&run);
                Box::pin(async move { run(ctx).await })
            }),
        }
    }

    /// Adds an argument of the command's own (read it from [`CommandContext::args`]). The ids
    /// and long names `tenant`, `all-tenants` and `jobs` are taken.
    pub fn arg(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self
    }

    /// The subcommand name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The clap subcommand: the command's arguments plus `--tenant`/`--all-tenants`/`--jobs`.
    pub(crate) fn clap_command(&self) -> clap::Command {
        clap::Command::new(self.name.clone())
            .about(self.about.clone())
            .args(self.args.iter().cloned())
            .arg(
                Arg::new(TENANT_ID)
                    .long("tenant")
                    .value_name("NAME")
                    .help("Run in this tenant (schema name)"),
            )
            .arg(
                Arg::new(ALL_ID)
                    .long("all-tenants")
                    .action(ArgAction::SetTrue)
                    .help("Run in every tenant"),
            )
            .arg(
                Arg::new(JOBS_ID)
                    .long("jobs")
                    .short('j')
                    .value_name("N")
                    .default_value("4")
                    .value_parser(clap::value_parser!(u16).range(1..))
                    .help("Tenants processed at once"),
            )
            .group(
                ArgGroup::new("tenantry_target")
                    .args([TENANT_ID, ALL_ID])
                    .required(true),
            )
    }
}

/// Helps the compiler see the closure as higher-ranked over the context's lifetime.
fn erase<F>(f: F) -> Arc<RunFn>
where
    F: for<'a> Fn(&'a mut CommandContext) -> LocalBoxFuture<'a, Result<(), BoxError>> + 'static,
{
    Arc::new(f)
}

/// What an [`AppCommand`]'s body gets, once per tenant.
#[non_exhaustive]
pub struct CommandContext {
    /// The handle (the application's configuration).
    pub tenantry: Tenantry,
    /// The tenant this run is for.
    pub tenant: Arc<Tenant>,
    /// The tenant's scoped transaction (`&mut ctx.tx` is an executor); committed after the body
    /// returns `Ok`, rolled back otherwise.
    pub tx: TenantTx,
    /// The command's own arguments.
    pub args: Arc<ArgMatches>,
    /// Lines given to [`CommandContext::say`].
    lines: Vec<String>,
}

impl fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandContext")
            .field("tenant", &self.tenant.schema)
            .finish_non_exhaustive()
    }
}

impl CommandContext {
    /// Prints `line` for this tenant (as `tenant NAME: line`) once its run is over; lines of
    /// parallel runs don't interleave, and go above the progress bar on a terminal.
    pub fn say(&mut self, line: impl fmt::Display) {
        self.lines.push(line.to_string());
    }
}

/// Which tenants a command runs in.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// `--tenant NAME`.
    One(String),
    /// `--all-tenants`.
    All,
}

/// `--tenant`/`--all-tenants` and `--jobs` from an app command's matches.
pub(crate) fn target_of(matches: &ArgMatches) -> (Target, u16) {
    let target = match matches.get_one::<String>(TENANT_ID) {
        Some(name) => Target::One(name.clone()),
        None => Target::All,
    };
    let jobs = matches.get_one::<u16>(JOBS_ID).copied().unwrap_or(4);
    (target, jobs)
}

/// Runs `command` in its target tenants, `jobs` at once; prints each tenant's lines, a summary
/// and the failures. Exit code 1 when any tenant failed.
pub(crate) async fn run(
    t: &Tenantry,
    command: &AppCommand,
    target: Target,
    jobs: usize,
    args: ArgMatches,
) -> Result<ExitCode> {
    let tenants = match target {
        Target::One(name) => vec![t.admin().tenant(&name).await?],
        Target::All => t.admin().tenants().await?,
    };
    let name = &command.name;
    if tenants.is_empty() {
        outln!("{name}: no tenants");
        return Ok(ExitCode::SUCCESS);
    }
    let total = tenants.len();
    let start = Instant::now();
    let args = Arc::new(args);
    let bar = (total > 1 && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} tenants, ETA {eta} {msg}",
            )
            .expect("valid progress template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    // `buffered` keeps the registry's order (by schema) while running `jobs` at once.
    let mut results = futures::stream::iter(tenants.into_iter().map(|tenant| {
        let args = Arc::clone(&args);
        async move {
            let schema = tenant.schema.clone();
            let result = run_one(t, command, Arc::new(tenant), args).await;
            (schema, result)
        }
    }))
    .buffered(jobs.max(1));
    let print = |line: String| match &bar {
        Some(bar) => bar.println(line),
        None => outln!("{line}"),
    };
    let mut failures: Vec<(String, String)> = Vec::new();
    while let Some((schema, result)) = results.next().await {
        match result {
            Ok(lines) => {
                for line in lines {
                    print(format!("tenant {schema}: {line}"));
                }
            }
            Err(e) => {
                print(format!("tenant {schema}: FAILED: {e}"));
                failures.push((schema, e));
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outln!(
        "{name}: {} of {total} tenant(s) ok, {} failed, in {}",
        total - failures.len(),
        failures.len(),
        ms(start.elapsed())
    );
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: {name} failed in {} tenant(s) (their changes were rolled back):",
        failures.len()
    );
    for (schema, e) in &failures {
        eprintln!("  tenant {schema}: {e}");
    }
    Ok(ExitCode::FAILURE)
}

/// One tenant: begin, run the body (a panic is caught and reported as this tenant's failure),
/// commit on success. Returns the lines the body said.
async fn run_one(
    t: &Tenantry,
    command: &AppCommand,
    tenant: Arc<Tenant>,
    args: Arc<ArgMatches>,
) -> Result<Vec<String>, String> {
    let tx = t
        .begin_any_status(&tenant)
        .await
        .map_err(|e| e.to_string())?;
    let mut ctx = CommandContext {
        tenantry: t.clone(),
        tenant,
        tx,
        args,
        lines: Vec::new(),
    };
    let outcome = AssertUnwindSafe((command.run)(&mut ctx))
        .catch_unwind()
        .await;
    match outcome {
        Ok(Ok(())) => {
            ctx.tx.commit().await.map_err(|e| e.to_string())?;
            Ok(ctx.lines)
        }
        // Dropping the transaction rolls it back.
        Ok(Err(e)) => Err(error_line(e.as_ref())),
        Err(panic) => Err(format!("panicked: {}", panic_message(panic.as_ref()))),
    }
}

/// An error and its causes on one line (database errors with their SQLSTATE).
fn error_line(e: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let msg = match c.downcast_ref::<sqlx::Error>() {
            Some(db) => crate::errors::db_message(db),
            None => c.to_string(),
        };
        if !parts.last().is_some_and(|p| p.ends_with(&msg)) {
            parts.push(msg);
        }
        cause = c.source();
    }
    parts.join(": ")
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
