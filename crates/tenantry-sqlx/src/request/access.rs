//! Tenant-scoped transactions: [`TenantTx`] and [`PublicTx`] (see [`crate::request`]).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::Either;
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Execute, Executor, PgConnection, Postgres, SqlStr, Transaction};
use tenantry_core::Tenant;

use super::tagging::{SharedBudget, Tagged};
use crate::error::Result;

/// A transaction scoped to one tenant. Dropping it rolls back.
///
/// Run queries on `&mut tx`: it is a sqlx executor that gives each (tenant, statement) pair its
/// own prepared statement, so PostgreSQL does not re-plan when pooled connections switch tenants
/// (see [`crate::TenantryBuilder::tenant_plans`]). It also dereferences to the `PgConnection`
/// (`&mut *tx`), which works the same without that per-tenant plan caching.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: Arc<Tenant>,
    budget: SharedBudget,
    /// The [`crate::TransactionGate`]'s permit, released when the transaction ends (declared
    /// after `tx`: dropped after it, once its rollback is queued).
    _permit: Option<crate::handle::TransactionPermit>,
}

impl std::fmt::Debug for TenantTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantTx")
            .field("schema", &self.tenant.schema)
            .finish_non_exhaustive()
    }
}

impl TenantTx {
    pub(crate) fn new(
        tx: Transaction<'static, Postgres>,
        tenant: Arc<Tenant>,
        budget: SharedBudget,
        permit: Option<crate::handle::TransactionPermit>,
    ) -> Self {
        Self {
            tx,
            tenant,
            budget,
            _permit: permit,
        }
    }

    /// The tenant this transaction is scoped to.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// Commits the transaction (the search path reverts with it).
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    /// Rolls the transaction back explicitly.
    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl<'c> Executor<'c> for &'c mut TenantTx {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, std::result::Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let query = Tagged::new(query, &self.tenant, &self.budget);
        (&mut *self.tx).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, std::result::Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let query = Tagged::new(query, &self.tenant, &self.budget);
        (&mut *self.tx).fetch_optional(query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, std::result::Result<PgStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.tx).prepare_with(sql, parameters)
    }

    fn describe<'e>(
        self,
        sql: SqlStr,
    ) -> BoxFuture<'e, std::result::Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.tx).describe(sql)
    }
}

/// A transaction on the shared schema only (the public site, cross-tenant admin queries).
pub struct PublicTx {
    tx: Transaction<'static, Postgres>,
}

impl std::fmt::Debug for PublicTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicTx").finish_non_exhaustive()
    }
}

impl PublicTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        Self { tx }
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    /// Rolls the transaction back explicitly.
    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl Deref for PublicTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for PublicTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}
