//! [`Tenantry`]: the handle an application builds once at start-up and clones everywhere.
//!
//! It owns the connection pool (so that no code path can reach a bare pool for tenant work), the
//! configuration, the migration sets, the application's hooks and the resolution cache.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor, PgPool};
use tenantry_core::{HostPolicy, Tenant, normalize_host, validate_domain, validate_schema_name};

use crate::context;
use crate::error::{Error, Result};
use crate::hooks::{NoHooks, TenantHooks};
use crate::migrate::MigrationSet;
use crate::registry::RegistrySql;
use crate::resolve::ResolverCache;
use crate::scoped::{PublicTx, TenantConn, TenantTx, begin_sql, map_begin_error, path_list};

/// Default lifetime of a cached resolution while LISTEN/NOTIFY keeps the cache fresh.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);

/// Default lifetime of a cached resolution when nothing invalidates the cache.
const UNLISTENED_CACHE_TTL: Duration = Duration::from_secs(5);

/// Default budget of per-tenant prepared statements (see [`TenantryBuilder::tenant_plans`]).
pub const DEFAULT_TENANT_PLANS: usize = 1024;

/// Default bound on a tenant transaction left idle by the application.
pub const DEFAULT_TENANT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default wait of life-cycle changes for a tenant's work in flight.
pub const DEFAULT_LIFECYCLE_WAIT: Duration = Duration::from_secs(10);

/// The tenant type used when none is given.
pub const DEFAULT_TENANT_TYPE: &str = "default";

/// Settings of a [`Tenantry`]; set them through [`TenantryBuilder`] (new settings may be
/// added, so the struct can't be built field by field outside Tenantry).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Schema holding shared data and Tenantry's registry (default `public`).
    pub shared_schema: String,
    /// Schemas appended to every search path after the shared schema (e.g. `extensions`).
    pub extra_search_path: Vec<String>,
    /// Hosts served by the public side (normalised).
    pub public_domains: Vec<String>,
    /// Host normalisation options.
    pub host_policy: HostPolicy,
    /// How long a resolved host stays cached. Freshness comes from LISTEN/NOTIFY invalidation;
    /// the TTL is only the safety net, so the default is long (10 minutes). Without LISTEN
    /// (`listen_for_changes(false)`, or a transaction pooler without `listen_url`) it is the only
    /// freshness there is, and the default becomes 5 seconds.
    pub cache_ttl: Duration,
    /// How long an unknown host stays cached as unknown.
    pub negative_cache_ttl: Duration,
    /// Maximum number of cached unknown hosts (bounds memory under a flood of random hosts).
    pub negative_cache_capacity: u64,
    /// Refuse session-scoped connections (required behind a transaction-mode pooler).
    pub forbid_session_scope: bool,
    /// LISTEN for registry changes and invalidate the cache (default on).
    pub listen_for_changes: bool,
    /// Database-enforced isolation (off by default): `Some(prefix)` gives every tenant its own
    /// `NOLOGIN` role `<prefix><schema>` owning its schema, and scoped access runs as that role
    /// (`SET LOCAL ROLE`). See [`TenantryBuilder::tenant_roles`].
    pub tenant_roles: Option<String>,
    /// The handle connects through a transaction-mode pooler (PgBouncer `pool_mode =
    /// transaction`). See [`TenantryBuilder::transaction_pooler`].
    pub transaction_pooler: bool,
    /// Where the registry listener connects (LISTEN needs a session), when not the main URL.
    /// See [`TenantryBuilder::listen_url`].
    pub listen_url: Option<String>,
    /// How many (tenant, statement) pairs get a prepared statement of their own (default
    /// 1,024; 0 turns it off). See [`TenantryBuilder::tenant_plans`].
    pub tenant_plans: usize,
    /// Tenant-affine connection shards for scoped transactions (default 1: off). See
    /// [`TenantryBuilder::pool_shards`].
    pub pool_shards: usize,
    /// How long a tenant transaction may sit idle (waiting on the application) before
    /// PostgreSQL ends its session (default 30 s; `None`: the server's setting). See
    /// [`TenantryBuilder::tenant_idle_timeout`].
    pub tenant_idle_timeout: Option<Duration>,
    /// How long a rename, delete, status or domain change waits for the tenant's work in flight
    /// before giving up with [`Error::TenantBusy`] (default 10 s). See
    /// [`TenantryBuilder::lifecycle_wait`].
    pub lifecycle_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shared_schema: "public".into(),
            extra_search_path: Vec::new(),
            public_domains: vec!["localhost".into()],
            host_policy: HostPolicy::default(),
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: Duration::from_secs(5),
            negative_cache_capacity: 10_000,
            forbid_session_scope: false,
            listen_for_changes: true,
            tenant_roles: None,
            transaction_pooler: false,
            listen_url: None,
            tenant_plans: DEFAULT_TENANT_PLANS,
            pool_shards: 1,
            tenant_idle_timeout: Some(DEFAULT_TENANT_IDLE_TIMEOUT),
            lifecycle_wait: DEFAULT_LIFECYCLE_WAIT,
        }
    }
}

