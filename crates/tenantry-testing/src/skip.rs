//! Visible skips: a test that can't run here says so in `cargo test`'s output, and fails in CI.

use std::fmt::Display;
use std::io::Write;

/// Whether the tests run in CI: `CI` is set to anything but empty, `0` or `false` (GitHub
/// Actions, GitLab and most others set `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE" | "False"))
}

/// Skips the rest of a test that needs something this machine lacks (a binary, root, a
/// service), visibly: `SKIPPED <test name>: <reason>` is written straight to the process's
/// standard error, so it appears in `cargo test`'s output without `--nocapture` (libtest only
/// captures `print!`/`eprint!`). The caller returns right after.
///
/// # Panics
///
/// Under CI ([`in_ci`]), with the reason: a test that must run there never passes by skipping.
///
/// ```
/// fn pgbouncer() -> Option<std::path::PathBuf> {
///     None // not installed here
/// }
///
/// # fn test() {
/// let Some(binary) = pgbouncer() else {
///     tenantry_testing::skip("PgBouncer is not installed (apt-get install pgbouncer)");
///     return;
/// };
/// # let _ = binary;
/// # }
/// # if !tenantry_testing::in_ci() { test() }
/// ```
#[track_caller]
pub fn skip(reason: impl Display) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if in_ci() {
        panic!("{test} can't run here, but CI is set so it may not be skipped: {reason}");
    }
    let line = format!("\nSKIPPED {test}: {reason}\n");
    // Not `eprintln!`: the test harness captures that and shows it only on failure.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.flush();
}
