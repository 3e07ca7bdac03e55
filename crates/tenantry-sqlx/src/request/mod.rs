//! The request path: everything a request does once its tenant is known.
//!
//! * `tenant.rs`: [`crate::Tenantry::begin`] and friends, the entry points;
//! * `statements.rs`: the SQL of the scoped `BEGIN` (identity check, search path, role), sent
//!   with `BEGIN` in one round trip, and how its refusals map to errors;
//! * `begin.rs`: running that `BEGIN` shielded from cancellation, retried on dead connections;
//! * `shards.rs`: tenant-affine connection pools;
//! * `access.rs`: [`crate::TenantTx`], a transaction whose first round trip is
//!   `SELECT tenantry_enter(id, 'tenant', oid, ...); BEGIN; SET LOCAL search_path TO "tenant",
//!   "shared"`. The check takes the tenant's lock (so the tenant can't be renamed, deleted or
//!   suspended while the transaction runs) and refuses a schema that is missing or no longer
//!   the tenant's. The path reverts by itself at COMMIT/ROLLBACK, so nothing can leak to the
//!   next user of the connection, whatever happens to the task (cancellation, panic, error).
//!   [`crate::PublicTx`] is the same for the shared schema: public work also sets its path
//!   explicitly, so it never depends on what a connection did before;
//! * `session.rs`: [`crate::TenantConn`], a session-scoped connection for work that can't run
//!   in one transaction. It is reset when released; if it is dropped instead (cancelled task,
//!   panic, forgotten release) the connection is closed rather than returned to the pool;
//! * `tagging.rs`: per-tenant prepared statements under a budget.

pub(crate) mod access;
pub(crate) mod begin;
pub(crate) mod session;
pub(crate) mod shards;
pub(crate) mod statements;
pub(crate) mod tagging;
mod tenant;
