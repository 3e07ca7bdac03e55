//! Shared by the `demo_api*` tests: the demo served over real HTTP on an ephemeral port, on a
//! fresh database ([`Server`]).

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use tenantry_demo::{DemoConfig, build};
use tenantry_testing::TestDb;

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) tenantry: tenantry::Tenantry,
    pub(crate) _db: TestDb,
}

impl Server {
    pub(crate) async fn start() -> Self {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let db = TestDb::new().await;
        let (tenantry, app) = build(&DemoConfig::new(db.url()))
            .await
            .expect("demo builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service())
                .await
                .unwrap()
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Server {
            base,
            client,
            tenantry,
            _db: db,
        }
    }

    pub(crate) fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header("host", host)
    }

    pub(crate) fn post(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("host", host)
    }

    pub(crate) async fn signup(&self, name: &str, subdomain: &str) -> reqwest::Response {
        self.post("localhost:8000", "/signup")
            .form(&[("name", name), ("subdomain", subdomain)])
            .send()
            .await
            .unwrap()
    }
}
