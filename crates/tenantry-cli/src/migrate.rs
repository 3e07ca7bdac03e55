//! `tenantry migrate`: shared schema, then the fleet of tenant schemas.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::future::BoxFuture;
use indicatif::{ProgressBar, ProgressStyle};
use tenantry_sqlx::{
    BoxError, Error, MigrateOptions, PendingShared, PlannedSchema, SchemaResult, Tenantry,
};

use crate::cli::MigrateArgs;
use crate::output::outln;

/// Exit code of `--check` when something is pending.
pub(crate) const EXIT_PENDING: u8 = 2;

/// What is pending, read from the migration tables and the ledger.
struct Plan {
    shared: Option<PendingShared>,
    /// (tenant schemas in scope, schemas the ledger says are pending); None when not in scope.
    tenants: Option<(usize, Vec<PlannedSchema>)>,
}

impl Plan {
    fn shared_pending(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| !s.is_empty())
    }

    fn tenants_pending(&self) -> usize {
        self.tenants.as_ref().map_or(0, |(_, p)| p.len())
    }

    fn tenants_total(&self) -> usize {
        self.tenants.as_ref().map_or(0, |(total, _)| *total)
    }
}

/// A setup step of the application's own, run by `migrate` after the shared migrations (see
/// [`crate::Cli::shared_setup`]).
pub(crate) struct SetupStep {
    pub name: String,
    pub run: Box<dyn Fn(Tenantry) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>,
}

/// Runs the application's setup steps in order; the first failure stops `migrate`.
async fn run_setup(t: &Tenantry, steps: &[SetupStep]) -> Result<(), ExitCode> {
    for step in steps {
        let start = Instant::now();
        match (step.run)(t.clone()).await {
            Ok(()) => outln!("setup {}: done in {}", step.name, ms(start.elapsed())),
            Err(e) => {
                eprintln!(
                    "error: setup step {:?} failed, tenant schemas not attempted",
                    step.name
                );
                eprintln!("  {e}");
                return Err(ExitCode::FAILURE);
            }
        }
    }
    Ok(())
}

