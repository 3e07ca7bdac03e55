//! The operator console and the demo's pages in a real headless Chromium (WebDriver through
//! chromedriver, driven by fantoccini), against the demo served on a free port over a real
//! PostgreSQL.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/chromium-setup.sh`); without them the
//! test skips visibly, and fails under `CI=true`. `TENANTRY_SCREENSHOTS=1` also writes the
//! screenshots of the main pages into `docs/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tenantry::{TenantStatus, Tenantry};
use tenantry_demo::{DemoConfig, build};
use tenantry_testing::{TestDb, eventually, free_port, skip};

const PASSWORD: &str = "browser test password";

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(binary: &Path) -> Self {
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, port }
    }

    async fn browser(&self, chromium: &Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--hide-scrollbars"],
            }),
        );
        ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

/// The page's text. Read again when the page changed under the read (a form's answer, a
/// redirect, a live update replaced the element): WebDriver then reports a stale element.
async fn text(c: &Client) -> String {
    let mut last = None;
    for _ in 0..50 {
        let read = match c.find(Locator::Css("body")).await {
            Ok(body) => body.text().await,
            Err(e) => Err(e),
        };
        match read {
            Ok(text) => return text,
            Err(e) if e.is_stale_element_reference() || e.is_no_such_element() => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("reading the page: {e}"),
        }
    }
    panic!("the page never settled: {last:?}")
}

/// Fills `fields` (by name) of the form matching `css` and clicks its submit button, as a
/// person would (the browser's own form checks apply; chromedriver waits for the next page).
async fn submit(c: &Client, css: &str, fields: &[(&str, &str)]) {
    let form = c.form(Locator::Css(css)).await.unwrap();
    for (name, value) in fields {
        form.set_by_name(name, value).await.unwrap();
    }
    form.submit_with(Locator::Css("button[type=submit]"))
        .await
        .unwrap();
}

/// Sets `tenant`'s status with the status form of its page (open in `c`) and waits until the
/// registry says so.
async fn set_status(c: &Client, tenantry: &Tenantry, tenant: &str, status: TenantStatus) {
    let form = c
        .form(Locator::Css("form[action$='/status']"))
        .await
        .unwrap();
    c.find(Locator::Css("select[name=status]"))
        .await
        .unwrap()
        .select_by_value(status.as_str())
        .await
        .unwrap();
    form.submit_with(Locator::Css("button[type=submit]"))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(15), async || {
            tenantry.admin().tenant(tenant).await.unwrap().status == status
        })
        .await,
        "{status:?} from the browser"
    );
}

