//! Fair limits per tenant (feature `limits`): a request rate limit (429 with `Retry-After`) and
//! a cap on concurrent database transactions (waiters queue, then 503 with `Retry-After`), set
//! per tenant or per plan from the tenant's data.
//!
//! * The application says what a tenant may do through [`TenantLimits`] (e.g. from the plan
//!   code in [`Tenant::data`]); [`NoLimits`] reads nothing and allows everything.
//! * A [`TenantLimiter`] keeps each tenant's state, keyed by the tenant's immutable registry id
//!   ([`Tenant::id`], never its schema name, which a rename or delete hands to another tenant):
//!   a `governor` rate limiter and a semaphore. Idle tenants' state is evicted
//!   ([`TenantLimiterBuilder::idle_eviction`], [`TenantLimiterBuilder::max_tenants`]).
//! * The rate limit: hand the limiter to [`crate::TenantLayer::admission`] /
//!   [`crate::TenantRouter::admission`]. It is then checked right after the tenant is resolved,
//!   before the request body is read, so a throttled client costs no body read and no
//!   connection. [`TenantLimiter::layer`] is the same check as a tower layer for routers
//!   inside a [`crate::TenantLayer`] (after the body is read; requests without a tenant pass).
//! * The transaction cap: hand the limiter to
//!   [`tenantry_sqlx::TenantryBuilder::transaction_gate`]. Every tenant `BEGIN` (a
//!   [`crate::TenantDb`], a job's `tenantry.begin(..)`) then takes a place first, before a
//!   pooled connection; the place is held by the [`tenantry_sqlx::TenantTx`] and given back
//!   when it ends (commit, rollback, drop, a cancelled request, a panic). A transaction that
//!   can't get a place within [`Limits::transaction_wait`] fails with
//!   [`tenantry_sqlx::Error::TooManyTransactions`]: 503 with `Retry-After: 1`.
//!
//! **Changes at run time.** A tenant's limits are read again (1) when the tenant record a
//! request carries has a newer registry version than the one they were read for (any change
//! to the registry: the tenant's data or plan, status, domains...; the resolution cache hands
//! out the new record once the registry listener has seen the change), (2) when they are older
//! than [`TenantLimiterBuilder::refresh_every`] (default 30 s: picks up changes outside the
//! registry, e.g. a row of the app's `plans` table), and (3) on [`TenantLimiter::refresh`] /
//! [`TenantLimiter::refresh_all`]. Unchanged limits keep their state (tokens, places in use);
//! changed ones start afresh.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use tenantry_axum::TenantRouter;
//! use tenantry_axum::limits::{Limits, TenantLimiter};
//! use tenantry_sqlx::{Tenant, Tenantry};
//!
//! # async fn doc() -> tenantry_sqlx::Result<()> {
//! // Per plan, from the tenant's data (`{"plan": "free"}`).
//! let limiter = TenantLimiter::new(|tenant: &Tenant| match tenant.data["plan"].as_str() {
//!     Some("free") => Limits::unlimited().rate(20, 40).max_transactions(4),
//!     _ => Limits::unlimited(),
//! });
//! let tenantry = Tenantry::builder()
//!     .transaction_gate(limiter.clone()) // the cap on concurrent transactions
//!     .connect("postgres://localhost/app")
//!     .await?;
//! let tenant_site = Router::new().route("/", get(|| async { "hello" }));
//! let app = TenantRouter::new(tenantry)
//!     .tenant(tenant_site)
//!     .admission(limiter); // the request rate limit, before bodies are read
//! # let _ = app; Ok(()) }
//! ```

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tenantry_sqlx::{
    BoxError, Error, Tenant, Tenantry, TransactionGate, TransactionPermit, async_trait,
};
use tokio::sync::Semaphore;

mod rate_layer;
pub use rate_layer::{RateLimit, RateLimitLayer};

/// Default [`Limits::transaction_wait`].
pub const DEFAULT_TRANSACTION_WAIT: Duration = Duration::from_secs(5);

