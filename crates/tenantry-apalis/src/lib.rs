//! Background jobs with their tenant: [apalis](https://docs.rs/apalis) workers on an
//! [apalis-postgres](https://docs.rs/apalis-postgres) queue, each job run in its tenant's
//! scope.
//!
//! * [`TenantQueue::push`] enqueues a job on the tenant's [`tenantry_sqlx::TenantTx`]: the job
//!   row is written by the same transaction as the request's own writes, so it exists if and
//!   only if that transaction commits. The job carries its tenant's identity
//!   ([`JobTenantRef`]: registry id, schema name, schema OID) in its metadata.
//! * [`TenantJobLayer`] (a tower layer for `WorkerBuilder::layer`) resolves each job's tenant
//!   by id (cached), drops the jobs of deleted tenants (`Killed`, with a clear error, never
//!   retried), puts back the jobs of suspended or maintenance tenants until they are active
//!   again, and runs the others inside the tenant's scope and a `tenant_job` span.
//! * [`JobTenant`], the job function's extractor, opens the tenant's transaction through
//!   [`tenantry_sqlx::Tenantry::begin`], the path requests take: same identity and status
//!   checks, same `search_path`.
//! * [`setup`] runs apalis-postgres's migrations (its own schema, `apalis`, and its own history
//!   table, `apalis._sqlx_migrations`), next to the application's shared migrations.
//! * [`job_state`] tells a tenant where one of its jobs is, and only its own.
//! * [`metrics`]: job runs by outcome and jobs by state (feature `metrics`).
//!
//! Where things are: `meta.rs` (the tenant a job carries), `enqueue.rs` ([`TenantQueue`]),
//! `layer.rs` ([`TenantJobLayer`]), `resolve.rs` (finding a job's tenant), `job.rs`
//! ([`JobTenant`]), `state.rs` ([`job_state`], [`setup`]), `error.rs`, `metrics.rs`.

#![warn(missing_docs)]

mod enqueue;
mod error;
mod job;
mod layer;
mod meta;
pub mod metrics;
mod resolve;
mod state;

pub use apalis::prelude::BoxDynError;
pub use enqueue::{QUEUE_POOL_CONNECTIONS, TenantQueue};
pub use error::JobError;
pub use job::JobTenant;
pub use layer::{DEFAULT_RETRY_INACTIVE_AFTER, TenantJobLayer, TenantJobService};
pub use meta::{JobTenantRef, SCHEMA_KEY, SCHEMA_OID_KEY, TENANT_ID_KEY, TenantMetadataError};
pub use state::{JobState, job_state, setup};

/// The apalis crates this one is built on, for the application's `WorkerBuilder`, `Monitor`...
pub use apalis;
pub use apalis_postgres;
