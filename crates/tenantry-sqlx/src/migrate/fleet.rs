//! Migrating the fleet of tenant schemas (the shared schema is migrated first, see `shared.rs`).
//!
//! Tenant schemas run in parallel (`jobs` at a time); each schema's pending migrations
//! run in one transaction under its own advisory lock, and the ledger row is written in that same
//! transaction, so a killed run leaves every schema either fully migrated (ledger says so) or
//! untouched, and the next run resumes with the rest.
//!
//! Durability: by default each schema's transaction commits with `synchronous_commit = off`
//! (no wait for a WAL disk sync per schema, which otherwise bounds a run at one sync per
//! schema), and the run ends with one synchronous commit that flushes the WAL up to that point.
//! WAL is sequential, so that one flush covers every earlier schema commit: when
//! [`crate::Fleet::migrate_tenants`] returns, everything its report says was applied is on disk. A
//! server crash *during* the run can lose the last schema commits (each one all-or-nothing,
//! migration, history row and ledger row together); the next run sees them pending and
//! re-applies them. [`MigrateOptions::synchronous_commit`] opts out (one sync per schema).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::AssertSqlSafe;

use super::apply::apply_in_tx;
use super::ledger::write_ledger;
use super::set::{MIGRATIONS_TABLE, MigrationSet, SchemaOutcome};
use crate::error::{Error, Result};
use crate::groups::Fleet;
use crate::handle::Tenantry;
use crate::request::begin::begin_shielded;
use crate::request::statements::{begin_sql, map_begin_error};

/// Options for [`crate::Fleet::migrate_tenants`].
#[derive(Clone)]
pub struct MigrateOptions {
    /// Schemas migrated at once (default: 2 x CPU cores, at least 2).
    pub jobs: usize,
    /// Stop starting new schemas after the first failure.
    pub fail_fast: bool,
    /// Only this schema.
    pub only_schema: Option<String>,
    /// Open every schema even when the ledger says it is up to date (repairs a ledger edited by
    /// hand; slower).
    pub ignore_ledger: bool,
    /// Wait for a WAL disk sync at every schema's commit (default false). By default each
    /// schema commits with `synchronous_commit = off` and the run ends with one synchronous
    /// commit that flushes the WAL past every schema commit, so everything reported is durable
    /// when [`crate::Fleet::migrate_tenants`] returns either way. Atomicity and the ledger's truth
    /// are the same in both modes (the migration, its history row and the ledger row commit
    /// together); the difference is only what a server crash *during* the run can lose: with
    /// this off, the last commits before the crash (each schema wholly, re-applied by the next
    /// run); with it on, nothing that committed. Set it when something outside the database
    /// acts on each schema as soon as it is migrated (e.g. an `on_schema` callback).
    pub synchronous_commit: bool,
    /// Called after each schema finishes (progress bars, logs).
    #[allow(clippy::type_complexity)]
    pub on_schema: Option<Arc<dyn Fn(&SchemaResult) + Send + Sync>>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            jobs: (cores * 2).max(2),
            fail_fast: false,
            only_schema: None,
            ignore_ledger: false,
            synchronous_commit: false,
            on_schema: None,
        }
    }
}

impl std::fmt::Debug for MigrateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("jobs", &self.jobs)
            .field("fail_fast", &self.fail_fast)
            .field("only_schema", &self.only_schema)
            .field("ignore_ledger", &self.ignore_ledger)
            .field("synchronous_commit", &self.synchronous_commit)
            .finish()
    }
}

/// The result for one tenant schema.
#[derive(Debug)]
pub struct SchemaResult {
    /// The schema.
    pub schema: String,
    /// What was applied, or why the schema was left untouched.
    pub result: Result<SchemaOutcome>,
}

/// What a fleet run did.
#[derive(Debug, Default)]
pub struct FleetReport {
    /// Schemas the ledger says are pending (they were opened).
    pub pending: usize,
    /// Tenant schemas in the registry (in scope of the run).
    pub total: usize,
    /// One entry per opened schema.
    pub results: Vec<SchemaResult>,
    /// Schemas not attempted because of `fail_fast`.
    pub skipped: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The WAL position the run's final synchronous commit flushed to disk (`pg_lsn` text), read
    /// after every schema's commit: every commit of the run lies before it. `None` when nothing
    /// was opened or with [`MigrateOptions::synchronous_commit`] (each commit was synced).
    pub flushed_lsn: Option<String>,
}

