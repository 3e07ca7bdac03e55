//! The adversarial traffic: `total` requests of a weighted mix of kinds (reads, writes, writes
//! that fail or panic, disconnects mid-query, savepoint games, timeouts, session scope, public
//! reads) on random tenants, every answer checked as it arrives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::app::{Counters, DELIBERATE_500, Obs, host, schema};
use super::checks::check;
use super::churn;

/// The kinds of request the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Read,
    Write,
    WriteFail,
    Panic,
    Disconnect,
    Savepoint,
    StatementTimeout,
    TokioTimeout,
    Session,
    Public,
}

/// Relative weights of the request kinds.
pub const MIX: &[(Kind, u32)] = &[
    (Kind::Read, 36),
    (Kind::Write, 14),
    (Kind::WriteFail, 5),
    (Kind::Panic, 3),
    (Kind::Disconnect, 4),
    (Kind::Savepoint, 10),
    (Kind::StatementTimeout, 3),
    (Kind::TokioTimeout, 3),
    (Kind::Session, 7),
    (Kind::Public, 15),
];

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests sent.
    pub requests: u64,
    /// Responses (or observations) carrying another tenant's data or path.
    pub violations: u64,
    /// The first few violations, for the failure message.
    pub examples: Vec<String>,
    /// Count per (kind, status); status 0 = client disconnected on purpose, 1 = transport error.
    /// Requests to churn hosts are not counted here (see `samples`).
    pub statuses: std::collections::BTreeMap<(String, u16), u64>,
    /// 500s other than the deliberate ones ([`DELIBERATE_500`]), on any host: a failure.
    pub unexpected_500: Vec<String>,
    /// Requests to churn hosts, checked after the run against the churn log (`churn::verify`).
    pub samples: Vec<churn::Sample>,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.requests += other.requests;
        self.violations += other.violations;
        self.examples.extend(other.examples.into_iter().take(10));
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.unexpected_500.extend(other.unexpected_500);
        self.samples.extend(other.samples);
    }

    /// Number of responses with `status` over all kinds.
    pub fn count_status(&self, status: u16) -> u64 {
        self.statuses
            .iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, v)| v)
            .sum()
    }
}

