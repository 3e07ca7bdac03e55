//! Lifecycle churn for the isolation stress: while the load runs, one task renames tenants
//! (swaps of two names with three renames; a rename away followed by a new tenant under the old
//! name), deletes them (and signs the same name and domain up again), moves extra domains
//! between them and suspends and resumes them. It works through its own handle, as the CLI on
//! the same database would, so the server hears of each change only through its listener.
//!
//! The churn touches only its own tenants, on their own hosts (`c{k}.test` primary domains,
//! `x{j}.test` extra domains that move). Each churn tenant has a unique label (its display
//! name) that tags its marker rows: a tenant's identity is its registry id and label, which a
//! rename leaves alone, not its schema name.
//!
//! Every change is logged per host with its window: from the library call to the moment the
//! server's resolver answers the new state. After the run, each answer on a churn host is
//! checked against the states its host may have been in while the request ran ([`verify`]),
//! and every churn schema is checked to hold its own tenant's rows only ([`check_rows`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::AssertSqlSafe;
use tenantry::{Error, NewTenant, Resolution, SchemaOnDelete, Tenant, TenantStatus, Tenantry};

use super::{Kind, Obs};

/// Primary domains `c0.test`.. (one of them is free at the start of every round).
const SLOTS: usize = 6;
/// Extra (non-primary) domains `x0.test`.. that move between tenants.
const EXTRAS: usize = 3;
/// Attempts of a library call refused with `TenantBusy` before the churn gives up.
const BUSY_ATTEMPTS: usize = 100;
/// Prefix of churn schema names (never a strict tenant's `t000`..).
const SCHEMA_PREFIX: &str = "tk";

/// Every host the churn touches.
pub fn hosts() -> Vec<String> {
    (0..SLOTS)
        .map(|k| format!("c{k}.test"))
        .chain((0..EXTRAS).map(|j| format!("x{j}.test")))
        .collect()
}

/// A request to a churn host, as the client saw it.
#[derive(Debug)]
pub struct Sample {
    pub host: String,
    pub kind: Kind,
    pub sent: Instant,
    pub done: Instant,
    /// 0: the client walked away on purpose; 1: transport error.
    pub status: u16,
    pub retry_after: bool,
    /// The body of a 200 (`None` if unparseable).
    pub obs: Option<Obs>,
}

/// What a host serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostState {
    Nobody,
    Tenant {
        label: String,
        schema: String,
        active: bool,
    },
}

/// A change of a host's state (or a rename of its tenant), committed between `from` and
/// `returned` (`returned_at` on the wall clock, seconds since the Unix epoch), heard by the
/// server by `seen`.
#[derive(Debug)]
struct Event {
    op: &'static str,
    from: Instant,
    returned: Instant,
    returned_at: f64,
    seen: Instant,
    state: HostState,
}

/// A churn tenant as the churn task knows it.
#[derive(Debug, Clone)]
struct Live {
    label: String,
    schema: String,
    primary: String,
    extras: Vec<String>,
}

impl Live {
    fn hosts(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.primary).chain(&self.extras)
    }

    fn state(&self, active: bool) -> HostState {
        HostState::Tenant {
            label: self.label.clone(),
            schema: self.schema.clone(),
            active,
        }
    }
}

/// What the churn did.
#[derive(Debug, Default)]
pub struct ChurnLog {
    /// Per host, its states in order (the first one from the set-up).
    timeline: HashMap<String, Vec<Event>>,
    /// Operations by kind.
    pub ops: BTreeMap<&'static str, u64>,
    /// Library calls that succeeded, by name.
    pub calls: BTreeMap<&'static str, u64>,
    /// Library calls refused with `Error::TenantBusy` (then retried), by name.
    pub busy: BTreeMap<&'static str, u64>,
    /// Label -> registry id of every churn tenant ever created.
    ids: HashMap<String, i64>,
    /// The churn tenants at the end.
    live: Vec<Live>,
    /// The longest time from a call's return until the server's resolver answered its result.
    pub max_lag: Duration,
    pub elapsed: Duration,
}

