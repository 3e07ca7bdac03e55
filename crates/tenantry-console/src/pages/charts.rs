//! Charts, drawn as inline SVG on the server: tenants over time, requests per tenant.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use tenantry_sqlx::TenantsOnDay;

use super::action_failed;
use super::layout::{self, Nav};
use crate::config::Shared;
use crate::session::Operator;

/// Tenants shown in the requests chart.
const TOP: usize = 15;
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const PAD: f64 = 40.0;

/// `GET /charts`.
pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    Operator(session): Operator,
) -> Response {
    let days = match shared.tenantry.admin().tenants_per_day().await {
        Ok(d) => d,
        Err(e) => return action_failed(&shared, "count the tenants", &e),
    };
    let requests = requests(&shared).await;
    let body = html! {
        div.heading { h1 { "Charts" } }
        section.card {
            h2 { "Tenants over time" }
            (growth(&days))
        }
        section.card {
            h2 { "Requests per tenant" }
            @match &requests {
                None => p.empty { "No request metrics: the application gives the console none (Console::requests_per_tenant)." },
                Some(bars) if bars.is_empty() => p.empty { "No tenant requests counted yet." },
                Some(bars) => (bar_chart(bars)),
            }
        }
    };
    layout::ok(layout::page(
        &shared,
        Some(&session.csrf),
        Nav::Charts,
        "Charts",
        body,
    ))
}

/// The top tenants by requests, labelled with their schema names where the id is known.
async fn requests(shared: &Shared) -> Option<Vec<(String, f64)>> {
    let counts = (shared.requests.as_ref()?)();
    let mut counts: Vec<(String, f64)> = counts.into_iter().filter(|(_, n)| *n > 0.0).collect();
    counts.sort_by(|a, b| b.1.total_cmp(&a.1));
    counts.truncate(TOP);
    let mut labelled = Vec::with_capacity(counts.len());
    for (label, n) in counts {
        let name = match label.parse::<i64>() {
            Ok(id) => match shared.tenantry.admin().tenant_by_id(id).await {
                Ok(Some(t)) => t.schema,
                _ => format!("#{id} (deleted)"),
            },
            Err(_) => label,
        };
        labelled.push((name, n));
    }
    Some(labelled)
}

/// The running total of tenants, one point per day with creations.
fn growth(days: &[TenantsOnDay]) -> Markup {
    let Some(last) = days.last() else {
        return html! { p.empty { "No tenants yet." } };
    };
    let max = last.total.max(1) as f64;
    let n = days.len();
    let x = |i: usize| {
        if n == 1 {
            WIDTH / 2.0
        } else {
            PAD + (WIDTH - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: i64| HEIGHT - PAD - (HEIGHT - 2.0 * PAD) * v as f64 / max;
    let points: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{:.1},{:.1}", x(i), y(d.total)))
        .collect();
    let first = days[0].day;
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(format!("{} tenants, growing since {first}", last.total)) {
            line.axis x1=(PAD) y1=(HEIGHT - PAD) x2=(WIDTH - PAD) y2=(HEIGHT - PAD) {}
            line.axis x1=(PAD) y1=(PAD) x2=(PAD) y2=(HEIGHT - PAD) {}
            text.label x=(PAD - 6.0) y=(PAD + 4.0) text-anchor="end" { (last.total) }
            text.label x=(PAD - 6.0) y=(HEIGHT - PAD + 4.0) text-anchor="end" { "0" }
            text.label x=(PAD) y=(HEIGHT - PAD + 18.0) { (first) }
            text.label x=(WIDTH - PAD) y=(HEIGHT - PAD + 18.0) text-anchor="end" { (last.day) }
            polyline.line points=(points.join(" ")) {}
            @for (i, d) in days.iter().enumerate() {
                circle.dot cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(d.total))) r="3" {
                    title { (d.day) ": " (d.created) " created, " (d.total) " in all" }
                }
            }
        }
    }
}

/// Horizontal bars, largest first.
fn bar_chart(bars: &[(String, f64)]) -> Markup {
    let max = bars.iter().map(|(_, n)| *n).fold(1.0, f64::max);
    let row = 26.0;
    let label_w = 180.0;
    let height = row * bars.len() as f64 + 10.0;
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-label="Requests per tenant" {
            @for (i, (name, n)) in bars.iter().enumerate() {
                @let top = 5.0 + row * i as f64;
                @let w = (WIDTH - label_w - 90.0) * n / max;
                text.label x=(label_w - 8.0) y=(top + 16.0) text-anchor="end" { (name) }
                rect.bar x=(label_w) y=(top + 3.0) width=(format!("{:.1}", w.max(1.0))) height=(row - 8.0) rx="3" {}
                text.label x=(label_w + w + 6.0) y=(top + 16.0) { (format!("{n:.0}")) }
            }
        }
    }
}
