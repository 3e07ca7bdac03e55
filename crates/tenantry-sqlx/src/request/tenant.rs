//! The request path on [`Tenantry`]: opening tenant-scoped transactions and sessions, and
//! running work in a tenant's task-local scope.

use std::future::Future;
use std::sync::Arc;

use tenantry_core::{Tenant, validate_schema_name};

use super::access::{PublicTx, TenantTx};
use super::begin::begin_scoped;
use super::session::{SessionEnter, TenantConn};
use super::statements::{
    Enter, begin_sql, is_registry_changed, map_begin_error, tenant_begin_sql, tenant_fast_begin_sql,
};
use crate::context;
use crate::error::{Error, Result};
use crate::handle::Tenantry;

impl Tenantry {
    /// Opens a transaction scoped to `tenant`, which must be active: the identity check,
    /// `BEGIN` and `SET LOCAL search_path` travel in one round trip.
    ///
    /// The identity check (`tenantry_enter`, in the shared schema) runs before `BEGIN` in the
    /// same simple query, and in the same transaction:
    ///
    /// 1. it takes the tenant's lock in shared mode (held until COMMIT/ROLLBACK), so a rename,
    ///    delete or status change of this tenant waits for this transaction to end, and the
    ///    name-to-schema mapping cannot change under it;
    /// 2. it then checks, on fresh catalogs, that a schema named [`Tenant::schema`] exists
    ///    (PostgreSQL would silently skip a missing one), that it is the one recorded at
    ///    resolution ([`Tenant::schema_oid`]), and that the registry still gives that schema to
    ///    tenant [`Tenant::id`];
    /// 3. and that the tenant is active.
    ///
    /// On failure nothing is opened and the connection stays idle: [`Error::SchemaMissing`],
    /// [`Error::TenantMoved`] (resolve the tenant again), [`Error::TenantNotServing`]. Use
    /// [`Tenantry::begin_any_status`] for maintenance work on a suspended tenant.
    pub async fn begin(&self, tenant: &Arc<Tenant>) -> Result<TenantTx> {
        self.begin_tenant(tenant, true, None).await
    }

    /// [`Tenantry::begin`] for work that came in on `domain` (normalised): also refused with
    /// [`Error::TenantMoved`] once the domain no longer belongs to the tenant (moved to another
    /// tenant while the request waited). The HTTP layer uses it for host-routed requests.
    pub async fn begin_via_domain(&self, tenant: &Arc<Tenant>, domain: &str) -> Result<TenantTx> {
        self.begin_tenant(tenant, true, Some(domain)).await
    }

    /// [`Tenantry::begin`] for a tenant in any status (maintenance scripts, `tenantry exec`):
    /// the same identity check and lock, without the status check.
    pub async fn begin_any_status(&self, tenant: &Arc<Tenant>) -> Result<TenantTx> {
        self.begin_tenant(tenant, false, None).await
    }

    async fn begin_tenant(
        &self,
        tenant: &Arc<Tenant>,
        serving: bool,
        domain: Option<&str>,
    ) -> Result<TenantTx> {
        // Records built by hand can hold any text; registry ones are always valid.
        validate_schema_name(&tenant.schema, &[])?;
        // Admission first, before a pooled connection is taken (no gate: no work at all).
        let permit = match &self.inner.gate {
            Some(gate) => gate.admit(self, tenant).await?,
            None => None,
        };
        let role = self.role_of(&tenant.schema);
        let enter = Enter {
            function: &self.inner.sql.enter,
            tenant,
            serving,
            path: &self.search_path_for(&tenant.schema),
            role: role.as_deref(),
            domain,
            idle_timeout: self.inner.config.tenant_idle_timeout,
            tag: self.inner.config.tag_transactions,
        };
        // Node-affine: straight to the tenant's worker (its own check), else the coordinator.
        if tenant.node_epoch.is_some()
            && (!serving || tenant.status == tenantry_core::TenantStatus::Active)
        {
            let config = &self.inner.config;
            let path_schemas = std::iter::once(tenant.schema.as_str())
                .chain(std::iter::once(config.shared_schema.as_str()))
                .chain(config.extra_search_path.iter().map(String::as_str));
            if let Some(tx) = self.begin_on_node(&enter, path_schemas).await {
                return Ok(TenantTx::new(
                    tx,
                    Arc::clone(tenant),
                    Arc::clone(&self.inner.budget),
                    permit,
                ));
            }
        }
        // A resolved record, still current: the fast check (no registry lookups).
        if let (Some(version), Some(oid)) = (tenant.registry_version, tenant.schema_oid)
            && (!serving || tenant.status == tenantry_core::TenantStatus::Active)
        {
            let config = &self.inner.config;
            let path_schemas = std::iter::once(tenant.schema.as_str())
                .chain(std::iter::once(config.shared_schema.as_str()))
                .chain(config.extra_search_path.iter().map(String::as_str));
            let sql = tenant_fast_begin_sql(
                &enter,
                path_schemas,
                &self.inner.sql.version_now,
                version,
                oid,
            );
            match self.begin_on_shard(&tenant.schema, sql).await {
                Ok(tx) => {
                    return Ok(TenantTx::new(
                        tx,
                        Arc::clone(tenant),
                        Arc::clone(&self.inner.budget),
                        permit,
                    ));
                }
                // Something changed since the record was read: the full check decides.
                Err(e) if is_registry_changed(&e) => {}
                Err(e) => return Err(refused(map_begin_error(e, &tenant.schema), tenant)),
            }
        }
        let sql = tenant_begin_sql(&enter);
        let tx = self
            .begin_on_shard(&tenant.schema, sql)
            .await
            .map_err(|e| refused(map_begin_error(e, &tenant.schema), tenant))?;
        Ok(TenantTx::new(
            tx,
            Arc::clone(tenant),
            Arc::clone(&self.inner.budget),
            permit,
        ))
    }