/// Where a request goes, decided from its host.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// One of the public domains.
    Public,
    /// A tenant's domain.
    Tenant(Arc<Tenant>),
    /// No tenant has this domain.
    Unknown,
}

pub(crate) struct Inner {
    pub pool: PgPool,
    /// Tenant-affine pools for [`Tenantry::begin`] (empty: `pool` serves tenants too).
    pub shards: crate::shards::Shards,
    pub config: Config,
    pub sql: RegistrySql,
    pub shared_migrations: MigrationSet,
    pub tenant_migrations: BTreeMap<String, MigrationSet>,
    pub hooks: Arc<dyn TenantHooks>,
    pub cache: ResolverCache,
    /// `"shared", "extra"...`: appended after a tenant schema.
    pub shared_path: String,
    /// Clone plans of the tenant templates (fast provisioning).
    pub templates: crate::provision::TemplateCache,
    /// Admission of per-tenant prepared statements.
    pub plans: crate::plans::SharedPlans,
}

/// The Tenantry handle. Cheap to clone.
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

/// Builds a [`Tenantry`].
pub struct TenantryBuilder {
    config: Config,
    pool_options: PgPoolOptions,
    shared_dir: Option<PathBuf>,
    tenant_dirs: BTreeMap<String, PathBuf>,
    tenant_sets: BTreeMap<String, MigrationSet>,
    shared_set: Option<MigrationSet>,
    hooks: Arc<dyn TenantHooks>,
}

impl std::fmt::Debug for TenantryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantryBuilder")
            .field("config", &self.config)
            .field("shared_migrations", &self.shared_dir)
            .field("tenant_migrations", &self.tenant_dirs)
            .field("tenant_migration_sets", &self.tenant_sets.keys())
            .finish_non_exhaustive()
    }
}

impl Default for TenantryBuilder {
    fn default() -> Self {
        Self {
            config: Config::default(),
            pool_options: PgPoolOptions::new().max_connections(10),
            shared_dir: None,
            tenant_dirs: BTreeMap::new(),
            tenant_sets: BTreeMap::new(),
            shared_set: None,
            hooks: Arc::new(NoHooks),
        }
    }
}

impl TenantryBuilder {
    /// The shared schema (default `public`).
    pub fn shared_schema(mut self, schema: impl Into<String>) -> Self {
        self.config.shared_schema = schema.into();
        self
    }

    /// Schemas appended to every search path after the shared one (e.g. `extensions`).
    pub fn extra_search_path<I, S>(mut self, schemas: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.extra_search_path = schemas.into_iter().map(Into::into).collect();
        self
    }

    /// Hosts served by the public router (default `["localhost"]`).
    pub fn public_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.public_domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// Host normalisation options (e.g. strip `www.`).
    pub fn host_policy(mut self, policy: HostPolicy) -> Self {
        self.config.host_policy = policy;
        self
    }