/// What one tenant may do. [`Limits::unlimited`] (also the `Default`) allows everything.
///
/// ```
/// use tenantry_axum::limits::Limits;
/// use std::time::Duration;
///
/// // 20 requests per second with bursts of 40; at most 4 transactions at once, a fifth waits
/// // up to 2 s for a place.
/// let free = Limits::unlimited()
///     .rate(20, 40)
///     .max_transactions(4)
///     .transaction_wait(Duration::from_secs(2));
/// assert_eq!(free.requests_per_second.map(|n| n.get()), Some(20));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per second (sustained); `None`: no rate limit.
    pub requests_per_second: Option<NonZeroU32>,
    /// Requests allowed at once after a quiet spell (the bucket size); `None`: as many as
    /// [`Limits::requests_per_second`].
    pub burst: Option<NonZeroU32>,
    /// Transactions open at once; `None`: no cap.
    pub max_transactions: Option<NonZeroU32>,
    /// How long a transaction beyond the cap waits for a place before it is refused (default
    /// 5 s).
    pub transaction_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl Limits {
    /// No limit at all.
    pub const fn unlimited() -> Self {
        Self {
            requests_per_second: None,
            burst: None,
            max_transactions: None,
            transaction_wait: DEFAULT_TRANSACTION_WAIT,
        }
    }

    /// `per_second` requests per second with bursts of `burst` (0 for either: no rate limit;
    /// a burst below the rate is raised to it).
    pub fn rate(mut self, per_second: u32, burst: u32) -> Self {
        self.requests_per_second = NonZeroU32::new(per_second);
        self.burst = NonZeroU32::new(burst.max(per_second));
        self
    }

    /// At most `n` transactions open at once (0: no cap).
    pub fn max_transactions(mut self, n: u32) -> Self {
        self.max_transactions = NonZeroU32::new(n);
        self
    }

    /// How long a transaction beyond the cap waits for a place.
    pub fn transaction_wait(mut self, wait: Duration) -> Self {
        self.transaction_wait = wait;
        self
    }

    /// Whether these limits limit nothing.
    pub fn is_unlimited(&self) -> bool {
        self.requests_per_second.is_none() && self.max_transactions.is_none()
    }
}

/// Where a tenant's [`Limits`] come from: implemented by the application (per tenant, or per
/// plan from [`Tenant::data`], or from its own tables through `tenantry`).
///
/// A closure `Fn(&Tenant) -> Limits` is one. An error is logged and the tenant keeps the limits
/// it had (none, the first time) until the next refresh. It is called on the request path when
/// a tenant's limits are out of date (see the module docs), so keep it cheap (cache shared
/// rows, as the example below could); read shared tables with
/// [`Tenantry::begin_public`], never with a tenant transaction (`Tenantry::begin` asks the
/// limiter for a place first, which would ask this method again).
///
/// ```
/// use tenantry_axum::limits::{Limits, TenantLimits};
/// use tenantry_sqlx::{BoxError, Tenant, Tenantry, async_trait};
///
/// /// The plan's limits from the shared `plans` table.
/// #[derive(Debug)]
/// struct PlanLimits;
///
/// #[async_trait]
/// impl TenantLimits for PlanLimits {
///     async fn limits(&self, tenantry: &Tenantry, tenant: &Tenant) -> Result<Limits, BoxError> {
///         let plan = tenant.data["plan"].as_str().unwrap_or("free").to_owned();
///         let mut db = tenantry.begin_public().await?;
///         let rps: Option<i32> =
///             sqlx::query_scalar("SELECT requests_per_second FROM plans WHERE code = $1")
///                 .bind(plan)
///                 .fetch_optional(&mut *db)
///                 .await?
///                 .flatten();
///         let rps = rps.unwrap_or(0).max(0) as u32;
///         Ok(Limits::unlimited().rate(rps, 2 * rps))
///     }
/// }
/// ```
#[async_trait]
pub trait TenantLimits: Send + Sync + 'static {
    /// The limits of `tenant` now.
    async fn limits(&self, tenantry: &Tenantry, tenant: &Tenant) -> Result<Limits, BoxError>;
}

/// Reads nothing: every tenant is unlimited.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLimits;

#[async_trait]
impl TenantLimits for NoLimits {
    async fn limits(&self, _: &Tenantry, _: &Tenant) -> Result<Limits, BoxError> {
        Ok(Limits::unlimited())
    }
}

#[async_trait]
impl<F> TenantLimits for F
where
    F: Fn(&Tenant) -> Limits + Send + Sync + 'static,
{
    async fn limits(&self, _: &Tenantry, tenant: &Tenant) -> Result<Limits, BoxError> {
        Ok(self(tenant))
    }
}

/// One tenant's limits and the state that enforces them.
struct TenantState {
    limits: Limits,
    rate: Option<Arc<DefaultDirectRateLimiter>>,
    places: Option<Arc<Semaphore>>,
    /// The newest registry version of the records the limits were read for.
    version: Option<i64>,
    /// The limiter's [`Shared::generation`] when read ([`TenantLimiter::refresh_all`]).
    generation: u64,
    read_at: Instant,
    /// Set by [`TenantLimiter::refresh`].
    stale: AtomicBool,
}

