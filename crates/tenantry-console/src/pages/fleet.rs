//! The fleet: migration state per schema, the last run's failures with their error, starting a
//! fleet migration and watching it live (server-sent events; without JavaScript, reload).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures::Stream;
use maud::{PreEscaped, html};

use super::layout::{self, Nav};
use super::{action_failed, path_segment};
use crate::auth::Nothing;
use crate::config::Shared;
use crate::fleet_run::RunState;
use crate::session::{CheckedForm, Operator};

/// Pending schemas listed on the page (the count is always complete).
const LISTED: usize = 200;

/// The live view: replaces the progress numbers and failures as events arrive.
const LIVE_SCRIPT: &str = r#"
(() => {
  const run = document.getElementById("run");
  if (!run || run.dataset.finished === "true") return;
  const events = new EventSource(run.dataset.events);
  events.addEventListener("progress", (e) => {
    const s = JSON.parse(e.data);
    run.querySelector("progress").max = Math.max(s.pending, 1);
    run.querySelector("progress").value = s.done;
    run.querySelector("[data-done]").textContent = s.done;
    run.querySelector("[data-pending]").textContent = s.pending;
    run.querySelector("[data-migrated]").textContent = s.migrated;
    const list = run.querySelector("ul.failures");
    list.replaceChildren(...s.failures.map(([schema, error]) => {
      const li = document.createElement("li"), b = document.createElement("strong");
      b.textContent = schema; li.append(b, ": " + error); return li;
    }));
    if (s.finished) {
      run.querySelector("[data-summary]").textContent = s.summary || "finished";
      run.dataset.finished = "true";
      events.close();
    }
  });
})();
"#;

/// `GET /fleet`.
pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    Operator(session): Operator,
) -> Response {
    let (total, plan) = match shared.tenantry.fleet().plan_tenants(None, false).await {
        Ok(p) => p,
        Err(e) => return action_failed(&shared, "read the fleet's state", &e),
    };
    let run = shared.runs.snapshot();
    let running = run.as_ref().is_some_and(|r| !r.finished);
    let body = html! {
        div.heading { h1 { "Fleet" } }
        div.stats {
            div.stat { strong { (total) } span { "tenant schemas" } }
            div.stat { strong { (total - plan.len()) } span { "up to date" } }
            div.stat.(if plan.is_empty() { "" } else { "warn" }) { strong { (plan.len()) } span { "pending" } }
        }
        section.card {
            h2 { "Migrate every tenant schema" }
            p.muted { "Runs the tenant migrations on every pending schema, in parallel, as "
                code { "tenantry migrate" } " does: each schema fully migrated or untouched." }
            form method="post" action=(shared.link("/fleet/migrate")) {
                (layout::csrf(&session.csrf))
                button type="submit" disabled[running] { @if running { "Running…" } @else { "Start a fleet migration" } }
            }
        }
        @if let Some(run) = &run { (run_view(&shared, run)) }
        section.card {
            h2 { "Pending schemas" }
            @if plan.is_empty() {
                p.empty { "Every schema is up to date." }
            } @else {
                table {
                    thead { tr { th { "Schema" } th { "Type" } th { "Ledger version" } th { "Pending versions" } } }
                    tbody {
                        @for p in plan.iter().take(LISTED) {
                            tr {
                                td { a href=(shared.link(&format!("/tenants/{}", path_segment(&p.schema)))) { (p.schema) } }
                                td { (p.tenant_type) }
                                td { (p.ledger_version.map(|v| v.to_string()).unwrap_or_else(|| "–".into())) }
                                td { (p.pending_versions.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
                @if plan.len() > LISTED { p.muted { "and " (plan.len() - LISTED) " more." } }
            }
        }
        script { (PreEscaped(LIVE_SCRIPT)) }
    };
    layout::ok(layout::page(
        &shared,
        Some(&session.csrf),
        Nav::Fleet,
        "Fleet",
        body,
    ))
}

/// The current or last run, live while it runs.
fn run_view(shared: &Shared, run: &RunState) -> maud::Markup {
    html! {
        section.card #run data-events=(shared.link("/fleet/events")) data-finished=(run.finished) {
            h2 { @if run.finished { "Last fleet migration" } @else { "Fleet migration running" } }
            p.muted { "Started " (run.started_at) }
            progress max=(run.pending.max(1)) value=(run.done) {}
            p {
                span data-done { (run.done) } " of " span data-pending { (run.pending) } " schemas done, "
                span data-migrated { (run.migrated) } " migrated. "
                strong data-summary { (run.summary.as_deref().unwrap_or("")) }
            }
            h3 { "Failures" }
            ul.failures {
                @for (schema, error) in &run.failures { li { strong { (schema) } ": " (error) } }
            }
        }
    }
}

/// `POST /fleet/migrate`.
pub(crate) async fn start(
    State(shared): State<Arc<Shared>>,
    CheckedForm(_, Nothing {}): CheckedForm<Nothing>,
) -> Response {
    if shared.runs.start(shared.tenantry.clone()) {
        tracing::info!(target: "tenantry::console", action = "migrate_fleet", "fleet migration started");
    }
    Redirect::to(&shared.link("/fleet")).into_response()
}

/// `GET /fleet/events`: the run's state as `progress` events, on every change, until it ends.
pub(crate) async fn events(
    State(shared): State<Arc<Shared>>,
    Operator(_): Operator,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = shared.runs.subscribe();
    // The state now, then again after every change, until it says the run finished.
    let stream = futures::stream::unfold(
        (shared, changes, true, false),
        |(shared, mut changes, first, ended)| async move {
            if ended {
                return None;
            }
            if !first {
                changes.changed().await.ok()?;
            }
            let state = shared.runs.snapshot()?;
            let finished = state.finished;
            let event = Event::default().event("progress").json_data(&state).ok()?;
            Some((Ok(event), (shared, changes, false, finished)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
