//! `tenantry tenant clone|export|import`: the tenant data tools, with a progress bar on a
//! terminal and `--json` reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tenantry_sqlx::{NewTenant, TableCount, Tenantry, TransferProgress, TransferReport};

use crate::cli::TenantCommand;
use crate::migrate::ms;
use crate::output::outln;
use crate::view::{TenantView, view};

/// What `--json` prints for the three commands.
#[derive(Debug, Serialize)]
struct Report {
    /// `clone`, `export` or `import`.
    action: &'static str,
    /// The new tenant (clone, import) or the exported one.
    tenant: TenantView,
    /// Clone: the source tenant; import: the archived tenant's name; export: the tenant.
    source: String,
    /// Export: the file written; import: the file read.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    /// Archive size in bytes (export, import).
    #[serde(skip_serializing_if = "Option::is_none")]
    archive_bytes: Option<u64>,
    /// The source's (or archive's) migration version.
    migration_version: Option<i64>,
    /// Migrations applied after the rows were in (clone, import).
    applied: Vec<i64>,
    /// Rows per table.
    tables: Vec<TableCount>,
    /// Rows in all.
    rows: u64,
    /// Wall time in milliseconds.
    elapsed_ms: u128,
}

impl Report {
    async fn new(
        t: &Tenantry,
        action: &'static str,
        source: &str,
        file: Option<&Path>,
        report: TransferReport,
    ) -> Result<Self> {
        let rows = report.rows();
        Ok(Self {
            action,
            source: source.to_owned(),
            file: file.map(Path::to_path_buf),
            archive_bytes: file.map(|_| report.archive_bytes),
            migration_version: report.source_version,
            applied: report.applied,
            tables: report.tables,
            rows,
            elapsed_ms: report.elapsed.as_millis(),
            tenant: view(t, report.tenant).await?,
        })
    }
}

/// A progress bar over the tables, on a terminal only (stdout stays the command's result).
fn progress_bar(verb: &'static str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} [{{elapsed_precise}}] {verb} {{bar:30}} {{pos}}/{{len}} tables {{msg}}"
            ))
            .expect("valid progress template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    })
}

/// Moves `bar` along with the library's reports.
fn advance(bar: Option<&ProgressBar>, p: &TransferProgress) {
    let Some(bar) = bar else { return };
    match p {
        TransferProgress::Started { tables } => bar.set_length(*tables as u64),
        TransferProgress::Table { name, rows, .. } => {
            bar.inc(1);
            bar.set_message(format!("{name}: {rows} rows"));
        }
        TransferProgress::Finishing => bar.set_message("finishing"),
        _ => {}
    }
}

/// Runs `tenant clone|export|import`.
pub(crate) async fn run(t: &Tenantry, cmd: &TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Clone {
            source,
            new,
            domain,
            display_name,
            json,
        } => {
            let mut tenant = NewTenant::new(new.clone(), domain.clone());
            tenant.display_name = display_name.clone();
            let bar = progress_bar("copying");
            let result = t
                .admin()
                .clone_tenant_reporting(source, tenant, &|p| advance(bar.as_ref(), p))
                .await;
            finish(bar);
            let report = result?;
            let line = format!(
                "cloned tenant {source} as {} (domain {}): {} table(s), {} row(s) in {}{}",
                report.tenant.schema,
                report.tenant.primary_domain.as_deref().unwrap_or("-"),
                report.tables.len(),
                report.rows(),
                ms(report.elapsed),
                applied_words(&report.applied)
            );
            print(*json, line, Report::new(t, "clone", source, None, report)).await?;
        }
        TenantCommand::Export {
            name,
            output,
            force,
            json,
        } => {
            if output.exists() && !*force {
                bail!(
                    "{} exists: pass --force to overwrite it (nothing was exported)",
                    output.display()
                );
            }
            // Written beside the target and renamed once complete: a failed export leaves no
            // file that looks like an archive.
            let partial = partial_path(output);
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let bar = progress_bar("exporting");
            let result = t
                .admin()
                .export_tenant_reporting(name, std::io::BufWriter::new(file), &|p| {
                    advance(bar.as_ref(), p)
                })
                .await;
            finish(bar);
            let report = match result {
                Ok((_file, report)) => report,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e.into());
                }
            };
            std::fs::rename(&partial, output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            let line = format!(
                "exported tenant {name} to {} ({} bytes): {} table(s), {} row(s) at migration {} in {}",
                output.display(),
                report.archive_bytes,
                report.tables.len(),
                report.rows(),
                report
                    .source_version
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
                ms(report.elapsed)
            );
            print(
                *json,
                line,
                Report::new(t, "export", name, Some(output), report),
            )
            .await?;
        }
        TenantCommand::Import {
            file,
            name,
            domain,
            display_name,
            json,
        } => {
            let input = std::fs::File::open(file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let mut tenant = NewTenant::new(name.clone(), domain.clone());
            tenant.display_name = display_name.clone();
            let bar = progress_bar("importing");
            let result = t
                .admin()
                .import_tenant_reporting(input, tenant, &|p| advance(bar.as_ref(), p))
                .await;
            finish(bar);
            let report = result?;
            let line = format!(
                "imported {} as tenant {} (domain {}): {} table(s), {} row(s), archive at migration {} in {}{}",
                file.display(),
                report.tenant.schema,
                report.tenant.primary_domain.as_deref().unwrap_or("-"),
                report.tables.len(),
                report.rows(),
                report
                    .source_version
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
                ms(report.elapsed),
                applied_words(&report.applied)
            );
            let source = file.display().to_string();
            print(
                *json,
                line,
                Report::new(t, "import", &source, Some(file), report),
            )
            .await?;
        }
        _ => unreachable!("only clone, export and import come here"),
    }
    Ok(())
}

fn finish(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// `; then applied migration(s) [2,3]`, or nothing.
fn applied_words(applied: &[i64]) -> String {
    if applied.is_empty() {
        return String::new();
    }
    let list: Vec<String> = applied.iter().map(i64::to_string).collect();
    format!("; then applied migration(s) [{}]", list.join(","))
}

/// `FILE.partial` beside `FILE`.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// The text line, or the JSON report.
async fn print(
    json: bool,
    line: String,
    report: impl std::future::Future<Output = Result<Report>>,
) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(&report.await?)?);
    } else {
        outln!("{line}");
    }
    Ok(())
}
