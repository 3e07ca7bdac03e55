//! With no `DATABASE_URL` and nothing on 127.0.0.1:5432, the demo starts a private PostgreSQL
//! cluster, serves from it, and stops it on exit.
//!
//! The "nothing on 5432" condition is made real by running the demo in a fresh network
//! namespace (only its own loopback), which needs root and `ip`; without them the test is
//! skipped visibly, and fails under CI (CI runs as root).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect(args[0])
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.0]);
    }
}

#[test]
fn demo_starts_and_stops_a_private_cluster_when_no_postgres_answers() {
    if !is_root() || !std::path::Path::new("/usr/lib/postgresql").exists() {
        tenantry_testing::skip("needs root (network namespace) and PostgreSQL server binaries");
        return;
    }
    let ns = Netns(format!("tenantry_demo_{}", std::process::id()));
    assert!(sh(&["ip", "netns", "add", &ns.0]).status.success());
    assert!(
        sh(&[
            "ip", "netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"
        ])
        .status
        .success()
    );
    let dir = tempfile::tempdir().unwrap();
    let pg_dir = dir.path().join("pg");

    let demo = Command::new("ip")
        .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_tenantry-demo")])
        .env_remove("DATABASE_URL")
        .env("TENANTRY_DEMO_PG_DIR", &pg_dir)
        .env("TENANTRY_DEMO_ADDR", "127.0.0.1:8000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Talk to it from inside the namespace.
    let curl = |args: &[&str]| {
        let mut full = vec!["netns", "exec", &ns.0, "curl", "-s", "--max-time", "5"];
        full.extend_from_slice(args);
        Command::new("ip").args(&full).output().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = curl(&["http://localhost:8000/api/tenants"]);
        if out.status.success() && out.stdout == b"[]" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "demo did not come up on a private cluster"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let signup = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-d",
        "name=Acme&subdomain=acme",
        "http://localhost:8000/signup",
    ]);
    assert_eq!(String::from_utf8_lossy(&signup.stdout), "303");
    let who = curl(&["http://acme.localhost:8000/api/whoami"]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        r#"{"tenant":"acme","domain":"acme.localhost"}"#
    );

    // SIGTERM: the demo stops serving and stops its cluster.
    assert!(
        sh(&["kill", "-TERM", &demo.id().to_string()])
            .status
            .success()
    );
    let out = demo.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("started a private cluster"), "{stderr}");
    assert!(
        stderr.contains("Stopping the private PostgreSQL cluster"),
        "{stderr}"
    );
    assert!(
        !pg_dir.join("data/postmaster.pid").exists(),
        "cluster still running"
    );
}
