//! `tenantry exec`: the operator's SQL in each tenant's schema, one tenant-scoped transaction
//! per tenant (`Tenantry::begin`, so the `search_path` is the tenant's and reverts at COMMIT).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use futures::StreamExt;
use sqlx::{AssertSqlSafe, Column, Either, Row, ValueRef};
use tenantry_sqlx::Tenantry;

use crate::cli::ExecArgs;
use crate::errors::db_message;
use crate::migrate::ms;
use crate::output::outln;

/// What one statement string produced in one schema.
struct Output {
    /// Column names and rows of the last statement, when it returned rows.
    rows: Option<(Vec<String>, Vec<Vec<String>>)>,
    /// Rows affected, summed over the statements.
    affected: u64,
}

/// Runs `tenantry exec`.
pub(crate) async fn run(t: &Tenantry, args: &ExecArgs) -> Result<ExitCode> {
    let tenants = match &args.schema {
        Some(schema) => vec![t.admin().tenant(schema).await?],
        None => t.admin().tenants().await?,
    };
    if tenants.is_empty() {
        outln!("no tenants");
        return Ok(ExitCode::SUCCESS);
    }
    let total = tenants.len();
    let start = Instant::now();
    // `buffered` keeps the registry's order (by schema) while running `jobs` at once.
    let mut results = futures::stream::iter(tenants.into_iter().map(|tenant| async move {
        let tenant = Arc::new(tenant);
        let start = Instant::now();
        let result = run_one(t, &tenant, &args.sql).await;
        (tenant.schema.clone(), result, start.elapsed())
    }))
    .buffered(args.jobs.into());

    let mut failures = Vec::new();
    while let Some((schema, result, elapsed)) = results.next().await {
        match result {
            Ok(Output {
                rows: Some((columns, rows)),
                ..
            }) => {
                outln!("schema {schema}: {} row(s) in {}", rows.len(), ms(elapsed));
                outln!("  {}", columns.join(" | "));
                for row in rows {
                    outln!("  {}", row.join(" | "));
                }
            }
            Ok(Output { affected, .. }) => {
                outln!(
                    "schema {schema}: ok, {affected} row(s) affected in {}",
                    ms(elapsed)
                );
            }
            Err(e) => {
                outln!("schema {schema}: FAILED: {e}");
                failures.push((schema, e));
            }
        }
    }
    outln!(
        "exec: {} of {total} schema(s) ok, {} failed, in {}",
        total - failures.len(),
        failures.len(),
        ms(start.elapsed())
    );
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("error: SQL failed in {} schema(s):", failures.len());
    for (schema, e) in &failures {
        eprintln!("  schema {schema}: {e}");
    }
    Ok(ExitCode::FAILURE)
}

async fn run_one(
    t: &Tenantry,
    tenant: &Arc<tenantry_sqlx::Tenant>,
    sql: &str,
) -> Result<Output, String> {
    let mut tx = t
        .begin_any_status(tenant)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Output {
        rows: None,
        affected: 0,
    };
    let mut current: Option<(Vec<String>, Vec<Vec<String>>)> = None;
    {
        // Simple-query protocol: several statements allowed, values come back as text.
        let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).fetch_many(&mut *tx);
        while let Some(item) = stream.next().await {
            match item.map_err(|e| db_message(&e))? {
                Either::Left(done) => {
                    out.affected += done.rows_affected();
                    // A statement ended: its rows (if any) are the latest result.
                    out.rows = current.take();
                }
                Either::Right(row) => {
                    let (_, rows) = current.get_or_insert_with(|| {
                        (
                            row.columns().iter().map(|c| c.name().to_owned()).collect(),
                            Vec::new(),
                        )
                    });
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.try_get_raw(i) {
                                Ok(v) if v.is_null() => "NULL".to_owned(),
                                Ok(v) => v.as_str().unwrap_or("<binary>").to_owned(),
                                Err(e) => format!("<{e}>"),
                            })
                            .collect(),
                    );
                }
            }
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(out)
}
