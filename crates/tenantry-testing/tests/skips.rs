//! `skip` is visible in `cargo test`'s output without `--nocapture`, and fails under CI.
//! The test runs this very test binary again on an ignored test that skips.

use std::process::{Command, Output};

#[test]
#[ignore = "run by skip_is_visible_without_nocapture_and_fails_in_ci"]
fn helper_that_skips() {
    tenantry_testing::skip("the tool this test needs is missing");
}

/// Runs `helper_that_skips` the way `cargo test` does (output captured), with `ci` as `CI`.
fn run_helper(ci: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "helper_that_skips"]);
    match ci {
        Some(v) => cmd.env("CI", v),
        None => cmd.env_remove("CI"),
    };
    cmd.output().unwrap()
}

#[test]
fn skip_is_visible_without_nocapture_and_fails_in_ci() {
    for ci in [None, Some("false")] {
        let out = run_helper(ci);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "CI={ci:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("SKIPPED helper_that_skips: the tool this test needs is missing"),
            "the skip is not in the output: {stderr}"
        );
        assert!(stdout.contains("test helper_that_skips ... ok"), "{stdout}");
    }

    let out = run_helper(Some("true"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a skip passed under CI=true: {stdout}"
    );
    assert!(
        stdout.contains("CI is set so it may not be skipped: the tool this test needs is missing"),
        "{stdout}"
    );
}