    /// Resolution cache lifetimes: positive entries, negative (unknown host) entries.
    pub fn cache_ttl(mut self, positive: Duration, negative: Duration) -> Self {
        self.config.cache_ttl = positive;
        self.config.negative_cache_ttl = negative;
        self
    }

    /// Refuse [`Tenantry::session`] (use behind PgBouncer in transaction mode).
    pub fn forbid_session_scope(mut self, forbid: bool) -> Self {
        self.config.forbid_session_scope = forbid;
        self
    }

    /// Database-enforced isolation (off by default). Every tenant gets a `NOLOGIN` role named
    /// `<prefix><schema>` that owns its schema and is a member of the group role
    /// `<prefix>all-tenants`; [`Tenantry::begin`] and [`Tenantry::session`] switch to it
    /// (`SET LOCAL ROLE`, in the same round trip as `BEGIN`), so PostgreSQL itself refuses
    /// `SELECT * FROM other_tenant.t`. Roles are cluster-wide: use a prefix unique per database
    /// (`^[a-z_][a-z0-9_]{0,29}$`). The application grants what tenants may read in shared
    /// schemas to the group role ([`Tenantry::tenant_group_role`]); Tenantry grants `USAGE` on
    /// the shared schemas. The connecting user needs `CREATEROLE` (or superuser).
    pub fn tenant_roles(mut self, prefix: impl Into<String>) -> Self {
        self.config.tenant_roles = Some(prefix.into());
        self
    }

    /// Makes Tenantry safe behind a transaction-mode pooler (PgBouncer `pool_mode =
    /// transaction`, including PgBouncer < 1.21 without `max_prepared_statements`):
    ///
    /// * Tenantry's own queries outside a scoped transaction (host and schema lookups on a
    ///   cache miss) run inside a short transaction of their own with unnamed statements
    ///   (`.persistent(false)`): sqlx's Parse and Bind are synced separately and, outside a
    ///   transaction, may reach different server connections. A miss costs two more round
    ///   trips (`BEGIN`, `COMMIT`); hits cost nothing.
    /// * Session scope is refused ([`TenantryBuilder::forbid_session_scope`]).
    /// * LISTEN is off unless [`TenantryBuilder::listen_url`] gives a direct (non-pooled) URL:
    ///   a pooler hands LISTEN's server connection to other clients. Without it, a change in
    ///   the registry (new domain, renamed or deleted tenant) is seen by this process only once
    ///   the cached entry expires ([`TenantryBuilder::cache_ttl`]). Give a direct URL.
    ///
    /// The application's own queries must be made safe too: run them inside
    /// [`Tenantry::begin`] transactions, and with PgBouncer < 1.21 make them unnamed
    /// (`.persistent(false)`). Run migrations and tenant life-cycle operations on a direct
    /// connection.
    pub fn transaction_pooler(mut self, on: bool) -> Self {
        self.config.transaction_pooler = on;
        if on {
            self.config.forbid_session_scope = true;
        }
        self
    }

    /// How many (tenant, statement) pairs get a prepared statement of their own (default 1,024;
    /// 0: every tenant shares one prepared statement per SQL text, as plain sqlx does).
    ///
    /// PostgreSQL re-plans a prepared statement whenever it runs under another `search_path`
    /// than the last time, which on a pool shared by many tenants is nearly every time. Queries
    /// sent through a [`TenantTx`] (`&mut tx`; `&mut *db` with the axum `TenantDb`) are tagged
    /// with the tenant (a trailing SQL comment) for the first `budget` (tenant, statement)
    /// pairs seen, so each keeps its own valid plan; the rest run untagged. Each connection's
    /// statement cache is sized to `budget` + 100, so tagging never causes evictions.
    ///
    /// Cost: server memory, about 16 KB per simple statement per connection (more for complex
    /// plans), at most `budget` per connection. Lower it for large plans or many connections.
    pub fn tenant_plans(mut self, budget: usize) -> Self {
        self.config.tenant_plans = budget;
        self
    }

