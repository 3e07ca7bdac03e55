//! Tenant life cycle against work in flight (issue 11): two tenants swap schema names by renames
//! while requests of both are still going. The demo over real HTTP on a fresh database each
//! time. Queued requests, withheld request bodies, SSE streams and WebSockets across renames,
//! deletes and suspends: `isolation_lifecycle_queued.rs`, `isolation_lifecycle_bodies.rs`,
//! `isolation_lifecycle_feeds.rs` (shared harness: `isolation_lifecycle_support`).
//!
//! Identity is the tenant (its registry id, reached through its domain), not the schema name:
//! after a swap of names, `alpha.localhost` still belongs to the tenant created as `alpha`,
//! whose schema is now called `bravo`. Every note title names the tenant it was written for
//! (`alpha-secret-3`, `bravo-w-7-12`...), so a foreign row is recognisable wherever it shows up.
//!
//! Each test failed against the code before the fix (commit 4ac0362); what it saw there is
//! noted on the test.
//!
//! Run: `cargo test -p tenantry-demo --test isolation_lifecycle -- --nocapture` (reports).

mod isolation_lifecycle_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use isolation_lifecycle_support::*;
use serde_json::json;
use tokio::time::Instant;

/// 1. Requests on both hosts run while the two tenants swap schema names 50 times (three renames
/// each): no answer carries the other tenant's rows, no write lands in the other tenant's schema,
/// no 500 (a 503 with `Retry-After` is allowed: the tenant moved again while the request was
/// re-resolved). Before the fix: ~180 answers per host with the other tenant's rows and ~700
/// answers 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_two_tenants_by_renames_under_load_never_crosses() {
    const CLIENTS: usize = 32;
    const SWAPS: usize = 50;
    let _serial = SERIAL.lock().await;
    let d = Demo::start().await;
    let mut ids = BTreeMap::new();
    for name in ["alpha", "bravo"] {
        d.signup(name).await;
        for i in 1..=5 {
            assert_eq!(
                d.post_note(&format!("{name}.localhost"), &format!("{name}-secret-{i}"))
                    .await,
                201
            );
        }
        ids.insert(name, d.id_of(name).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let (me, other) = if w % 2 == 0 {
                ("alpha", "bravo")
            } else {
                ("bravo", "alpha")
            };
            let (addr, stop) = (d.addr, Arc::clone(&stop));
            tokio::spawn(async move {
                // One keep-alive client per worker.
                let client = client();
                let url = format!("http://{addr}/api/notes");
                let host = format!("{me}.localhost");
                let mut tally = Tally::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let write = n % 3 == 0;
                    let request = if write {
                        let title = format!("{me}-w-{w}-{n}");
                        client.post(&url).json(&json!({"title": title, "body": ""}))
                    } else {
                        client.get(&url)
                    };
                    let Ok(r) = request.header("host", &host).send().await else {
                        tally.client_errors += 1;
                        continue;
                    };
                    let status = r.status().as_u16();
                    let retry_after = r.headers().contains_key("retry-after");
                    let body = r.bytes().await.unwrap_or_default();
                    tally.record(me, other, write, status, retry_after, &body);
                }
                (me, tally)
            })
        })
        .collect();

    // Let the load get going, then swap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..SWAPS {
        let t = Instant::now();
        swap(&d.tenantry, "alpha", "bravo").await;
        slowest = slowest.max(t.elapsed());
    }
    let swapping = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);

    let mut by_host: BTreeMap<&str, Tally> = BTreeMap::new();
    for w in futures::future::join_all(workers).await {
        let (me, tally) = w.expect("load worker");
        by_host.entry(me).or_default().merge(tally);
    }
    eprintln!(
        "[swap-load] {SWAPS} swaps ({} renames) in {:.1}s, slowest swap {:.0}ms",
        SWAPS * 3,
        swapping.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
    for (me, tally) in &by_host {
        tally.print(&format!("swap-load {me}.localhost"));
    }

    for (me, other) in [("alpha", "bravo"), ("bravo", "alpha")] {
        let tally = &by_host[me];
        assert!(
            tally.requests > 200,
            "{me}: too little load ({})",
            tally.requests
        );
        assert_eq!(
            tally.foreign, 0,
            "{me}.localhost answered {other}'s rows: {:?}",
            tally.examples
        );
        assert_eq!(tally.client_errors, 0, "{me}: requests without an answer");
        assert_eq!(tally.bare_503, 0, "{me}: 503 without Retry-After");
        for ((kind, status), n) in &tally.statuses {
            assert!(
                [200, 201, 503].contains(status),
                "{me}.localhost: {n} {kind} answered {status}"
            );
        }
        // The rows: every 201 of this host is in its tenant's schema, nothing of the other's.
        let schema = d.schema_of(ids[me]).await;
        let titles = d.titles_in(&schema).await;
        let own = titles
            .iter()
            .filter(|t| t.starts_with(&format!("{me}-w-")))
            .count();
        let stray: Vec<_> = titles.iter().filter(|t| t.contains(other)).collect();
        eprintln!(
            "[swap-load] tenant {me} (schema {schema}): {} rows, {own} written by its load, {} of {other}'s",
            titles.len(),
            stray.len()
        );
        assert!(
            stray.is_empty(),
            "{other}'s rows in {me}'s schema: {stray:?}"
        );
        assert_eq!(
            own as u64, tally.created,
            "{me}: rows written vs 201 answers"
        );
    }
}

/// What the clients of one host saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    /// (GET or POST, status) -> count.
    statuses: BTreeMap<(&'static str, u16), u64>,
    created: u64,
    retry_503: u64,
    bare_503: u64,
    /// Answers carrying rows of the other tenant.
    foreign: u64,
    client_errors: u64,
    examples: Vec<String>,
}

impl Tally {
    fn record(
        &mut self,
        me: &str,
        other: &str,
        write: bool,
        status: u16,
        retry: bool,
        body: &[u8],
    ) {
        self.requests += 1;
        *self
            .statuses
            .entry((if write { "POST" } else { "GET" }, status))
            .or_default() += 1;
        match (write, status) {
            (true, 201) => self.created += 1,
            (false, 200) => {
                let foreign = foreign_titles(body, me, other);
                if !foreign.is_empty() {
                    self.foreign += 1;
                    if self.examples.len() < 5 {
                        self.examples.push(format!("{foreign:?}"));
                    }
                }
            }
            (_, 503) if retry => self.retry_503 += 1,
            (_, 503) => self.bare_503 += 1,
            _ => {}
        }
    }

    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        for (k, n) in other.statuses {
            *self.statuses.entry(k).or_default() += n;
        }
        self.created += other.created;
        self.retry_503 += other.retry_503;
        self.bare_503 += other.bare_503;
        self.foreign += other.foreign;
        self.client_errors += other.client_errors;
        self.examples.extend(other.examples);
        self.examples.truncate(5);
    }

    fn print(&self, label: &str) {
        eprintln!(
            "[{label}] {} requests, {} created, {} foreign answers, {} x 503 with Retry-After, {} client errors",
            self.requests, self.created, self.foreign, self.retry_503, self.client_errors
        );
        for ((kind, status), n) in &self.statuses {
            eprintln!("[{label}]   {kind:<4} {status}  x{n}");
        }
    }
}
