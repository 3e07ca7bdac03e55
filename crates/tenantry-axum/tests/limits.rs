//! Fair limits per tenant (feature `limits`), on a real PostgreSQL: the request rate limit (429
//! with `Retry-After`), limits that change at run time, the cap on concurrent transactions
//! (waiters run or get 503 after their wait; other tenants unaffected), places given back on
//! cancellation and panic, and the state of idle tenants evicted.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use common::{builder, tenant};
use tenantry_axum::limits::{Limits, TenantLimiter, TenantLimits};
use tenantry_axum::{CurrentTenant, TenantDb, TenantRouter};
use tenantry_sqlx::{BoxError, Error, Tenant, Tenantry, async_trait};
use tenantry_testing::{TestDb, eventually};

/// Limits from the tenant's data: `{"rps": n, "burst": n, "cap": n, "wait_ms": n}`; absent
/// fields: no limit.
fn from_data(tenant: &Tenant) -> Limits {
    let get = |k: &str| tenant.data.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    Limits::unlimited()
        .rate(get("rps"), get("burst"))
        .max_transactions(get("cap"))
        .transaction_wait(Duration::from_millis(u64::from(get("wait_ms"))))
}

async fn setup(limiter: &TenantLimiter) -> (TestDb, Tenantry) {
    let db = TestDb::new().await;
    let tenantry = builder()
        .transaction_gate(limiter.clone())
        .connect(db.url())
        .await
        .expect("connect");
    tenantry.fleet().migrate_shared().await.expect("migrate");
    (db, tenantry)
}

/// Creates tenant `schema` (host `<schema>.localhost`) with `limits` in its data (see
/// [`from_data`]).
async fn tenant_with(tenantry: &Tenantry, schema: &str, limits: serde_json::Value) {
    tenant(tenantry, schema).await;
    set_data(tenantry, schema, limits).await;
}

async fn set_data(tenantry: &Tenantry, schema: &str, data: serde_json::Value) {
    tenantry
        .admin()
        .set_data(schema, &data)
        .await
        .expect("set data");
}

/// Whether requests to `host` get a 429 within 10 s.
async fn limited_soon(addr: SocketAddr, host: &str) -> bool {
    eventually(Duration::from_secs(10), async || {
        get_as(addr, host, "/").await.status() == 429
    })
    .await
}

/// The request rate the limiter holds for `tenant`.
async fn rps_of(limiter: &TenantLimiter, tenantry: &Tenantry, tenant: &Tenant) -> Option<u32> {
    limiter
        .limits(tenantry, tenant)
        .await
        .requests_per_second
        .map(|n| n.get())
}

