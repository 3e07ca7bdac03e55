//! Tenantry's error type.

use tenantry_core::NameError;
use thiserror::Error;

/// A boxed error returned by application hooks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in Tenantry's database layer.
#[derive(Debug, Error)]
pub enum Error {
    /// A schema name or domain was refused before anything was executed.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No tenant with that schema name (or domain).
    #[error("no tenant {0:?}")]
    TenantNotFound(String),
    /// The tenant or domain already exists.
    #[error("{0}")]
    Conflict(String),
    /// The tenant's schema is missing from the database (PostgreSQL would silently skip it in
    /// `search_path`, so Tenantry refuses instead).
    #[error("schema {0:?} does not exist")]
    SchemaMissing(String),
    /// The schema named after the tenant no longer belongs to it: since the tenant was resolved,
    /// it was renamed, deleted, or its name went to another tenant. Nothing was opened; resolve
    /// the tenant again (the HTTP layer does it once by itself).
    #[error("schema {0:?} no longer belongs to the tenant it was resolved for")]
    TenantMoved(String),
    /// The tenant is not active (suspended or in maintenance): no new work starts.
    #[error("tenant {schema:?} is {status}")]
    TenantNotServing {
        /// The tenant's schema.
        schema: String,
        /// Its status now.
        status: tenantry_core::TenantStatus,
    },
    /// A rename, delete, status or domain change waited for the tenant's transactions and
    /// sessions in flight longer than [`crate::Config::lifecycle_wait`]; nothing was changed.
    #[error(
        "tenant {schema:?} still has work in flight (transactions, sessions) after {}s; nothing \
         was changed, try again",
        waited.as_secs_f64()
    )]
    TenantBusy {
        /// The tenant's schema.
        schema: String,
        /// How long the change waited.
        waited: std::time::Duration,
    },
    /// An operation on domains was refused (unknown domain, removing the primary one...).
    #[error("{0}")]
    Domain(String),
    /// A migration failed in a schema; the schema's transaction was rolled back.
    #[error("schema {schema}: migration {version} ({description}) failed: {message}")]
    Migration {
        /// The schema being migrated.
        schema: String,
        /// The migration's version.
        version: i64,
        /// The migration's description.
        description: String,
        /// PostgreSQL's error text.
        message: String,
    },
    /// Migrations in the database disagree with the migration folder.
    #[error("schema {schema}: {message}")]
    MigrationState {
        /// The schema concerned.
        schema: String,
        /// What is wrong.
        message: String,
    },
    /// Loading a migration folder failed.
    #[error("migration folder: {0}")]
    MigrationSource(#[from] sqlx::migrate::MigrateError),
    /// Called outside a tenant context (see [`crate::scope`]).
    #[error("no current tenant: this code is not running inside a tenant scope")]
    NoCurrentTenant,
    /// An application hook failed; the surrounding operation was rolled back.
    #[error("{hook} hook failed: {source}")]
    Hook {
        /// Which hook.
        hook: &'static str,
        /// The hook's error.
        source: BoxError,
    },
    /// Refused by configuration (e.g. session-scoped access behind a transaction pooler).
    #[error("{0}")]
    Refused(String),
    /// A database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// `Result` with Tenantry's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the error means the database could not be reached or is going away (answered
    /// 503, and worth retrying later): I/O and TLS errors, pool time-outs and a closed pool,
    /// protocol errors (a connection cut mid-message), and the SQLSTATEs of a server that is
    /// shutting down or starting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
    /// cannot_connect_now), of a lost connection (class 08) and of a full server (53300
    /// too_many_connections).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Database(e) => is_unavailable_sqlx(e),
            _ => false,
        }
    }
}

/// [`Error::is_unavailable`] for a bare sqlx error.
pub(crate) fn is_unavailable_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(&*code, "57P01" | "57P02" | "57P03" | "53300") || code.starts_with("08")
        }),
        _ => false,
    }
}
