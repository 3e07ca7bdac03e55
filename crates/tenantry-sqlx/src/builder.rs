//! [`TenantryBuilder`]: the settings, migration sets and hooks a [`Tenantry`] is built from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tenantry_core::{HostPolicy, normalize_host, validate_schema_name};

use crate::admin::roles::{group_role_name, setup_group_role};
use crate::citus::CitusMode;
use crate::config::{Config, DEFAULT_CACHE_TTL, UNLISTENED_CACHE_TTL};
use crate::error::{Error, Result};
use crate::handle::{Inner, Tenantry};
use crate::hooks::{NoHooks, TenantHooks};
use crate::migrate::set::MigrationSet;
use crate::registry::RegistrySql;
use crate::request::shards::Shards;
use crate::request::tagging::{StatementBudget, UNTAGGED_ROOM};
use crate::resolve::cache::ResolverCache;
use crate::resolve::listener::spawn_listener;
use crate::sql::path_list;

impl Tenantry {
    /// Starts building a handle.
    pub fn builder() -> TenantryBuilder {
        TenantryBuilder::default()
    }
}

/// Builds a [`Tenantry`]: settings, migration folders (or sets), hooks, then
/// [`TenantryBuilder::connect`]. Start from [`Tenantry::builder`].
///
/// ```no_run
/// # async fn demo() -> tenantry_sqlx::Result<()> {
/// use std::time::Duration;
/// use tenantry_sqlx::{NoHooks, Tenantry};
///
/// let tenantry = Tenantry::builder()
///     .shared_schema("public")
///     .public_domains(["example.com", "www.example.com"])
///     .shared_migrations("migrations/shared")
///     .tenant_migrations("migrations/tenant")
///     .tenant_type_migrations("pro", "migrations/tenant_pro")
///     .cache_ttl(Duration::from_secs(600), Duration::from_secs(5))
///     .pool_shards(4)
///     .hooks(NoHooks)
///     .connect("postgres://app@localhost/app")
///     .await?;
/// assert_eq!(tenantry.config().pool_shards, 4);
/// # Ok(())
/// # }
/// ```
pub struct TenantryBuilder {
    config: Config,
    pool_options: PgPoolOptions,
    shared_dir: Option<PathBuf>,
    tenant_dirs: BTreeMap<String, PathBuf>,
    tenant_sets: BTreeMap<String, MigrationSet>,
    shared_set: Option<MigrationSet>,
    hooks: Arc<dyn TenantHooks>,
    gate: Option<Arc<dyn crate::handle::TransactionGate>>,
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
            gate: None,
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
    /// schemas to the group role ([`crate::Admin::tenant_group_role`]); Tenantry grants `USAGE` on
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
    /// sent through a [`crate::TenantTx`] (`&mut tx`; `&mut *db` with the axum `TenantDb`) are tagged
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