    /// Splits the connections that serve tenant transactions into `shards` pools and sends each
    /// tenant to its own one (by a hash of its schema name), spilling over to an idle connection
    /// of the next shard when its own is full and busy (default 1: one pool for everyone).
    ///
    /// Why: every PostgreSQL backend keeps, without limit, the catalog and relation caches of
    /// every table it has touched. With thousands of tenants over one pool, each connection ends
    /// up touching every tenant, so a request usually lands on a backend that must first load
    /// that tenant's tables from the catalogs (hundreds of microseconds), and every backend's
    /// memory grows with the whole fleet. With shards, each backend sees about
    /// `2 / shards` of the fleet. Isolation is unchanged (it never depended on which connection
    /// serves a tenant). Each shard gets `max_connections / shards` connections (at least one);
    /// public and administrative work keeps the main pool. Worth it from a few thousand tenants;
    /// a single very busy tenant is served by its shard plus spill-over.
    pub fn pool_shards(mut self, shards: usize) -> Self {
        self.config.pool_shards = shards.max(1);
        self
    }

    /// How long a tenant transaction may stay idle in the middle (the application holding it
    /// open while it waits on a client, a remote call...) before PostgreSQL terminates its
    /// session: `SET LOCAL idle_in_transaction_session_timeout`, sent with the `BEGIN`
    /// (default 30 s; `None` keeps the server's setting). The transaction's work is rolled
    /// back and the connection closed; the pool opens a new one. It bounds how long one stuck
    /// request can hold a pooled connection and delay a rename or delete of its tenant.
    pub fn tenant_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.tenant_idle_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// How long a rename, delete, status change or domain removal waits for the tenant's
    /// transactions and sessions in flight to end (default 10 s). Past it, the change is
    /// refused with [`Error::TenantBusy`] and nothing is changed. While it waits, new scoped
    /// work of that tenant queues behind it.
    pub fn lifecycle_wait(mut self, wait: Duration) -> Self {
        self.config.lifecycle_wait = wait;
        self
    }