/// Counts the transactions of tenant `busy`/`patient` open at once in `/slow` (the highest
/// count seen).
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Gauge {
    fn enter(&self, tenant: &str) {
        if tenant != "other" {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
        }
    }

    fn leave(&self, tenant: &str) {
        if tenant != "other" {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[derive(serde::Deserialize)]
struct Slow {
    ms: u64,
}

fn app(tenantry: Tenantry, limiter: &TenantLimiter, gauge: Gauge) -> Router {
    let site = Router::new()
        .route("/", get(|t: CurrentTenant| async move { t.schema.clone() }))
        .route(
            "/slow",
            get(move |Query(q): Query<Slow>, mut db: TenantDb| {
                let gauge = gauge.clone();
                async move {
                    let schema = db.tenant().schema.clone();
                    gauge.enter(&schema);
                    sqlx::query("SELECT pg_sleep($1)")
                        .bind(q.ms as f64 / 1000.0)
                        .execute(&mut *db)
                        .await
                        .unwrap();
                    gauge.leave(&schema);
                    db.commit().await.unwrap();
                    "done"
                }
            }),
        )
        .layer(limiter.layer());
    TenantRouter::new(tenantry)
        .public(Router::new().route("/", get(|| async { "public" })))
        .tenant(site)
        .into_router()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn get_as(addr: SocketAddr, host: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header("host", host)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn over_the_burst_429_with_retry_after_other_tenants_and_public_unaffected() {
    let limiter = TenantLimiter::new(from_data);
    let (_db, tenantry) = setup(&limiter).await;
    tenant_with(
        &tenantry,
        "noisy",
        serde_json::json!({"rps": 1, "burst": 5}),
    )
    .await;
    tenant(&tenantry, "quiet").await;
    let addr = serve(app(tenantry.clone(), &limiter, Gauge::default())).await;

    let start = Instant::now();
    let mut ok = 0;
    let refused = loop {
        let r = get_as(addr, "noisy.localhost", "/").await;
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 200);
        ok += 1;
        assert!(ok < 100, "never limited");
    };
    // The burst, plus what one token per second refilled meanwhile.
    let refill = start.elapsed().as_secs() as usize + 1;
    assert!(
        (5..=5 + refill).contains(&ok),
        "{ok} requests passed before the 429"
    );
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=1).contains(&retry),
        "Retry-After {retry} at 1 request/s"
    );
    // Other tenants and the public site are not limited by it.
    for _ in 0..20 {
        assert_eq!(get_as(addr, "quiet.localhost", "/").await.status(), 200);
        assert_eq!(get_as(addr, "localhost", "/").await.status(), 200);
    }
    // After Retry-After, the tenant is served again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(get_as(addr, "noisy.localhost", "/").await.status(), 200);
}

#[tokio::test]
async fn a_plan_change_takes_effect_without_restart() {
    let limiter = TenantLimiter::new(from_data);
    let (_db, tenantry) = setup(&limiter).await;
    tenant_with(&tenantry, "acme", serde_json::json!({"rps": 1, "burst": 1})).await;
    let addr = serve(app(tenantry.clone(), &limiter, Gauge::default())).await;
    assert!(
        limited_soon(addr, "acme.localhost").await,
        "the tight plan limits"
    );
    // Upgraded (the tenant's record changes: its registry version moves on): picked up by the
    // next requests, no restart.
    set_data(
        &tenantry,
        "acme",
        serde_json::json!({"rps": 1000, "burst": 1000}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), async || {
            for _ in 0..20 {
                if get_as(addr, "acme.localhost", "/").await.status() != 200 {
                    return false;
                }
            }
            true
        })
        .await,
        "the upgrade is in force"
    );
}

/// Limits from outside the registry (a plan table, a setting): [`TenantLimiter::refresh`] and
/// [`TenantLimiter::refresh_all`] make them count at once.
#[derive(Clone)]
struct Dial(Arc<AtomicU32>);

#[async_trait]
impl TenantLimits for Dial {
    async fn limits(&self, _: &Tenantry, _: &Tenant) -> Result<Limits, BoxError> {
        let rps = self.0.load(Ordering::SeqCst);
        Ok(Limits::unlimited().rate(rps, rps))
    }
}

#[tokio::test]
async fn limits_read_from_outside_the_registry_change_on_refresh() {
    let dial = Dial(Arc::new(AtomicU32::new(1)));
    // Refreshed by age only after an hour: what changes it below is the explicit refresh.
    let limiter = TenantLimiter::builder(dial.clone())
        .refresh_every(Duration::from_secs(3600))
        .build();
    let (_db, tenantry) = setup(&limiter).await;
    tenant(&tenantry, "acme").await;
    let acme = tenantry.admin().tenant("acme").await.unwrap();
    let addr = serve(app(tenantry.clone(), &limiter, Gauge::default())).await;
    assert!(limited_soon(addr, "acme.localhost").await);
    dial.0.store(1000, Ordering::SeqCst);
    // Not yet re-read.
    assert_eq!(rps_of(&limiter, &tenantry, &acme).await, Some(1));
    limiter.refresh(acme.id);
    for _ in 0..20 {
        assert_eq!(get_as(addr, "acme.localhost", "/").await.status(), 200);
    }
    dial.0.store(1, Ordering::SeqCst);
    limiter.refresh_all();
    assert_eq!(rps_of(&limiter, &tenantry, &acme).await, Some(1));
}

#[tokio::test]
async fn with_cap_n_the_extra_transactions_wait_then_run_or_get_503_others_unaffected() {
    let limiter = TenantLimiter::new(from_data);
    let (_db, tenantry) = setup(&limiter).await;
    // Cap 2, waiters give up after 300 ms.
    tenant_with(
        &tenantry,
        "busy",
        serde_json::json!({"cap": 2, "wait_ms": 300}),
    )
    .await;
    tenant_with(
        &tenantry,
        "other",
        serde_json::json!({"cap": 1, "wait_ms": 300}),
    )
    .await;
    let gauge = Gauge::default();
    let addr = serve(app(tenantry.clone(), &limiter, gauge.clone())).await;

    // N + k = 2 + 3 transactions of 1.5 s at once: 2 run, 3 wait 300 ms and get 503.
    let slow: Vec<_> = (0..5)
        .map(|_| tokio::spawn(get_as(addr, "busy.localhost", "/slow?ms=1500")))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Meanwhile another tenant's transaction is not held up by them.
    let r = get_as(addr, "other.localhost", "/slow?ms=0").await;
    assert_eq!(r.status(), 200);
    let mut statuses = Vec::new();
    for handle in slow {
        let r = handle.await.unwrap();
        if r.status() == 503 {
            assert_eq!(r.headers()["retry-after"], "1");
        }
        statuses.push(r.status().as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503, 503, 503]);
    assert_eq!(gauge.max.load(Ordering::SeqCst), 2);

    // Waiters that get a place within their wait run: 2 + 2 transactions of 200 ms, cap 2,
    // wait 5 s.
    tenant_with(
        &tenantry,
        "patient",
        serde_json::json!({"cap": 2, "wait_ms": 5000}),
    )
    .await;
    gauge.max.store(0, Ordering::SeqCst);
    let slow: Vec<_> = (0..4)
        .map(|_| tokio::spawn(get_as(addr, "patient.localhost", "/slow?ms=200")))
        .collect();
    for handle in slow {
        assert_eq!(handle.await.unwrap().status(), 200);
    }
    assert_eq!(gauge.max.load(Ordering::SeqCst), 2);
}

/// With cap 1, whether tenant `acme` can open a transaction at once.
async fn place_free(tenantry: &Tenantry, acme: &Arc<Tenant>) -> bool {
    match tenantry.begin(acme).await {
        Ok(tx) => {
            tx.rollback().await.unwrap();
            true
        }
        Err(Error::TooManyTransactions { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_place_is_given_back_on_commit_rollback_drop_cancellation_and_panic() {
    let limiter = TenantLimiter::new(from_data);
    let (_db, tenantry) = setup(&limiter).await;
    tenant_with(
        &tenantry,
        "acme",
        serde_json::json!({"cap": 1, "wait_ms": 200}),
    )
    .await;
    let acme = Arc::new(tenantry.admin().tenant("acme").await.unwrap());

    // Held while the transaction lives; back after commit, rollback and drop.
    let tx = tenantry.begin(&acme).await.unwrap();
    assert!(!place_free(&tenantry, &acme).await, "the cap holds");
    tx.commit().await.unwrap();
    assert!(place_free(&tenantry, &acme).await, "after commit");
    let tx = tenantry.begin(&acme).await.unwrap();
    drop(tx);
    assert!(place_free(&tenantry, &acme).await, "after drop");

    // Cancellation: the request future dropped mid-transaction (a client gone, a timeout).
    let (t, a) = (tenantry.clone(), Arc::clone(&acme));
    let work = async move {
        let mut tx = t.begin(&a).await.unwrap();
        sqlx::query("SELECT pg_sleep(10)")
            .execute(&mut *tx)
            .await
            .unwrap();
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(300), work)
            .await
            .is_err()
    );
    assert!(place_free(&tenantry, &acme).await, "after cancellation");

    // The same through HTTP: the client gives up, the server drops the handler.
    let addr = serve(app(tenantry.clone(), &limiter, Gauge::default())).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gone = client
        .get(format!("http://{addr}/slow?ms=10000"))
        .header("host", "acme.localhost")
        .send()
        .await;
    assert!(gone.is_err(), "the client timed out");
    assert!(
        eventually(Duration::from_secs(5), async || place_free(
            &tenantry, &acme
        )
        .await)
        .await,
        "after the client went away"
    );

    // Panic inside the transaction.
    let (t, a) = (tenantry.clone(), Arc::clone(&acme));
    let panicked = tokio::spawn(async move {
        let _tx = t.begin(&a).await.unwrap();
        panic!("handler bug");
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    assert!(place_free(&tenantry, &acme).await, "after a panic");
}

#[tokio::test]
async fn idle_tenants_state_is_evicted() {
    let limiter = TenantLimiter::builder(|_: &Tenant| Limits::unlimited().rate(10, 10))
        .max_tenants(100)
        .idle_eviction(Duration::from_millis(200))
        .build();
    let (_db, tenantry) = setup(&limiter).await;
    tenant(&tenantry, "acme").await;
    let record = tenantry.admin().tenant("acme").await.unwrap();
    // 1,000 tenants seen once (records by hand: only the id keys the state).
    for id in 1..=1000 {
        let mut t = record.clone();
        t.id = id;
        limiter.limits(&tenantry, &t).await;
    }
    assert!(
        limiter.tenants_tracked() <= 100,
        "{} kept",
        limiter.tenants_tracked()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(limiter.tenants_tracked(), 0, "idle tenants dropped");
}

/// As an admission check of the layer, the rate limit answers before the body is read: a
/// throttled client that withholds its body gets its 429 at once, not the body timeout's 408,
/// and never holds a buffer or a connection.
#[tokio::test]
async fn as_an_admission_check_the_rate_limit_answers_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let limiter = TenantLimiter::new(from_data);
    let (_db, tenantry) = setup(&limiter).await;
    tenant_with(
        &tenantry,
        "noisy",
        serde_json::json!({"rps": 1, "burst": 1}),
    )
    .await;
    let site = Router::new().route(
        "/",
        get(|t: CurrentTenant| async move { t.schema.clone() })
            .post(|body: String| async move { body.len().to_string() }),
    );
    let app = TenantRouter::new(tenantry)
        .tenant(site)
        .request_body_timeout(Duration::from_secs(120))
        .admission(limiter)
        .into_router();
    let addr = serve(app).await;

    // The one token of the burst.
    assert_eq!(get_as(addr, "noisy.localhost", "/").await.status(), 200);
    // Headers announce 1,000 bytes; none follow.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nhost: noisy.localhost\r\ncontent-length: 1000\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0; 64];
    let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut head))
        .await
        .expect("no answer while the body is withheld: the body was awaited first")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
}
