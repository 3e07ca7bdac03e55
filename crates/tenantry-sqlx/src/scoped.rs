//! Tenant-scoped database access: the only way Tenantry hands out connections.
//!
//! * [`TenantTx`]: a transaction whose first round trip is
//!   `SELECT tenantry_enter(id, 'tenant', oid, ...); BEGIN; SET LOCAL search_path TO "tenant",
//!   "shared"`. The check takes the tenant's lock (so the tenant can't be renamed, deleted or
//!   suspended while the transaction runs) and refuses a schema that is missing or no longer
//!   the tenant's. The path reverts by itself at COMMIT/ROLLBACK, so nothing can leak to the
//!   next user of the connection, whatever happens to the task (cancellation, panic, error).
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
use tenantry_core::{Tenant, TenantStatus, quote_ident, quote_literal};

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

/// The statement that opens a scoped transaction on a shared schema in one round trip.
///
/// The existence checks (schema, and role when given) run *before* `BEGIN`, in the same simple
/// query: if one fails, PostgreSQL skips the rest and the connection is left idle. A failure
/// after `BEGIN` would leave it in an aborted transaction that sqlx's release check (a bare
/// `Sync`) does not notice, poisoning the pooled connection for every later user
/// (`tests/isolation_begin.rs`).
pub(crate) fn begin_sql(path: &str, first_schema: &str, role: Option<&str>) -> String {
    // The schema name is validated (`[a-z0-9_]`), so it can't contain a quote; quoting as
    // identifier inside a literal is still done for defence in depth.
    let literal = quote_literal(&quote_ident(first_schema));
    let (role_check, role_set) = match role {
        Some(r) => (
            format!(", {}::regrole", quote_literal(&quote_ident(r))),
            format!("; SET LOCAL ROLE {}", quote_ident(r)),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "SELECT {literal}::regnamespace{role_check}; BEGIN; SET LOCAL search_path TO {path}{role_set}"
    )
}

/// What a tenant-scoped access checks and sets (see [`tenant_begin_sql`]).
pub(crate) struct Enter<'a> {
    /// `"shared".tenantry_enter`.
    pub function: &'a str,
    pub tenant: &'a Tenant,
    /// Refuse a tenant that is not active.
    pub serving: bool,
    /// The full search path (tenant first).
    pub path: &'a str,
    /// The tenant role, in role mode.
    pub role: Option<&'a str>,
    /// The domain the work came in on, which must still be the tenant's.
    pub domain: Option<&'a str>,
    pub idle_timeout: Option<std::time::Duration>,
}

impl Enter<'_> {
    /// `SELECT tenantry_enter(...)` (and the role's existence): the checks that must pass before
    /// anything runs in the tenant's schema. `session` takes the tenant lock at session level.
    fn check(&self, session: bool) -> String {
        let t = self.tenant;
        let oid = t
            .schema_oid
            .map_or_else(|| "NULL".to_owned(), |o| o.to_string());
        let role_check = self
            .role
            .map(|r| format!(", {}::regrole", quote_literal(&quote_ident(r))))
            .unwrap_or_default();
        let domain = self.domain.map_or_else(|| "NULL".to_owned(), quote_literal);
        format!(
            "SELECT {}({}, {}, {oid}, {}, {session}, {domain}){role_check}",
            self.function,
            t.id,
            quote_literal(&t.schema),
            self.serving,
        )
    }
}

/// The statement that opens a tenant transaction in one round trip:
///
/// `SELECT tenantry_enter(id, 'schema', oid, ...); BEGIN; SET LOCAL search_path TO ...;
/// SET LOCAL idle_in_transaction_session_timeout = ...[; SET LOCAL ROLE ...]`
///
/// The check runs before `BEGIN` in the same simple query. A statement before `BEGIN` runs in
/// the implicit transaction that `BEGIN` turns into the explicit one, so the tenant lock it takes
/// is held until COMMIT/ROLLBACK; and if it fails, PostgreSQL skips the rest and rolls the
/// implicit transaction back, leaving the connection idle. (A failure *after* `BEGIN` would leave
/// it in an aborted transaction that sqlx's release check, a bare `Sync`, does not notice,
/// poisoning the pooled connection for every later user: `tests/isolation_begin.rs`.)
pub(crate) fn tenant_begin_sql(enter: &Enter<'_>) -> String {
    let idle = enter
        .idle_timeout
        .map(|t| {
            format!(
                "; SET LOCAL idle_in_transaction_session_timeout = {}",
                t.as_millis().max(1)
            )
        })
        .unwrap_or_default();
    let role_set = enter
        .role
        .map(|r| format!("; SET LOCAL ROLE {}", quote_ident(r)))
        .unwrap_or_default();
    format!(
        "{}; BEGIN; SET LOCAL search_path TO {}{idle}{role_set}",
        enter.check(false),
        enter.path
    )
}

