//! The registry listener: LISTEN on [`NOTIFY_CHANNEL`] and empty the resolution cache on every
//! notification, and again after every reconnect.

use std::sync::Weak;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use super::cache::ResolverCache;
use crate::registry::NOTIFY_CHANNEL;

/// Listens for registry changes and empties the cache on each; reconnects forever.
/// Stops when the last [`Tenantry`] handle is dropped.
pub(crate) fn spawn_listener(cache: Weak<ResolverCache>, listen_pool: PgPool) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match PgListener::connect_with(&listen_pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "tenantry: registry listener cannot connect; retrying");
                    if cache.strong_count() == 0 {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
                tracing::warn!(error = %e, "tenantry: LISTEN failed; retrying");
                if cache.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = Duration::from_millis(100);
            // Listening again: whatever changed while we were not is unknown, start from scratch.
            match cache.upgrade() {
                Some(i) => {
                    i.set_listening(true);
                    i.invalidate_all();
                }
                None => return,
            }
            loop {
                // Wake up now and then to notice that the handle is gone.
                let next = tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await;
                let Some(i) = cache.upgrade() else { return };
                match next {
                    Err(_elapsed) => continue,
                    Ok(Ok(Some(_))) => i.invalidate_all(),
                    // Connection lost. Empty the cache now, then reconnect with a fresh listener
                    // (the outer loop) so that the full refresh happens only once LISTEN is
                    // active again: entries cached in between may predate missed notifications.
                    Ok(Ok(None)) => {
                        tracing::warn!(
                            "tenantry: registry listener lost its connection; reconnecting"
                        );
                        i.set_listening(false);
                        i.invalidate_all();
                        break;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "tenantry: registry listener failed; reconnecting");
                        i.set_listening(false);
                        i.invalidate_all();
                        break;
                    }
                }
            }
        }
    });
}
