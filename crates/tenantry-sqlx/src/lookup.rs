//! Lookups used by the HTTP routing strategies besides the host: a tenant by schema name
//! (subfolder `/t/<name>/`, trusted `X-Tenant` header), through the same cache as hosts, and the
//! start-up check of the extra search-path schemas.

use std::sync::Arc;

use tenantry_core::{Tenant, validate_schema_name};

use crate::error::{Error, Result};
use crate::handle::{ResolveError, Tenantry};

impl Tenantry {
    /// The tenant whose schema is `name`, answered from memory on a hit (the cache is shared
    /// with [`Tenantry::resolve_host`] and emptied by the same registry notifications).
    ///
    /// `Ok(None)` for an unknown tenant and for any text that is not a valid schema name (no
    /// query is sent for those), so untrusted input (a path segment, a header) can be passed as is.
    pub async fn resolve_schema(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<Tenant>>, ResolveError> {
        if validate_schema_name(name, &[]).is_err() || self.is_shared_schema(name) {
            return Ok(None);
        }
        self.inner
            .cache
            .get_schema(self, name)
            .await
            .map_err(ResolveError::Database)
    }

    fn is_shared_schema(&self, name: &str) -> bool {
        let c = self.config();
        c.shared_schema == name || c.extra_search_path.iter().any(|s| s == name)
    }

    /// Checks that every schema of [`crate::Config::extra_search_path`] exists. PostgreSQL
    /// silently skips a missing schema in `search_path`, so a typo would otherwise surface as
    /// "type citext does not exist" deep in some tenant query. Called at the end of
    /// [`Tenantry::migrate_shared`] (shared migrations may create the schemas); call it yourself
    /// if you don't migrate at start-up.
    pub async fn verify_extra_search_path(&self) -> Result<()> {
        let extra = &self.config().extra_search_path;
        if extra.is_empty() {
            return Ok(());
        }
        let missing: Vec<String> = sqlx::query_scalar(
            "SELECT s FROM unnest($1::text[]) AS s \
             WHERE NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s)",
        )
        .bind(extra)
        .fetch_all(&self.inner.pool)
        .await?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::ExtraSearchPathMissing { schemas: missing })
        }
    }
}
