//! The registry reads behind a cache miss.

use sqlx::{AssertSqlSafe, PgPool};
use tenantry_core::Tenant;

use crate::error::Error;
use crate::registry::{RegistrySql, TenantRow};
use crate::request::begin::begin_shielded;
use crate::sql::registry_read_begin;

/// What a cache miss needs to read the registry.
pub(crate) struct RegistryReader<'a> {
    pub(crate) pool: &'a PgPool,
    pub(crate) sql: &'a RegistrySql,
    /// Behind a transaction pooler: unnamed statements only.
    pub(crate) transaction_pooler: bool,
    /// Citus node-affine mode is ready: read the tenant's node epoch too.
    pub(crate) node_epochs: bool,
}

impl RegistryReader<'_> {
    /// The tenant owning `host` (normalised), read from the registry.
    pub(crate) async fn tenant_by_domain(&self, host: &str) -> Result<Option<Tenant>, Error> {
        let sql = self.sql.stmt(&format!(
            "{{{}}} JOIN {{domains}} d ON d.tenant_id = t.id WHERE d.domain = $1",
            self.select()
        ));
        self.registry_row(sql, host).await
    }

    /// The tenant whose schema is `schema`, read from the registry.
    pub(crate) async fn tenant_by_schema(&self, schema: &str) -> Result<Option<Tenant>, Error> {
        let sql = self
            .sql
            .stmt(&format!("{{{}}} WHERE t.schema_name = $1", self.select()));
        self.registry_row(sql, schema).await
    }

    /// The resolution's select: with the node epoch in node-affine mode.
    fn select(&self) -> &'static str {
        if self.node_epochs {
            "select_resolved_affine"
        } else {
            "select_resolved"
        }
    }

    /// Runs a registry lookup in a transaction that holds the registry lock shared (taken before
    /// `BEGIN`, in the same round trip): no registry write is in progress while it reads, so the
    /// registry version it reads is exactly the version of the rows it reads (see
    /// `Tenant::registry_version`). Three round trips: lookups are cache misses only. Behind a
    /// transaction pooler the statement is unnamed (named ones leak between the pooler's clients).
    async fn registry_row(&self, sql: String, key: &str) -> Result<Option<Tenant>, Error> {
        let query = sqlx::query_as::<_, TenantRow>(AssertSqlSafe(sql))
            .bind(key)
            .persistent(!self.transaction_pooler);
        let begin = registry_read_begin();
        let mut tx = begin_shielded(self.pool, begin).await?;
        let row = query.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.map(|r| r.0))
    }
}
