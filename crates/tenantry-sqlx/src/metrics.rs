//! Metrics through the [`metrics`] crate (cargo feature `metrics`, off by default).
//!
//! Tenantry only *emits*: install any recorder in the application (for Prometheus,
//! `metrics-exporter-prometheus`); without one every call below is a no-op, and without the
//! feature nothing is compiled in at all.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | [`RESOLVE_CACHE`] | counter | `result` = `hit` / `miss` | resolutions answered from memory / by a registry query |
//! | [`BEGIN_SECONDS`] | histogram | `shard` = `0`.. / `pool` | a tenant `BEGIN`: waiting for a pooled connection plus the one round trip of the scoped `BEGIN` |
//! | [`BEGIN_REFUSED`] | counter | `reason` = `suspended` / `maintenance` / `schema_missing` / `tenant_moved` / `error` | tenant `BEGIN`s refused |
//! | [`FLEET_SCHEMAS`] | counter | `outcome` = `done` / `failed` | schemas migrated by [`crate::Fleet::migrate_tenants`] |
//! | [`FLEET_PENDING`] | gauge | | schemas of the running fleet migration not finished yet |
//!
//! Per-tenant labels (requests by tenant in `tenantry-axum`) go through a [`TenantLabels`]
//! budget so that 10,000 tenants never become 10,000 series.
//!
//! ```
//! use tenantry_sqlx::metrics::TenantLabels;
//!
//! let labels = TenantLabels::new(2);
//! assert_eq!(&*labels.label_for_id(7), "7");
//! assert_eq!(&*labels.label_for_id(8), "8");
//! assert_eq!(&*labels.label_for_id(9), "other"); // the budget is spent
//! assert_eq!(&*labels.label_for_id(7), "7"); // admitted tenants keep their label
//! ```

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use metrics::{Counter, Histogram, SharedString};

use crate::Error;
use tenantry_core::{Tenant, TenantStatus};

/// Counter: tenant resolutions, `result` = `hit` (from memory) or `miss` (a registry query, or
/// a wait on one already running).
pub const RESOLVE_CACHE: &str = "tenantry_resolve_cache_total";
/// Histogram (seconds): a tenant `BEGIN` from the request path, by `shard` (`pool` without
/// shards): the wait for a pooled connection plus the scoped `BEGIN`'s round trip. Its
/// growth over the usual round trip is the pool wait.
pub const BEGIN_SECONDS: &str = "tenantry_tenant_begin_seconds";
/// Counter: tenant `BEGIN`s refused, by `reason`.
pub const BEGIN_REFUSED: &str = "tenantry_tenant_begin_refused_total";
/// Counter: schemas finished by a fleet migration, by `outcome` (`done` / `failed`).
pub const FLEET_SCHEMAS: &str = "tenantry_fleet_migrated_schemas_total";
/// Gauge: schemas of the running fleet migration still to do.
pub const FLEET_PENDING: &str = "tenantry_fleet_pending_schemas";

/// The label value of tenants beyond the budget.
pub const OTHER: &str = "other";
/// The label value of requests served by the public site.
pub const PUBLIC: &str = "public";
/// The label value of requests no tenant was found for (unknown hosts...).
pub const UNKNOWN: &str = "unknown";

/// The default [`TenantLabels`] budget.
pub const DEFAULT_LABEL_BUDGET: usize = 100;

/// A fixed budget of per-tenant label values: the first `budget` distinct tenants seen keep
/// their own label (their immutable registry id, [`Tenant::id`], never the schema name, which a
/// rename or a delete hands to another tenant); every later one is counted under
/// [`OTHER`]. So a metric labelled with it has at most `budget + 1` tenant values (plus
/// [`PUBLIC`] / [`UNKNOWN`] where the caller uses them), however many tenants send traffic.
///
/// First come, first labelled: after a restart the tenants that send traffic first (in
/// practice the busy ones) take the budget. Size it to what your metrics backend takes
/// (default [`DEFAULT_LABEL_BUDGET`]); `0` puts every tenant under `other`.
///
/// Cost: one read lock and a hash lookup per call; a write lock only while the budget fills.
pub struct TenantLabels {
    budget: usize,
    admitted: RwLock<HashMap<i64, SharedString>>,
}

impl std::fmt::Debug for TenantLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantLabels")
            .field("budget", &self.budget)
            .field("admitted", &self.admitted())
            .finish()
    }
}

impl Default for TenantLabels {
    fn default() -> Self {
        Self::new(DEFAULT_LABEL_BUDGET)
    }
}