    /// With `true`, every tenant transaction sets `application_name` to `tenant=<schema>` for
    /// its own duration (`set_config(.., true)` in the same round trip as its `BEGIN`; it
    /// reverts at COMMIT/ROLLBACK), so the server's logs (`%a` in `log_line_prefix`),
    /// `pg_stat_activity` and lock reports say which tenant a statement worked for. Off by
    /// default: it costs one more `set_config` per `BEGIN`. PostgreSQL cuts the value at 63
    /// bytes. Session-scoped connections ([`crate::Tenantry::session`]) are not tagged.
    pub fn tag_transactions(mut self, on: bool) -> Self {
        self.config.tag_transactions = on;
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

    /// Admission of tenant transactions (per-tenant caps on concurrent transactions), asked
    /// before every tenant `BEGIN`: see [`crate::TransactionGate`]. Default none: the begin
    /// path does no extra work.
    pub fn transaction_gate(mut self, gate: impl crate::handle::TransactionGate) -> Self {
        self.gate = Some(Arc::new(gate));
        self
    }

    /// Citus mode (default [`CitusMode::Auto`]: on when the database has the `citus`
    /// extension). In Citus mode each tenant schema is created as a distributed schema (placed
    /// whole on one worker), nothing else is distributed, migrations run one statement at a
    /// time, tenants are migrated rather than cloned, and [`Tenantry::placement`] moves them.
    /// Role mode is refused. See the README's "Scale out with Citus".
    pub fn citus(mut self, mode: CitusMode) -> Self {
        self.config.citus = mode;
        self
    }

    /// Shared tables that tenant transactions read (e.g. `plans`), made Citus reference tables
    /// (a copy on every node) after the shared migrations, so a tenant's node can join them
    /// with the tenant's tables. Unqualified names are in the shared schema. Ignored outside
    /// Citus mode.
    pub fn reference_tables<I, S>(mut self, tables: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.reference_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Citus node-affine routing (default off): each tenant's scoped transactions
    /// ([`Tenantry::begin`] and friends) go straight to the worker holding its schema instead
    /// of through the coordinator, which stays the fallback (schema not distributed, placement
    /// unknown, a stale record, a node unreachable). Measured on the demo's notes transaction
    /// at about twice the coordinator's throughput (`docs/citus.md`).
    ///
    /// Soundness does not rest on the placement: a per-tenant *node epoch*, in a reference
    /// table kept on every node by Citus's two-phase commit, is bumped by every registry change
    /// of the tenant (from triggers, so raw SQL is covered) and by every operation that takes
    /// the tenant's lock (rename, delete, status, domains, move), before it changes anything.
    /// The worker's `BEGIN` locks the tenant's epoch row in the worker's copy and compares it,
    /// and the schema's colocation id, with the resolved record: a change waits for the
    /// tenant's transactions in flight on every node, and a stale record goes through the
    /// coordinator's check. Costs: every registry write and lifecycle operation also writes
    /// every node (two-phase commit); each worker transaction locks one row.
    ///
    /// Only meaningful in Citus mode ([`TenantryBuilder::citus`]); elsewhere a documented
    /// no-op. Set up by [`crate::Fleet::migrate_shared`] (the epochs table, its triggers);
    /// [`Tenantry::is_node_affine`] says whether it is in force. Every instance of an
    /// application should use the same setting: an instance without it still bumps epochs
    /// through the triggers, but late in its operations. Sessions
    /// ([`Tenantry::session`]) and admin work stay on the coordinator.
    pub fn node_affine(mut self, on: bool) -> Self {
        self.config.node_affine = on;
        self
    }

    /// Connects to `database_url` and builds the handle. Does not migrate: call
    /// [`crate::Fleet::migrate_shared`] (and [`crate::Fleet::migrate_tenants`]) at start-up.
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
        // Room for every tagged statement plus the untagged ones (see `request/tagging.rs`).
        let pool_connect_options = if config.tenant_plans > 0 {
            options
                .clone()
                .statement_cache_capacity(config.tenant_plans + UNTAGGED_ROOM)
        } else {
            options.clone()
        };
        let pool_options = self.pool_options.test_before_acquire(false);
        let shards = Shards::new(config.pool_shards, &pool_options, &pool_connect_options);
        let affinity = config.node_affine.then(|| {
            crate::citus::affinity::Affinity::new(
                pool_connect_options.clone(),
                pool_options.clone(),
            )
        });
        let pool = pool_options.connect_with(pool_connect_options).await?;
        let citus = crate::citus::detect(&pool, config.citus).await?;
        if citus && config.tenant_roles.is_some() {
            return Err(Error::CitusUnsupported {
                what: "role mode (tenant_roles)",
                why: "Citus connects to the workers as the current user, and tenant roles can't log in",
            });
        }
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
        let cache = Arc::new(ResolverCache::new(&config));
        let budget = Arc::new(StatementBudget::new(config.tenant_plans));
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
                budget,
                gate: self.gate,
                citus: citus.into(),
                affinity,
                node_epochs: false.into(),
                #[cfg(feature = "metrics")]
                begin_times: Default::default(),
            }),
        };
        if citus {
            tenantry.detect_node_epochs().await?;
        }
        if let (true, Some(listen_options)) = (listen, listen_options) {
            // A pool of its own, so the long-lived LISTEN connection never takes a slot from
            // the application's pool.
            let listen_pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(listen_options);
            spawn_listener(Arc::downgrade(&tenantry.inner.cache), listen_pool);
        }
        Ok(tenantry)
    }
}
