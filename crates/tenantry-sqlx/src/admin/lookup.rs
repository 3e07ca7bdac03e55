//! Reading tenants and domains from the registry (never from the resolution cache).

use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgConnection};
use tenantry_core::Tenant;

use crate::error::{Error, Result};
use crate::groups::Admin;
use crate::handle::Tenantry;
use crate::registry::{DomainRecord, TenantRow};
use crate::request::access::TenantTx;

/// The registry row of tenant `schema`, on `conn` (inside the caller's transaction).
pub(crate) async fn fetch_tenant(
    conn: &mut PgConnection,
    t: &Tenantry,
    schema: &str,
) -> Result<Tenant> {
    let row: Option<TenantRow> = sqlx::query_as(AssertSqlSafe(
        t.inner.sql.stmt("{select_tenant} WHERE t.schema_name = $1"),
    ))
    .bind(schema)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.0)
        .ok_or_else(|| Error::TenantNotFound(schema.to_owned()))
}

impl Admin<'_> {
    /// One tenant by schema name.
    pub async fn tenant(self, schema: &str) -> Result<Tenant> {
        let mut conn = self.tenantry.inner.pool.acquire().await?;
        fetch_tenant(&mut conn, self.tenantry, schema).await
    }

    /// One tenant by registry id, read from the database (never from the cache). `None` once
    /// it was deleted. Ids are never reused, so this is how long-lived holders of a tenant
    /// re-check it.
    pub async fn tenant_by_id(self, id: i64) -> Result<Option<Tenant>> {
        let row: Option<TenantRow> = sqlx::query_as(AssertSqlSafe(
            self.tenantry
                .inner
                .sql
                .stmt("{select_tenant} WHERE t.id = $1"),
        ))
        .bind(id)
        .fetch_optional(&self.tenantry.inner.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Every tenant, ordered by schema name.
    pub async fn tenants(self) -> Result<Vec<Tenant>> {
        let rows: Vec<TenantRow> = sqlx::query_as(AssertSqlSafe(
            self.tenantry
                .inner
                .sql
                .stmt("{select_tenant} ORDER BY t.schema_name"),
        ))
        .fetch_all(&self.tenantry.inner.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The domains of a tenant, primary first.
    pub async fn domains(self, schema: &str) -> Result<Vec<DomainRecord>> {
        let sql = &self.tenantry.inner.sql;
        Ok(sqlx::query_as(AssertSqlSafe(sql.stmt(
            "SELECT d.domain, d.is_primary FROM {domains} d JOIN {tenants} t ON t.id = d.tenant_id \
             WHERE t.schema_name = $1 ORDER BY d.is_primary DESC, d.domain",
        )))
        .bind(schema)
        .fetch_all(&self.tenantry.inner.pool)
        .await?)
    }

    /// Opens a scoped transaction for a tenant by schema name (CLI and jobs).
    pub async fn begin_schema(self, schema: &str) -> Result<TenantTx> {
        let tenant = Arc::new(self.tenant(schema).await?);
        self.tenantry.begin(&tenant).await
    }
}