/// The number of stress requests: `TENANTRY_STRESS_REQUESTS` or `default`.
pub fn requested_size(default: u64) -> u64 {
    std::env::var("TENANTRY_STRESS_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pick(mix: &[(Kind, u32)], rng: &mut impl Rng) -> Kind {
    let total: u32 = mix.iter().map(|m| m.1).sum();
    let mut x = rng.random_range(0..total);
    for (k, w) in mix {
        if x < *w {
            return *k;
        }
        x -= w;
    }
    unreachable!()
}

/// Sends `total` requests from `concurrency` clients on random tenants and checks every body.
pub async fn run_load(
    addr: SocketAddr,
    n_tenants: usize,
    total: u64,
    concurrency: usize,
) -> Report {
    run_load_with(addr, n_tenants, total, concurrency, MIX, None).await
}

/// Like [`run_load`] with another mix of request kinds, stopping early when `stop` is set.
pub async fn run_load_with(
    addr: SocketAddr,
    n_tenants: usize,
    total: u64,
    concurrency: usize,
    mix: &'static [(Kind, u32)],
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Report {
    let load = Load {
        addr,
        n_tenants,
        total,
        concurrency,
        mix,
        stop,
        churn: None,
    };
    load.run().await
}

/// A load: `total` requests from `concurrency` clients.
pub struct Load {
    pub addr: SocketAddr,
    /// Tenants `0..n_tenants` (hosts `t{i:03}.test`) are checked strictly, response by response.
    pub n_tenants: usize,
    pub total: u64,
    pub concurrency: usize,
    pub mix: &'static [(Kind, u32)],
    /// Stops early when set.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Hosts whose tenants change during the run, and the share of tenant requests sent to them;
    /// their answers are kept as samples and checked after the run.
    pub churn: Option<(Arc<Vec<String>>, f64)>,
}

impl Load {
    /// Sends the requests and checks every answer.
    pub async fn run(self) -> Report {
        let load = Arc::new(self);
        let next = Arc::new(AtomicU64::new(0));
        let workers = (0..load.concurrency).map(|_| {
            let next = Arc::clone(&next);
            let load = Arc::clone(&load);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
                let mut report = Report::default();
                while next.fetch_add(1, Ordering::Relaxed) < load.total
                    && !load
                        .stop
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed))
                {
                    load.one(&client, &mut rng, &mut report).await;
                }
                report
            })
        });
        let mut report = Report::default();
        for w in futures::future::join_all(workers).await {
            report.merge(w.expect("load worker"));
        }
        report
    }

    async fn one(&self, client: &reqwest::Client, rng: &mut impl Rng, report: &mut Report) {
        let kind = pick(self.mix, rng);
        let i = rng.random_range(0..self.n_tenants);
        let churn_host = match &self.churn {
            Some((hosts, share)) if kind != Kind::Public && rng.random_bool(*share) => {
                Some(hosts[rng.random_range(0..hosts.len())].clone())
            }
            _ => None,
        };
        let (host, expected) = match (&churn_host, kind) {
            (Some(h), _) => (h.clone(), String::new()),
            (None, Kind::Public) => ("public.test".to_owned(), "public".to_owned()),
            (None, _) => (host(i), schema(i)),
        };
        let path = match kind {
            Kind::Read | Kind::Public => "/read".to_owned(),
            Kind::Write => "/write".to_owned(),
            Kind::WriteFail => "/write-fail".to_owned(),
            Kind::Panic => "/panic".to_owned(),
            Kind::Disconnect => "/slow".to_owned(),
            Kind::Savepoint => {
                format!("/savepoint?other={}", rng.random_range(0..self.n_tenants))
            }
            Kind::StatementTimeout => "/statement-timeout".to_owned(),
            Kind::TokioTimeout => "/tokio-timeout".to_owned(),
            Kind::Session => "/session".to_owned(),
        };
        report.requests += 1;
        let sent = Instant::now();
        let send = client
            .get(format!("http://{}{path}", self.addr))
            .header("host", &host)
            .send();
        let answer = if kind == Kind::Disconnect {
            // Walk away while the handler's pg_sleep runs.
            let wait = Duration::from_millis(rng.random_range(5..40));
            match tokio::time::timeout(wait, send).await {
                Err(_) => Answer::walked_away(),
                Ok(r) => Answer::read(r).await,
            }
        } else {
            Answer::read(send.await).await
        };
        let done = Instant::now();
        answer.check_error_body(&host, report);
        if answer.status == 500 && !DELIBERATE_500.contains(&answer.body.as_str()) {
            report
                .unexpected_500
                .push(format!("{kind:?} on {host}: 500 {:?}", answer.body));
        }
        let obs = (answer.status == 200).then(|| serde_json::from_str::<Obs>(&answer.body));
        if let Some(host) = churn_host {
            report.samples.push(churn::Sample {
                host,
                kind,
                sent,
                done,
                status: answer.status,
                retry_after: answer.retry_after,
                obs: obs.and_then(Result::ok),
            });
            return;
        }
        let violation = match obs {
            Some(Ok(obs)) => check(&obs, &expected),
            Some(Err(e)) => Some(format!("unparseable 200 body for {expected}: {e}")),
            None => None,
        };
        if let Some(v) = violation {
            report.violations += 1;
            if report.examples.len() < 10 {
                report.examples.push(v);
            }
        }
        *report
            .statuses
            .entry((format!("{kind:?}"), answer.status))
            .or_default() += 1;
    }
}

/// An answer as the client saw it.
struct Answer {
    /// 0: the client walked away on purpose; 1: transport error.
    status: u16,
    retry_after: bool,
    body: String,
}

impl Answer {
    fn walked_away() -> Self {
        Self {
            status: 0,
            retry_after: false,
            body: String::new(),
        }
    }

    async fn read(r: reqwest::Result<reqwest::Response>) -> Self {
        let Ok(r) = r else {
            return Self {
                status: 1,
                ..Self::walked_away()
            };
        };
        Self {
            status: r.status().as_u16(),
            retry_after: r.headers().contains_key(reqwest::header::RETRY_AFTER),
            body: r.text().await.unwrap_or_default(),
        }
    }

    /// Error bodies are generic: they must never name a tenant.
    fn check_error_body(&self, host: &str, report: &mut Report) {
        if self.status != 200 && (self.body.contains("\"t") || self.body.contains("markers")) {
            report.violations += 1;
            report
                .examples
                .push(format!("error body for {host} leaks: {}", self.body));
        }
    }
}

/// Prints a report in one block (visible with `--nocapture`).
pub fn print_report(label: &str, report: &Report, counters: &Counters, elapsed: Duration) {
    eprintln!(
        "[{label}] {} requests in {:.1}s, {} violations; server: {} handlers dropped mid-query, {} panics caught, {} savepoint rollbacks",
        report.requests,
        elapsed.as_secs_f64(),
        report.violations,
        counters.dropped_mid_handler.load(Ordering::Relaxed),
        counters.panicked.load(Ordering::Relaxed),
        counters.savepoint_rollbacks.load(Ordering::Relaxed),
    );
    for ((kind, status), n) in &report.statuses {
        eprintln!("[{label}]   {kind:<17} {status:>3}  x{n}");
    }
    for e in &report.examples {
        eprintln!("[{label}] VIOLATION {e}");
    }
}