    /// A separate URL for the registry listener (LISTEN/NOTIFY), e.g. a direct connection to
    /// PostgreSQL when the main URL goes through a transaction-mode pooler.
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.config.listen_url = Some(url.into());
        self
    }

    /// LISTEN for registry changes (default on). Turn off only for one-shot tools.
    pub fn listen_for_changes(mut self, listen: bool) -> Self {
        self.config.listen_for_changes = listen;
        self
    }

    /// sqlx pool settings (size, timeouts). Tenantry builds the pool from them.
    pub fn pool_options(mut self, options: PgPoolOptions) -> Self {
        self.pool_options = options;
        self
    }

    /// The shared migrations folder (run once, in the shared schema).
    pub fn shared_migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.shared_dir = Some(dir.into());
        self
    }

    /// Shared migrations given in code.
    pub fn shared_migration_set(mut self, set: MigrationSet) -> Self {
        self.shared_set = Some(set);
        self
    }

    /// The tenant migrations folder for tenants of the default type.
    pub fn tenant_migrations(self, dir: impl Into<PathBuf>) -> Self {
        self.tenant_type_migrations(crate::DEFAULT_TENANT_TYPE, dir)
    }

    /// The tenant migrations folder for tenants of type `tenant_type`.
    pub fn tenant_type_migrations(mut self, tenant_type: &str, dir: impl Into<PathBuf>) -> Self {
        self.tenant_dirs.insert(tenant_type.to_owned(), dir.into());
        self
    }

    /// Tenant migrations given in code, for tenants of type `tenant_type`.
    pub fn tenant_migration_set(mut self, tenant_type: &str, set: MigrationSet) -> Self {
        self.tenant_sets.insert(tenant_type.to_owned(), set);
        self
    }

    /// The application's life-cycle hooks.
    pub fn hooks(mut self, hooks: impl TenantHooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    /// Connects to `database_url` and builds the handle. Does not migrate: call
    /// [`Tenantry::migrate_shared`] (and [`Tenantry::migrate_tenants`]) at start-up.
    pub async fn connect(self, database_url: &str) -> Result<Tenantry> {
        let options: PgConnectOptions = database_url.parse()?;
        self.connect_with(options).await
    }

    /// Like [`TenantryBuilder::connect`] with parsed connection options.
    pub async fn connect_with(self, options: PgConnectOptions) -> Result<Tenantry> {
        let mut config = self.config;
        // The shared and extra schemas are identifiers we put into SQL: validate them too.
        // Names reserved *for tenants* (`public`, `shared`, `extensions`...) are exactly what
        // shared schemas are called, so only `pg_*` and `information_schema` are refused here.
        for schema in std::iter::once(&config.shared_schema).chain(&config.extra_search_path) {
            match validate_schema_name(schema, &[]) {
                Err(tenantry_core::NameError::SchemaReserved(_))
                    if !schema.starts_with("pg_") && schema != "information_schema" => {}
                other => other?,
            }
        }
        config.public_domains = config
            .public_domains
            .iter()
            .map(|d| {
                normalize_host(d, config.host_policy).map_err(|reason| Error::InvalidPublicDomain {
                    domain: d.clone(),
                    reason,
                })
            })
            .collect::<Result<_>>()?;

        let shared_migrations = match (self.shared_set, self.shared_dir) {
            (Some(set), _) => set,
            (None, Some(dir)) => MigrationSet::from_dir(dir).await?,
            (None, None) => MigrationSet::default(),
        };
        let mut tenant_migrations = self.tenant_sets;
        for (ty, dir) in self.tenant_dirs {
            tenant_migrations.insert(ty, MigrationSet::from_dir(dir).await?);
        }
        tenant_migrations
            .entry(crate::DEFAULT_TENANT_TYPE.to_owned())
            .or_default();

        if let Some(prefix) = &config.tenant_roles {
            let ok = !prefix.is_empty()
                && prefix.len() <= 30
                && !prefix.starts_with(|c: char| c.is_ascii_digit())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(Error::InvalidTenantRolePrefix {
                    prefix: prefix.clone(),
                });
            }
        }
        // No ping before each acquire: the first round trip of every scoped transaction (its
        // BEGIN) is the liveness check, retried on a dead connection (see `begin_scoped`), so the
        // ping would be a round trip of pure overhead on every request.
        // Room for every tagged statement plus the untagged ones (see `plans.rs`).
        let pool_connect_options = if config.tenant_plans > 0 {
            options
                .clone()
                .statement_cache_capacity(config.tenant_plans + crate::plans::UNTAGGED_ROOM)
        } else {
            options.clone()
        };
        let pool_options = self.pool_options.test_before_acquire(false);
        let shards =
            crate::shards::Shards::new(config.pool_shards, &pool_options, &pool_connect_options);
        let pool = pool_options.connect_with(pool_connect_options).await?;
        if let Some(prefix) = &config.tenant_roles {
            setup_group_role(&pool, &group_role_name(prefix), &config).await?;
        }
        let shared_path = path_list(
            std::iter::once(config.shared_schema.as_str())
                .chain(config.extra_search_path.iter().map(String::as_str)),
        );
        let sql = RegistrySql::new(&config.shared_schema);
        // Behind a transaction pooler LISTEN needs a direct URL of its own.
        let listen_options = match &config.listen_url {
            Some(url) => Some(url.parse::<PgConnectOptions>()?),
            None if config.transaction_pooler => None,
            None => Some(options.clone()),
        };
        let listen = config.listen_for_changes && listen_options.is_some();
        if config.listen_for_changes && listen_options.is_none() {
            tracing::info!(
                "tenantry: transaction_pooler without listen_url: registry LISTEN is off, \
                 cached resolutions expire by TTL only"
            );
        }
        // Without LISTEN the TTL is the only freshness: the long default would serve a deleted
        // or suspended tenant for minutes.
        if !listen && config.cache_ttl == DEFAULT_CACHE_TTL {
            config.cache_ttl = UNLISTENED_CACHE_TTL;
        }
        let cache = ResolverCache::new(&config);
        let plans = Arc::new(crate::plans::TenantPlans::new(config.tenant_plans));
        let tenantry = Tenantry {
            inner: Arc::new(Inner {
                pool,
                shards,
                config,
                sql,
                shared_migrations,
                tenant_migrations,
                hooks: self.hooks,
                cache,
                shared_path,
                templates: Default::default(),
                plans,
            }),
        };
        if let (true, Some(listen_options)) = (listen, listen_options) {
            // A pool of its own, so the long-lived LISTEN connection never takes a slot from
            // the application's pool.
            let listen_pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(listen_options);
            crate::resolve::spawn_listener(Arc::downgrade(&tenantry.inner), listen_pool);
        }
        Ok(tenantry)
    }
}