/// The churn task's state.
pub struct Churn {
    admin: Tenantry,
    server: Tenantry,
    rng: StdRng,
    live: Vec<Live>,
    free_primaries: Vec<String>,
    free_extras: Vec<String>,
    next: usize,
    log: ChurnLog,
}

impl Churn {
    /// Creates the churn tenants through `admin` (all slots but one, extra domains spread over
    /// them); `server` is the handle the app serves with.
    pub async fn setup(admin: Tenantry, server: Tenantry) -> Self {
        let mut churn = Self {
            admin,
            server,
            rng: StdRng::from_rng(&mut rand::rng()),
            live: Vec::new(),
            free_primaries: Vec::new(),
            free_extras: Vec::new(),
            next: 0,
            log: ChurnLog::default(),
        };
        for k in 0..SLOTS - 1 {
            let (label, schema) = churn.fresh();
            churn.create(label, schema, format!("c{k}.test")).await;
        }
        churn.free_primaries.push(format!("c{}.test", SLOTS - 1));
        churn.free_extras = (0..EXTRAS).map(|j| format!("x{j}.test")).collect();
        for _ in 0..EXTRAS {
            churn.move_domain().await;
        }
        churn.log = ChurnLog {
            ids: std::mem::take(&mut churn.log.ids),
            ..ChurnLog::default()
        };
        // The set-up state is where every host starts.
        let now = Instant::now();
        let mut initial: Vec<(String, HostState)> = churn
            .free_primaries
            .iter()
            .map(|h| (h.clone(), HostState::Nobody))
            .collect();
        for t in &churn.live {
            initial.extend(t.hosts().map(|h| (h.clone(), t.state(true))));
        }
        for (host, state) in initial {
            churn.log.timeline.insert(
                host,
                vec![Event {
                    op: "set-up",
                    from: now,
                    returned: now,
                    returned_at: 0.0,
                    seen: now,
                    state,
                }],
            );
        }
        churn
    }

