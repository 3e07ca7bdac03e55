//! The demo's fair limits (contract): a tenant's request rate comes from its plan (Free, which
//! sign-ups get: 20 requests per second, bursts of 40); over it, 429 with `Retry-After`; a plan
//! change (of the tenant, or of the plan's row) counts without a restart; other tenants are
//! unaffected; `rate_limits: false` (`TENANTRY_DEMO_RATE_LIMITS=0`) turns it off.

use std::time::{Duration, Instant};

use tenantry::NewTenant;
use tenantry_demo::{DemoConfig, TenantData, build};
use tenantry_testing::{TestDb, eventually};

struct Demo {
    base: String,
    client: reqwest::Client,
    tenantry: tenantry::Tenantry,
    _db: TestDb,
}

impl Demo {
    async fn start(rate_limits: bool) -> Self {
        let db = TestDb::new().await;
        let mut config = DemoConfig::new(db.url());
        config.rate_limits = rate_limits;
        let (tenantry, app) = build(&config).await.expect("demo builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info())
                .await
                .unwrap()
        });
        Demo {
            base,
            client: reqwest::Client::new(),
            tenantry,
            _db: db,
        }
    }

    async fn tenant(&self, name: &str, plan: &str) {
        let data = TenantData { plan: plan.into() };
        self.tenantry
            .admin()
            .create_tenant(
                NewTenant::new(name, format!("{name}.localhost"))
                    .data(&data)
                    .unwrap(),
            )
            .await
            .expect("create tenant");
    }

    async fn whoami(&self, name: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/api/whoami", self.base))
            .header("host", format!("{name}.localhost"))
            .send()
            .await
            .unwrap()
    }

    /// `GET /api/notes`: a handler with a tenant transaction.
    async fn notes(&self, name: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/api/notes", self.base))
            .header("host", format!("{name}.localhost"))
            .send()
            .await
            .unwrap()
    }

    /// Requests until the first 429 (at most `max`): how many passed, and the 429.
    async fn until_limited(&self, name: &str, max: usize) -> (usize, Option<reqwest::Response>) {
        for passed in 0..max {
            let r = self.whoami(name).await;
            if r.status() == 429 {
                return (passed, Some(r));
            }
            assert_eq!(r.status(), 200);
        }
        (max, None)
    }
}

#[tokio::test]
async fn the_free_plan_allows_a_burst_of_40_then_429_with_retry_after() {
    let demo = Demo::start(true).await;
    demo.tenant("acme", "free").await;
    demo.tenant("calm", "free").await;
    let start = Instant::now();
    let (passed, refused) = demo.until_limited("acme", 1000).await;
    let refused = refused.expect("limited");
    // 40 at once, plus the 20 per second refilled while they were sent.
    let refill = 20 * (start.elapsed().as_secs() as usize + 1);
    assert!((40..=40 + refill).contains(&passed), "{passed} passed");
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry, 1,
        "one request every 50 ms: retry in (at most) a second"
    );
    // Another tenant on the same plan has its own allowance.
    let (passed, _) = demo.until_limited("calm", 30).await;
    assert_eq!(passed, 30);
}

#[tokio::test]
async fn plan_changes_count_without_restart() {
    let demo = Demo::start(true).await;
    demo.tenant("acme", "free").await;
    assert!(demo.until_limited("acme", 1000).await.1.is_some());
    // Upgraded to Enterprise (no rate limit): the tenant's record changes.
    demo.tenantry
        .admin()
        .set_data(
            "acme",
            &TenantData {
                plan: "enterprise".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            demo.until_limited("acme", 100).await.0 == 100
        })
        .await,
        "the upgrade counts"
    );
    // The Enterprise plan's row gets a limit: picked up within the plan refresh.
    let mut db = demo.tenantry.begin_public().await.unwrap();
    sqlx::query(
        "UPDATE plans SET requests_per_second = 1, request_burst = 2 WHERE code = 'enterprise'",
    )
    .execute(&mut *db)
    .await
    .unwrap();
    db.commit().await.unwrap();
    assert!(
        eventually(tenantry_demo::limits::PLAN_REFRESH * 3, async || demo
            .until_limited("acme", 10)
            .await
            .1
            .is_some())
        .await,
        "the plan's new limit counts"
    );
}

#[tokio::test]
async fn rate_limits_off() {
    let demo = Demo::start(false).await;
    demo.tenant("acme", "free").await;
    assert_eq!(demo.until_limited("acme", 200).await.0, 200);
}

#[tokio::test]
async fn a_plan_with_a_transaction_cap_answers_503_once_its_places_are_taken() {
    let demo = Demo::start(true).await;
    demo.tenant("acme", "pro").await;
    demo.tenant("calm", "pro").await;
    let mut db = demo.tenantry.begin_public().await.unwrap();
    sqlx::query("UPDATE plans SET max_transactions = 1 WHERE code = 'pro'")
        .execute(&mut *db)
        .await
        .unwrap();
    db.commit().await.unwrap();
    // A job of acme's holds its only place (the demo's handle has the gate).
    let acme = std::sync::Arc::new(demo.tenantry.admin().tenant("acme").await.unwrap());
    let held = demo.tenantry.begin(&acme).await.unwrap();
    let r = demo.notes("acme").await;
    assert_eq!(r.status(), 503, "waited, then refused");
    assert_eq!(r.headers()["retry-after"], "1");
    // Another tenant on the same plan has its own place.
    assert_eq!(demo.notes("calm").await.status(), 200);
    drop(held);
    assert_eq!(demo.notes("acme").await.status(), 200, "the place is back");
}