impl Tenantry {
    /// Starts building a handle.
    pub fn builder() -> TenantryBuilder {
        TenantryBuilder::default()
    }

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
        format!(
            "{}, {}",
            tenantry_core::quote_ident(schema),
            self.inner.shared_path
        )
    }

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
        let role = self.tenant_role(&tenant.schema);
        let enter = crate::scoped::Enter {
            function: &self.inner.sql.enter,
            tenant,
            serving,
            path: &self.search_path_for(&tenant.schema),
            role: role.as_deref(),
            domain,
            idle_timeout: self.inner.config.tenant_idle_timeout,
        };
        // A resolved record, still current: the fast check (no registry lookups).
        if let (Some(version), Some(oid)) = (tenant.registry_version, tenant.schema_oid)
            && (!serving || tenant.status == tenantry_core::TenantStatus::Active)
        {
            let config = &self.inner.config;
            let path_schemas = std::iter::once(tenant.schema.as_str())
                .chain(std::iter::once(config.shared_schema.as_str()))
                .chain(config.extra_search_path.iter().map(String::as_str));
            let sql = crate::scoped::tenant_fast_begin_sql(
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
                        Arc::clone(&self.inner.plans),
                    ));
                }
                // Something changed since the record was read: the full check decides.
                Err(e) if crate::scoped::is_registry_changed(&e) => {}
                Err(e) => return Err(map_begin_error(e, &tenant.schema)),
            }
        }
        let sql = crate::scoped::tenant_begin_sql(&enter);
        let tx = self
            .begin_on_shard(&tenant.schema, sql)
            .await
            .map_err(|e| map_begin_error(e, &tenant.schema))?;
        Ok(TenantTx::new(
            tx,
            Arc::clone(tenant),
            Arc::clone(&self.inner.plans),
        ))
    }

    /// Runs a scoped `BEGIN` statement on the tenant's home shard (or the pool).
    async fn begin_on_shard(
        &self,
        schema: &str,
        sql: String,
    ) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        match self.inner.shards.for_schema(schema) {
            Some(shard) => self.inner.shards.begin(shard, sql).await,
            None => begin_scoped(&self.inner.pool, sql).await,
        }
    }

    /// The home connection shard of a tenant schema, when [`TenantryBuilder::pool_shards`] is
    /// above 1.
    pub fn pool_shard_of(&self, schema: &str) -> Option<usize> {
        self.inner.shards.for_schema(schema)
    }

    /// Open connections per shard (empty when sharding is off).
    pub fn pool_shard_sizes(&self) -> Vec<u32> {
        self.inner.shards.sizes()
    }

    /// How many (tenant, statement) pairs have a prepared statement of their own so far (see
    /// [`TenantryBuilder::tenant_plans`]).
    pub fn tenant_plans_admitted(&self) -> usize {
        self.inner.plans.admitted()
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
    /// [`Config::forbid_session_scope`] is set.
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
            crate::scoped::SessionEnter {
                function: &self.inner.sql.enter,
                path: &self.search_path_for(&tenant.schema),
                role: self.tenant_role(&tenant.schema).as_deref(),
                domain,
            },
        )
        .await
    }

    /// The role scoped access to `schema` runs as, when [`Config::tenant_roles`] is on.
    pub fn tenant_role(&self, schema: &str) -> Option<String> {
        self.inner
            .config
            .tenant_roles
            .as_deref()
            .map(|prefix| tenant_role_name(prefix, schema))
    }

    /// The group role every tenant role belongs to (grant shared tables to it), when
    /// [`Config::tenant_roles`] is on.
    pub fn tenant_group_role(&self) -> Option<String> {
        self.inner
            .config
            .tenant_roles
            .as_deref()
            .map(group_role_name)
    }

    /// Runs `fut` as tenant `schema` (task-local context), e.g. in a background job.
    pub async fn run_in<F: Future>(&self, schema: &str, fut: F) -> Result<F::Output> {
        let tenant = Arc::new(self.tenant(schema).await?);
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

    /// Decides where a request for `raw_host` (a `Host` header value) goes.
    pub async fn resolve_host(&self, raw_host: &str) -> Result<Resolution, ResolveError> {
        let host = normalize_host(raw_host, self.inner.config.host_policy)
            .map_err(ResolveError::BadHost)?;
        self.resolve_normalized(&host).await
    }

    /// [`Tenantry::resolve_host`] for a host already normalised with
    /// `tenantry_core::normalize_host` and this handle's [`Config::host_policy`] (the HTTP layer
    /// normalises once per request). A host that is not in normal form is simply unknown.
    pub async fn resolve_normalized_host(&self, host: &str) -> Result<Resolution, ResolveError> {
        self.resolve_normalized(host).await
    }

    async fn resolve_normalized(&self, host: &str) -> Result<Resolution, ResolveError> {
        if self.inner.config.public_domains.iter().any(|d| d == host) {
            return Ok(Resolution::Public);
        }
        // Only syntactically valid domains can be in the table; skip the lookup for the rest
        // (IP literals, all-numeric names).
        if validate_domain(host).is_err() {
            return Ok(Resolution::Unknown);
        }
        match self
            .inner
            .cache
            .get(self, host)
            .await
            .map_err(ResolveError::Database)?
        {
            Some(t) => Ok(Resolution::Tenant(t)),
            None => Ok(Resolution::Unknown),
        }
    }

    /// Number of hosts currently cached as known (diagnostics, benchmarks).
    pub fn cached_hosts(&self) -> u64 {
        self.inner.cache.len()
    }

    /// Forgets every cached resolution (done automatically on registry notifications).
    pub fn invalidate_cache(&self) {
        self.inner.cache.invalidate_all();
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
        self.inner.pool.close().await;
    }
}

