//! Tenant-scoped database access: the only way Tenantry hands out connections.
//!
//! * [`TenantTx`]: a transaction whose first round trip is
//!   `SELECT '"tenant"'::regnamespace; BEGIN; SET LOCAL search_path TO "tenant", "shared"`.
//!   The path reverts by itself at COMMIT/ROLLBACK, so nothing can leak to the next user of the
//!   connection, whatever happens to the task (cancellation, panic, error). The cast makes a
//!   missing schema an error instead of PostgreSQL's silent skip.
//! * [`PublicTx`]: the same for the shared schema. Public work also sets its path explicitly, so it
//!   never depends on what a connection did before.
//! * [`TenantConn`]: a session-scoped connection for work that can't run in one transaction. It is
//!   reset when released; if it is dropped instead (cancelled task, panic, forgotten release) the
//!   connection is closed rather than returned to the pool.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Executor, PgConnection, Postgres, Transaction};
use tenantry_core::{Tenant, quote_ident};

use crate::error::{Error, Result};

/// Builds `"a", "b", ...` from schema names (already validated).
pub(crate) fn path_list<'a>(schemas: impl IntoIterator<Item = &'a str>) -> String {
    schemas
        .into_iter()
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement that opens a scoped transaction in one round trip.
///
/// The existence checks (schema, and role when given) run *before* `BEGIN`, in the same simple
/// query: if one fails, PostgreSQL skips the rest and the connection is left idle. A failure
/// after `BEGIN` would leave it in an aborted transaction that sqlx's release check (a bare
/// `Sync`) does not notice, poisoning the pooled connection for every later user
/// (`tests/isolation_begin.rs`).
pub(crate) fn begin_sql(path: &str, first_schema: &str, role: Option<&str>) -> String {
    // The schema name is validated (`[a-z0-9_]`), so it can't contain a quote; quoting as
    // identifier inside a literal is still done for defence in depth.
    let literal = quote_ident(first_schema).replace('\'', "''");
    let (role_check, role_set) = match role {
        Some(r) => (
            format!(", '{}'::regrole", quote_ident(r).replace('\'', "''")),
            format!("; SET LOCAL ROLE {}", quote_ident(r)),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "SELECT '{literal}'::regnamespace{role_check}; BEGIN; SET LOCAL search_path TO {path}{role_set}"
    )
}

/// Maps "schema does not exist" (SQLSTATE 3F000) to [`Error::SchemaMissing`].
pub(crate) fn map_begin_error(err: sqlx::Error, schema: &str) -> Error {
    if let sqlx::Error::Database(db) = &err
        && db.code().as_deref() == Some("3F000")
    {
        return Error::SchemaMissing(schema.to_owned());
    }
    Error::Database(err)
}

/// A transaction scoped to one tenant. Dereferences to a `PgConnection`, so it is used exactly
/// like a sqlx transaction: `sqlx::query(..).fetch_all(&mut *tx)`. Dropping it rolls back.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: Arc<Tenant>,
}

impl TenantTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>, tenant: Arc<Tenant>) -> Self {
        Self { tx, tenant }
    }

    /// The tenant this transaction is scoped to.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// Commits the transaction (the search path reverts with it).
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    /// Rolls the transaction back explicitly.
    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// A transaction on the shared schema only (the public site, cross-tenant admin queries).
pub struct PublicTx {
    tx: Transaction<'static, Postgres>,
}

impl PublicTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        Self { tx }
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    /// Rolls the transaction back explicitly.
    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Deref for PublicTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for PublicTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

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

impl TenantConn {
    pub(crate) async fn open(
        conn: PoolConnection<Postgres>,
        tenant: Arc<Tenant>,
        path: &str,
        role: Option<&str>,
    ) -> Result<Self> {
        // Build the guard before the SET: if this future is cancelled mid-SET, Drop closes it.
        let mut this = Self {
            conn: Some(conn),
            tenant,
            clean: false,
        };
        // Checks first: a failure leaves the session untouched.
        let (role_check, role_set) = match role {
            Some(r) => (
                format!(", '{}'::regrole", quote_ident(r).replace('\'', "''")),
                format!("; SET ROLE {}", quote_ident(r)),
            ),
            None => (String::new(), String::new()),
        };
        let sql = format!(
            "SELECT '{}'::regnamespace{role_check}; SET search_path TO {path}{role_set}",
            quote_ident(&this.tenant.schema)
        );
        let schema = this.tenant.schema.clone();
        this.execute(AssertSqlSafe(sql))
            .await
            .map_err(|e| map_begin_error(e, &schema))?;
        Ok(this)
    }

    /// The tenant this connection is scoped to.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// Resets the session and returns the connection to the pool. If a transaction was left
    /// open or the reset fails, the connection is closed instead (and an error says why).
    pub async fn release(mut self) -> Result<()> {
        // Outside a transaction block a simple-protocol statement starts its own transaction,
        // so now() == statement_timestamp(); inside an open block now() is older. (The extended
        // protocol re-stamps the statement at Bind, hence `raw_sql`.)
        let row = sqlx::raw_sql("SELECT now() = statement_timestamp()")
            .fetch_one(&mut *self)
            .await?;
        let idle: bool = sqlx::Row::try_get(&row, 0)?;
        if !idle {
            return Err(Error::Refused(
                "session connection released inside an open transaction: it was closed".into(),
            ));
        }
        self.execute("RESET search_path; RESET ROLE").await?;
        self.clean = true;
        Ok(())
    }
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