    /// Churns until `stop` is set (and at least one round is done); returns the log.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<ChurnLog> {
        tokio::spawn(async move {
            let started = Instant::now();
            let mut rounds = 0;
            while rounds == 0 || !stop.load(Ordering::Relaxed) {
                self.round().await;
                rounds += 1;
            }
            self.log.elapsed = started.elapsed();
            self.log.live = self.live;
            self.log
        })
    }

    /// One round of every operation (it starts and ends with one free primary domain).
    async fn round(&mut self) {
        self.swap().await;
        self.move_domain().await;
        self.suspend_resume().await;
        self.rename_away_and_reuse().await;
        self.move_domain().await;
        self.delete_and_resignup().await;
        self.retire().await;
        self.move_domain().await;
    }

    /// Swaps the names of two tenants with three renames (`a -> tmp`, `b -> a`, `tmp -> b`).
    async fn swap(&mut self) {
        let (a, b) = self.two();
        let (sa, sb) = (self.live[a].schema.clone(), self.live[b].schema.clone());
        let (_, tmp) = self.fresh();
        self.rename(a, &tmp).await;
        self.rename(b, &sa).await;
        self.rename(a, &sb).await;
        self.count("swap of two names (3 renames)");
    }

    /// Renames a tenant away and signs a new tenant up under its old name (on the free primary
    /// domain).
    async fn rename_away_and_reuse(&mut self) {
        let a = self.pick();
        let old = self.live[a].schema.clone();
        let (label, new) = self.fresh();
        self.rename(a, &new).await;
        let domain = self.free_primaries.pop().expect("a free primary domain");
        self.create(label, old, domain).await;
        self.count("rename away + new tenant under the old name");
    }

    /// Deletes a tenant and signs the same name and domain up again (a new tenant id).
    async fn delete_and_resignup(&mut self) {
        let a = self.pick();
        let gone = self.delete(a).await;
        self.free_primaries.retain(|d| *d != gone.primary);
        let (label, _) = self.fresh();
        self.create(label, gone.schema, gone.primary).await;
        self.count("delete + re-signup (same name and domain)");
    }

    /// Deletes a tenant for good (its primary domain becomes free).
    async fn retire(&mut self) {
        let a = self.pick();
        self.delete(a).await;
        self.count("delete");
    }

    /// Moves an extra domain to another tenant (remove, then add), or gives a free one to a
    /// tenant.
    async fn move_domain(&mut self) {
        let (domain, previous) = if self.free_extras.is_empty() {
            let owned: Vec<(usize, String)> = self
                .live
                .iter()
                .enumerate()
                .flat_map(|(i, t)| t.extras.iter().map(move |x| (i, x.clone())))
                .collect();
            let (owner, domain) = owned[self.rng.random_range(0..owned.len())].clone();
            timed(
                &self.server,
                &mut self.log,
                "remove_domain",
                vec![(domain.clone(), HostState::Nobody)],
                || self.admin.admin().remove_domain(&domain),
            )
            .await;
            self.live[owner].extras.retain(|x| *x != domain);
            self.count("domain move (remove + add)");
            (domain, Some(self.live[owner].label.clone()))
        } else {
            let i = self.rng.random_range(0..self.free_extras.len());
            self.count("domain added");
            (self.free_extras.swap_remove(i), None)
        };
        let candidates: Vec<usize> = (0..self.live.len())
            .filter(|&i| Some(&self.live[i].label) != previous.as_ref())
            .collect();
        let to = candidates[self.rng.random_range(0..candidates.len())];
        self.live[to].extras.push(domain.clone());
        let schema = self.live[to].schema.clone();
        let state = self.live[to].state(true);
        timed(
            &self.server,
            &mut self.log,
            "add_domain",
            vec![(domain.clone(), state)],
            || self.admin.admin().add_domain(&schema, &domain, false),
        )
        .await;
    }

    /// Suspends a tenant for a little while, then resumes it.
    async fn suspend_resume(&mut self) {
        let a = self.pick();
        let t = self.live[a].clone();
        for (active, status) in [
            (false, TenantStatus::Suspended),
            (true, TenantStatus::Active),
        ] {
            let states = t.hosts().map(|h| (h.clone(), t.state(active))).collect();
            timed(&self.server, &mut self.log, "set_status", states, || {
                self.admin.admin().set_status(&t.schema, status)
            })
            .await;
            if !active {
                let pause = self.rng.random_range(10..50);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
        self.count("suspend + resume");
    }

    async fn rename(&mut self, i: usize, new: &str) {
        let old = std::mem::replace(&mut self.live[i].schema, new.to_owned());
        let t = self.live[i].clone();
        let states = t.hosts().map(|h| (h.clone(), t.state(true))).collect();
        timed(&self.server, &mut self.log, "rename_tenant", states, || {
            self.admin.admin().rename_tenant(&old, new)
        })
        .await;
    }

    async fn delete(&mut self, i: usize) -> Live {
        let t = self.live.swap_remove(i);
        let states = t.hosts().map(|h| (h.clone(), HostState::Nobody)).collect();
        timed(&self.server, &mut self.log, "delete_tenant", states, || {
            self.admin
                .admin()
                .delete_tenant(&t.schema, SchemaOnDelete::Drop)
        })
        .await;
        self.free_primaries.push(t.primary.clone());
        self.free_extras.extend(t.extras.iter().cloned());
        t
    }

    async fn create(&mut self, label: String, schema: String, primary: String) {
        let t = Live {
            label,
            schema,
            primary,
            extras: Vec::new(),
        };
        let state = vec![(t.primary.clone(), t.state(true))];
        let new = NewTenant::new(&t.schema, &t.primary).display_name(&t.label);
        let created: Tenant = timed(&self.server, &mut self.log, "create_tenant", state, || {
            self.admin.admin().create_tenant(new.clone())
        })
        .await;
        self.log.ids.insert(t.label.clone(), created.id);
        self.live.push(t);
    }

    fn count(&mut self, op: &'static str) {
        *self.log.ops.entry(op).or_default() += 1;
    }

    /// A new label and schema name.
    fn fresh(&mut self) -> (String, String) {
        self.next += 1;
        (
            format!("k{}", self.next),
            format!("{SCHEMA_PREFIX}{}", self.next),
        )
    }

    fn pick(&mut self) -> usize {
        self.rng.random_range(0..self.live.len())
    }

    fn two(&mut self) -> (usize, usize) {
        let a = self.pick();
        let b = (a + self.rng.random_range(1..self.live.len())) % self.live.len();
        (a, b)
    }
}

/// Runs a library call (retried while it is refused with `TenantBusy`), then waits until the
/// server's resolver answers the new `states` and logs them with the call's window.
async fn timed<T, Fut>(
    server: &Tenantry,
    log: &mut ChurnLog,
    call: &'static str,
    states: Vec<(String, HostState)>,
    f: impl Fn() -> Fut,
) -> T
where
    Fut: Future<Output = Result<T, Error>>,
{
    let from = Instant::now();
    let mut attempts = 0;
    let value = loop {
        attempts += 1;
        match f().await {
            Ok(v) => break v,
            Err(Error::TenantBusy { .. }) if attempts < BUSY_ATTEMPTS => {
                *log.busy.entry(call).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("churn: {call} failed after {attempts} attempts: {e:?}"),
        }
    };
    let returned = Instant::now();
    let returned_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    *log.calls.entry(call).or_default() += 1;
    settle(server, call, &states).await;
    let seen = Instant::now();
    log.max_lag = log.max_lag.max(seen - returned);
    for (host, state) in states {
        log.timeline.entry(host).or_default().push(Event {
            op: call,
            from,
            returned,
            returned_at,
            seen,
            state,
        });
    }
    value
}

/// Waits until the server resolves every host to its new state.
async fn settle(server: &Tenantry, call: &str, states: &[(String, HostState)]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for (host, want) in states {
        loop {
            let now = match server.resolve_host(host).await {
                Ok(Resolution::Tenant(t)) => HostState::Tenant {
                    label: t.display_name.clone(),
                    schema: t.schema.clone(),
                    active: t.status == TenantStatus::Active,
                },
                Ok(_) => HostState::Nobody,
                Err(e) => panic!("churn: resolving {host}: {e}"),
            };
            if now == *want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "churn: 10 s after {call}, the server still resolves {host} to {now:?}, not {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl ChurnLog {
    /// The states `host` may have been in between `s` and `e` (indices into its timeline). A
    /// state lasts from the call that made it until the server heard of the next change.
    fn states(&self, host: &str, s: Instant, e: Instant) -> Vec<usize> {
        let events = &self.timeline[host];
        (0..events.len())
            .filter(|&i| {
                let end = events.get(i + 1).map(|n| n.seen);
                events[i].from <= e && end.is_none_or(|end| s <= end)
            })
            .collect()
    }

    /// Whether a change of `host` or of its tenant (a rename too) was under way between `s`
    /// and `e`.
    fn touched(&self, host: &str, s: Instant, e: Instant) -> bool {
        self.timeline[host]
            .iter()
            .skip(1)
            .any(|ev| ev.from <= e && s <= ev.seen)
    }
}

/// The answers of churn hosts, judged.
#[derive(Debug, Default)]
pub struct Verdict {
    pub requests: u64,
    /// Answers carrying another tenant's rows, or served by a tenant the host did not have.
    pub violations: Vec<String>,
    /// Answers that no state the host was in explains (not a breach, but wrong).
    pub unexplained: Vec<String>,
    /// Answers by (kind, answer).
    pub answers: BTreeMap<(String, &'static str), u64>,
    /// 200 answers to writes, by label.
    writes: HashMap<String, u64>,
}

/// Judges every sample against the states its host may have been in while it ran.
pub fn verify(log: &ChurnLog, samples: &[Sample]) -> Verdict {
    let mut v = Verdict::default();
    for x in samples {
        v.requests += 1;
        let deliberate_500 = matches!(
            x.kind,
            Kind::WriteFail | Kind::Panic | Kind::StatementTimeout
        );
        let events = &log.timeline[&x.host];
        let possible = log.states(&x.host, x.sent, x.done);
        let states: Vec<&HostState> = possible.iter().map(|&i| &events[i].state).collect();
        let took = (x.done - x.sent).as_secs_f64() * 1e3;
        let what = format!("{:?} on {} ({took:.0} ms)", x.kind, x.host);
        let (answer, unexplained) = match x.status {
            200 => {
                match &x.obs {
                    None => v.violations.push(format!("{what}: unparseable 200")),
                    Some(o) => judge_200(log, x, o, &possible, &what, &mut v),
                }
                ("200", false)
            }
            404 => ("404 (no tenant)", !states.contains(&&HostState::Nobody)),
            403 => (
                "403 (suspended)",
                !states
                    .iter()
                    .any(|s| matches!(s, HostState::Tenant { active: false, .. })),
            ),
            503 if x.retry_after => ("503 Retry-After", !log.touched(&x.host, x.sent, x.done)),
            500 if deliberate_500 => ("500 (deliberate)", false),
            504 if x.kind == Kind::TokioTimeout => ("504 (deliberate)", false),
            0 if x.kind == Kind::Disconnect => ("client walked away", false),
            _ => ("other", true),
        };
        if unexplained {
            v.unexplained.push(format!(
                "{what}: status {} (retry-after: {}) while the host was {states:?}",
                x.status, x.retry_after
            ));
        }
        *v.answers
            .entry((format!("{:?}", x.kind), answer))
            .or_default() += 1;
    }
    v
}

fn judge_200(log: &ChurnLog, x: &Sample, o: &Obs, possible: &[usize], what: &str, v: &mut Verdict) {
    let events = &log.timeline[&x.host];
    let states: Vec<&HostState> = possible.iter().map(|&i| &events[i].state).collect();
    // The transaction ran in its own tenant's schema, which holds that tenant's rows only.
    let consistent = !o.markers.is_empty()
        && o.markers.iter().all(|m| *m == o.label)
        && o.id == o.resolved_id
        && log.ids.get(&o.label) == Some(&o.id)
        && o.schema.as_deref() == Some(o.tenant.as_str())
        && o.path.starts_with(&o.tenant);
    // ... and that tenant had the host, under that schema name, while the request ran.
    let held = |s: &HostState, need_active: bool| {
        matches!(s, HostState::Tenant { label, schema, active }
            if *label == o.label && *schema == o.tenant && (*active || !need_active))
    };
    if !consistent || !states.iter().any(|s| held(s, false)) {
        v.violations
            .push(format!("{what}: {o:?} while the host was {states:?}"));
        return;
    }
    let held: Vec<usize> = possible
        .iter()
        .copied()
        .filter(|&i| held(&events[i].state, true))
        .collect();
    if held.is_empty() {
        v.unexplained
            .push(format!("{what}: served while suspended: {o:?}"));
        return;
    }
    // Read after the change that ended the tenant's hold on the host had returned? (The
    // hold that ended last; none if it still holds the host.)
    let end = events.get(held[held.len() - 1] + 1);
    if let Some(end) = end
        && o.read_at > end.returned_at
    {
        // The scoped BEGIN checks the tenant's identity, status and, for host-routed requests,
        // that the host is still the tenant's: no read may follow the change that ended the hold.
        let after_ms = (o.read_at - end.returned_at) * 1e3;
        v.violations.push(format!(
            "{what}: read {after_ms:.1} ms after {} had returned: {o:?}",
            end.op
        ));
        return;
    }
    if x.kind == Kind::Write {
        *v.writes.entry(o.label.clone()).or_default() += 1;
    }
}

/// After the run: the registry holds what the churn made, and every churn schema holds its own
/// tenant's rows only (no rolled-back row, every answered write). Returns (rows of another
/// tenant, other problems).
pub async fn check_rows(
    admin: &Tenantry,
    log: &ChurnLog,
    verdict: &Verdict,
) -> (Vec<String>, Vec<String>) {
    let (mut violations, mut problems) = (Vec::new(), Vec::new());
    let mut registry: Vec<(String, String, i64, TenantStatus)> = admin
        .admin()
        .tenants()
        .await
        .expect("tenants")
        .into_iter()
        .filter(|t| t.schema.starts_with(SCHEMA_PREFIX))
        .map(|t| (t.schema, t.display_name, t.id, t.status))
        .collect();
    let mut model: Vec<(String, String, i64, TenantStatus)> = log
        .live
        .iter()
        .map(|t| {
            let id = log.ids[&t.label];
            (t.schema.clone(), t.label.clone(), id, TenantStatus::Active)
        })
        .collect();
    registry.sort_by(|a, b| a.0.cmp(&b.0));
    model.sort_by(|a, b| a.0.cmp(&b.0));
    if registry != model {
        problems.push(format!(
            "registry {registry:?} differs from the churn's model {model:?}"
        ));
    }
    let pool = admin.raw_pool();
    for t in &log.live {
        let mut domains: Vec<(String, bool)> = admin
            .admin()
            .domains(&t.schema)
            .await
            .expect("domains")
            .into_iter()
            .map(|d| (d.domain, d.is_primary))
            .collect();
        let mut want: Vec<(String, bool)> = t.extras.iter().map(|x| (x.clone(), false)).collect();
        want.push((t.primary.clone(), true));
        domains.sort();
        want.sort();
        if domains != want {
            problems.push(format!(
                "{} ({}) has domains {domains:?}, expected {want:?}",
                t.schema, t.label
            ));
        }
        let (foreign, poison, writes): (Vec<String>, i64, i64) =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT coalesce(array_agg(DISTINCT tenant) FILTER (WHERE tenant <> $1), '{{}}'), \
                 count(*) FILTER (WHERE kind = 'poison'), count(*) FILTER (WHERE kind = 'write') \
                 FROM \"{}\".markers",
                t.schema
            )))
            .bind(&t.label)
            .fetch_one(pool)
            .await
            .expect("count markers");
        if !foreign.is_empty() {
            violations.push(format!(
                "{} ({}) holds rows of {foreign:?}",
                t.schema, t.label
            ));
        }
        if poison != 0 {
            problems.push(format!(
                "{} ({}): {poison} rolled-back rows survive",
                t.schema, t.label
            ));
        }
        let answered = verdict.writes.get(&t.label).copied().unwrap_or(0);
        if writes as u64 != answered {
            problems.push(format!(
                "{} ({}): {writes} written rows, {answered} writes answered 200",
                t.schema, t.label
            ));
        }
    }
    let mut schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
    )
    .bind(SCHEMA_PREFIX)
    .fetch_all(pool)
    .await
    .expect("schemas");
    let mut live: Vec<String> = log.live.iter().map(|t| t.schema.clone()).collect();
    live.sort();
    schemas.sort();
    if schemas != live {
        problems.push(format!("churn schemas {schemas:?}, live tenants {live:?}"));
    }
    (violations, problems)
}

/// Prints what the churn did and how its hosts answered (visible with `--nocapture`).
pub fn print(label: &str, log: &ChurnLog, v: &Verdict) {
    let ops: u64 = log.ops.values().sum();
    eprintln!(
        "[{label}] churn: {ops} operations in {:.1}s; the server's resolver saw each change within {:.1} ms of the call",
        log.elapsed.as_secs_f64(),
        log.max_lag.as_secs_f64() * 1e3
    );
    for (op, n) in &log.ops {
        eprintln!("[{label}]   {op:<45} x{n}");
    }
    for (call, n) in &log.calls {
        let busy = log.busy.get(call).copied().unwrap_or(0);
        eprintln!("[{label}]   call {call:<16} x{n:<5} refused TenantBusy (then retried) x{busy}");
    }
    eprintln!(
        "[{label}] churn hosts: {} requests, {} violations, {} unexplained answers",
        v.requests,
        v.violations.len(),
        v.unexplained.len()
    );
    for ((kind, answer), n) in &v.answers {
        eprintln!("[{label}]   {kind:<17} {answer:<20} x{n}");
    }
    for e in v.violations.iter().take(10) {
        eprintln!("[{label}] VIOLATION {e}");
    }
    for e in v.unexplained.iter().take(10) {
        eprintln!("[{label}] UNEXPLAINED {e}");
    }
}
