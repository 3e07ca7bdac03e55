//! Node-affine routing (Citus, opt-in: [`crate::TenantryBuilder::node_affine`]): a tenant's
//! scoped transactions go straight to the worker holding its schema, the coordinator is the
//! fallback.
//!
//! * **Node pools**: one lazily connecting pool per node, the handle's connect options with the
//!   node's host and port from `pg_dist_node`.
//! * **Placements**: schema -> (node, colocation id), read from the coordinator's metadata on a
//!   miss and kept until the next invalidation of the resolution cache (registry notifications,
//!   which [`crate::Placement::move_tenant`] also sends). Not distributed, or unknown: the
//!   coordinator. A stale placement costs a hop: a worker forwards a query on a schema it does
//!   not hold to the node that does.
//! * **Node epochs**: `tenantry_node_epochs (tenant_id, epoch)`, a reference table (a copy on
//!   every node, written by Citus's two-phase commit). Registry triggers bump a tenant's epoch
//!   in the transaction of every change to its tenant or domain rows (raw SQL included), and
//!   every operation that takes the tenant's lock (rename, delete, status, domains, move) bumps
//!   it first. Resolutions read the epoch with the record. The worker's `BEGIN` takes the
//!   tenant's advisory lock shared on the worker, then compares the epoch in its own copy and
//!   the schema's colocation id (`statements::tenant_node_begin_sql`); a trigger on every
//!   worker's copy takes that lock exclusively in the admin's replicated `UPDATE`, so the
//!   change waits for the tenant's transactions in flight on that worker (the worker-side
//!   counterpart of the coordinator's lock), and a transaction arriving during the change
//!   waits for it, then reads the new epoch and goes through the coordinator. A request
//!   writes nothing to pass the check (a row lock `FOR SHARE` would write the tuple).

use std::sync::atomic::Ordering;

use sqlx::{AssertSqlSafe, Executor, PgConnection, Postgres, Transaction};

use super::affinity::{Affinity, Placed};
use super::node_addr::NodeAddr;
use crate::error::{Error, Result};
use crate::handle::Tenantry;
use crate::request::begin::begin_retrying;
use crate::request::statements::{Enter, is_registry_changed, tenant_node_begin_sql};
use crate::sql::{fill, ident, literal};

/// Creates the epochs table (a reference table), its registry triggers and the rows of the
/// tenants already registered, if missing. `{s}` is the shared schema, `{epochs}` the table.
const SETUP: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS {epochs} (tenant_id bigint PRIMARY KEY, epoch bigint NOT NULL DEFAULT 1)",
    // A row trigger's argument names the column holding the tenant id (`id` or `tenant_id`);
    // a TRUNCATE bumps every tenant.
    "CREATE OR REPLACE FUNCTION {s}.tenantry_node_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $f$
     DECLARE
         v_old bigint := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN (to_jsonb(OLD) ->> TG_ARGV[0])::bigint END;
         v_new bigint := CASE WHEN TG_OP IN ('UPDATE', 'INSERT') THEN (to_jsonb(NEW) ->> TG_ARGV[0])::bigint END;
     BEGIN
         IF TG_LEVEL = 'STATEMENT' THEN
             UPDATE {epochs} SET epoch = epoch + 1;
         ELSIF TG_TABLE_NAME = 'tenantry_tenants' AND TG_OP = 'INSERT' THEN
             INSERT INTO {epochs} AS e (tenant_id) VALUES (v_new)
                 ON CONFLICT (tenant_id) DO UPDATE SET epoch = e.epoch + 1;
         ELSIF TG_TABLE_NAME = 'tenantry_tenants' AND TG_OP = 'DELETE' THEN
             DELETE FROM {epochs} WHERE tenant_id = v_old;
         ELSE
             UPDATE {epochs} SET epoch = epoch + 1 WHERE tenant_id IN (v_old, v_new);
         END IF;
         RETURN NULL;
     END $f$",
    "CREATE OR REPLACE TRIGGER tenantry_tenants_node_epoch AFTER INSERT OR UPDATE OR DELETE \
     ON {tenants} FOR EACH ROW EXECUTE FUNCTION {s}.tenantry_node_epoch_bump('id')",
    "CREATE OR REPLACE TRIGGER tenantry_domains_node_epoch AFTER INSERT OR UPDATE OR DELETE \
     ON {domains} FOR EACH ROW EXECUTE FUNCTION {s}.tenantry_node_epoch_bump('tenant_id')",
    "CREATE OR REPLACE TRIGGER tenantry_tenants_node_epoch_truncate AFTER TRUNCATE \
     ON {tenants} FOR EACH STATEMENT EXECUTE FUNCTION {s}.tenantry_node_epoch_bump('id')",
];