impl TenantState {
    fn new(limits: Limits, version: Option<i64>, generation: u64) -> Self {
        let rate = limits.requests_per_second.map(|rps| {
            let quota = Quota::per_second(rps).allow_burst(limits.burst.unwrap_or(rps));
            Arc::new(RateLimiter::direct(quota))
        });
        let places = limits
            .max_transactions
            .map(|n| Arc::new(Semaphore::new(n.get() as usize)));
        Self {
            limits,
            rate,
            places,
            version,
            generation,
            read_at: Instant::now(),
            stale: AtomicBool::new(false),
        }
    }
}

struct Shared {
    source: Box<dyn TenantLimits>,
    states: moka::sync::Cache<i64, Arc<TenantState>>,
    refresh_every: Duration,
    generation: AtomicU64,
    clock: DefaultClock,
}

/// Per-tenant limits: the rate-limit layer ([`TenantLimiter::layer`]) and the transaction gate
/// (hand it to [`tenantry_sqlx::TenantryBuilder::transaction_gate`]). Cheap to clone; clones
/// share their state. See the module docs.
#[derive(Clone)]
pub struct TenantLimiter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TenantLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantLimiter")
            .field("tenants", &self.shared.states.entry_count())
            .field("refresh_every", &self.shared.refresh_every)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`TenantLimiter`] ([`TenantLimiter::builder`]).
pub struct TenantLimiterBuilder {
    source: Box<dyn TenantLimits>,
    refresh_every: Duration,
    idle_eviction: Duration,
    max_tenants: u64,
}

impl std::fmt::Debug for TenantLimiterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantLimiterBuilder")
            .field("refresh_every", &self.refresh_every)
            .field("idle_eviction", &self.idle_eviction)
            .field("max_tenants", &self.max_tenants)
            .finish_non_exhaustive()
    }
}

impl TenantLimiterBuilder {
    /// How old a tenant's limits may get before they are read again (default 30 s). Changes
    /// to the tenant's registry record are picked up at once regardless.
    pub fn refresh_every(mut self, every: Duration) -> Self {
        self.refresh_every = every;
        self
    }

    /// A tenant unseen for this long has its state dropped (default 10 min). Keep it well
    /// above your longest transaction: a tenant whose state is dropped while a transaction
    /// holds a place starts with a full set of places again.
    pub fn idle_eviction(mut self, idle: Duration) -> Self {
        self.idle_eviction = idle;
        self
    }

    /// At most this many tenants' state kept (default 100,000; the least used go first).
    pub fn max_tenants(mut self, n: u64) -> Self {
        self.max_tenants = n;
        self
    }

    /// The limiter.
    pub fn build(self) -> TenantLimiter {
        TenantLimiter {
            shared: Arc::new(Shared {
                source: self.source,
                states: moka::sync::Cache::builder()
                    .max_capacity(self.max_tenants)
                    .time_to_idle(self.idle_eviction)
                    .build(),
                refresh_every: self.refresh_every,
                generation: AtomicU64::new(0),
                clock: DefaultClock::default(),
            }),
        }
    }
}

/// Why a request was refused by the rate limit.
struct Throttled {
    retry_after: Duration,
}

impl TenantLimiter {
    /// A limiter reading limits from `source`, with the default settings.
    pub fn new(source: impl TenantLimits) -> Self {
        Self::builder(source).build()
    }

    /// A limiter reading limits from `source`; settings follow.
    pub fn builder(source: impl TenantLimits) -> TenantLimiterBuilder {
        TenantLimiterBuilder {
            source: Box::new(source),
            refresh_every: Duration::from_secs(30),
            idle_eviction: Duration::from_secs(600),
            max_tenants: 100_000,
        }
    }

    /// The tower layer enforcing the request rate limit: see the module docs.
    pub fn layer(&self) -> RateLimitLayer {
        RateLimitLayer {
            limiter: self.clone(),
        }
    }

    /// Reads the limits of tenant `id` (its registry id) again at its next request.
    pub fn refresh(&self, id: i64) {
        if let Some(state) = self.shared.states.get(&id) {
            state.stale.store(true, Ordering::Release);
        }
    }

