//! Statement tagging under a per-tenant prepared-statement budget: why a tenant query is not
//! re-planned on every request.
//!
//! sqlx prepares a statement once per connection, keyed by its SQL text. PostgreSQL remembers
//! the `search_path` a statement was planned under and, when it runs under another one, parses
//! and plans it again. With one statement shared by every tenant, a pooled connection that
//! served tenant A and now serves tenant B re-plans: at 1,000 tenants on 16 connections that is
//! nearly every request (~85 µs of server CPU for the demo's one-table read, measured with
//! `tenantry-bench-pgcost`).
//!
//! So queries sent through a [`crate::TenantTx`] (as `&mut tx`, or `&mut *db` with the axum
//! extractor) carry the tenant in a trailing comment, `/* tenantry:acme */`: each (tenant,
//! statement) pair becomes its own prepared statement whose plan stays valid. That costs server
//! memory (about 16 KB per simple statement and connection), so the number of tagged pairs is
//! bounded by a budget ([`crate::TenantryBuilder::tenant_plans`]): pairs are admitted first
//! come, first served, and queries outside the budget run untagged, exactly as before. The
//! connection's statement cache is sized to hold the whole budget, so tagging never makes sqlx
//! evict (each eviction would cost a round trip).
//!
//! Correctness never depends on the tag: PostgreSQL checks every cached plan against the
//! current `search_path` and re-plans on a mismatch. The tag only decides which cached plan a
//! query finds.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};

use sqlx::postgres::{PgArguments, PgStatement};
use sqlx::{AssertSqlSafe, Execute, Postgres, SqlSafeStr, SqlStr};
use tenantry_core::Tenant;

/// Statement-cache room kept for untagged statements on top of the tagged budget.
pub(crate) const UNTAGGED_ROOM: usize = 100;

/// The admission set of (tenant, statement) pairs that get their own prepared statement.
pub(crate) struct StatementBudget {
    budget: usize,
    admitted: RwLock<HashSet<u64>>,
    hasher: std::collections::hash_map::RandomState,
}

impl StatementBudget {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            admitted: RwLock::new(HashSet::new()),
            hasher: Default::default(),
        }
    }

    /// Whether `sql` run for `schema` gets its own statement (admitting the pair if room is left).
    fn admit(&self, schema: &str, sql: &str) -> bool {
        if self.budget == 0 {
            return false;
        }
        let mut h = self.hasher.build_hasher();
        schema.hash(&mut h);
        sql.hash(&mut h);
        let key = h.finish();
        if self.admitted.read().is_ok_and(|set| set.contains(&key)) {
            return true;
        }
        let Ok(mut set) = self.admitted.write() else {
            return false;
        };
        if set.contains(&key) {
            return true;
        }
        if set.len() >= self.budget {
            return false;
        }
        set.insert(key);
        true
    }

    /// Pairs admitted so far.
    pub(crate) fn admitted(&self) -> usize {
        self.admitted.read().map_or(0, |s| s.len())
    }
}

/// A query as sent through a `TenantTx`: the inner query, its SQL tagged with the tenant when it
/// is a persistent prepared statement inside the budget.
pub(crate) struct Tagged<E> {
    pub inner: E,
    pub tenant: Arc<Tenant>,
    pub budget: SharedBudget,
    pub has_arguments: bool,
}

impl<E> Tagged<E> {
    pub(crate) fn new(inner: E, tenant: &Arc<Tenant>, budget: &SharedBudget) -> Self {
        Self {
            inner,
            tenant: Arc::clone(tenant),
            budget: Arc::clone(budget),
            has_arguments: false,
        }
    }
}

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Tagged<E> {
    fn sql(self) -> SqlStr {
        // Only statements sqlx prepares and keeps: with arguments (no arguments = simple
        // protocol), persistent, and not an already prepared `PgStatement`.
        let tag = self.has_arguments && self.inner.persistent() && self.inner.statement().is_none();
        let sql = self.inner.sql();
        let schema = self.tenant.schema.as_str();
        if tag && self.budget.admit(schema, sql.as_str()) {
            // The schema is a validated identifier ([a-z0-9_]): it can't close the comment.
            AssertSqlSafe(format!("{}\n/* tenantry:{schema} */", sql.as_str())).into_sql_str()
        } else {
            sql
        }
    }

    fn statement(&self) -> Option<&PgStatement> {
        self.inner.statement()
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, sqlx::error::BoxDynError> {
        let args = self.inner.take_arguments()?;
        self.has_arguments = args.is_some();
        Ok(args)
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }
}

/// Shared by the handle and every `TenantTx` it opens.
pub(crate) type SharedBudget = Arc<StatementBudget>;
