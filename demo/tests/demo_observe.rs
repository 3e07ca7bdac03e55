//! The demo's logs and metrics contract, through the real binary: `GET /metrics` on the public
//! host shows the request counter of a tenant that got requests (labelled by its registry id),
//! and `TENANTRY_DEMO_LOG=json` prints JSON lines that carry the tenant.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tenantry_demo::DemoConfig;
use tenantry_testing::TestDb;

/// `tenantry-demo` with `vars` set, on a free port, against `database_url`.
fn demo(database_url: &str, vars: &[(&str, &str)]) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry-demo"));
    cmd.env("DATABASE_URL", database_url)
        .env("TENANTRY_DEMO_ADDR", format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (cmd.spawn().expect("start tenantry-demo"), port)
}

/// Waits until the demo answers on the public site.
async fn ready(child: &mut Child, base: &str, client: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            panic!("the demo stopped ({exit})");
        }
        match client
            .get(format!("{base}/api/tenants"))
            .header("host", "localhost")
            .send()
            .await
        {
            Ok(_) => return,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the demo never answered: {e}"),
        }
    }
}

async fn signup(client: &reqwest::Client, base: &str, name: &str, subdomain: &str) {
    let r = client
        .post(format!("{base}/signup"))
        .header("host", "localhost")
        .form(&[("name", name), ("subdomain", subdomain)])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn metrics_show_the_requests_of_a_tenant() {
    let db = TestDb::new().await;
    let (mut child, port) = demo(db.url(), &[]);
    let base = format!("http://127.0.0.1:{port}");
    let client = client();
    ready(&mut child, &base, &client).await;
    signup(&client, &base, "Acme", "acme").await;
    for _ in 0..3 {
        let r = client
            .get(format!("{base}/api/notes"))
            .header("host", "acme.localhost")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let tenantry = tenantry_demo::commands::builder(&DemoConfig::new(db.url()))
        .connect(db.url())
        .await
        .unwrap();
    let acme = tenantry.resolve_schema("acme").await.unwrap().unwrap();

    let r = client
        .get(format!("{base}/metrics"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let line = format!(
        "tenantry_http_requests_total{{tenant=\"{}\",status=\"2xx\"}} 3",
        acme.id
    );
    assert!(text.contains(&line), "{line} in\n{text}");
    assert!(text.contains("tenantry_http_request_duration_seconds_bucket{tenant="));
    assert!(text.contains("tenantry_http_requests_total{tenant=\"public\""));
    assert!(text.contains("tenantry_resolve_cache_total{result=\"hit\"}"));
    assert!(text.contains("tenantry_tenant_begin_seconds_bucket{shard="));
    // The start-up fleet migration ran with the recorder installed (no tenant yet: 0 pending).
    assert!(text.contains("tenantry_fleet_pending_schemas 0"), "{text}");
    // The tenant is named by its immutable id, never by its schema name.
    assert!(!text.contains("tenant=\"acme\""), "{text}");
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let db = TestDb::new().await;
    let (mut child, port) = demo(db.url(), &[("TENANTRY_DEMO_METRICS", "0")]);
    let base = format!("http://127.0.0.1:{port}");
    let client = client();
    ready(&mut child, &base, &client).await;
    let r = client
        .get(format!("{base}/metrics"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn json_logs_carry_the_tenant() {
    let db = TestDb::new().await;
    let (mut child, port) = demo(db.url(), &[("TENANTRY_DEMO_LOG", "json")]);
    let base = format!("http://127.0.0.1:{port}");
    let client = client();
    ready(&mut child, &base, &client).await;
    signup(&client, &base, "Acme", "acme").await;
    let r = client
        .get(format!("{base}/api/notes"))
        .header("host", "acme.localhost")
        .header("x-request-id", "observe-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "observe-test-1");
    // A request without an id gets one (tower-http), returned in the response.
    let r = client
        .get(format!("{base}/api/whoami"))
        .header("host", "acme.localhost")
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    // Give the writer a moment, then stop the demo and read what it printed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "observe-test-1")
        .unwrap_or_else(|| panic!("no line of request observe-test-1 in\n{stdout}"));
    assert_eq!(finished["span"]["tenant"], "acme", "{finished}");
    assert!(finished["span"]["tenant_id"].is_i64(), "{finished}");
    assert_eq!(finished["fields"]["message"], "request finished");
    assert_eq!(finished["fields"]["status"], 200);
}

#[test]
fn a_bad_log_format_stops_the_demo() {
    let (child, _) = demo(
        "postgres://postgres@127.0.0.1:1/nowhere",
        &[("TENANTRY_DEMO_LOG", "yaml")],
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TENANTRY_DEMO_LOG"), "{stderr}");
}
