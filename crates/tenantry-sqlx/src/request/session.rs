//! [`TenantConn`]: a session-scoped tenant connection, reset on release and closed if dropped.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Executor, PgConnection, PgPool, Postgres};
use tenantry_core::Tenant;

use super::statements::{Enter, map_begin_error};
use crate::error::{Error, Result};
use crate::sql::ident;

/// A pooled connection whose *session* `search_path` is the tenant's.
///
/// Call [`TenantConn::release`] when done: it checks that no transaction is left open and resets
/// the session. If the value is dropped instead (cancelled task, panic, early return), the
/// connection is closed, never reused.
pub struct TenantConn {
    conn: Option<PoolConnection<Postgres>>,
    tenant: Arc<Tenant>,
    /// Set only once the session has been reset: then the connection may go back to the pool.
    clean: bool,
}

impl std::fmt::Debug for TenantConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConn")
            .field("schema", &self.tenant.schema)
            .field("reset", &self.clean)
            .finish_non_exhaustive()
    }
}

impl TenantConn {
    /// Takes a connection from `pool` and sets its session path (and role).
    ///
    /// A pooled connection can be inside a transaction it was left in: sqlx's `begin` that is
    /// cancelled after `BEGIN` was sent and before its answer arrived returns the connection to
    /// the pool in an open transaction (its `Rollback` guard only acts once the depth is
    /// counted). A session `SET` there would be undone or kept at the whim of that transaction,
    /// so the state of such a connection can't be proven: it is closed and another one is
    /// taken (a few times at most).
    pub(crate) async fn open(
        pool: &PgPool,
        tenant: Arc<Tenant>,
        enter: SessionEnter<'_>,
    ) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = pool.acquire().await?;
            match Self::open_on(conn, Arc::clone(&tenant), &enter).await {
                Err(Error::Database(e)) if is_outside_tx_failure(&e) && attempt < OPEN_ATTEMPTS => {
                    tracing::warn!(
                        "tenantry: a pooled connection was left inside a transaction (cancelled \
                         BEGIN); closed it"
                    );
                }
                other => return other,
            }
        }
    }

    async fn open_on(
        conn: PoolConnection<Postgres>,
        tenant: Arc<Tenant>,
        session: &SessionEnter<'_>,
    ) -> Result<Self> {
        let (path, role) = (session.path, session.role);
        // Build the guard before the SET: if this future is cancelled mid-SET, or anything
        // fails, Drop closes the connection.
        let mut this = Self {
            conn: Some(conn),
            tenant,
            clean: false,
        };
        // Checks first, in the same simple query: a failure skips the SET (and Drop closes the
        // connection, releasing the session-level tenant lock the check may have taken).
        let enter = Enter {
            function: session.function,
            tenant: &this.tenant,
            serving: true,
            path,
            role,
            domain: session.domain,
            idle_timeout: None,
            tag: false,
        };
        let role_set = role
            .map(|r| format!("; SET ROLE {}", ident(r)))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {OUTSIDE_TX_CHECK}; {}; SET search_path TO {path}{role_set}",
            enter.check(true)
        );
        let schema = this.tenant.schema.clone();
        this.execute(AssertSqlSafe(sql)).await.map_err(|e| {
            if is_outside_tx_failure(&e) {
                Error::Database(e)
            } else {
                map_begin_error(e, &schema)
            }
        })?;
        Ok(this)
    }

    /// The tenant this connection is scoped to.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// Resets the session (`RESET ALL`, `RESET ROLE`) and returns the connection to the pool.
    /// If a transaction was left open ([`Error::SessionReleasedInTransaction`]) or the reset
    /// fails, the connection is closed instead.
    pub async fn release(mut self) -> Result<()> {
        // One round trip: the check fails inside a transaction block, which skips the resets
        // (and Drop closes the connection).
        // RESET ALL puts back every setting the session changed (search_path, statement_timeout,
        // ...) to its connection-time value (startup options included); it leaves the role
        // alone, hence RESET ROLE. Settings an `after_connect` hook SET are reset too.
        // pg_advisory_unlock_all: the session-level tenant lock taken at open (renames and
        // deletes of the tenant wait for it), and any the application left behind.
        let sql = format!(
            "SELECT {OUTSIDE_TX_CHECK}; RESET ALL; RESET ROLE; SELECT pg_advisory_unlock_all()"
        );
        match self.execute(AssertSqlSafe(sql)).await {
            Ok(_) => {
                self.clean = true;
                Ok(())
            }
            Err(e) if is_outside_tx_failure(&e) => Err(Error::SessionReleasedInTransaction),
            Err(e) => Err(e.into()),
        }
    }
}

/// What [`TenantConn::open`] checks and sets (see [`Enter`]).
pub(crate) struct SessionEnter<'a> {
    pub function: &'a str,
    pub path: &'a str,
    pub role: Option<&'a str>,
    pub domain: Option<&'a str>,
}

/// How many connections [`TenantConn::open`] tries before giving up.
const OPEN_ATTEMPTS: usize = 3;

/// An expression that fails when the session is inside a transaction block.
///
/// Sent first in a simple-protocol query: outside a block that statement starts its own
/// transaction, stamped with the statement's own start time (PostgreSQL copies it), so
/// `now() = statement_timestamp()` is exactly true. Inside a block `now()` is the time of an
/// earlier statement, so the text cast to boolean fails. (The extended protocol re-stamps the
/// statement at Bind, hence the simple protocol.) The `CASE` is not constant, so the planner
/// can't fold the failing branch.
const OUTSIDE_TX_CHECK: &str = "(CASE WHEN now() = statement_timestamp() THEN 'true' \
     ELSE 'tenantry: connection is inside a transaction block' END)::boolean";

/// True for the failure of [`OUTSIDE_TX_CHECK`].
fn is_outside_tx_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("22P02")
            && db.message().contains("tenantry: connection is inside a transaction block"))
}

impl Deref for TenantConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for TenantConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for TenantConn {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && !self.clean
        {
            conn.close_on_drop();
        }
    }
}
