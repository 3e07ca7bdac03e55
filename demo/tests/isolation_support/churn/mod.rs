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

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tenantry::{Error, NewTenant, Resolution, SchemaOnDelete, Tenant, TenantStatus, Tenantry};

mod log;
mod verify;

pub use log::{ChurnLog, Sample};
use log::{Event, HostState, Live};
// Only `isolation_stress` judges churn; the other test crates compile this module unused.
#[allow(unused_imports)]
pub use verify::{Verdict, check_rows, print, verify};

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