impl FleetReport {
    /// The schemas that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Error)> {
        self.results
            .iter()
            .filter_map(|r| r.result.as_ref().err().map(|e| (r.schema.as_str(), e)))
    }

    /// Number of schemas where migrations were applied.
    pub fn migrated(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.result.as_ref().is_ok_and(|o| !o.applied.is_empty()))
            .count()
    }

    /// True when every opened schema succeeded and none was skipped.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none() && self.skipped.is_empty()
    }
}

/// A tenant schema and what it needs, as planned from the ledger.
#[derive(Debug, Clone)]
pub struct PlannedSchema {
    /// The schema.
    pub schema: String,
    /// Its tenant type.
    pub tenant_type: String,
    /// The highest version the ledger records (None: never migrated through Tenantry).
    pub ledger_version: Option<i64>,
    /// The versions of the set above `ledger_version` (what will most likely run).
    pub pending_versions: Vec<i64>,
}

impl Tenantry {
    /// Commits a transaction that writes WAL and has an xid with `synchronous_commit = on`,
    /// whatever the server's or role's setting: its commit waits for the WAL to be flushed
    /// through its commit record, hence through every earlier commit. Returns the insert
    /// position read inside it, after every schema commit of the run.
    ///
    /// An xid alone (`txid_current()`) is not enough: PostgreSQL commits a transaction that
    /// wrote no WAL before its commit record asynchronously. A transactional logical-decoding
    /// message (a few bytes of WAL, executable by any role, ignored by logical replication
    /// unless a subscriber asks for messages) makes it write WAL.
    async fn flush_wal(&self) -> Result<String> {
        let mut tx = begin_shielded(
            &self.inner.pool,
            "BEGIN; SET LOCAL synchronous_commit = on".to_owned(),
        )
        .await?;
        let lsn: String = sqlx::query_scalar(
            "SELECT pg_current_wal_insert_lsn()::text \
             FROM pg_logical_emit_message(true, 'tenantry', 'fleet run: flush')",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(lsn)
    }
}

impl Fleet<'_> {
    /// What a tenant run would open: schemas whose ledger fingerprint differs from their set's.
    /// One query, however many schemas are up to date.
    pub async fn plan_tenants(
        self,
        only_schema: Option<&str>,
        ignore_ledger: bool,
    ) -> Result<(usize, Vec<PlannedSchema>)> {
        let sql = &self.tenantry.inner.sql;
        let rows: Vec<(String, String, Option<String>, Option<i64>)> =
            sqlx::query_as(AssertSqlSafe(sql.stmt("SELECT t.schema_name, t.tenant_type, l.fingerprint, l.last_version FROM {tenants} t \
             LEFT JOIN {ledger} l ON l.schema_name = t.schema_name \
             WHERE ($1::text IS NULL OR t.schema_name = $1) ORDER BY t.schema_name")))
            .bind(only_schema)
            .fetch_all(&self.tenantry.inner.pool)
            .await?;
        let total = rows.len();
        let mut plan = Vec::new();
        for (schema, tenant_type, fingerprint, ledger_version) in rows {
            let set = self.tenantry.tenant_migration_set(&tenant_type);
            let fresh = match (set, &fingerprint) {
                (Some(set), Some(fp)) => fp == set.fingerprint(),
                _ => false,
            };
            if fresh && !ignore_ledger {
                continue;
            }
            let pending_versions = set
                .map(|s| {
                    s.migrations()
                        .iter()
                        .map(|m| m.version)
                        .filter(|v| ledger_version.is_none_or(|l| *v > l))
                        .collect()
                })
                .unwrap_or_default();
            plan.push(PlannedSchema {
                schema,
                tenant_type,
                ledger_version,
                pending_versions,
            });
        }
        Ok((total, plan))
    }