    /// Reads every tenant's limits again at its next request (e.g. after a plan changed).
    pub fn refresh_all(&self) {
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The limits in force for `tenant` (read if needed).
    pub async fn limits(&self, tenantry: &Tenantry, tenant: &Tenant) -> Limits {
        self.state(tenantry, tenant).await.limits
    }

    /// Tenants whose state is kept now (approximate: eviction runs lazily).
    pub fn tenants_tracked(&self) -> u64 {
        self.shared.states.run_pending_tasks();
        self.shared.states.entry_count()
    }

    /// The tenant's state, read again if it is out of date.
    async fn state(&self, tenantry: &Tenantry, tenant: &Tenant) -> Arc<TenantState> {
        let shared = &self.shared;
        let generation = shared.generation.load(Ordering::Acquire);
        let old = shared.states.get(&tenant.id);
        if let Some(state) = &old
            && !newer(tenant.registry_version, state.version)
            && state.generation == generation
            && !state.stale.load(Ordering::Acquire)
            && state.read_at.elapsed() < shared.refresh_every
        {
            return Arc::clone(state);
        }
        let limits = match shared.source.limits(tenantry, tenant).await {
            Ok(limits) => limits,
            Err(e) => {
                tracing::warn!(tenant = %tenant.schema, id = tenant.id, error = %e,
                    "tenantry: reading the tenant's limits failed; keeping the previous ones");
                old.as_ref().map_or_else(Limits::unlimited, |s| s.limits)
            }
        };
        // Atomic per tenant: concurrent first requests share one state (one semaphore), and
        // unchanged limits keep their tokens and the places in use.
        let version = tenant
            .registry_version
            .max(old.as_ref().and_then(|s| s.version));
        shared
            .states
            .entry(tenant.id)
            .and_compute_with(|current| {
                let state = match current.map(|e| e.into_value()) {
                    Some(state) if state.limits == limits => TenantState {
                        limits,
                        rate: state.rate.clone(),
                        places: state.places.clone(),
                        version,
                        generation,
                        read_at: Instant::now(),
                        stale: AtomicBool::new(false),
                    },
                    _ => TenantState::new(limits, version, generation),
                };
                moka::ops::compute::Op::Put(Arc::new(state))
            })
            .unwrap()
            .into_value()
    }

    /// The rate limit's verdict for one request of `tenant`.
    async fn check_rate(&self, tenantry: &Tenantry, tenant: &Tenant) -> Result<(), Throttled> {
        let state = self.state(tenantry, tenant).await;
        let Some(rate) = &state.rate else {
            return Ok(());
        };
        rate.check().map_err(|not_until| Throttled {
            retry_after: not_until.wait_time_from(self.shared.clock.now()),
        })
    }
}

#[async_trait]
impl TransactionGate for TenantLimiter {
    async fn admit(
        &self,
        tenantry: &Tenantry,
        tenant: &Arc<Tenant>,
    ) -> tenantry_sqlx::Result<Option<TransactionPermit>> {
        let state = self.state(tenantry, tenant).await;
        let Some(places) = &state.places else {
            return Ok(None);
        };
        let places = Arc::clone(places);
        // A place at once, without a timer, when one is free.
        if let Ok(permit) = Arc::clone(&places).try_acquire_owned() {
            return Ok(Some(Box::new(permit)));
        }
        let wait = state.limits.transaction_wait;
        match tokio::time::timeout(wait, places.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(Box::new(permit))),
            // Closed (never happens: the semaphore is never closed) or timed out.
            Ok(Err(_)) | Err(_) => Err(Error::TooManyTransactions {
                schema: tenant.schema.clone(),
                waited: wait,
            }),
        }
    }
}

/// Whether a record at registry version `seen` is newer than the limits' `read_for`. Records
/// without a version (looked up by name, built by hand) never count as newer, and neither do
/// older ones (a request still holding a record cached before the last change).
fn newer(seen: Option<i64>, read_for: Option<i64>) -> bool {
    match (seen, read_for) {
        (Some(seen), Some(read_for)) => seen > read_for,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_newer_registry_records_trigger_a_re_read() {
        assert!(newer(Some(5), Some(4)));
        assert!(newer(Some(5), None));
        assert!(!newer(Some(4), Some(4)));
        assert!(
            !newer(Some(3), Some(4)),
            "a record cached before the change"
        );
        assert!(!newer(None, Some(4)), "a record without a version");
        assert!(!newer(None, None));
    }

    #[test]
    fn limits_builders() {
        let l = Limits::unlimited().rate(20, 10);
        assert_eq!(
            l.burst.map(NonZeroU32::get),
            Some(20),
            "burst raised to the rate"
        );
        assert!(Limits::unlimited().rate(0, 40).is_unlimited());
        assert!(!Limits::unlimited().max_transactions(1).is_unlimited());
        assert_eq!(Limits::default(), Limits::unlimited());
    }
}