/// The wait on the workers, after the table is a reference table: a row trigger on every
/// node's copy (Citus creates it on the shards) takes the tenant's lock exclusively on the
/// workers (the coordinator holds it already in a locked operation, and raw registry writes
/// are not waited for there either), so an epoch change waits for the tenant's transactions
/// in flight on each worker (their `BEGIN` holds the lock shared, see
/// `statements::tenant_node_begin_sql`) and holds new ones until it commits everywhere.
const WAIT_TRIGGER: [&str; 3] = [
    "CREATE OR REPLACE FUNCTION {s}.tenantry_node_epoch_wait() RETURNS trigger LANGUAGE plpgsql AS $f$
     BEGIN
         IF NOT pg_catalog.citus_is_coordinator() THEN
             PERFORM pg_advisory_xact_lock(1952804468, (OLD.tenant_id & 2147483647)::int);
         END IF;
         RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
     END $f$",
    "SET LOCAL citus.enable_unsafe_triggers TO on",
    "CREATE OR REPLACE TRIGGER tenantry_node_epochs_wait BEFORE UPDATE OR DELETE \
     ON {epochs} FOR EACH ROW EXECUTE FUNCTION {s}.tenantry_node_epoch_wait()",
];

impl Tenantry {
    /// Whether node-affine routing is on and ready: the option, Citus mode, and the epochs
    /// table set up (after [`crate::Fleet::migrate_shared`]). See
    /// [`crate::TenantryBuilder::node_affine`].
    pub fn is_node_affine(&self) -> bool {
        self.node_epochs_ready()
    }

    /// Resolutions read the node epoch.
    pub(crate) fn node_epochs_ready(&self) -> bool {
        self.inner
            .affinity
            .as_ref()
            .is_some_and(|a| a.shard.get().is_some())
            && self.is_citus()
    }

