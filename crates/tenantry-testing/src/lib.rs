//! Test kit for applications built on [Tenantry](https://docs.rs/tenantry): what an app's
//! integration tests need to run against a real PostgreSQL, and what Tenantry's own tests use.
//!
//! - [`TestDb`]: a throwaway database per test, dropped when the test ends (also when it
//!   panics), with [`TestDb::tenantry`] to connect a `TenantryBuilder` and install the registry.
//! - [`TestTenants`]: fresh tenants with unique names and domains, created through the
//!   library (hooks and roles apply), from spare schemas when asked ([`TestTenants::with_spares`]).
//! - [`eventually`]: poll until something that happens in the background holds.
//! - [`skip`]: skip a test that can't run on this machine, visibly in `cargo test`'s output,
//!   and fail instead under `CI=true`.
//! - [`notes_migrations`]: the one-table `notes` schema of the examples.
//! - [`create_named`] and [`rename_and_reuse`]: tenants by name, and a rename whose old name is
//!   taken again (for stores that must key their data by tenant id).
//! - Feature `cluster`: `PrivateCluster`, a PostgreSQL of the test's own (to stop and restart).
//! - Feature `pgbouncer`: `PgBouncer` in transaction pooling mode in front of the server.
//! - Feature `citus`: `CitusCluster`, a coordinator and workers with the Citus extension.
//!
//! The server is `TENANTRY_TEST_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! its role needs `CREATEDB`.
//!
//! # Example
//!
//! A test of an application's tenant-scoped query, on its own database with a fresh tenant:
//!
//! ```no_run
//! use tenantry::Tenantry;
//! use tenantry_testing::{TestDb, TestTenants, notes_migrations};
//!
//! #[tokio::test]
//! async fn notes_stay_in_their_tenant() {
//!     let db = TestDb::new().await;
//!     let app = db
//!         .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
//!         .await;
//!     let tenants = TestTenants::new(&app).with_spares(2).await.unwrap();
//!     let (a, b) = (tenants.create().await.unwrap(), tenants.create().await.unwrap());
//!
//!     let mut tx = app.begin(&a.tenant).await.unwrap();
//!     sqlx::query("INSERT INTO notes (title) VALUES ('hello')")
//!         .execute(&mut *tx)
//!         .await
//!         .unwrap();
//!     tx.commit().await.unwrap();
//!
//!     let mut tx = app.begin(&b.tenant).await.unwrap();
//!     let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
//!         .fetch_one(&mut *tx)
//!         .await
//!         .unwrap();
//!     assert_eq!(n, 0, "tenant b sees tenant a's note");
//! }
//! ```
//!
//! The same test, compiled and run, is `tests/readme_example.rs` of this crate.

mod db;
mod notes;
mod os;
mod renames;
mod skip;
mod tenants;
mod wait;

#[cfg(feature = "citus")]
mod citus;
#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "pgbouncer")]
mod pgbouncer;

pub use db::{TestDb, admin_url};
pub use notes::{NOTES_TABLE, notes_migrations};
#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
pub use os::ScratchDir;
pub use os::free_port;
pub use renames::{create_named, rename_and_reuse};
pub use skip::{in_ci, skip};
pub use tenants::{TestTenant, TestTenants};
pub use wait::eventually;

#[cfg(feature = "citus")]
pub use citus::{CITUS_DATABASE, CITUS_INSTALL_HINT, CitusCluster, citus_installed};
#[cfg(feature = "cluster")]
pub use cluster::{PrivateCluster, postgres_bin_dir};
#[cfg(feature = "pgbouncer")]
pub use pgbouncer::{PgBouncer, pgbouncer_binary};