/// Waits (up to 15 s) until the page's text contains `needle`; the text.
async fn wait_text(c: &Client, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(body) = c.find(Locator::Css("body")).await
            && let Ok(t) = body.text().await
        {
            if t.contains(needle) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {needle:?} in the page: {last}");
}

/// Waits (up to 15 s) until the browser is at `path`.
async fn wait_path(c: &Client, path: &str) {
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(url) = c.current_url().await {
            if url.path() == path {
                return;
            }
            last = url.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser is at {last}, not {path}");
}

async fn screenshot(c: &Client, name: &str) {
    if std::env::var("TENANTRY_SCREENSHOTS").is_err() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn an_operator_runs_a_tenant_through_its_life_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
        find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]),
    ) else {
        skip("Chromium and chromedriver are not installed (.ci/chromium-setup.sh)");
        return;
    };
    let db = TestDb::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = DemoConfig::new(db.url());
    config.url_port = Some(port);
    config.rate_limits = false;
    config.admin_password_hash = Some(tenantry::console::hash_password(PASSWORD).unwrap());
    let (tenantry, app) = build(&config).await.expect("demo builds");
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .unwrap()
    });
    let public = format!("http://localhost:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A few tenants with notes and traffic, so the pages have something to show.
    for name in ["acme", "globex", "initech"] {
        let r = http
            .post(format!("http://127.0.0.1:{port}/signup"))
            .header("host", "localhost")
            .form(&[("name", name), ("subdomain", name)])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success() || r.status().is_redirection());
        for i in 0..3 {
            http.post(format!("http://127.0.0.1:{port}/api/notes"))
                .header("host", format!("{name}.localhost"))
                .json(&serde_json::json!({"title": format!("note {i}"), "body": "hello"}))
                .send()
                .await
                .unwrap();
        }
    }

    let driver = Driver::start(&chromedriver).await;
    let c = driver.browser(&chromium).await;

    // The demo's pages.
    c.goto(&format!("{public}/")).await.unwrap();
    screenshot(&c, "demo-landing").await;
    submit(
        &c,
        "form[action='/signup']",
        &[("name", "Again"), ("subdomain", "acme")],
    )
    .await;
    let page = wait_text(&c, "\"acme\" is taken").await;
    assert!(
        page.contains("Create your workspace"),
        "the form is still there: {page}"
    );
    c.goto(&format!("http://acme.localhost:{port}/"))
        .await
        .unwrap();
    submit(
        &c,
        "#new-note",
        &[("title", "From the browser"), ("body", "typed into a form")],
    )
    .await;
    wait_text(&c, "From the browser").await;
    screenshot(&c, "demo-tenant").await;

    // No session: the console sends the browser to its sign-in page.
    c.goto(&format!("{public}/admin/")).await.unwrap();
    wait_path(&c, "/admin/login").await;
    screenshot(&c, "console-signin").await;
    // A wrong password is refused.
    submit(&c, "form[action='/admin/login']", &[("password", "not it")]).await;
    wait_text(&c, "Wrong password").await;
    // Without the CSRF token, even the right password is refused.
    c.execute(
        "document.querySelector('input[name=csrf_token]').remove()",
        vec![],
    )
    .await
    .unwrap();
    submit(&c, "form[action='/admin/login']", &[("password", PASSWORD)]).await;
    wait_text(&c, "security token").await;
    c.goto(&format!("{public}/admin/")).await.unwrap();
    wait_path(&c, "/admin/login").await;
    // Sign in.
    submit(&c, "form[action='/admin/login']", &[("password", PASSWORD)]).await;
    wait_path(&c, "/admin/").await;
    wait_text(&c, "globex").await;
    screenshot(&c, "console-tenants").await;

    // Create a tenant.
    c.find(Locator::LinkText("New tenant"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(&c, "/admin/tenants/new").await;
    submit(
        &c,
        "form[action='/admin/tenants']",
        &[
            ("name", "browser_co"),
            ("domain", "browser-co.localhost"),
            ("display_name", "Browser Co"),
        ],
    )
    .await;
    wait_path(&c, "/admin/tenants/browser_co").await;
    // Add a domain.
    submit(
        &c,
        "form[action$='/domains']",
        &[("domain", "alias-co.localhost")],
    )
    .await;
    wait_text(&c, "alias-co.localhost").await;
    screenshot(&c, "console-tenant").await;
    let site = format!("http://browser-co.localhost:{port}/");
    let status_of = async || {
        http.get(format!("http://127.0.0.1:{port}/"))
            .header("host", "browser-co.localhost")
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status_of().await, 200);

    // Suspend: the tenant's site answers 403.
    set_status(&c, &tenantry, "browser_co", TenantStatus::Suspended).await;
    assert_eq!(status_of().await, 403);
    c.goto(&site).await.unwrap();
    wait_text(&c, "suspended").await;

    // Resume.
    c.goto(&format!("{public}/admin/tenants/browser_co"))
        .await
        .unwrap();
    set_status(&c, &tenantry, "browser_co", TenantStatus::Active).await;
    assert_eq!(status_of().await, 200);
    c.goto(&site).await.unwrap();
    wait_text(&c, "Browser Co").await;

    // Clone it with its data tools: the copy's page says where it came from.
    c.goto(&format!("{public}/admin/tenants/browser_co"))
        .await
        .unwrap();
    submit(
        &c,
        "form[action$='/clone']",
        &[
            ("new_name", "browser_copy"),
            ("domain", "browser-copy.localhost"),
        ],
    )
    .await;
    wait_path(&c, "/admin/tenants/browser_copy").await;
    wait_text(&c, "Created as a copy of browser_co").await;
    let copy = tenantry.admin().tenant("browser_copy").await.unwrap();
    assert_eq!(
        copy.primary_domain.as_deref(),
        Some("browser-copy.localhost")
    );

    // Rename.
    c.goto(&format!("{public}/admin/tenants/browser_co"))
        .await
        .unwrap();
    submit(
        &c,
        "form[action$='/rename']",
        &[("new_name", "browser_co2")],
    )
    .await;
    wait_path(&c, "/admin/tenants/browser_co2").await;
    assert!(tenantry.admin().tenant("browser_co").await.is_err());

    // Delete, typing the name.
    submit(&c, "form[action$='/delete']", &[("confirm", "browser_co2")]).await;
    wait_path(&c, "/admin/").await;
    assert!(tenantry.admin().tenant("browser_co2").await.is_err());
    assert_eq!(
        tenantry.admin().tenants().await.unwrap().len(),
        4,
        "the others (and the copy) stay"
    );
    assert_eq!(status_of().await, 404);

    // The fleet and charts pages render.
    c.goto(&format!("{public}/admin/fleet")).await.unwrap();
    wait_text(&c, "tenant schemas").await;
    // Start a fleet migration and watch it finish (live over SSE, or already on the page).
    c.find(Locator::Css("form[action='/admin/fleet/migrate'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut finished = false;
    for _ in 0..100 {
        if text(&c).await.contains("schemas opened") {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(finished, "the run's summary: {}", text(&c).await);
    screenshot(&c, "console-fleet").await;
    c.goto(&format!("{public}/admin/charts")).await.unwrap();
    wait_text(&c, "Tenants over time").await;
    screenshot(&c, "console-charts").await;

    // Sign out.
    c.find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.goto(&format!("{public}/admin/")).await.unwrap();
    wait_path(&c, "/admin/login").await;
    c.close().await.unwrap();
}
