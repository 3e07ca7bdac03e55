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
pub(crate) type Labels = Arc<crate::request_metrics::RequestMetrics>;
/// The layer's tenant label budget (feature `metrics`; nothing without it).
#[cfg(not(feature = "metrics"))]
pub(crate) type Labels = ();