/// How many times a scoped BEGIN is tried on connections found dead.
const BEGIN_ATTEMPTS: usize = 3;

/// [`begin_shielded`], retried when the pooled connection turns out to be dead (the server
/// restarted, or closed an idle connection). Tenantry's pool does not ping connections before
/// handing them out, so this is where a dead one is noticed; nothing ran on it, so trying
/// another is safe.
pub(crate) async fn begin_scoped(
    pool: &PgPool,
    sql: String,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    begin_retrying(|| {
        let (pool, sql) = (pool.clone(), sql.clone());
        Box::pin(async move { pool.begin_with(AssertSqlSafe(sql)).await })
    })
    .await
}

/// Runs the begin `make` returns, shielded from cancellation ([`begin_shielded`]), and again with
/// a new one when the connection it got turns out to be dead (nothing ran on it, so trying
/// another is safe). Shared by the single pool ([`begin_scoped`]) and the shards.
pub(crate) async fn begin_retrying(
    mut make: impl FnMut() -> BeginFuture,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut attempt = 1;
    loop {
        match Shielded::new(make()).await {
            Err(e) if attempt < BEGIN_ATTEMPTS && is_dead_connection(&e) => attempt += 1,
            result => return result,
        }
    }
}

/// The connection is gone (closed socket, or the server terminated the backend).
fn is_dead_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01" | "57P02")),
        _ => false,
    }
}

