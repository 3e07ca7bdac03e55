//! [`Config`]: the settings of a [`crate::Tenantry`], and their defaults.

use std::time::Duration;

use tenantry_core::HostPolicy;

/// Default lifetime of a cached resolution while LISTEN/NOTIFY keeps the cache fresh.
pub(crate) const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);

/// Default lifetime of a cached resolution when nothing invalidates the cache.
pub(crate) const UNLISTENED_CACHE_TTL: Duration = Duration::from_secs(5);

/// Default budget of per-tenant prepared statements (see
/// [`crate::TenantryBuilder::tenant_plans`]).
pub const DEFAULT_TENANT_PLANS: usize = 1024;

/// Default bound on a tenant transaction left idle by the application.
pub const DEFAULT_TENANT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default wait of life-cycle changes for a tenant's work in flight.
pub const DEFAULT_LIFECYCLE_WAIT: Duration = Duration::from_secs(10);

/// The tenant type used when none is given.
pub const DEFAULT_TENANT_TYPE: &str = "default";

/// Settings of a [`crate::Tenantry`]; set them through [`crate::TenantryBuilder`] (new settings may be
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
    /// (`SET LOCAL ROLE`). See [`crate::TenantryBuilder::tenant_roles`].
    pub tenant_roles: Option<String>,
    /// The handle connects through a transaction-mode pooler (PgBouncer `pool_mode =
    /// transaction`). See [`crate::TenantryBuilder::transaction_pooler`].
    pub transaction_pooler: bool,
    /// Where the registry listener connects (LISTEN needs a session), when not the main URL.
    /// See [`crate::TenantryBuilder::listen_url`].
    pub listen_url: Option<String>,
    /// How many (tenant, statement) pairs get a prepared statement of their own (default
    /// 1,024; 0 turns it off). See [`crate::TenantryBuilder::tenant_plans`].
    pub tenant_plans: usize,
    /// Tenant-affine connection shards for scoped transactions (default 1: off). See
    /// [`crate::TenantryBuilder::pool_shards`].
    pub pool_shards: usize,
    /// How long a tenant transaction may sit idle (waiting on the application) before
    /// PostgreSQL ends its session (default 30 s; `None`: the server's setting). See
    /// [`crate::TenantryBuilder::tenant_idle_timeout`].
    pub tenant_idle_timeout: Option<Duration>,
    /// How long a rename, delete, status or domain change waits for the tenant's work in flight
    /// before giving up with [`crate::Error::TenantBusy`] (default 10 s). See
    /// [`crate::TenantryBuilder::lifecycle_wait`].
    pub lifecycle_wait: Duration,
    /// Tag every tenant transaction with its tenant in `application_name` (default off). See
    /// [`crate::TenantryBuilder::tag_transactions`].
    pub tag_transactions: bool,
    /// Citus mode: auto-detected (default), forced on or off. See
    /// [`crate::TenantryBuilder::citus`].
    pub citus: crate::CitusMode,
    /// Shared tables made Citus reference tables after the shared migrations. See
    /// [`crate::TenantryBuilder::reference_tables`].
    pub reference_tables: Vec<String>,
    /// Citus node-affine routing (default off). See [`crate::TenantryBuilder::node_affine`].
    pub node_affine: bool,
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
            tag_transactions: false,
            citus: crate::CitusMode::Auto,
            reference_tables: Vec::new(),
            node_affine: false,
        }
    }
}
