//! Job spans carry their tenant, and job runs and jobs by state reach the `metrics` recorder
//! with bounded labels (queue, outcome, state; never a tenant).
//!
//! `cargo test -p tenantry-apalis --features metrics --test jobs_observe`

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusBuilder;
use support::{QUEUE, Setup, WriteNote};
use tenantry_apalis::metrics::{JOB_RUNS, JOBS, record_job_states};
use tenantry_core::TenantStatus;
use tenantry_sqlx::SchemaOnDelete;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines written by the test's subscriber.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

impl Lines {
    fn json(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// The value of the series `series` (`name{labels}`), 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_spans_carry_their_tenant_and_runs_are_counted_by_outcome() {
    let lines = Lines::default();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(lines.clone())
        .with_max_level(tracing::Level::INFO)
        .init();
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let s = Setup::new().await;
    let (a, gone, paused) = (s.tenant().await, s.tenant().await, s.tenant().await);
    let done = s.enqueue(&a, WriteNote::new("observed")).await;
    let dropped = s.enqueue(&gone, WriteNote::new("never")).await;
    let waiting = s.enqueue(&paused, WriteNote::new("later")).await;
    let admin = s.tenantry.admin();
    admin
        .delete_tenant(&gone.schema, SchemaOnDelete::Drop)
        .await
        .unwrap();
    admin
        .set_status(&paused.schema, TenantStatus::Suspended)
        .await
        .unwrap();
    let _w = s.start_worker("observe");
    assert!(s.wait_status(&done, "Done").await);
    assert!(s.wait_status(&dropped, "Killed").await);
    let deferred = tenantry_testing::eventually(std::time::Duration::from_secs(30), async || {
        let text = prometheus.render();
        value(
            &text,
            &format!("{JOB_RUNS}{{queue=\"{QUEUE}\",outcome=\"deferred\"}}"),
        ) >= 1.0
    })
    .await;
    assert!(deferred, "no deferred run counted");

    // The job function's log line is inside the job's span, which names the tenant.
    let logs = lines.json();
    let line = logs
        .iter()
        .find(|l| l["fields"]["message"] == "note written")
        .unwrap_or_else(|| panic!("no log line from the job: {logs:#?}"));
    assert_eq!(line["span"]["name"], "tenant_job", "{line}");
    assert_eq!(line["span"]["tenant"], a.schema.as_str(), "{line}");
    assert_eq!(line["span"]["tenant_id"], a.id, "{line}");
    assert_eq!(line["span"]["job"], done.as_str(), "{line}");
    let dropped_line = logs
        .iter()
        .find(|l| l["fields"]["message"] == "tenant job dropped")
        .expect("the dropped job is logged");
    assert!(
        dropped_line["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no longer exists")),
        "{dropped_line}"
    );

    // Runs by outcome, jobs by state; no tenant label anywhere.
    record_job_states(&s.tenantry).await.unwrap();
    let text = prometheus.render();
    let runs = |outcome: &str| {
        value(
            &text,
            &format!("{JOB_RUNS}{{queue=\"{QUEUE}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(runs("done"), 1.0, "{text}");
    assert_eq!(runs("dropped"), 1.0, "{text}");
    assert_eq!(runs("failed"), 0.0, "{text}");
    let jobs = |state: &str| {
        value(
            &text,
            &format!("{JOBS}{{queue=\"{QUEUE}\",state=\"{state}\"}}"),
        )
    };
    assert_eq!(jobs("Done"), 1.0, "{text}");
    assert_eq!(jobs("Killed"), 1.0, "{text}");
    assert_eq!(jobs("Failed"), 0.0, "{text}");
    assert_eq!(
        jobs("Pending") + jobs("Queued") + jobs("Running"),
        1.0,
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("tenantry_job") && l.contains("tenant=\"")),
        "a job series carries a tenant label: {text}"
    );
    assert!(s.titles_in(&paused.schema).await.is_empty());
    let _ = waiting;
}