    /// Migrates tenant schemas in parallel. Per-schema errors are in the report; the run itself
    /// fails only if the registry can't be read or the final WAL flush fails (then what was
    /// committed is not known to be durable; the next run re-applies whatever was lost).
    ///
    /// Unless [`MigrateOptions::synchronous_commit`] is set, schemas commit asynchronously and
    /// the run ends with one synchronous commit flushing them all (see the module docs): when
    /// this returns `Ok`, every commit it reports is on disk.
    pub async fn migrate_tenants(self, options: MigrateOptions) -> Result<FleetReport> {
        let start = Instant::now();
        let (total, plan) = self
            .plan_tenants(options.only_schema.as_deref(), options.ignore_ledger)
            .await?;
        if let Some(only) = &options.only_schema
            && total == 0
        {
            return Err(Error::TenantNotFound(only.clone()));
        }
        let pending = plan.len();
        #[cfg(feature = "metrics")]
        crate::metrics::fleet_pending(pending);
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut results = Vec::with_capacity(pending);
        let mut skipped = Vec::new();
        let mut stream = futures::stream::iter(plan.into_iter().map(|p| {
            let failed = Arc::clone(&failed);
            let options = options.clone();
            async move {
                if options.fail_fast && failed.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(p.schema);
                }
                let result = self
                    .migrate_one_with(&p.schema, &p.tenant_type, !options.synchronous_commit)
                    .await;
                if result.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                #[cfg(feature = "metrics")]
                crate::metrics::fleet_schema(result.is_ok());
                let r = SchemaResult {
                    schema: p.schema,
                    result,
                };
                if let Some(cb) = &options.on_schema {
                    cb(&r);
                }
                Ok(r)
            }
        }))
        .buffer_unordered(options.jobs.max(1));
        while let Some(r) = stream.next().await {
            match r {
                Ok(r) => results.push(r),
                Err(schema) => skipped.push(schema),
            }
        }
        drop(stream);
        #[cfg(feature = "metrics")]
        crate::metrics::fleet_pending(0); // skipped ones (fail fast) included
        // One synchronous commit after the last schema commit: the WAL flush it waits for covers
        // every asynchronous commit before it.
        let flushed_lsn = if options.synchronous_commit || results.is_empty() {
            None
        } else {
            Some(self.tenantry.flush_wal().await?)
        };
        results.sort_by(|a, b| a.schema.cmp(&b.schema));
        skipped.sort();
        Ok(FleetReport {
            pending,
            total,
            results,
            skipped,
            elapsed: start.elapsed(),
            flushed_lsn,
        })
    }

    /// Migrates one tenant schema atomically and records it in the ledger (a synchronous
    /// commit: durable when this returns).
    pub async fn migrate_one(self, schema: &str, tenant_type: &str) -> Result<SchemaOutcome> {
        self.migrate_one_with(schema, tenant_type, false).await
    }

    /// [`crate::Fleet::migrate_one`], optionally without waiting for the commit's disk sync
    /// (`async_commit`: `SET LOCAL synchronous_commit = off`; same atomicity, but durable only
    /// once a later synchronous commit has flushed the WAL, as [`crate::Fleet::migrate_tenants`]
    /// does at the end of a run).
    pub async fn migrate_one_with(
        self,
        schema: &str,
        tenant_type: &str,
        async_commit: bool,
    ) -> Result<SchemaOutcome> {
        let start = Instant::now();
        let set: MigrationSet = self
            .tenantry
            .tenant_migration_set(tenant_type)
            .ok_or_else(|| Error::MigrationState {
                schema: schema.to_owned(),
                message: format!("no migrations configured for tenant type {tenant_type:?}"),
            })?
            .clone();
        let mut begin = begin_sql(&self.tenantry.search_path_for(schema), schema, None);
        if async_commit {
            begin.push_str("; SET LOCAL synchronous_commit = off");
        }
        let mut tx = begin_shielded(&self.tenantry.inner.pool, begin)
            .await
            .map_err(|e| map_begin_error(e, schema))?;
        let applied = apply_in_tx(
            &mut tx,
            schema,
            MIGRATIONS_TABLE,
            &set,
            self.tenantry.is_citus(),
        )
        .await?;
        write_ledger(&mut tx, self.tenantry, schema, tenant_type, &set).await?;
        if !applied.is_empty() {
            self.tenantry
                .inner
                .hooks
                .after_migrate(schema, &applied, &mut tx)
                .await
                .map_err(|source| Error::Hook {
                    hook: "after_migrate",
                    source,
                })?;
        }
        tx.commit().await?;
        Ok(SchemaOutcome {
            schema: schema.to_owned(),
            applied,
            elapsed: start.elapsed(),
        })
    }
}
