//! What the churn did: per host, its states in order with the window of the change that made
//! each one, and the samples the load took on churn hosts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::super::{Kind, Obs};

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
pub(super) enum HostState {
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
pub(super) struct Event {
    pub(super) op: &'static str,
    pub(super) from: Instant,
    pub(super) returned: Instant,
    pub(super) returned_at: f64,
    pub(super) seen: Instant,
    pub(super) state: HostState,
}

/// A churn tenant as the churn task knows it.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) label: String,
    pub(super) schema: String,
    pub(super) primary: String,
    pub(super) extras: Vec<String>,
}

impl Live {
    pub(super) fn hosts(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.primary).chain(&self.extras)
    }

    pub(super) fn state(&self, active: bool) -> HostState {
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
    pub(super) timeline: HashMap<String, Vec<Event>>,
    /// Operations by kind.
    pub ops: BTreeMap<&'static str, u64>,
    /// Library calls that succeeded, by name.
    pub calls: BTreeMap<&'static str, u64>,
    /// Library calls refused with `Error::TenantBusy` (then retried), by name.
    pub busy: BTreeMap<&'static str, u64>,
    /// Label -> registry id of every churn tenant ever created.
    pub(super) ids: HashMap<String, i64>,
    /// The churn tenants at the end.
    pub(super) live: Vec<Live>,
    /// The longest time from a call's return until the server's resolver answered its result.
    pub max_lag: Duration,
    pub elapsed: Duration,
}

impl ChurnLog {
    /// The states `host` may have been in between `s` and `e` (indices into its timeline). A
    /// state lasts from the call that made it until the server heard of the next change.
    pub(super) fn states(&self, host: &str, s: Instant, e: Instant) -> Vec<usize> {
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
    pub(super) fn touched(&self, host: &str, s: Instant, e: Instant) -> bool {
        self.timeline[host]
            .iter()
            .skip(1)
            .any(|ev| ev.from <= e && s <= ev.seen)
    }
}
