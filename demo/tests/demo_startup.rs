//! The demo binary's settings: bad environment variables stop it at once, with a message that
//! names the variable; good ones still start it.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
        .env("RUST_LOG", "warn")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (cmd.spawn().expect("start tenantry-demo"), port)
}

/// Waits for the demo to exit by itself; kills it (and fails) if it is still running after 30 s.
fn exited(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: the demo kept running\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn bad_settings_stop_the_demo_before_it_touches_the_database() {
    // Nothing listens on port 1: the refusal must come before any connection attempt.
    let nowhere = "postgres://postgres@127.0.0.1:1/nowhere";
    for (var, value, says) in [
        ("TENANTRY_DEMO_POOL_SHARDS", "0", "at least 1"),
        (
            "TENANTRY_DEMO_POOL_SHARDS",
            "many",
            "TENANTRY_DEMO_POOL_SHARDS",
        ),
        (
            "TENANTRY_DEMO_TRUSTED_PROXIES",
            "10.0.0.0/8, gateway",
            "\"gateway\"",
        ),
        (
            "TENANTRY_DEMO_TRUSTED_PROXIES",
            "10.0.0.1/40",
            "10.0.0.1/40",
        ),
        ("TENANTRY_DEMO_RATE_LIMITS", "off", "expected 0"),
    ] {
        let (child, _) = demo(nowhere, &[(var, value)]);
        let out = exited(child, &format!("{var}={value}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(var) && stderr.contains(says),
            "{var}={value}: {stderr}"
        );
        assert!(
            !stderr.contains("127.0.0.1:1"),
            "refused before connecting: {stderr}"
        );
    }
}

#[tokio::test]
async fn good_settings_still_start_the_demo() {
    let db = TestDb::new().await;
    let (mut child, port) = demo(
        db.url(),
        &[
            ("TENANTRY_DEMO_POOL_SHARDS", "1"),
            (
                "TENANTRY_DEMO_TRUSTED_PROXIES",
                "127.0.0.1, ::1, 10.0.0.0/8,",
            ),
        ],
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the demo stopped ({exit}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        match client
            .get(format!("http://127.0.0.1:{port}/api/tenants"))
            .header("host", "localhost")
            .send()
            .await
        {
            Ok(r) => break r.status(),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the demo never answered: {e}"),
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200);
}
