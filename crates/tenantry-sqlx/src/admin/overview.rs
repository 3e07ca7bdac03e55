//! Reads for operator screens (the console, dashboards): one page of tenants with their schema
//! size and migration state, found by a search and paged by keyset; tenant counts over time.
//!
//! A page is one query that walks the unique index on `schema_name` from the last name seen
//! (`WHERE schema_name > $after ORDER BY schema_name LIMIT n`), so the 1,000th page costs what
//! the first does, whatever the fleet's size.
//!
//! A search (schema name, display name or a domain containing the text, case-insensitively)
//! first asks the trigram indexes of registry migration 5 for the matching tenants, at most
//! [`SEARCH_HIT_CAP`] of them (a `UNION ALL` of three index scans under a `LIMIT`): when that
//! is all of them, the page is read by id (a rare term costs a few index probes, not a walk of
//! the registry: ~0.3 s -> ~8 ms at 100,000 tenants). A term with more hits than that is common
//! enough for the walk above to fill a page soon, filtering on the way. Terms shorter than 3
//! characters have no trigram and scan (the same results, slower), as does everything when
//! `pg_trgm` could not be installed (see the migration).

use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, FromRow, Row};
use tenantry_core::{Tenant, TenantStatus};

use crate::error::{Error, Result};
use crate::groups::Admin;
use crate::registry::TenantRow;

/// The largest page [`Admin::tenant_page`] returns.
pub const MAX_PAGE_SIZE: i64 = 500;

/// Up to this many hits, a search reads its tenants by id; beyond, it walks the schema-name
/// index (see the module docs).
pub const SEARCH_HIT_CAP: i64 = 1000;

/// Which tenants [`Admin::tenant_page`] returns.
#[derive(Debug, Clone, Default)]
pub struct TenantQuery {
    /// Only tenants whose schema name, display name or one of whose domains contains this text
    /// (case-insensitive; bound as a value, `%` and `_` match themselves). Empty: every tenant.
    pub search: String,
    /// Only schema names after this one (the last of the previous page).
    pub after: Option<String>,
    /// At most this many (1 to [`MAX_PAGE_SIZE`]; 0 means 50).
    pub limit: i64,
}

/// Where a tenant's schema stands against its type's migration set, from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationState {
    /// The ledger records the set's current fingerprint.
    UpToDate,
    /// Behind: this many of the set's migrations are newer than the ledger's last version (0
    /// when the set changed without a newer version, e.g. an edited migration).
    Pending(usize),
    /// No ledger row (never migrated through Tenantry), or a tenant type without a set.
    Unknown,
}

/// A tenant as an operator screen shows it.
#[derive(Debug, Clone)]
pub struct TenantOverview {
    /// The registry row (with its primary domain).
    pub tenant: Tenant,
    /// Bytes on disk of the schema's tables, indexes and TOAST (`None`: no schema).
    pub schema_bytes: Option<i64>,
    /// The last migration version the ledger records.
    pub ledger_version: Option<i64>,
    /// Against the tenant type's migration set.
    pub migration: MigrationState,
}

/// Tenants created on one day (UTC) and the running total at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantsOnDay {
    /// The day.
    pub day: NaiveDate,
    /// Created that day (and still registered).
    pub created: i64,
    /// Registered tenants created on or before that day.
    pub total: i64,
}

