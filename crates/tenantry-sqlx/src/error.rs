//! Tenantry's error type.
//!
//! One variant per condition a caller may want to handle, with the names involved as fields.
//! How the HTTP layer answers each one is tabled in `docs/errors.md`.

use tenantry_core::{HostError, NameError};
use thiserror::Error;

/// A boxed error returned by application hooks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in Tenantry's database layer.
///
/// Messages speak of what the caller gave (the tenant name, the domain as typed...). New
/// variants may be added: match the ones you handle and keep a catch-all arm.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // Input refused before anything ran.
    /// A schema name or domain was refused before anything was executed.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// A domain given for a tenant is not a host name at all (empty, too long, malformed).
    #[error("domain {domain:?} {}", host_problem(reason))]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// Why it is not a host name.
        reason: HostError,
    },
    /// No migrations are configured for this tenant type.
    #[error("unknown tenant type {tenant_type:?}")]
    UnknownTenantType {
        /// The tenant type as given.
        tenant_type: String,
    },
    /// The tenant's data is valid JSON but not an object.
    #[error("tenant data must be a JSON object, not {found}")]
    TenantDataNotObject {
        /// What it is instead (`"an array"`, `"a string"`...).
        found: &'static str,
    },
    /// The application's tenant data could not be turned into JSON (e.g. a map with non-string
    /// keys): a defect of the application's type rather than of the user's input.
    #[error("tenant data can't be represented as JSON: {0}")]
    TenantDataNotSerializable(#[source] serde_json::Error),
    /// The display name is longer than [`crate::MAX_DISPLAY_NAME_CHARS`].
    #[error("display name is {chars} characters long; at most {max} are allowed")]
    DisplayNameTooLong {
        /// Its length in characters.
        chars: usize,
        /// The limit ([`crate::MAX_DISPLAY_NAME_CHARS`]).
        max: usize,
    },
    /// The display name holds a control character (NUL included).
    #[error(
        "display name contains the control character U+{:04X}; control characters are not allowed",
        u32::from(*character)
    )]
    DisplayNameControlCharacter {
        /// The first one found.
        character: char,
    },

    // Unknown names.
    /// No tenant with that schema name.
    #[error("no tenant {0:?}")]
    TenantNotFound(String),
    /// No tenant has that domain.
    #[error("no such domain {domain:?}")]
    DomainNotFound {
        /// The domain, normalised.
        domain: String,
    },

    // Conflicts with what exists.
    /// A schema with the tenant's name already exists (a tenant's or any other): schema names
    /// are unique across the database.
    #[error("tenant name {schema:?} is taken: schema {schema:?} already exists")]
    TenantNameTaken {
        /// The tenant (schema) name asked for.
        schema: String,
    },
    /// A rename to the name the tenant already has.
    #[error("tenant {schema:?} is already called {schema:?}")]
    RenameToSameName {
        /// The tenant's name.
        schema: String,
    },
    /// Another tenant already has this domain.
    #[error("domain {domain:?} is already taken")]
    DomainTaken {
        /// The domain, normalised.
        domain: String,
    },
    /// The domain is one of the public domains ([`crate::Config::public_domains`]), which
    /// serve the public site and never a tenant.
    #[error("domain {domain:?} is a public domain: it serves the public site, not a tenant")]
    DomainIsPublic {
        /// The domain, normalised.
        domain: String,
    },
    /// The domain to remove is its tenant's primary domain.
    #[error("{domain:?} is the tenant's primary domain: make another domain primary first")]
    PrimaryDomainRemoval {
        /// The domain, normalised.
        domain: String,
    },
    /// The tenant's role ([`crate::Config::tenant_roles`]) already exists in the cluster.
    #[error("role {role:?} already exists")]
    RoleExists {
        /// The role's name.
        role: String,
    },
    /// The schema to adopt ([`crate::Admin::adopt_tenant`]) already belongs to a tenant.
    #[error("schema {schema:?} already belongs to tenant {schema:?}: there is nothing to adopt")]
    SchemaAlreadyTenant {
        /// The schema's name.
        schema: String,
    },

    // The tenant changed or is not serving (see `Tenantry::begin`).
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
    #[error("tenant {schema:?} is {}", status_words(*status))]
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
        /// The tenant's schema (or the domain being changed).
        schema: String,
        /// How long the change waited.
        waited: std::time::Duration,
    },
    /// A tenant's cap on concurrent transactions (see [`crate::TransactionGate`]) stayed full
    /// for as long as the transaction was allowed to wait; nothing was opened. The client may
    /// retry (HTTP: 503 with `Retry-After`).
    #[error(
        "tenant {schema:?} is at its cap of concurrent transactions; waited {}s",
        waited.as_secs_f64()
    )]
    TooManyTransactions {
        /// The tenant's schema.
        schema: String,
        /// How long the transaction waited for a place.
        waited: std::time::Duration,
    },

    // Migrations.
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
    /// [`crate::Provision::Clone`] (or [`crate::Fleet::fill_spares`]) needs the tenant
    /// type's template, and it can't be cloned (e.g. its migrations create something the clone
    /// plan does not reproduce).
    #[error("cannot clone tenant type {tenant_type:?}'s template: {reason}")]
    CannotClone {
        /// The tenant type.
        tenant_type: String,
        /// Why its template can't be cloned.
        reason: String,
    },

    // Copies and archives (`clone_tenant`, `export_tenant`, `import_tenant`).
    /// A tenant can't be copied as asked: its schema holds objects the copier does not
    /// reproduce (see [`crate::Admin::clone_tenant`]), it has no migration history, or the
    /// copy asks for another tenant type than the source's.
    #[error("cannot copy tenant {schema:?}: {reason}")]
    CannotCopy {
        /// The source tenant.
        schema: String,
        /// Why.
        reason: String,
    },
    /// The file is not a tenant archive this version of Tenantry reads, or it is damaged or
    /// incomplete (nothing was imported).
    #[error("not a usable tenant archive: {reason}")]
    ArchiveInvalid {
        /// What is wrong with it.
        reason: String,
    },
    /// The archive was taken at a migration state this application can't accept (a migration
    /// it doesn't know, a history that diverges, tables that differ from what the migrations
    /// make); nothing was imported.
    #[error("archive refused: {reason}")]
    ArchiveIncompatible {
        /// Why, naming the migrations or tables concerned.
        reason: String,
    },
    /// Writing or reading an archive failed (the file, the disk, the pipe).
    #[error("archive I/O: {0}")]
    ArchiveIo(#[source] std::io::Error),

    // Configuration and usage.
    /// A configured public domain is not a host name.
    #[error("public domain {domain:?} {}", host_problem(reason))]
    InvalidPublicDomain {
        /// The domain as configured.
        domain: String,
        /// Why it is not a host name.
        reason: HostError,
    },
    /// The prefix given to [`crate::TenantryBuilder::tenant_roles`] is not a valid one.
    #[error("tenant role prefix {prefix:?} must match ^[a-z_][a-z0-9_]{{0,29}}$")]
    InvalidTenantRolePrefix {
        /// The prefix as configured.
        prefix: String,
    },
    /// Schemas of [`crate::Config::extra_search_path`] do not exist.
    #[error(
        "extra_search_path: schema(s) {} do not exist; create them (e.g. `CREATE SCHEMA \
         extensions` in a shared migration) or remove them from extra_search_path",
        quoted_list(schemas)
    )]
    ExtraSearchPathMissing {
        /// The missing schemas.
        schemas: Vec<String>,
    },
    /// [`crate::Tenantry::session`] with [`crate::Config::forbid_session_scope`] set.
    #[error(
        "session-scoped access is disabled (forbid_session_scope): behind a transaction-mode \
         pooler a session SET would leak to other clients; use Tenantry::begin"
    )]
    SessionScopeForbidden,
    /// [`crate::TenantConn::release`] found a transaction left open; the connection was closed
    /// instead of going back to the pool.
    #[error("session connection released inside an open transaction: it was closed")]
    SessionReleasedInTransaction,
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
    // Citus.
    /// [`crate::CitusMode::On`], but the database has no `citus` extension.
    #[error("Citus mode is on but the database has no citus extension (CREATE EXTENSION citus)")]
    CitusMissing,
    /// Something Tenantry does not do on (or without) Citus.
    #[error("{what} is not available here: {why}")]
    CitusUnsupported {
        /// The feature.
        what: &'static str,
        /// Why.
        why: &'static str,
    },
    /// A table named by [`crate::TenantryBuilder::reference_tables`] could not be made a
    /// reference table (missing, or refused by Citus).
    #[error("reference table {table:?}: {message}")]
    ReferenceTable {
        /// The table as configured.
        table: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// No primary node of the Citus cluster holding shards is registered at that address.
    #[error("no Citus node {node} holds tenants (see `tenantry nodes`)")]
    NodeNotFound {
        /// `host:port` as given.
        node: String,
    },
    /// The tenant's schema is not a distributed schema (it lives on the coordinator).
    #[error("tenant schema {schema:?} is not distributed by Citus")]
    TenantNotDistributed {
        /// The schema.
        schema: String,
    },
    /// A database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// `Result` with Tenantry's [`enum@Error`].
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

/// The rest of "domain X ..." for a host that could not be normalised (`HostError` speaks of a
/// `Host` header; here the text is a domain someone gave).
fn host_problem(reason: &HostError) -> &'static str {
    match reason {
        HostError::Empty => "is empty",
        HostError::TooLong => "is too long to be a host name",
        HostError::Malformed => "is not a valid host name",
    }
}

/// "suspended", "in maintenance".
fn status_words(status: tenantry_core::TenantStatus) -> &'static str {
    match status {
        tenantry_core::TenantStatus::Maintenance => "in maintenance",
        other => other.as_str(),
    }
}

/// `"a", "b"`.
fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"an array"`, `"a string"`...: what a JSON value is, for messages.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Unique violations (23505) and duplicate schemas (42P06), found only once the statement ran
/// (a concurrent creation won), become `conflict()`; other errors stay database errors.
pub(crate) fn conflict_or(e: sqlx::Error, conflict: impl FnOnce() -> Error) -> Error {
    if let sqlx::Error::Database(db) = &e
        && matches!(db.code().as_deref(), Some("23505" | "42P06"))
    {
        return conflict();
    }
    Error::Database(e)
}

/// The tenant name is taken (a concurrent creation won).
pub(crate) fn name_taken(schema: &str) -> Error {
    Error::TenantNameTaken {
        schema: schema.to_owned(),
    }
}

/// The domain is taken (a concurrent change won).
pub(crate) fn domain_taken(domain: &str) -> Error {
    Error::DomainTaken {
        domain: domain.to_owned(),
    }
}