    /// Sets up the node epochs (after the shared migrations, in Citus mode, when the option is
    /// on), once per handle; concurrent instances serialise on an advisory lock.
    pub(crate) async fn setup_node_epochs(&self) -> Result<()> {
        let Some(affinity) = &self.inner.affinity else {
            return Ok(());
        };
        let sql = &self.inner.sql;
        let s = ident(&self.inner.config.shared_schema);
        let slots = [
            ("s", s.as_str()),
            ("epochs", sql.node_epochs.as_str()),
            ("tenants", sql.tenants.as_str()),
            ("domains", sql.domains.as_str()),
        ];
        let mut tx = self.inner.pool.begin().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('tenantry.node_epochs')); \
             SET LOCAL citus.enable_schema_based_sharding TO off",
        )
        .await?;
        for statement in SETUP {
            tx.execute(AssertSqlSafe(fill(statement, &slots))).await?;
        }
        let table = format!("{}.tenantry_node_epochs", self.inner.config.shared_schema);
        let shard: Option<i64> = sqlx::query_scalar(
            "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = $1::regclass",
        )
        .bind(&table)
        .fetch_optional(&mut *tx)
        .await?;
        let shard = match shard {
            Some(shard) => shard,
            None => {
                sqlx::query("SELECT create_reference_table($1::regclass)")
                    .bind(&table)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query_scalar(
                    "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = $1::regclass",
                )
                .bind(&table)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        for statement in WAIT_TRIGGER {
            tx.execute(AssertSqlSafe(fill(statement, &slots))).await?;
        }
        // Tenants registered before (or by instances without the option).
        tx.execute(AssertSqlSafe(fill(
            "INSERT INTO {epochs} (tenant_id) SELECT id FROM {tenants} ON CONFLICT DO NOTHING",
            &slots,
        )))
        .await?;
        tx.commit().await?;
        let shard_table = format!("{s}.{}", ident(&format!("tenantry_node_epochs_{shard}")));
        let _ = affinity.shard.set(shard_table);
        self.inner.node_epochs.store(true, Ordering::Relaxed);
        // Records cached before carry no epoch.
        self.inner.cache.invalidate_all();
        Ok(())
    }

    /// Whether the node epochs table exists (made by an instance with node-affine routing):
    /// then this handle's lifecycle operations bump epochs too, so that the transactions of
    /// node-affine instances on the workers are waited for.
    pub(crate) async fn detect_node_epochs(&self) -> Result<()> {
        let table = format!(
            "{}.tenantry_node_epochs",
            ident(&self.inner.config.shared_schema)
        );
        // One simple-protocol query at connect (safe behind a transaction pooler, like
        // `has_citus`); the name is a validated identifier, quoted as a literal.
        let row = sqlx::raw_sql(AssertSqlSafe(format!(
            "SELECT to_regclass({}) IS NOT NULL AS present",
            literal(&table)
        )))
        .fetch_one(&self.inner.pool)
        .await?;
        let exists: bool = sqlx::Row::try_get(&row, "present")?;
        self.inner.node_epochs.store(exists, Ordering::Relaxed);
        Ok(())
    }

    /// Bumps tenant `id`'s node epoch in the transaction `conn` is in, waiting at most
    /// [`crate::Config::lifecycle_wait`] for its transactions in flight on the workers (then
    /// [`Error::TenantBusy`]). Called by every operation that takes the tenant's lock, before
    /// its first change, whenever the table exists (see `detect_node_epochs`).
    pub(crate) async fn bump_node_epoch(
        &self,
        conn: &mut PgConnection,
        id: i64,
        what: &str,
    ) -> Result<()> {
        if !self.is_citus() || !self.inner.node_epochs.load(Ordering::Relaxed) {
            return Ok(());
        }
        let wait = self.config().lifecycle_wait;
        // A statement timeout, not a lock timeout: the waits are on the workers, and Citus
        // cancels the remote statements with the local one.
        conn.execute(AssertSqlSafe(format!(
            "SET LOCAL statement_timeout = {}",
            wait.as_millis().max(1)
        )))
        .await?;
        let bumped = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET epoch = epoch + 1 WHERE tenant_id = $1",
            self.inner.sql.node_epochs
        )))
        .bind(id)
        .execute(&mut *conn)
        .await;
        match bumped {
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("57014") => {
                Err(Error::TenantBusy {
                    schema: what.to_owned(),
                    waited: wait,
                })
            }
            Err(e) => Err(e.into()),
            Ok(_) => {
                conn.execute("SET LOCAL statement_timeout TO DEFAULT")
                    .await?;
                Ok(())
            }
        }
    }

    /// Opens the tenant's transaction on the worker holding its schema, or `None`: go through
    /// the coordinator (node-affine off or not ready, a record without epoch, a schema on the
    /// coordinator or unknown, a node down, a stale record: every refusal is decided again
    /// there).
    pub(crate) async fn begin_on_node<'a>(
        &self,
        enter: &Enter<'_>,
        path_schemas: impl IntoIterator<Item = &'a str>,
    ) -> Option<Transaction<'static, Postgres>> {
        let affinity = self.inner.affinity.as_ref()?;
        let shard = affinity.shard.get()?;
        let tenant = enter.tenant;
        let epoch = tenant.node_epoch?;
        if !self.is_citus() {
            return None;
        }
        let (node, colocation) = self.placement_of(affinity, &tenant.schema).await?;
        let pool = affinity.pool(&node)?;
        let sql = tenant_node_begin_sql(enter, path_schemas, shard, epoch, colocation);
        let begun = begin_retrying(|| {
            let (pool, sql) = (pool.clone(), sql.clone());
            Box::pin(async move { pool.begin_with(AssertSqlSafe(sql)).await })
        })
        .await;
        match begun {
            Ok(tx) => Some(tx),
            Err(e) => {
                if is_registry_changed(&e) {
                    // Record or placement stale: read the placement again next time.
                    affinity.forget(&tenant.schema);
                } else if is_unreachable(&e) {
                    tracing::warn!(node = %node, error = %e,
                        "tenantry: node unreachable; its tenants go through the coordinator");
                    affinity.mark_down(&node);
                }
                None
            }
        }
    }

    /// The node and colocation id of `schema`: cached, or read from the coordinator.
    async fn placement_of(&self, affinity: &Affinity, schema: &str) -> Option<(NodeAddr, i32)> {
        let generation = self.inner.cache.generation();
        {
            let placements = affinity
                .placements
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(p) = placements.get(schema)
                && p.generation == generation
            {
                return p.at.clone();
            }
        }
        // One row: the worker (not the coordinator, group 0) holding the schema's tables.
        let row: Option<(i32, String, i32)> = sqlx::query_as(
            "SELECT ds.colocationid, n.nodename, n.nodeport FROM pg_dist_schema ds \
             JOIN pg_dist_partition p ON p.colocationid = ds.colocationid \
             JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid \
             JOIN pg_dist_placement pl ON pl.shardid = s.shardid \
             JOIN pg_dist_node n ON n.groupid = pl.groupid AND n.noderole = 'primary' \
             WHERE ds.schemaid = (SELECT oid FROM pg_namespace WHERE nspname = $1) \
               AND n.groupid <> 0 LIMIT 1",
        )
        .bind(schema)
        .persistent(!self.inner.config.transaction_pooler)
        .fetch_optional(&self.inner.pool)
        .await
        .ok()?;
        let at = row.map(|(colocation, host, port)| {
            (
                NodeAddr {
                    host,
                    port: port as u16,
                },
                colocation,
            )
        });
        let mut placements = affinity
            .placements
            .write()
            .unwrap_or_else(|e| e.into_inner());
        placements.insert(
            schema.to_owned(),
            Placed {
                generation,
                at: at.clone(),
            },
        );
        at
    }
}

/// The node could not be reached (connection refused or lost, the pool timed out, or the
/// server is shutting down).
fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}