/// Runs `tenantry migrate`.
pub(crate) async fn run(t: &Tenantry, args: &MigrateArgs, steps: &[SetupStep]) -> Result<ExitCode> {
    let do_shared = !args.tenants && args.schema.is_none();
    let do_tenants = !args.shared;
    let shared_schema = t.config().shared_schema.clone();

    let shared_plan = t.fleet().plan_shared().await?;
    let tenants = if !do_tenants {
        None
    } else if !shared_plan.registry_installed {
        if !do_shared {
            bail!(
                "Tenantry's registry is not installed in schema {shared_schema:?}: run `tenantry migrate --shared` (or `tenantry migrate`) first"
            );
        }
        // A fresh database: no tenants yet.
        Some((0, Vec::new()))
    } else {
        let (total, pending) = t
            .fleet()
            .plan_tenants(args.schema.as_deref(), args.ignore_ledger)
            .await?;
        if let Some(only) = &args.schema
            && total == 0
        {
            bail!("no tenant {only:?}");
        }
        Some((total, pending))
    };
    let plan = Plan {
        shared: do_shared.then_some(shared_plan),
        tenants,
    };
    let pending = plan.shared_pending() || plan.tenants_pending() > 0;

    if args.plan || args.check {
        if args.plan {
            print_plan(&plan, &shared_schema);
        }
        if args.check {
            return Ok(if pending {
                outln!(
                    "check: pending work ({}{} tenant schema(s))",
                    if plan.shared_pending() {
                        "shared schema, "
                    } else {
                        ""
                    },
                    plan.tenants_pending()
                );
                ExitCode::from(EXIT_PENDING)
            } else {
                outln!("check: up to date");
                ExitCode::SUCCESS
            });
        }
        return Ok(ExitCode::SUCCESS);
    }

    if !pending {
        // The app's steps are idempotent and their state is not in the ledger: run them anyway.
        if do_shared && let Err(code) = run_setup(t, steps).await {
            return Ok(code);
        }
        let mut what = Vec::new();
        if plan.shared.is_some() {
            what.push(format!("shared schema {shared_schema} up to date"));
        }
        if plan.tenants.is_some() {
            what.push(format!(
                "{} tenant schema(s) up to date (ledger)",
                plan.tenants_total()
            ));
        }
        outln!("nothing to do: {}", what.join(", "));
        return Ok(ExitCode::SUCCESS);
    }

    if let Some(shared) = &plan.shared
        && !shared.is_empty()
    {
        let start = Instant::now();
        match t.fleet().migrate_shared().await {
            Ok(applied) => {
                if !shared.registry_pending.is_empty() {
                    outln!(
                        "schema {shared_schema}: applied Tenantry registry migration(s) [{}]",
                        join(&shared.registry_pending)
                    );
                }
                outln!(
                    "schema {shared_schema}: applied {} shared migration(s) [{}] in {}",
                    applied.len(),
                    join(&applied),
                    ms(start.elapsed())
                );
            }
            Err(e) => {
                eprintln!("error: shared migrations failed, tenant schemas not attempted");
                eprintln!("  {}", describe_failure(&shared_schema, &e));
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    if do_shared && let Err(code) = run_setup(t, steps).await {
        return Ok(code);
    }

    if plan.tenants_pending() == 0 {
        if plan.tenants.is_some() {
            outln!(
                "tenants: {} tenant schema(s) up to date (ledger)",
                plan.tenants_total()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    migrate_tenants(t, args, plan.tenants_pending()).await
}

async fn migrate_tenants(t: &Tenantry, args: &MigrateArgs, pending: usize) -> Result<ExitCode> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(pending as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} schemas, ETA {eta} {msg}",
            )
            .expect("valid progress template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let progress = bar.clone();
    let on_schema = move |r: &SchemaResult| {
        let line = schema_line(r);
        match &progress {
            Some(bar) => {
                if r.result.is_err() {
                    bar.println(line);
                }
                bar.inc(1);
            }
            None => outln!("{line}"),
        }
    };
    let mut options = MigrateOptions {
        fail_fast: args.fail_fast,
        only_schema: args.schema.clone(),
        ignore_ledger: args.ignore_ledger,
        synchronous_commit: args.sync_commit,
        on_schema: Some(Arc::new(on_schema)),
        ..MigrateOptions::default()
    };
    if let Some(jobs) = args.jobs {
        options.jobs = jobs.into();
    }
    let report = t.fleet().migrate_tenants(options).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;

    let failed: Vec<(&str, &Error)> = report.failures().collect();
    // Up to date: schemas the ledger said were (not opened), and opened ones with nothing to
    // apply. `report.pending` counts what was pending *before* the run: not for the summary.
    let up_to_date = report.total.saturating_sub(report.pending)
        + (report.results.len() - report.migrated() - failed.len());
    let still_pending = failed.len() + report.skipped.len();
    outln!(
        "tenants: {} migrated, {} up to date, {} failed, {} skipped, of {} schema(s){}, in {}",
        report.migrated(),
        up_to_date,
        failed.len(),
        report.skipped.len(),
        report.total,
        if still_pending > 0 {
            format!("; {still_pending} still pending")
        } else {
            String::new()
        },
        ms(report.elapsed)
    );
    if failed.is_empty() && report.skipped.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if !failed.is_empty() {
        eprintln!("error: migrations failed in {} schema(s):", failed.len());
        for (schema, e) in &failed {
            eprintln!("  {}", describe_failure(schema, e));
        }
    }
    if !report.skipped.is_empty() {
        eprintln!(
            "error: {} schema(s) not attempted (--fail-fast): {}",
            report.skipped.len(),
            report.skipped.join(", ")
        );
    }
    Ok(ExitCode::FAILURE)
}

fn print_plan(plan: &Plan, shared_schema: &str) {
    if let Some(shared) = &plan.shared {
        if shared.is_empty() {
            outln!("schema {shared_schema} (shared): up to date");
        } else {
            if !shared.registry_pending.is_empty() {
                outln!(
                    "schema {shared_schema} (shared): would apply Tenantry registry migration(s) [{}]",
                    join(&shared.registry_pending)
                );
            }
            if !shared.shared_pending.is_empty() {
                outln!(
                    "schema {shared_schema} (shared): would apply migration(s) [{}]",
                    join(&shared.shared_pending)
                );
            }
        }
    }
    if let Some((total, pending)) = &plan.tenants {
        for p in pending {
            if p.pending_versions.is_empty() {
                outln!(
                    "schema {} (type {}): ledger out of date, would be checked",
                    p.schema,
                    p.tenant_type
                );
            } else {
                outln!(
                    "schema {} (type {}): would apply migration(s) [{}]",
                    p.schema,
                    p.tenant_type,
                    join(&p.pending_versions)
                );
            }
        }
        outln!(
            "plan: {} of {} tenant schema(s) pending",
            pending.len(),
            total
        );
    }
}

/// One progress line for a finished schema.
fn schema_line(r: &SchemaResult) -> String {
    match &r.result {
        Ok(o) if o.applied.is_empty() => {
            format!("schema {}: up to date in {}", r.schema, ms(o.elapsed))
        }
        Ok(o) => format!(
            "schema {}: applied {} migration(s) [{}] in {}",
            r.schema,
            o.applied.len(),
            join(&o.applied),
            ms(o.elapsed)
        ),
        Err(Error::Migration {
            version,
            description,
            message,
            ..
        }) => format!(
            "schema {}: FAILED migration {version} ({description}): {message}",
            r.schema
        ),
        Err(e) => format!("schema {}: FAILED: {e}", r.schema),
    }
}

/// `schema X: migration N (desc): error` for the final error list.
fn describe_failure(schema: &str, e: &Error) -> String {
    match e {
        Error::Migration {
            version,
            description,
            message,
            ..
        } => format!("schema {schema}: migration {version} ({description}): {message}"),
        Error::MigrationState { message, .. } => format!("schema {schema}: {message}"),
        other => format!("schema {schema}: {other}"),
    }
}

fn join(versions: &[i64]) -> String {
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A duration in whole milliseconds.
pub(crate) fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
