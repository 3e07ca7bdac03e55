//! Shared harness of the `isolation_*` tests, by job:
//! - [`app`]: a small app on `TenantRouter` with handlers that misbehave on purpose (error
//!   after a write, panic, savepoint games, timeouts, slow queries the client walks away
//!   from), served on an ephemeral port;
//! - [`load`]: the load generator that sends adversarial traffic and checks every response for
//!   another tenant's data;
//! - [`checks`]: what a violation is, and post-run checks of the pool and the schemas;
//! - [`churn`]: tenant life-cycle churn (renames, deletes, domain moves, suspensions) during
//!   the load, judged after the run.
//!
//! The private PostgreSQL cluster and PgBouncer come from `tenantry-testing` (features `cluster`
//! and `pgbouncer`).

// Helpers shared by several test binaries: each uses a part (dead_code), and `pub` only
// marks what the test files call (a test binary exports nothing, so unreachable_pub is noise).
#![allow(dead_code, unreachable_pub)]

pub mod app;
pub mod checks;
pub mod churn;
pub mod load;

pub use app::*;
pub use checks::*;
pub use load::*;
