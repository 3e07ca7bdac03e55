//! The demo app on an ephemeral port (with peer addresses), on a fresh database.

// Helpers shared by several test binaries: each uses a part (dead_code), and `pub` only
// marks what the test files call (a test binary exports nothing, so unreachable_pub is noise).
#![allow(dead_code, unreachable_pub)]

use tenantry::Tenantry;
use tenantry_demo::{DemoConfig, build};
use tenantry_testing::TestDb;

/// A running demo.
pub struct Demo {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client that does not follow redirects.
    pub client: reqwest::Client,
    /// The demo's Tenantry handle (what `tenantry tenant suspend` etc. call).
    pub tenantry: Tenantry,
    _db: TestDb,
}

impl Demo {
    /// Starts the demo with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the demo after `adjust`ing its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut DemoConfig)) -> Self {
        let db = TestDb::new().await;
        let mut config = DemoConfig::new(db.url());
        // Far more than a plan's 20 requests per second per tenant.
        config.rate_limits = false;
        adjust(&mut config);
        let (tenantry, app) = build(&config).await.expect("demo builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info())
                .await
                .unwrap()
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Demo {
            base,
            client,
            tenantry,
            _db: db,
        }
    }

    /// GET `path` with `Host: host`.
    pub fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header("host", host)
    }

    /// POST `path` with `Host: host`.
    pub fn post(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("host", host)
    }

    /// Signs up through the public form; `kind` is the optional tenant type.
    pub async fn signup(&self, subdomain: &str, kind: &str) {
        let r = self
            .post("localhost:8000", "/signup")
            .form(&[
                ("name", subdomain),
                ("subdomain", subdomain),
                ("type", kind),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "sign-up of {subdomain}");
    }

    /// GET returning (status, body).
    pub async fn fetch(&self, host: &str, path: &str) -> (u16, String) {
        let r = self.get(host, path).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// GET returning JSON (asserting 200).
    pub async fn json(&self, host: &str, path: &str) -> serde_json::Value {
        let r = self.get(host, path).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {host}{path}");
        r.json().await.unwrap()
    }
}
