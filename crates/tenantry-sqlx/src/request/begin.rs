//! Opening a transaction so that neither a dead pooled connection nor a cancelled caller can
//! leave a connection in a half-begun state.

use std::future::Future;

use sqlx::{AssertSqlSafe, PgPool};

/// How many times a scoped BEGIN is tried on connections found dead.
const BEGIN_ATTEMPTS: usize = 3;

/// [`begin_shielded`], retried when the pooled connection turns out to be dead (the server
/// restarted, or closed an idle connection). Tenantry's pool does not ping connections before
/// handing them out, so this is where a dead one is noticed; nothing ran on it, so trying
/// another is safe.
pub(crate) async fn begin_scoped(
    pool: &PgPool,
    sql: String,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    begin_retrying(|| {
        let (pool, sql) = (pool.clone(), sql.clone());
        Box::pin(async move { pool.begin_with(AssertSqlSafe(sql)).await })
    })
    .await
}

/// Runs the begin `make` returns, shielded from cancellation ([`begin_shielded`]), and again with
/// a new one when the connection it got turns out to be dead (nothing ran on it, so trying
/// another is safe). Shared by the single pool ([`begin_scoped`]) and the shards.
pub(crate) async fn begin_retrying(
    mut make: impl FnMut() -> BeginFuture,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut attempt = 1;
    loop {
        match Shielded::new(make()).await {
            Err(e) if attempt < BEGIN_ATTEMPTS && is_dead_connection(&e) => attempt += 1,
            result => return result,
        }
    }
}

/// The connection is gone (closed socket, or the server terminated the backend).
fn is_dead_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01" | "57P02")),
        _ => false,
    }
}

/// Runs sqlx's `begin_with` so that cancelling the caller can't cut it short. sqlx's `begin`
/// cancelled after `BEGIN` reached the server and before the answer came back returns the
/// connection to the pool *inside that transaction* (its rollback guard only acts once the
/// transaction depth is counted), with the tenant's `SET LOCAL` still in force for whoever takes
/// it next. The begin runs inline in the caller's task ([`Shielded`]); if the caller is dropped
/// while it is in flight, the rest of it is moved to a task of its own, where it completes and
/// the transaction nobody awaits any more is dropped like any other (its `ROLLBACK` is queued).
/// No extra round trip, and no task spawn unless the caller is cancelled mid-begin.
pub(crate) async fn begin_shielded(
    pool: &PgPool,
    sql: String,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let pool = pool.clone();
    Shielded::new(Box::pin(async move {
        pool.begin_with(AssertSqlSafe(sql)).await
    }))
    .await
}

pub(crate) type BeginFuture = futures::future::BoxFuture<
    'static,
    std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>,
>;

/// A begin that always runs to completion: polled inline, and handed to a spawned task if it is
/// dropped after its first poll (once the `BEGIN` may be on the wire) and before it finished.
struct Shielded {
    fut: Option<BeginFuture>,
    started: bool,
}

impl Shielded {
    fn new(fut: BeginFuture) -> Self {
        Self {
            fut: Some(fut),
            started: false,
        }
    }
}

impl Future for Shielded {
    type Output = std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        let Some(fut) = this.fut.as_mut() else {
            return std::task::Poll::Ready(Err(sqlx::Error::WorkerCrashed));
        };
        this.started = true;
        let out = std::task::ready!(fut.as_mut().poll(cx));
        this.fut = None;
        std::task::Poll::Ready(out)
    }
}

impl Drop for Shielded {
    fn drop(&mut self) {
        // Never polled: nothing was sent, dropping is safe. Otherwise finish it elsewhere; the
        // transaction it yields is dropped there (rolled back, connection back to the pool).
        if let (true, Some(fut)) = (self.started, self.fut.take())
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = fut.await;
            });
        }
    }
}
