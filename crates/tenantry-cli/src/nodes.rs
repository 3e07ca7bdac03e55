//! Citus placement commands: `tenantry nodes`, `tenantry tenant move`, `tenantry rebalance`.

use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use tenantry_sqlx::Tenantry;

use crate::migrate::ms;
use crate::output::{outln, print_table};

/// `tenantry nodes [--json]`: the nodes, with their tenant counts and bytes.
pub(crate) async fn nodes(t: &Tenantry, json: bool) -> Result<()> {
    let nodes = t.placement().nodes().await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(());
    }
    let rows: Vec<[String; 5]> = nodes
        .iter()
        .map(|n| {
            [
                format!("{}:{}", n.host, n.port),
                n.role.to_owned(),
                if n.active { "active" } else { "inactive" }.to_owned(),
                n.tenants.to_string(),
                human_bytes(n.bytes),
            ]
        })
        .collect();
    print_table(&["node", "role", "state", "tenants", "size"], &rows);
    Ok(())
}

/// `tenantry tenant move NAME --to HOST:PORT`: an online move with a progress bar (bytes
/// copied) on stderr.
pub(crate) async fn move_tenant(
    t: &Tenantry,
    name: &str,
    host: &str,
    port: u16,
    json: bool,
) -> Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} copied {msg}",
        )
        .expect("valid progress template"),
    );
    bar.set_message(format!("{name} -> {host}:{port}"));
    bar.enable_steady_tick(Duration::from_millis(200));
    let report = {
        let bar = bar.clone();
        t.placement()
            .move_tenant(name, host, port, move |p| {
                bar.set_length(p.total_bytes.max(0) as u64);
                bar.set_position(p.copied_bytes.max(0) as u64);
            })
            .await
    };
    bar.finish_and_clear();
    let report = report?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.moved {
        outln!(
            "tenant {name} moved from {} to {} in {}",
            report.from,
            report.to,
            ms(report.elapsed)
        );
    } else {
        outln!("tenant {name} is already on {}: nothing to do", report.to);
    }
    Ok(())
}

/// `tenantry rebalance [--json]`: the moves Citus's rebalancer plans, made one by one, with a
/// progress bar (moves done).
pub(crate) async fn rebalance(t: &Tenantry, json: bool) -> Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} moves")
            .expect("valid progress template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let report = {
        let bar = bar.clone();
        t.placement()
            .rebalance(move |p| {
                bar.set_length(p.total.max(0) as u64);
                bar.set_position(p.done.max(0) as u64);
            })
            .await
    };
    bar.finish_and_clear();
    let report = report?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.moves.is_empty() {
        outln!("the tenants are balanced: nothing to move");
    } else {
        for m in &report.moves {
            outln!(
                "moved {} from {} to {} in {}",
                m.schema,
                m.from,
                m.to,
                ms(m.elapsed)
            );
        }
        outln!(
            "rebalanced: {} move(s) in {}",
            report.moves.len(),
            ms(report.elapsed)
        );
    }
    Ok(())
}

/// `1.5 MiB`.
fn human_bytes(bytes: i64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    format!("{value:.1} TiB")
}