impl TenantLabels {
    /// A budget of `budget` tenant label values.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            admitted: RwLock::new(HashMap::with_capacity(budget.min(4096))),
        }
    }

    /// The label value of `tenant`: its id, or [`OTHER`] once the budget is spent.
    pub fn label(&self, tenant: &Tenant) -> SharedString {
        self.label_for_id(tenant.id)
    }

    /// The label value of the tenant with registry id `id`.
    pub fn label_for_id(&self, id: i64) -> SharedString {
        {
            let admitted = self.admitted.read().unwrap_or_else(|e| e.into_inner());
            if let Some(label) = admitted.get(&id) {
                return label.clone();
            }
            if admitted.len() >= self.budget {
                return SharedString::const_str(OTHER);
            }
        }
        let mut admitted = self.admitted.write().unwrap_or_else(|e| e.into_inner());
        if let Some(label) = admitted.get(&id) {
            return label.clone();
        }
        if admitted.len() >= self.budget {
            return SharedString::const_str(OTHER);
        }
        let label = SharedString::from(id.to_string());
        admitted.insert(id, label.clone());
        label
    }

    /// Tenants holding their own label.
    pub fn admitted(&self) -> usize {
        self.admitted
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

/// Registering a metric looks its key up in the recorder's registry (the key hashed, its
/// labels allocated), which costs several times the update itself. The request path's series
/// are few and fixed, so their handles are registered on first use and kept: with the recorder
/// installed *at that moment* (install it before serving, as `metrics` recommends).
#[derive(Default)]
pub(crate) struct ResolveCounters {
    hit: OnceLock<Counter>,
    miss: OnceLock<Counter>,
}

impl ResolveCounters {
    /// Counts one resolution answered from memory (`hit`) or not.
    pub(crate) fn count(&self, hit: bool) {
        let (cell, result) = if hit {
            (&self.hit, "hit")
        } else {
            (&self.miss, "miss")
        };
        cell.get_or_init(|| metrics::counter!(RESOLVE_CACHE, "result" => result))
            .increment(1);
    }
}

const SHARD_LABELS: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
];

/// The [`BEGIN_SECONDS`] handles, one per shard (see [`ResolveCounters`] on why kept).
#[derive(Default)]
pub(crate) struct BeginTimes {
    pool: OnceLock<Histogram>,
    shards: [OnceLock<Histogram>; SHARD_LABELS.len()],
}

impl BeginTimes {
    /// Records one tenant `BEGIN` on `shard` (`None`: the pool).
    pub(crate) fn record(&self, shard: Option<usize>, seconds: f64) {
        let handle = match shard {
            None => self
                .pool
                .get_or_init(|| metrics::histogram!(BEGIN_SECONDS, "shard" => "pool")),
            Some(i) => match (self.shards.get(i), SHARD_LABELS.get(i)) {
                (Some(cell), Some(label)) => {
                    cell.get_or_init(|| metrics::histogram!(BEGIN_SECONDS, "shard" => *label))
                }
                // Beyond 16 shards: registered per call (rare setups).
                _ => {
                    metrics::histogram!(BEGIN_SECONDS, "shard" => i.to_string()).record(seconds);
                    return;
                }
            },
        };
        handle.record(seconds);
    }
}

/// Counts a refused tenant `BEGIN` (called with the mapped error and the record it was for).
pub(crate) fn begin_refused(e: &Error, tenant: &Tenant) {
    let reason = match e {
        // The registry's check raises one code for every status but active: the record, read
        // moments before, tells maintenance apart.
        Error::TenantNotServing { status, .. } => match (status, tenant.status) {
            (_, TenantStatus::Maintenance) | (TenantStatus::Maintenance, _) => "maintenance",
            _ => "suspended",
        },
        Error::SchemaMissing(_) => "schema_missing",
        Error::TenantMoved(_) => "tenant_moved",
        _ => "error",
    };
    metrics::counter!(BEGIN_REFUSED, "reason" => reason).increment(1);
}

pub(crate) fn fleet_pending(pending: usize) {
    metrics::gauge!(FLEET_PENDING).set(pending as f64);
}

pub(crate) fn fleet_schema(ok: bool) {
    let outcome = if ok { "done" } else { "failed" };
    metrics::counter!(FLEET_SCHEMAS, "outcome" => outcome).increment(1);
    metrics::gauge!(FLEET_PENDING).decrement(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_within_the_budget() {
        let labels = TenantLabels::new(50);
        let mut seen = std::collections::HashSet::new();
        for id in 0..10_000 {
            seen.insert(labels.label_for_id(id).to_string());
        }
        assert_eq!(labels.admitted(), 50);
        assert_eq!(seen.len(), 51, "50 tenants plus `other`");
        assert!(seen.contains(OTHER));
        assert_eq!(&*labels.label_for_id(0), "0");
        assert_eq!(&*labels.label_for_id(9_999), OTHER);
    }

    #[test]
    fn a_zero_budget_labels_everyone_other() {
        let labels = TenantLabels::new(0);
        assert_eq!(&*labels.label_for_id(1), OTHER);
        assert_eq!(labels.admitted(), 0);
    }
}
