//! The migration ledger: per schema, the fingerprint of the set it is at.

use sqlx::{AssertSqlSafe, PgConnection};

use super::set::MigrationSet;
use crate::error::Result;
use crate::handle::Tenantry;

/// Records that `schema` (of `tenant_type`) is at `set`, in the caller's transaction.
pub(crate) async fn write_ledger(
    conn: &mut PgConnection,
    t: &Tenantry,
    schema: &str,
    tenant_type: &str,
    set: &MigrationSet,
) -> Result<()> {
    sqlx::query(AssertSqlSafe(t.inner.sql.stmt(
        "INSERT INTO {ledger} (schema_name, tenant_type, last_version, fingerprint, updated_at) \
         VALUES ($1, $2, $3, $4, now()) ON CONFLICT (schema_name) DO UPDATE \
         SET tenant_type = EXCLUDED.tenant_type, last_version = EXCLUDED.last_version, \
             fingerprint = EXCLUDED.fingerprint, updated_at = now()",
    )))
    .bind(schema)
    .bind(tenant_type)
    .bind(set.latest_version())
    .bind(set.fingerprint())
    .execute(conn)
    .await?;
    Ok(())
}
