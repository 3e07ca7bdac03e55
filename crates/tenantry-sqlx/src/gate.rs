//! [`TransactionGate`]: the admission hook in front of every tenant `BEGIN` (per-tenant caps on
//! concurrent transactions).

use std::sync::Arc;

use async_trait::async_trait;
use tenantry_core::Tenant;

use crate::error::Result;
use crate::handle::Tenantry;

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