/// The fast form of [`tenant_begin_sql`], for a record resolved at registry version `version`
/// (`Tenant::registry_version`) with schema OID `oid`:
///
/// `SELECT CASE WHEN pg_advisory_xact_lock_shared(...) IS NULL THEN NULL ELSE (CASE WHEN
/// <registry version now> = version AND to_regnamespace('"acme"')::oid = oid THEN 'true' ELSE
/// '<REGISTRY_CHANGED>' END)::boolean END, set_config('search_path', '...', true), ...; BEGIN`
///
/// The same tenant lock first (the `CASE` orders it before the reads). If the registry is still
/// at the record's version, nothing about any tenant or domain changed since the record was
/// read (every registry write bumps the version, and resolutions read it under the registry
/// lock, see `registry_row`), so the registry lookups of `tenantry_enter` would find what the
/// record says: only the schema itself is looked up again (out-of-band DDL does not bump the
/// version; the catalog cache is fresh as of the transaction's start). Otherwise the cast fails
/// before `BEGIN` ([`is_registry_changed`]) and the caller runs the full check.
pub(crate) fn tenant_fast_begin_sql<'a>(
    enter: &Enter<'_>,
    path_schemas: impl IntoIterator<Item = &'a str>,
    version_now: &str,
    version: i64,
    oid: u32,
) -> String {
    let t = enter.tenant;
    // The settings as `set_config(.., true)` in the same statement: a local setting made before
    // `BEGIN` in one simple query belongs to the transaction `BEGIN` makes explicit, and reverts
    // at its end like `SET LOCAL` (two statements fewer to parse and run than the full form).
    // The path is spelled by the server's `quote_ident`, as `SET` would store it.
    let path = path_schemas
        .into_iter()
        .map(|schema| format!("quote_ident({})", quote_literal(schema)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut settings = format!(", set_config('search_path', concat_ws(', ', {path}), true)");
    if let Some(idle) = enter.idle_timeout {
        settings.push_str(&format!(
            ", set_config('idle_in_transaction_session_timeout', '{}', true)",
            idle.as_millis().max(1)
        ));
    }
    // The role last, after BEGIN (the checks read the registry as the connecting user).
    let role_set = enter
        .role
        .map(|r| format!("; SET LOCAL ROLE {}", quote_ident(r)))
        .unwrap_or_default();
    format!(
        "SELECT CASE WHEN pg_advisory_xact_lock_shared({}, {}) IS NULL THEN NULL \
         ELSE (CASE WHEN {version_now} = {version} AND to_regnamespace({})::oid = {oid} \
         THEN 'true' ELSE '{REGISTRY_CHANGED}' END)::boolean END{settings}; BEGIN{role_set}",
        crate::registry::TENANT_LOCK_CLASS,
        crate::registry::tenant_lock_key(t.id),
        quote_literal(&quote_ident(&t.schema)),
    )
}

/// The text of the fast check's failure (see [`tenant_fast_begin_sql`]).
const REGISTRY_CHANGED: &str = "tenantry: registry changed since the tenant was resolved";

/// True when the fast check found the registry changed (run the full check).
pub(crate) fn is_registry_changed(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("22P02") && db.message().contains(REGISTRY_CHANGED))
}

/// Maps the scoped `BEGIN`'s refusals to their [`Error`]s: a missing schema (SQLSTATE 3F000), a
/// schema that no longer belongs to the tenant (TY001), a tenant that is not active (TY002
/// suspended, TY003 maintenance).
pub(crate) fn map_begin_error(err: sqlx::Error, schema: &str) -> Error {
    if let sqlx::Error::Database(db) = &err {
        let schema = schema.to_owned();
        match db.code().as_deref() {
            Some("3F000") => return Error::SchemaMissing(schema),
            Some("TY001") => return Error::TenantMoved(schema),
            Some("TY002") => {
                return Error::TenantNotServing {
                    schema,
                    status: TenantStatus::Suspended,
                };
            }
            Some("TY003") => {
                return Error::TenantNotServing {
                    schema,
                    status: TenantStatus::Maintenance,
                };
            }
            _ => {}
        }
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

impl std::fmt::Debug for PublicTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicTx").finish_non_exhaustive()
    }
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
        };
        let role_set = role
            .map(|r| format!("; SET ROLE {}", quote_ident(r)))
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
