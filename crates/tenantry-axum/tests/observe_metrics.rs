//! Request metrics by tenant (feature `metrics`): the number of tenant label values stays
//! within the layer's budget whatever the number of tenants sending traffic, and real tenants
//! get their own counter.
//!
//! `cargo test -p tenantry-axum --features metrics --test observe_metrics`

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use common::{probe_router, public_router, setup, tenant};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tenantry_axum::strategy::{
    HostStrategy, Identification, Identified, RequestInfo, TenantKey, TenantStrategy,
};
use tenantry_axum::{HttpError, TenantRouter};
use tenantry_sqlx::metrics::TenantLabels;
use tenantry_sqlx::{Tenant, TenantStatus};
use tower::ServiceExt;

/// Identifies `x-test-tenant: <id>` as an already resolved tenant record with that id (a
/// stand-in for 10,000 registry tenants: the layer serves it like any resolved tenant).
struct ById;

#[tenantry_axum::async_trait]
impl TenantStrategy for ById {
    async fn identify(&self, req: &RequestInfo<'_>) -> Result<Identification, HttpError> {
        let Some(id) = req
            .headers
            .get("x-test-tenant")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
        else {
            return Ok(Identification::NotIdentified);
        };
        Ok(Identification::Tenant(Identified::new(
            TenantKey::Resolved(Arc::new(Tenant {
                id,
                schema: format!("t_{id}"),
                display_name: format!("Tenant {id}"),
                status: TenantStatus::Active,
                tenant_type: "default".into(),
                primary_domain: None,
                data: serde_json::json!({}),
                created_at: Utc::now(),
                schema_oid: None,
                registry_version: None,
                node_epoch: None,
            })),
        )))
    }
}

/// `tenant` label values of `metric` in the Prometheus text.
fn tenant_labels(text: &str, metric: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter_map(|l| {
            let rest = &l[l.find("tenant=\"")? + 8..];
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect()
}

/// The recorder of this test binary (global: installed once, shared by its tests).
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
        handle
    })
}

/// The value of the series `line_prefix` (`name{labels}`), 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn refusals_by_reason_and_fleet_progress() {
    let handle = recorder();
    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "sleepy").await;
    tenant(&tenantry, "busy").await;
    let before = handle.render();
    tenantry
        .admin()
        .set_status("sleepy", TenantStatus::Suspended)
        .await
        .unwrap();
    let sleepy = tenantry.resolve_schema("sleepy").await.unwrap().unwrap();
    assert!(tenantry.begin(&sleepy).await.is_err());
    tenantry
        .admin()
        .set_status("busy", TenantStatus::Maintenance)
        .await
        .unwrap();
    let busy = tenantry.resolve_schema("busy").await.unwrap().unwrap();
    assert!(tenantry.begin(&busy).await.is_err());
    let report = tenantry
        .fleet()
        .migrate_tenants(Default::default())
        .await
        .unwrap();
    let after = handle.render();
    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert!(
        delta("tenantry_tenant_begin_refused_total{reason=\"suspended\"}") >= 1.0,
        "{after}"
    );
    assert!(
        delta("tenantry_tenant_begin_refused_total{reason=\"maintenance\"}") >= 1.0,
        "{after}"
    );
    // Other tests of this binary may migrate at the same time: at least ours are counted.
    assert!(
        delta("tenantry_fleet_migrated_schemas_total{outcome=\"done\"}")
            >= report.migrated() as f64,
        "{after}"
    );
    assert!(after.contains("tenantry_fleet_pending_schemas"), "{after}");
}

#[tokio::test]
async fn tenant_labels_stay_within_the_budget_for_10000_tenants() {
    let handle = recorder();

    let (_db, tenantry) = setup().await;
    tenant(&tenantry, "acme").await;
    tenant(&tenantry, "globex").await;
    let acme = tenantry.resolve_schema("acme").await.unwrap().unwrap();
    let globex = tenantry.resolve_schema("globex").await.unwrap().unwrap();

    const BUDGET: usize = 20;
    let labels = Arc::new(TenantLabels::new(BUDGET));
    let app = TenantRouter::new(tenantry)
        .strategy(ById)
        .strategy(HostStrategy)
        .metrics_labels(Arc::clone(&labels))
        .public(public_router())
        .tenant(probe_router())
        .into_router();
    let send = |host: &str, id: Option<i64>, path: &str| {
        let mut req = Request::get(path).header("host", host);
        if let Some(id) = id {
            req = req.header("x-test-tenant", id.to_string());
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap())
    };

    // The real tenants first: they take budget slots and keep them.
    for _ in 0..3 {
        assert_eq!(
            send("acme.localhost", None, "/whoami")
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        send("globex.localhost", None, "/whoami")
            .await
            .unwrap()
            .status(),
        200
    );
    // 10,000 distinct tenants (ids far from the registry's), each sending one request.
    for id in 0..10_000_i64 {
        let r = send("localhost", Some(1_000_000 + id), "/").await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // The public site and an unknown host.
    assert_eq!(send("localhost", None, "/").await.unwrap().status(), 200);
    assert_eq!(
        send("nobody.example.com", None, "/")
            .await
            .unwrap()
            .status(),
        404
    );

    let text = handle.render();
    let requests = tenant_labels(&text, "tenantry_http_requests_total");
    assert!(
        requests.len() <= BUDGET + 3,
        "{} tenant label values: {requests:?}",
        requests.len()
    );
    assert_eq!(labels.admitted(), BUDGET);
    for expected in ["other", "public", "unknown"] {
        assert!(requests.contains(expected), "{expected} in {requests:?}");
    }
    // Real tenants are labelled by their registry id, never by their schema name.
    let acme_line = format!(
        "tenantry_http_requests_total{{tenant=\"{}\",status=\"2xx\"}} 3",
        acme.id
    );
    assert!(text.contains(&acme_line), "{acme_line} in\n{text}");
    assert!(requests.contains(&globex.id.to_string()));
    assert!(!text.contains("tenant=\"acme\""));
    let durations = tenant_labels(&text, "tenantry_http_request_duration_seconds_count");
    assert!(durations.len() <= BUDGET + 3, "{durations:?}");
    // The library metrics are there too: resolutions from memory and by query, BEGINs by shard.
    assert!(
        text.contains("tenantry_resolve_cache_total{result=\"hit\"}"),
        "{text}"
    );
    assert!(
        text.contains("tenantry_resolve_cache_total{result=\"miss\"}"),
        "{text}"
    );
    assert!(text.contains("tenantry_tenant_begin_seconds"), "{text}");
}
