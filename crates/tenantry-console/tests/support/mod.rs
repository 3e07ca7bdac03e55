//! A console served on a free port over a throwaway database, and a signed-in client.

#![allow(dead_code, unreachable_pub)]

use tenantry_console::{Console, hash_password};
use tenantry_sqlx::Tenantry;
use tenantry_testing::{TestDb, notes_migrations};

/// The password every test console accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running console (mounted at `/admin`) and its database.
pub struct Served {
    pub db: TestDb,
    pub tenantry: Tenantry,
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Served {
    pub async fn start() -> Self {
        Self::start_with(|console| console).await
    }

    /// [`Served::start`], with `configure` applied to the console.
    pub async fn start_with(configure: impl FnOnce(Console) -> Console) -> Self {
        let db = TestDb::new().await;
        let tenantry = db
            .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
            .await;
        let console = configure(
            Console::new(tenantry.clone(), &hash_password(PASSWORD).unwrap())
                .unwrap()
                .mount_path("/admin"),
        );
        let app = axum::Router::new().merge(console.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/admin", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            db,
            tenantry,
            base,
            server,
        }
    }

    /// A client that keeps cookies and doesn't follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A signed-in client and its session's CSRF token.
    pub async fn signed_in(&self) -> (reqwest::Client, String) {
        let client = self.client();
        let token = self.token(&client, "/login").await;
        let r = client
            .post(format!("{}/login", self.base))
            .form(&[("password", PASSWORD), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "sign-in");
        let token = self.token(&client, "/").await;
        (client, token)
    }

    /// The text of the page at `path` (below the console's mount), fetched with `client`.
    pub async fn page(&self, client: &reqwest::Client, path: &str) -> String {
        client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The CSRF token in the page at `path`.
    pub async fn token(&self, client: &reqwest::Client, path: &str) -> String {
        let page = self.page(client, path).await;
        csrf_in(&page).unwrap_or_else(|| panic!("no CSRF token in {path}: {page}"))
    }
}

/// The value of the first `csrf_token` hidden input of `page`.
pub fn csrf_in(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    Some(page[at..].split('"').next()?.to_owned())
}
