//! A fleet migration started from the console: one at a time per console, its progress kept in
//! memory (the last run stays visible until the next one) and announced to the fleet page's
//! live view through a watch channel.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tenantry_sqlx::{MigrateOptions, Tenantry};
use tokio::sync::watch;

/// The progress of the current or last run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RunState {
    /// When it started (UTC).
    pub(crate) started_at: String,
    /// Schemas the plan said were pending.
    pub(crate) pending: usize,
    /// Schemas finished (migrated or failed).
    pub(crate) done: usize,
    /// Schemas where migrations were applied.
    pub(crate) migrated: usize,
    /// Failures: schema and error.
    pub(crate) failures: Vec<(String, String)>,
    /// Whether the run ended.
    pub(crate) finished: bool,
    /// How it ended, in words.
    pub(crate) summary: Option<String>,
}

/// The console's fleet runs.
#[derive(Debug, Clone)]
pub(crate) struct FleetRuns {
    state: Arc<Mutex<Option<RunState>>>,
    changes: watch::Sender<u64>,
}

impl Default for FleetRuns {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            changes: watch::channel(0).0,
        }
    }
}

impl FleetRuns {
    /// The current or last run.
    pub(crate) fn snapshot(&self) -> Option<RunState> {
        self.state.lock().expect("fleet run state").clone()
    }

    /// Told of every change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut RunState)) {
        if let Some(state) = self.state.lock().expect("fleet run state").as_mut() {
            f(state);
        }
        self.changes.send_modify(|n| *n += 1);
    }

    /// Starts `migrate_tenants` on every pending schema, unless a run is going on (`false`).
    pub(crate) fn start(&self, tenantry: Tenantry) -> bool {
        {
            let mut state = self.state.lock().expect("fleet run state");
            if state.as_ref().is_some_and(|s| !s.finished) {
                return false;
            }
            *state = Some(RunState {
                started_at: chrono::Utc::now()
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string(),
                ..RunState::default()
            });
        }
        self.changes.send_modify(|n| *n += 1);
        let runs = self.clone();
        tokio::spawn(async move {
            let pending = tenantry.fleet().plan_tenants(None, false).await;
            let pending = match pending {
                Ok((_, plan)) => plan.len(),
                Err(e) => {
                    runs.finish(format!("the registry could not be read: {e}"));
                    return;
                }
            };
            runs.update(|s| s.pending = pending);
            let progress = runs.clone();
            let options = MigrateOptions {
                on_schema: Some(Arc::new(move |result| {
                    progress.update(|s| {
                        s.done += 1;
                        match &result.result {
                            Ok(outcome) if !outcome.applied.is_empty() => s.migrated += 1,
                            Ok(_) => {}
                            Err(e) => s.failures.push((result.schema.clone(), e.to_string())),
                        }
                    })
                })),
                ..MigrateOptions::default()
            };
            let summary = match tenantry.fleet().migrate_tenants(options).await {
                Ok(report) => format!(
                    "{} of {} schemas opened, {} migrated, {} failed, in {:.1} s",
                    report.results.len(),
                    report.total,
                    report.migrated(),
                    report.failures().count(),
                    report.elapsed.as_secs_f64()
                ),
                Err(e) => format!("the run failed: {e}"),
            };
            tracing::info!(target: "tenantry::console", action = "migrate_fleet", %summary, "fleet migration finished");
            runs.finish(summary);
        });
        true
    }

    fn finish(&self, summary: String) {
        self.update(|s| {
            s.finished = true;
            s.summary = Some(summary);
        });
    }
}
