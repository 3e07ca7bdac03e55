//! Serialising life-cycle changes with the tenant's work in flight: the tenant's advisory lock,
//! taken exclusively (scoped access takes it shared in `tenantry_enter`).

use sqlx::{AssertSqlSafe, Executor, PgConnection};
use tenantry_core::Tenant;

use super::lookup::fetch_tenant;
use crate::error::{Error, Result};
use crate::handle::Tenantry;
use crate::sql::tenant_lock_exclusive;

impl Tenantry {
    /// Takes the tenant's lock exclusively (see `tenantry_enter`): waits until every scoped
    /// transaction and session of the tenant has ended, while new ones queue behind. Returns
    /// the tenant as the registry has it once the lock is held.
    pub(crate) async fn lock_tenant(
        &self,
        conn: &mut PgConnection,
        schema: &str,
    ) -> Result<Tenant> {
        let tenant = fetch_tenant(conn, self, schema).await?;
        self.lock_tenant_id(conn, tenant.id, schema).await?;
        // Read again under the lock: a change that committed while we waited wins.
        let again = fetch_tenant(conn, self, schema).await?;
        if again.id != tenant.id {
            return Err(Error::TenantNotFound(schema.to_owned()));
        }
        Ok(again)
    }

    /// [`Tenantry::lock_tenant`] by id; `what` names the tenant in errors.
    pub(crate) async fn lock_tenant_id(
        &self,
        conn: &mut PgConnection,
        id: i64,
        what: &str,
    ) -> Result<()> {
        let wait = self.config().lifecycle_wait;
        let sql = tenant_lock_exclusive(id, wait.as_millis().max(1));
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
                    Error::TenantBusy {
                        schema: what.to_owned(),
                        waited: wait,
                    }
                }
                _ => Error::Database(e),
            })?;
        // Node-affine mode: the same wait on every node, before any change.
        self.bump_node_epoch(conn, id, what).await?;
        Ok(())
    }
}
