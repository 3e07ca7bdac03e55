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

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::Either;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{AssertSqlSafe, Execute, Executor, PgConnection, PgPool, Postgres, SqlStr, Transaction};
use tenantry_core::{Tenant, quote_ident};

use crate::error::{Error, Result};
use crate::plans::{SharedPlans, Tagged};

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

/// `BEGIN; SET LOCAL search_path` without the existence check, for a schema already checked
/// (see `ResolverCache::is_verified`).
pub(crate) fn unchecked_begin_sql(path: &str) -> String {
    format!("BEGIN; SET LOCAL search_path TO {path}")
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

/// A transaction scoped to one tenant. Dropping it rolls back.
///
/// Run queries on `&mut tx`: it is a sqlx executor that gives each (tenant, statement) pair its
/// own prepared statement, so PostgreSQL does not re-plan when pooled connections switch tenants
/// (see [`crate::TenantryBuilder::tenant_plans`]). It also dereferences to the `PgConnection`
/// (`&mut *tx`), which works the same without that per-tenant plan caching.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: Arc<Tenant>,
    plans: SharedPlans,
}

impl std::fmt::Debug for TenantTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantTx")
            .field("schema", &self.tenant.schema)
            .finish_non_exhaustive()
    }
}

impl TenantTx {
    pub(crate) fn new(
        tx: Transaction<'static, Postgres>,
        tenant: Arc<Tenant>,
        plans: SharedPlans,
    ) -> Self {
        Self { tx, tenant, plans }
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

impl<'c> Executor<'c> for &'c mut TenantTx {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, std::result::Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let query = Tagged::new(query, &self.tenant, &self.plans);
        (&mut *self.tx).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, std::result::Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let query = Tagged::new(query, &self.tenant, &self.plans);
        (&mut *self.tx).fetch_optional(query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, std::result::Result<PgStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.tx).prepare_with(sql, parameters)
    }

    fn describe<'e>(
        self,
        sql: SqlStr,
    ) -> BoxFuture<'e, std::result::Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.tx).describe(sql)
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
        path: &str,
        role: Option<&str>,
    ) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = pool.acquire().await?;
            match Self::open_on(conn, Arc::clone(&tenant), path, role).await {
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
        path: &str,
        role: Option<&str>,
    ) -> Result<Self> {
        // Build the guard before the SET: if this future is cancelled mid-SET, or anything
        // fails, Drop closes the connection.
        let mut this = Self {
            conn: Some(conn),
            tenant,
            clean: false,
        };
        // Checks first, in the same simple query: a failure skips the SET.
        let (role_check, role_set) = match role {
            Some(r) => (
                format!(", '{}'::regrole", quote_ident(r).replace('\'', "''")),
                format!("; SET ROLE {}", quote_ident(r)),
            ),
            None => (String::new(), String::new()),
        };
        let sql = format!(
            "SELECT {OUTSIDE_TX_CHECK}, '{}'::regnamespace{role_check}; SET search_path TO {path}{role_set}",
            quote_ident(&this.tenant.schema)
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
    /// If a transaction was left open or the reset fails, the connection is closed instead (and
    /// an error says why).
    pub async fn release(mut self) -> Result<()> {
        // One round trip: the check fails inside a transaction block, which skips the resets
        // (and Drop closes the connection).
        // RESET ALL puts back every setting the session changed (search_path, statement_timeout,
        // ...) to its connection-time value (startup options included); it leaves the role
        // alone, hence RESET ROLE. Settings an `after_connect` hook SET are reset too.
        let sql = format!("SELECT {OUTSIDE_TX_CHECK}; RESET ALL; RESET ROLE");
        match self.execute(AssertSqlSafe(sql)).await {
            Ok(_) => {
                self.clean = true;
                Ok(())
            }
            Err(e) if is_outside_tx_failure(&e) => Err(Error::Refused(
                "session connection released inside an open transaction: it was closed".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }
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
