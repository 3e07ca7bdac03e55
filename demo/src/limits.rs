//! Fair limits per tenant: each tenant's request rate comes from its plan (the
//! `requests_per_second` and `request_burst` columns of the shared `plans` table; the Free plan,
//! which sign-ups get, allows 20 requests per second with bursts of 40). A tenant over its rate
//! gets 429 with `Retry-After`. A plan may also cap the tenant's concurrent transactions
//! (`max_transactions`, NULL on every plan by default): a transaction beyond it waits up to
//! [`TRANSACTION_WAIT`] for a place, then the request gets 503 with `Retry-After`.
//! `TENANTRY_DEMO_RATE_LIMITS=0` turns the limits off (benchmarks and load tests drive far more
//! than 20 requests per second per tenant).
//!
//! Changes are picked up without a restart: a tenant moved to another plan (its record
//! changes) at its next requests; a plan's row edited in `plans` within
//! [`PLAN_REFRESH`] (or at once with [`tenantry::axum::limits::TenantLimiter::refresh_all`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tenantry::axum::limits::{Limits, TenantLimiter, TenantLimits};
use tenantry::{BoxError, Tenant, Tenantry};

use crate::TenantData;

/// How long a plan's limits are used before its row is read again (also how old a tenant's
/// limits may get).
pub const PLAN_REFRESH: Duration = Duration::from_secs(5);

/// How long a transaction beyond its plan's `max_transactions` waits for a place.
pub const TRANSACTION_WAIT: Duration = Duration::from_secs(2);

/// The limiter of the demo's tenant sites: limits per plan.
pub fn limiter() -> TenantLimiter {
    TenantLimiter::builder(PlanLimits::default())
        .refresh_every(PLAN_REFRESH)
        .build()
}

/// A tenant's limits from its plan's row; the rows are kept for [`PLAN_REFRESH`], so many
/// tenants on one plan cost one query. A tenant without a plan in its data is on the Free plan
/// (as sign-ups are); a plan with no row, or NULL columns, has no rate limit.
#[derive(Debug, Default)]
pub struct PlanLimits {
    plans: Mutex<HashMap<String, (Limits, Instant)>>,
}

#[tenantry::async_trait]
impl TenantLimits for PlanLimits {
    async fn limits(&self, tenantry: &Tenantry, tenant: &Tenant) -> Result<Limits, BoxError> {
        let plan = tenant
            .data_as::<TenantData>()
            .map(|d| d.plan)
            .unwrap_or_else(|_| "free".into());
        if let Some((limits, read_at)) = self.plans.lock().expect("plans").get(&plan)
            && read_at.elapsed() < PLAN_REFRESH
        {
            return Ok(*limits);
        }
        let mut db = tenantry.begin_public().await?;
        let row: Option<(Option<i32>, Option<i32>, Option<i32>)> = sqlx::query_as(
            "SELECT requests_per_second, request_burst, max_transactions FROM plans \
             WHERE code = $1",
        )
        .bind(&plan)
        .fetch_optional(&mut *db)
        .await?;
        db.commit().await?;
        let (rps, burst, cap) = row.unwrap_or_default();
        let as_u32 = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let limits = Limits::unlimited()
            .rate(as_u32(rps), as_u32(burst))
            .max_transactions(as_u32(cap))
            .transaction_wait(TRANSACTION_WAIT);
        self.plans
            .lock()
            .expect("plans")
            .insert(plan, (limits, Instant::now()));
        Ok(limits)
    }
}
