//! The request span and the request metrics of [`crate::TenantLayer`].
//!
//! **Span.** Every request the layer sees runs inside a span named `request` (target
//! `tenantry_axum::request`, level INFO by default, see [`crate::TenantLayer::request_span`])
//! with the fields `tenant` (the resolved tenant's schema, or `public` / `unknown`),
//! `tenant_id` (its immutable registry id), `request_id` (the `x-request-id` header, e.g. set
//! by tower-http's `SetRequestIdLayer` in front, kept as sent), `method` and `path`. Every event
//! the app logs while handling the request carries them; when the request ends an event
//! `request finished` (level DEBUG, same target) records `status` and `latency_ms`. When
//! tracing is off for that level and target (no subscriber, or filtered out) the span is a
//! disabled one: no field is read and no clock is read for it.
//!
//! **Metrics** (cargo feature `metrics`, through the [`metrics`](https://docs.rs/metrics)
//! crate; install a recorder such as `metrics-exporter-prometheus`):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `tenantry_http_requests_total` | counter | `tenant`, `status` (`2xx`...) |
//! | `tenantry_http_request_duration_seconds` | histogram | `tenant` |
//!
//! `tenant` is the tenant's registry id while the layer's label budget lasts
//! (`tenantry_sqlx::metrics::TenantLabels`, first come first labelled, default 100), then
//! `other`; `public` for the public site, `unknown` when no tenant was found. So the number of
//! tenant label values is at most the budget + 3, whatever the number of tenants.

use std::sync::Arc;

use axum::response::Response;
use http::Request;
use tenantry_sqlx::Tenant;
use tracing::{Level, Span};

/// The target of the request span and of its `request finished` event.
pub const REQUEST_TARGET: &str = "tenantry_axum::request";

/// Counter of requests by `tenant` and `status` class (feature `metrics`).
pub const HTTP_REQUESTS: &str = "tenantry_http_requests_total";
/// Histogram (seconds) of request latency by `tenant` (feature `metrics`).
pub const HTTP_DURATION: &str = "tenantry_http_request_duration_seconds";

/// Who a request turned out to be for.
pub(crate) enum Who {
    Unknown,
    Public,
    Tenant(Arc<Tenant>),
}

macro_rules! request_span {
    ($level:expr, $req:expr) => {
        tracing::span!(
            target: "tenantry_axum::request",
            $level,
            "request",
            tenant = tracing::field::Empty,
            tenant_id = tracing::field::Empty,
            request_id = request_id($req).map(tracing::field::display),
            method = %$req.method(),
            path = %$req.uri().path(),
        )
    };
}

/// The request's span at `level` (`None`: no span). Disabled (and free) when tracing is off.
pub(crate) fn request_span<B>(level: Option<Level>, req: &Request<B>) -> Span {
    match level {
        Some(Level::ERROR) => request_span!(Level::ERROR, req),
        Some(Level::WARN) => request_span!(Level::WARN, req),
        Some(Level::INFO) => request_span!(Level::INFO, req),
        Some(Level::DEBUG) => request_span!(Level::DEBUG, req),
        Some(Level::TRACE) => request_span!(Level::TRACE, req),
        None => Span::none(),
    }
}

/// The `x-request-id` header as sent, if it is short printable text.
fn request_id<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 200)
}

/// Records who the request is for in its span.
pub(crate) fn record(span: &Span, who: &Who) {
    if span.is_disabled() {
        return;
    }
    match who {
        Who::Unknown => {
            span.record("tenant", tracing::field::display("unknown"));
        }
        Who::Public => {
            span.record("tenant", tracing::field::display("public"));
        }
        Who::Tenant(t) => {
            span.record("tenant", tracing::field::display(&t.schema));
            span.record("tenant_id", t.id);
        }
    }
}

/// The clock of one request: read only when something will use it.
pub(crate) struct Probe(Option<std::time::Instant>);

impl Probe {
    pub(crate) fn start(span: &Span) -> Self {
        let on = cfg!(feature = "metrics")
            || (!span.is_disabled() && tracing::enabled!(target: REQUEST_TARGET, Level::DEBUG));
        Self(on.then(std::time::Instant::now))
    }

    /// The end of the request: the `request finished` event and the metrics.
    pub(crate) fn finish(self, span: &Span, settings: &Labels, who: &Who, response: &Response) {
        let Some(start) = self.0 else { return };
        let elapsed = start.elapsed();
        if !span.is_disabled() {
            span.in_scope(|| {
                tracing::debug!(
                    target: REQUEST_TARGET,
                    status = response.status().as_u16(),
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    "request finished"
                )
            });
        }
        #[cfg(feature = "metrics")]
        settings.record(who, response.status().as_u16(), elapsed.as_secs_f64());
        #[cfg(not(feature = "metrics"))]
        let _ = (settings, who);
    }
}

/// The layer's request metrics and their label budget (feature `metrics`; nothing without it).
#[cfg(feature = "metrics")]
pub(crate) type Labels = Arc<request_metrics::RequestMetrics>;
/// The layer's tenant label budget (feature `metrics`; nothing without it).
#[cfg(not(feature = "metrics"))]
pub(crate) type Labels = ();

#[cfg(feature = "metrics")]
pub(crate) mod request_metrics {
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

    use super::{HTTP_DURATION, HTTP_REQUESTS, Who};

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
}
