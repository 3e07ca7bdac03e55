//! Spare schemas: clones made ahead of time, claimed by a sign-up with a rename.

use sqlx::{AssertSqlSafe, Executor, PgConnection};
use tenantry_core::SchemaName;

use super::SPARE_PREFIX;
use crate::error::{Error, Result};
use crate::groups::Fleet;
use crate::handle::Tenantry;
use crate::migrate::ledger::write_ledger;
use crate::migrate::set::MigrationSet;
use crate::request::begin::begin_shielded;
use crate::sql::{begin_with_path, drop_schema, rename_schema};

/// Inside a creation transaction: takes a spare clone of the current fingerprint, if any, and
/// renames it to `schema`. Returns whether one was taken.
pub(crate) async fn claim_spare(
    conn: &mut PgConnection,
    t: &Tenantry,
    schema: &SchemaName,
    tenant_type: &str,
    set: &MigrationSet,
) -> Result<bool> {
    let registry = &t.inner.sql;
    let spare: Option<String> = sqlx::query_scalar(AssertSqlSafe(registry.stmt(
        "SELECT schema_name FROM {ledger} WHERE starts_with(schema_name, $1) AND tenant_type = $2 \
         AND fingerprint = $3 LIMIT 1 FOR UPDATE SKIP LOCKED",
    )))
    .bind(SPARE_PREFIX)
    .bind(tenant_type)
    .bind(set.fingerprint())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(spare) = spare else {
        return Ok(false);
    };
    conn.execute(AssertSqlSafe(rename_schema(
        &SchemaName::system(spare.as_str())?,
        schema,
    )))
    .await?;
    sqlx::query(AssertSqlSafe(
        registry.stmt("DELETE FROM {ledger} WHERE schema_name = $1"),
    ))
    .bind(&spare)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

impl Fleet<'_> {
    /// Pre-creates spare clones of `tenant_type`'s template so that up to `count` sign-ups are
    /// served by renaming a spare (`ALTER SCHEMA ... RENAME`, a few milliseconds) instead of
    /// building tables and indexes. Spares are ordinary schemas named `tenantry_spare_*` with a
    /// ledger row (no tenant row); spares left from an older migration set are dropped here and
    /// never claimed. Run it from a background job. Returns the number of spares created.
    ///
    /// On PostgreSQL 15 every index build ends with an fsync of the new index file, so creating
    /// a schema costs roughly one disk sync per index and per TOAST table; spares move that cost
    /// off the sign-up path.
    pub async fn fill_spares(self, tenant_type: &str, count: usize) -> Result<usize> {
        let set = self
            .tenantry
            .tenant_migration_set(tenant_type)
            .ok_or_else(|| Error::UnknownTenantType {
                tenant_type: tenant_type.to_owned(),
            })?
            .clone();
        let plan = self.tenantry.clone_plan(tenant_type).await?;
        let plan = match plan.as_ref() {
            Ok(plan) => plan,
            Err(why) => {
                return Err(Error::CannotClone {
                    tenant_type: tenant_type.to_owned(),
                    reason: why.clone(),
                });
            }
        };
        let registry = &self.tenantry.inner.sql;
        let spares: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(registry.stmt("SELECT schema_name, fingerprint FROM {ledger} WHERE starts_with(schema_name, $1) AND tenant_type = $2")))
        .bind(SPARE_PREFIX)
        .bind(tenant_type)
        .fetch_all(&self.tenantry.inner.pool)
        .await?;
        let mut fresh = 0;
        for (schema, fingerprint) in &spares {
            if fingerprint == set.fingerprint() {
                fresh += 1;
                continue;
            }
            // Stale: drop it unless a creation is claiming it right now.
            let mut tx = begin_shielded(&self.tenantry.inner.pool, "BEGIN".to_owned()).await?;
            let locked: Option<String> = sqlx::query_scalar(AssertSqlSafe(registry.stmt(
                "SELECT schema_name FROM {ledger} WHERE schema_name = $1 FOR UPDATE SKIP LOCKED",
            )))
            .bind(schema)
            .fetch_optional(&mut *tx)
            .await?;
            if locked.is_some() {
                tx.execute(AssertSqlSafe(drop_schema(&SchemaName::system(
                    schema.as_str(),
                )?)))
                .await?;
                sqlx::query(AssertSqlSafe(
                    registry.stmt("DELETE FROM {ledger} WHERE schema_name = $1"),
                ))
                .bind(schema)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        let mut created = 0;
        while fresh + created < count {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let schema = SchemaName::system(format!("{SPARE_PREFIX}{nanos:x}"))?;
            let begin = begin_with_path(&self.tenantry.search_path_for(&schema));
            let mut tx = begin_shielded(&self.tenantry.inner.pool, begin).await?;
            tx.execute(sqlx::raw_sql(AssertSqlSafe(plan.sql_for(&schema))))
                .await?;
            write_ledger(&mut tx, self.tenantry, &schema, tenant_type, &set).await?;
            tx.commit().await?;
            created += 1;
        }
        Ok(created)
    }
}
