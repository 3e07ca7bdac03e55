//! [`Tenantry`]: the handle an application builds once at start-up and clones everywhere.
//!
//! It owns the connection pool (so that no code path can reach a bare pool for tenant work), the
//! configuration, the migration sets, the application's hooks and the resolution cache. This
//! file holds only the handle's state and its accessors: the request path is in `request/`,
//! resolution in `resolve/`, administration in `admin/`, migrations in `migrate/`, templates and
//! spares in `provision/`, construction in `builder.rs`. The [`TransactionGate`] trait lives here
//! too: it is handed the handle, and the handle holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use tenantry_core::Tenant;

use crate::config::Config;
use crate::error::Result;
use crate::hooks::TenantHooks;
use crate::migrate::set::MigrationSet;
use crate::provision::script::TemplateCache;
use crate::registry::RegistrySql;
use crate::request::shards::Shards;
use crate::request::tagging::SharedBudget;
use crate::resolve::cache::ResolverCache;

/// What every clone of a [`Tenantry`] shares.
pub(crate) struct Inner {
    pub pool: PgPool,
    /// Tenant-affine pools for [`Tenantry::begin`] (empty: `pool` serves tenants too).
    pub shards: Shards,
    pub config: Config,
    pub sql: RegistrySql,
    pub shared_migrations: MigrationSet,
    pub tenant_migrations: BTreeMap<String, MigrationSet>,
    pub hooks: Arc<dyn TenantHooks>,
    /// Shared with the registry listener, which stops once the last handle is gone.
    pub cache: Arc<ResolverCache>,
    /// `"shared", "extra"...`: appended after a tenant schema.
    pub shared_path: String,
    /// Clone scripts of the tenant templates (fast provisioning).
    pub templates: TemplateCache,
    /// Admission of per-tenant prepared statements.
    pub budget: SharedBudget,
    /// Admission of tenant transactions (per-tenant caps); `None`: no check at all.
    pub gate: Option<Arc<dyn TransactionGate>>,
    /// Citus mode (see `citus/`), resolved at connect and after the shared migrations.
    pub citus: std::sync::atomic::AtomicBool,
    /// Node-affine routing (Citus, `citus/affine.rs`); `None` when the option is off.
    pub affinity: Option<crate::citus::affinity::Affinity>,
    /// The node epochs table exists (Citus): lifecycle operations bump epochs, whether this
    /// handle routes node-affine or not (another instance may).
    pub node_epochs: std::sync::atomic::AtomicBool,
    /// The `BEGIN` latency histograms, registered once (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub begin_times: crate::metrics::BeginTimes,
}

/// The Tenantry handle. Cheap to clone.
///
/// The request path lives here ([`Tenantry::begin`], [`Tenantry::session`],
/// [`Tenantry::begin_public`], [`Tenantry::resolve_host`], [`Tenantry::run_in`]...);
/// administration behind [`Tenantry::admin`], migrations and templates behind
/// [`Tenantry::fleet`], diagnostics behind [`Tenantry::stats`].
///
/// ```no_run
/// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
/// use tenantry_sqlx::Resolution;
///
/// // What a request handler does: resolve the host, then work inside the tenant's schema.
/// if let Ok(Resolution::Tenant(tenant)) = tenantry.resolve_host("acme.example.com").await {
///     let mut tx = tenantry.begin(&tenant).await?;
///     let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
///         .fetch_one(&mut tx)
///         .await?;
///     tx.commit().await?;
///     println!("{} has {notes} notes", tenant.display_name);
/// }
/// // A background job in one tenant's scope.
/// tenantry
///     .run_in("acme", async {
///         let tenant = tenantry_sqlx::current_tenant().expect("inside run_in");
///         println!("working for {}", tenant.schema);
///     })
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tenantry {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Tenantry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenantry")
            .field("shared_schema", &self.inner.config.shared_schema)
            .field("public_domains", &self.inner.config.public_domains)
            .field("tenant_types", &self.tenant_types().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Tenantry {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The tenant migration set for a tenant type, if that type is configured.
    pub fn tenant_migration_set(&self, tenant_type: &str) -> Option<&MigrationSet> {
        self.inner.tenant_migrations.get(tenant_type)
    }

    /// The configured tenant types.
    pub fn tenant_types(&self) -> impl Iterator<Item = &str> {
        self.inner.tenant_migrations.keys().map(String::as_str)
    }

    /// The full search path for a tenant schema: the tenant, the shared schema, the extras.
    pub fn search_path_for(&self, schema: &str) -> String {
        format!("{}, {}", crate::sql::ident(schema), self.inner.shared_path)
    }

    /// The home connection shard of a tenant schema, when [`crate::TenantryBuilder::pool_shards`] is
    /// above 1.
    pub fn pool_shard_of(&self, schema: &str) -> Option<usize> {
        self.inner.shards.for_schema(schema)
    }

    /// Forgets every cached resolution (done automatically on registry notifications).
    pub fn invalidate_cache(&self) {
        self.inner.cache.invalidate_all();
    }

    /// A receiver that changes whenever the resolution cache is emptied: a registry change
    /// heard by the listener (tenant or domain rows, schema drops and renames), a listener
    /// reconnect, or [`Tenantry::invalidate_cache`]. Long-lived holders of a tenant (streams,
    /// sockets) wait on it to re-check their tenant.
    pub fn registry_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.cache.subscribe()
    }

    /// The pool, for Tenantry's own crates (CLI, HTTP layer). Not for tenant work: it has no
    /// search path guarantees.
    #[doc(hidden)]
    pub fn raw_pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.inner.shards.close().await;
        if let Some(affinity) = &self.inner.affinity {
            affinity.close().await;
        }
        self.inner.pool.close().await;
    }
}

/// What a [`TransactionGate`] hands back for an admitted transaction: held by the
/// [`crate::TenantTx`] for its whole life and dropped with it (commit, rollback, drop,
/// cancellation, panic). Typically a semaphore permit.
pub type TransactionPermit = Box<dyn Send + Sync>;

/// Admission of tenant transactions, asked before every [`Tenantry::begin`] (and
/// `begin_via_domain`, `begin_any_status`, `begin_current`), *before* a pooled connection is
/// taken, so a tenant waiting for admission holds no connection.
///
/// `Ok(Some(permit))`: admitted, the permit lives as long as the transaction. `Ok(None)`:
/// admitted with nothing to hold. `Err(_)` refuses the transaction; nothing is opened. Return
/// [`crate::Error::TooManyTransactions`] when a cap is full after waiting (HTTP: 503 with
/// `Retry-After`).
///
/// Set with [`crate::TenantryBuilder::transaction_gate`]. Without one (the default) the begin
/// path does no extra work. `tenantry-axum`'s `TenantLimiter` (feature `limits`) implements it
/// with per-tenant caps read from the tenant's data.
#[async_trait]
pub trait TransactionGate: Send + Sync + std::fmt::Debug + 'static {
    /// Admits (or refuses) one transaction of `tenant`; may wait.
    async fn admit(
        &self,
        tenantry: &Tenantry,
        tenant: &Arc<Tenant>,
    ) -> Result<Option<TransactionPermit>>;
}
