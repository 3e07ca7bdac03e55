//! Logs and metrics of the demo.
//!
//! * `GET /metrics` on the public site: Prometheus text from `metrics-exporter-prometheus`
//!   (Tenantry's feature `metrics`): `tenantry_http_requests_total{tenant="<registry id>",
//!   status="2xx"}` and the other series listed in `tenantry::metrics` and
//!   `tenantry::axum::observe`. `TENANTRY_DEMO_METRICS=0` turns it off (no recorder, 404).
//! * Every request runs in Tenantry's `request` span (`tenant`, `tenant_id`, `request_id`);
//!   the request id is tower-http's `x-request-id` (kept when the client sends one, a UUID
//!   otherwise, and returned in the response).
//! * `TENANTRY_DEMO_LOG=json`: JSON log lines (set up in `main.rs`), one `request finished`
//!   line per request with its span's `tenant`.

use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Histogram buckets (seconds) of the request and `BEGIN` latencies.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The process-wide Prometheus recorder, installed on first use. `None` if another recorder
/// was installed first.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("non-empty buckets");
            match builder.install_recorder() {
                Ok(handle) => {
                    // Histogram samples pile up until they are drained by a scrape or an
                    // upkeep: drain them every few seconds, so memory stays flat when nobody
                    // scrapes `/metrics`.
                    let upkeep = handle.clone();
                    std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(std::time::Duration::from_secs(5));
                                upkeep.run_upkeep();
                            }
                        })
                        .expect("spawn the metrics upkeep thread");
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed: /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// `router` with `GET /metrics` (the Prometheus text) added; unchanged if no recorder could be
/// installed. Added as a route (not merged as a router): the public site's fallback, with its
/// JSON errors, stays as it is.
pub fn with_metrics_route(router: Router) -> Router {
    let Some(handle) = prometheus() else {
        return router;
    };
    router.route(
        "/metrics",
        get(move || async move {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
        }),
    )
}

/// Requests counted per `tenant` label of `tenantry_http_requests_total` (every status summed),
/// from the Prometheus recorder: the console's requests-per-tenant chart. Empty without one.
pub fn requests_by_tenant() -> Vec<(String, f64)> {
    let Some(handle) = prometheus() else {
        return Vec::new();
    };
    let mut totals: std::collections::BTreeMap<String, f64> = Default::default();
    for line in handle.render().lines() {
        let Some(rest) = line.strip_prefix("tenantry_http_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let tenant = labels
            .split(',')
            .find_map(|l| l.strip_prefix("tenant=\""))
            .and_then(|v| v.strip_suffix('"'));
        if let (Some(tenant), Ok(value)) = (tenant, value.trim().parse::<f64>()) {
            *totals.entry(tenant.to_owned()).or_default() += value;
        }
    }
    totals.into_iter().collect()
}

/// The app with tower-http's request id in front: `x-request-id` kept when sent, a UUID
/// otherwise; Tenantry's request span records it and the response carries it.
pub fn with_request_id(app: Router) -> Router {
    app.layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    /// The paths the docs name exist in the facade.
    #[test]
    fn documented_paths_exist() {
        let labels = tenantry::metrics::TenantLabels::new(1);
        assert_eq!(labels.budget(), 1);
        assert_eq!(
            tenantry::axum::observe::HTTP_REQUESTS,
            "tenantry_http_requests_total"
        );
    }
}