/// Runs sqlx's `begin_with` so that cancelling the caller can't cut it short. sqlx's `begin`
/// cancelled after `BEGIN` reached the server and before the answer came back returns the
/// connection to the pool *inside that transaction* (its rollback guard only acts once the
/// transaction depth is counted), with the tenant's `SET LOCAL` still in force for whoever takes
/// it next. The begin runs inline in the caller's task ([`Shielded`]); if the caller is dropped
/// while it is in flight, the rest of it is moved to a task of its own, where it completes and
/// the transaction nobody awaits any more is dropped like any other (its `ROLLBACK` is queued).
/// No extra round trip, and no task spawn unless the caller is cancelled mid-begin.
pub(crate) async fn begin_shielded(
    pool: &PgPool,
    sql: String,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let pool = pool.clone();
    Shielded::new(Box::pin(async move {
        pool.begin_with(AssertSqlSafe(sql)).await
    }))
    .await
}

pub(crate) type BeginFuture = futures::future::BoxFuture<
    'static,
    std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>,
>;

/// A begin that always runs to completion: polled inline, and handed to a spawned task if it is
/// dropped after its first poll (once the `BEGIN` may be on the wire) and before it finished.
struct Shielded {
    fut: Option<BeginFuture>,
    started: bool,
}

impl Shielded {
    fn new(fut: BeginFuture) -> Self {
        Self {
            fut: Some(fut),
            started: false,
        }
    }
}

impl Future for Shielded {
    type Output = std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        let Some(fut) = this.fut.as_mut() else {
            return std::task::Poll::Ready(Err(sqlx::Error::WorkerCrashed));
        };
        this.started = true;
        let out = std::task::ready!(fut.as_mut().poll(cx));
        this.fut = None;
        std::task::Poll::Ready(out)
    }
}

impl Drop for Shielded {
    fn drop(&mut self) {
        // Never polled: nothing was sent, dropping is safe. Otherwise finish it elsewhere; the
        // transaction it yields is dropped there (rolled back, connection back to the pool).
        if let (true, Some(fut)) = (self.started, self.fut.take())
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = fut.await;
            });
        }
    }
}

/// `<prefix><schema>`, or when that exceeds PostgreSQL's 63 bytes, a truncated name plus a hash
/// (PostgreSQL would truncate silently and two tenants could share a role).
pub(crate) fn tenant_role_name(prefix: &str, schema: &str) -> String {
    let name = format!("{prefix}{schema}");
    if name.len() <= 63 {
        return name;
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(schema.as_bytes());
    let tag: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}_{tag}", &name[..63 - 9])
}

/// The group role of all tenant roles (the `-` keeps it apart from any tenant role).
pub(crate) fn group_role_name(prefix: &str) -> String {
    format!("{prefix}all-tenants")
}

/// Creates the group role if missing and lets it use the shared schemas that exist (the extra
/// ones may be created by the shared migrations: `migrate_shared` calls this again).
pub(crate) async fn setup_group_role(pool: &PgPool, group: &str, config: &Config) -> Result<()> {
    let g = tenantry_core::quote_ident(group);
    let wanted: Vec<String> = std::iter::once(config.shared_schema.clone())
        .chain(config.extra_search_path.iter().cloned())
        .collect();
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
            .bind(&wanted)
            .fetch_all(pool)
            .await?;
    let mut sql = format!(
        "DO $tenantry$ BEGIN CREATE ROLE {g} NOLOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $tenantry$"
    );
    if !existing.is_empty() {
        let schemas = path_list(existing.iter().map(String::as_str));
        sql.push_str(&format!("; GRANT USAGE ON SCHEMA {schemas} TO {g}"));
    }
    pool.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
    Ok(())
}

/// Why a host could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The `Host` value is not a valid host (400).
    #[error(transparent)]
    BadHost(tenantry_core::HostError),
    /// The registry could not be read (503).
    #[error("registry unavailable: {0}")]
    Database(Arc<Error>),
}
