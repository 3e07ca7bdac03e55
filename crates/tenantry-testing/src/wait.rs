//! Waiting for something that happens in the background (a listener, another instance).

use std::time::{Duration, Instant};

/// Polls `check` (every 10 ms) until it returns `true` or `deadline` has passed; returns
/// whether it held. For freshness bounds ("another instance sees the change within a
/// second"), not for speed: assert on the result with a message that names what was awaited.
///
/// ```
/// # tokio_test();
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn tokio_test() {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// let polls = AtomicU32::new(0);
/// let ok = tenantry_testing::eventually(Duration::from_secs(1), async || {
///     polls.fetch_add(1, Ordering::Relaxed) >= 3
/// })
/// .await;
/// assert!(ok, "the counter never reached 3");
/// # }
/// ```
pub async fn eventually(deadline: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