    /// Runs a scoped `BEGIN` statement on the tenant's home shard (or the pool).
    async fn begin_on_shard(
        &self,
        schema: &str,
        sql: String,
    ) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        #[cfg(feature = "metrics")]
        let start = std::time::Instant::now();
        let shard = self.inner.shards.for_schema(schema);
        let tx = match shard {
            Some(shard) => self.inner.shards.begin(shard, sql).await,
            None => begin_scoped(&self.inner.pool, sql).await,
        };
        #[cfg(feature = "metrics")]
        self.inner
            .begin_times
            .record(shard, start.elapsed().as_secs_f64());
        tx
    }

    /// Opens a transaction scoped to the tenant of the surrounding [`crate::scope`].
    pub async fn begin_current(&self) -> Result<TenantTx> {
        let tenant = context::current_tenant().ok_or(Error::NoCurrentTenant)?;
        self.begin(&tenant).await
    }

    /// Opens a transaction on the shared schema (public site, admin queries).
    pub async fn begin_public(&self) -> Result<PublicTx> {
        let sql = begin_sql(
            &self.inner.shared_path,
            &self.inner.config.shared_schema,
            None,
        );
        let tx = begin_scoped(&self.inner.pool, sql)
            .await
            .map_err(|e| map_begin_error(e, &self.inner.config.shared_schema))?;
        Ok(PublicTx::new(tx))
    }

    /// A session-scoped connection for work that can't run in one transaction (long jobs,
    /// `COPY`, several transactions). Refused with [`Error::SessionScopeForbidden`] when
    /// [`crate::Config::forbid_session_scope`] is set.
    pub async fn session(&self, tenant: &Arc<Tenant>) -> Result<TenantConn> {
        self.session_tenant(tenant, None).await
    }

    /// [`Tenantry::session`] for work that came in on `domain` (normalised): refused with
    /// [`Error::TenantMoved`] once the domain is no longer the tenant's (see
    /// [`Tenantry::begin_via_domain`]).
    pub async fn session_via_domain(
        &self,
        tenant: &Arc<Tenant>,
        domain: &str,
    ) -> Result<TenantConn> {
        self.session_tenant(tenant, Some(domain)).await
    }

    async fn session_tenant(
        &self,
        tenant: &Arc<Tenant>,
        domain: Option<&str>,
    ) -> Result<TenantConn> {
        if self.inner.config.forbid_session_scope {
            return Err(Error::SessionScopeForbidden);
        }
        validate_schema_name(&tenant.schema, &[])?;
        TenantConn::open(
            &self.inner.pool,
            Arc::clone(tenant),
            SessionEnter {
                function: &self.inner.sql.enter,
                path: &self.search_path_for(&tenant.schema),
                role: self.role_of(&tenant.schema).as_deref(),
                domain,
            },
        )
        .await
    }

    /// Runs `fut` as tenant `schema` (task-local context), e.g. in a background job.
    pub async fn run_in<F: Future>(&self, schema: &str, fut: F) -> Result<F::Output> {
        let tenant = Arc::new(self.admin().tenant(schema).await?);
        Ok(context::scope(tenant, fut).await)
    }

    /// Spawns `fut` on the runtime inside `tenant`'s scope.
    pub fn spawn_in<F>(&self, tenant: Arc<Tenant>, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(context::scope(tenant, fut))
    }
}

/// A refused tenant `BEGIN`, counted by reason (feature `metrics`).
fn refused(e: Error, _tenant: &Tenant) -> Error {
    #[cfg(feature = "metrics")]
    crate::metrics::begin_refused(&e, _tenant);
    e
}