/// `text` as a LIKE pattern matching it anywhere, its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Admin<'_> {
    /// One page of tenants in schema-name order, with schema size and migration state (see
    /// the module docs for the query's cost).
    pub async fn tenant_page(self, query: &TenantQuery) -> Result<Vec<TenantOverview>> {
        self.overviews(query, None).await
    }

    /// One tenant as [`Admin::tenant_page`] shows it.
    pub async fn tenant_overview(self, schema: &str) -> Result<TenantOverview> {
        let query = TenantQuery {
            limit: 1,
            ..TenantQuery::default()
        };
        self.overviews(&query, Some(schema))
            .await?
            .pop()
            .ok_or_else(|| Error::TenantNotFound(schema.to_owned()))
    }

    async fn overviews(
        self,
        query: &TenantQuery,
        only: Option<&str>,
    ) -> Result<Vec<TenantOverview>> {
        let limit = match query.limit {
            0 => 50,
            n => n.clamp(1, MAX_PAGE_SIZE),
        };
        let search = query.search.trim();
        let pattern = (!search.is_empty()).then(|| contains_pattern(search));
        let ids = match (&pattern, only) {
            (Some(pattern), None) => self.search_hits(pattern, query.after.as_deref()).await?,
            _ => None,
        };
        if ids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let sql = &self.tenantry.inner.sql;
        let rows = sqlx::query(AssertSqlSafe(sql.stmt(
            // The page first (an index walk), then the sizes of its schemas in one pass over
            // pg_class (it has no index on relnamespace alone: a lookup per row would scan it
            // once per tenant).
            "WITH page AS ( \
                SELECT t.id, t.schema_name, t.display_name, t.status, t.tenant_type, t.data, \
                       t.created_at, \
                       (SELECT p.domain FROM {domains} p WHERE p.tenant_id = t.id AND p.is_primary) \
                           AS primary_domain, \
                       n.oid AS nsp, n.oid::int8 AS schema_oid, l.last_version, l.fingerprint \
                FROM {tenants} t \
                LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name \
                LEFT JOIN {ledger} l ON l.schema_name = t.schema_name \
                WHERE ($1::text IS NULL OR t.schema_name > $1) \
                  AND ($2::text IS NULL OR t.schema_name ILIKE $2 OR t.display_name ILIKE $2 \
                       OR EXISTS (SELECT 1 FROM {domains} d \
                                  WHERE d.tenant_id = t.id AND d.domain ILIKE $2)) \
                  AND ($4::text IS NULL OR t.schema_name = $4) \
                  AND ($5::int8[] IS NULL OR t.id = ANY($5)) \
                ORDER BY t.schema_name LIMIT $3), \
             sizes AS ( \
                SELECT c.relnamespace AS nsp, \
                       sum(pg_catalog.pg_total_relation_size(c.oid))::int8 AS schema_bytes \
                FROM pg_catalog.pg_class c \
                WHERE c.relnamespace IN (SELECT nsp FROM page WHERE nsp IS NOT NULL) \
                  AND c.relkind IN ('r', 'm', 'p') \
                GROUP BY c.relnamespace) \
             SELECT page.*, sizes.schema_bytes FROM page LEFT JOIN sizes USING (nsp) \
             ORDER BY page.schema_name",
        )))
        .bind(query.after.as_deref())
        .bind(pattern)
        .bind(limit)
        .bind(only)
        // Planned for these ids (an unnamed statement): a plan cached for any list would walk.
        .persistent(ids.is_none())
        .bind(ids)
        .fetch_all(&self.tenantry.inner.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let TenantRow(tenant) = TenantRow::from_row(row)?;
                let ledger_version: Option<i64> = row.try_get("last_version")?;
                let fingerprint: Option<String> = row.try_get("fingerprint")?;
                let migration = self.migration_state(&tenant, ledger_version, fingerprint);
                Ok(TenantOverview {
                    schema_bytes: row.try_get("schema_bytes")?,
                    ledger_version,
                    migration,
                    tenant,
                })
            })
            .collect()
    }

    /// The ids of the tenants `pattern` finds after `after` through the trigram indexes, or
    /// `None` when there are more than [`SEARCH_HIT_CAP`] hits (a tenant found twice counts
    /// twice).
    async fn search_hits(self, pattern: &str, after: Option<&str>) -> Result<Option<Vec<i64>>> {
        let sql = &self.tenantry.inner.sql;
        let mut ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(sql.stmt(
            "SELECT id FROM {tenants} \
             WHERE schema_name ILIKE $1 AND ($2::text IS NULL OR schema_name > $2) \
             UNION ALL SELECT id FROM {tenants} \
             WHERE display_name ILIKE $1 AND ($2::text IS NULL OR schema_name > $2) \
             UNION ALL SELECT tenant_id FROM {domains} WHERE domain ILIKE $1 \
             LIMIT $3",
        )))
        .bind(pattern)
        .bind(after)
        .bind(SEARCH_HIT_CAP + 1)
        // Planned for this pattern: a rare one takes the indexes, a common one may scan and
        // stop at the cap.
        .persistent(false)
        .fetch_all(&self.tenantry.inner.pool)
        .await?;
        if ids.len() as i64 > SEARCH_HIT_CAP {
            return Ok(None);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(Some(ids))
    }

    /// The state of `tenant`'s schema from its ledger row.
    fn migration_state(
        self,
        tenant: &Tenant,
        ledger_version: Option<i64>,
        fingerprint: Option<String>,
    ) -> MigrationState {
        let (Some(set), Some(fingerprint)) = (
            self.tenantry.tenant_migration_set(&tenant.tenant_type),
            fingerprint,
        ) else {
            return MigrationState::Unknown;
        };
        if fingerprint == set.fingerprint() {
            return MigrationState::UpToDate;
        }
        let newer = set
            .migrations()
            .iter()
            .filter(|m| ledger_version.is_none_or(|v| m.version > v))
            .count();
        MigrationState::Pending(newer)
    }

    /// How many tenants are in each status, in one query.
    pub async fn tenant_counts(self) -> Result<Vec<(TenantStatus, i64)>> {
        let sql = &self.tenantry.inner.sql;
        let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(
            sql.stmt("SELECT status, count(*) FROM {tenants} GROUP BY status ORDER BY status"),
        ))
        .fetch_all(&self.tenantry.inner.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(status, n)| status.parse().ok().map(|s| (s, n)))
            .collect())
    }

    /// Registered tenants by the day (UTC) they were created, with the running total: the
    /// growth of the fleet (deleted tenants are not counted).
    pub async fn tenants_per_day(self) -> Result<Vec<TenantsOnDay>> {
        let sql = &self.tenantry.inner.sql;
        let rows: Vec<(NaiveDate, i64, i64)> = sqlx::query_as(AssertSqlSafe(sql.stmt(
            "SELECT day, created, (sum(created) OVER (ORDER BY day))::int8 FROM ( \
                SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS created \
                FROM {tenants} GROUP BY 1) d ORDER BY day",
        )))
        .fetch_all(&self.tenantry.inner.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(day, created, total)| TenantsOnDay {
                day,
                created,
                total,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn wildcards_match_themselves() {
        assert_eq!(contains_pattern("acme"), "%acme%");
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
