//! The handles of the request metrics (feature `metrics`), one set per tenant label value.
//!
//! `metrics::counter!(name, labels...)` looks its key up in the recorder's registry on every
//! call (labels allocated, key hashed, a map read): several times the cost of the update. The
//! series here are bounded by the label budget, so each one's handles are registered once,
//! on first use, and kept. Registered with the recorder installed at that moment: install it
//! before serving (as the `metrics` crate recommends for cached handles).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{Counter, Histogram, SharedString};
use tenantry_sqlx::Tenant;
use tenantry_sqlx::metrics::{OTHER, PUBLIC, TenantLabels, UNKNOWN};

use crate::observe::{HTTP_DURATION, HTTP_REQUESTS, Who};

/// The status classes counted (`1xx`..`5xx`), indexed by the first digit minus one.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The series of one `tenant` label value: a counter per status class (registered when that
/// class is first seen, so no empty series appear) and the latency histogram.
struct Series {
    tenant: SharedString,
    requests: [OnceLock<Counter>; 5],
    duration: Histogram,
}

impl Series {
    fn new(tenant: SharedString) -> Self {
        let duration = metrics::histogram!(HTTP_DURATION, "tenant" => tenant.clone());
        Self {
            tenant,
            requests: Default::default(),
            duration,
        }
    }

    fn record(&self, status: u16, seconds: f64) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.requests[class]
            .get_or_init(|| {
                metrics::counter!(HTTP_REQUESTS, "tenant" => self.tenant.clone(), "status" => CLASSES[class])
            })
            .increment(1);
        self.duration.record(seconds);
    }
}

/// The request metrics of one layer: the tenant label budget and the handles of every label
/// value it gave out (at most the budget + `other`, `public`, `unknown`).
pub(crate) struct RequestMetrics {
    budget: Arc<TenantLabels>,
    /// Tenants holding a label of their own, by registry id.
    tenants: RwLock<HashMap<i64, Arc<Series>>>,
    other: OnceLock<Series>,
    public: OnceLock<Series>,
    unknown: OnceLock<Series>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::new(Arc::new(TenantLabels::default()))
    }
}

impl RequestMetrics {
    pub(crate) fn new(budget: Arc<TenantLabels>) -> Self {
        Self {
            budget,
            tenants: RwLock::default(),
            other: OnceLock::new(),
            public: OnceLock::new(),
            unknown: OnceLock::new(),
        }
    }

    /// The label budget.
    pub(crate) fn budget(&self) -> &Arc<TenantLabels> {
        &self.budget
    }

    /// Counts one finished request for `who`.
    pub(crate) fn record(&self, who: &Who, status: u16, seconds: f64) {
        let fixed = |cell: &OnceLock<Series>, label: &'static str| {
            cell.get_or_init(|| Series::new(SharedString::const_str(label)))
                .record(status, seconds)
        };
        match who {
            Who::Unknown => fixed(&self.unknown, UNKNOWN),
            Who::Public => fixed(&self.public, PUBLIC),
            Who::Tenant(t) => match self.tenant_series(t) {
                Some(series) => series.record(status, seconds),
                None => fixed(&self.other, OTHER),
            },
        }
    }

    /// `tenant`'s own series, or `None` when it is counted under `other`.
    fn tenant_series(&self, tenant: &Tenant) -> Option<Arc<Series>> {
        if let Some(series) = self.read().get(&tenant.id) {
            return Some(Arc::clone(series));
        }
        let label = self.budget.label(tenant);
        if &*label == OTHER {
            return None;
        }
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        let series = tenants
            .entry(tenant.id)
            .or_insert_with(|| Arc::new(Series::new(label)));
        Some(Arc::clone(series))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i64, Arc<Series>>> {
        self.tenants.read().unwrap_or_else(|e| e.into_inner())
    }
}
