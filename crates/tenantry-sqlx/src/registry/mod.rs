//! The registry: Tenantry's own tables in the shared schema.
//!
//! * `tenantry_tenants`: one row per tenant (schema name, display name, status, type, the
//!   application's JSON fields, created time).
//! * `tenantry_domains`: domain -> tenant, at most one primary per tenant (a partial unique
//!   index; the life-cycle functions keep it at exactly one).
//! * `tenantry_migration_ledger`: per tenant schema, the fingerprint of the migration set it is
//!   at, written in the same transaction as the migration itself.
//!
//! Changes to tenants and domains fire `pg_notify('tenantry_registry', ...)` from triggers, so
//! caches in every running instance hear about them, whoever made the change (CLI, app, SQL).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};
use tenantry_core::{Tenant, TenantStatus};

use crate::migrate::set::MigrationSet;
use crate::sql::{SCHEMA_EVENTS_LOCK, fill, ident, literal};

/// The channel the registry triggers notify on.
pub const NOTIFY_CHANNEL: &str = "tenantry_registry";

/// Table keeping track of the registry's own migrations (separate from the application's shared
/// migrations, which use `_sqlx_migrations`).
pub(crate) const REGISTRY_MIGRATIONS_TABLE: &str = "_tenantry_migrations";

/// Tenantry's own migrations (`registry/migrations/*.sql`), applied with `search_path` set to the
/// shared schema. Their text is part of each migration's checksum: never edit an applied one.
pub(crate) fn registry_migrations() -> MigrationSet {
    MigrationSet::from_sql(&[
        (1, "registry", include_str!("migrations/1_registry.sql")),
        (
            2,
            "schema ddl notifications",
            include_str!("migrations/2_schema_ddl_notifications.sql"),
        ),
        (
            3,
            "tenant identity check",
            include_str!("migrations/3_tenant_identity_check.sql"),
        ),
        (
            4,
            "maintenance refusal",
            include_str!("migrations/4_maintenance_refusal.sql"),
        ),
        (
            5,
            "search trigram indexes",
            include_str!("migrations/5_search_trigram_indexes.sql"),
        ),
    ])
}

/// Event triggers that notify [`NOTIFY_CHANNEL`] when a schema is dropped or altered (renamed)
/// by any SQL, Tenantry's or not, so cached resolutions are dropped at once (the scoped `BEGIN`
/// checks identity anyway; this spares requests the refused `BEGIN`).
pub(crate) const SCHEMA_EVENT_TRIGGERS: [&str; 2] =
    ["tenantry_schema_drop", "tenantry_schema_alter"];

/// Creates the schema event triggers if missing. Needs superuser (PostgreSQL's rule for event
/// triggers): without it this is a no-op.
pub(crate) fn install_schema_events_sql(shared_schema: &str) -> String {
    let f = format!("{}.tenantry_schema_event()", ident(shared_schema));
    let [drop, alter] = SCHEMA_EVENT_TRIGGERS;
    format!(
        "DO $do$ BEGIN \
           {SCHEMA_EVENTS_LOCK}; \
           IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = '{drop}') THEN \
             CREATE EVENT TRIGGER {drop} ON sql_drop EXECUTE FUNCTION {f}; \
           END IF; \
           IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = '{alter}') THEN \
             CREATE EVENT TRIGGER {alter} ON ddl_command_end WHEN TAG IN ('ALTER SCHEMA') \
               EXECUTE FUNCTION {f}; \
           END IF; \
         EXCEPTION WHEN insufficient_privilege THEN \
           RAISE NOTICE 'tenantry: no schema event triggers (needs superuser)'; \
         WHEN unique_violation OR duplicate_object THEN \
           NULL; \
         END $do$"
    )
}

/// SQL text with the shared schema's name filled in once, at start-up.
#[derive(Debug)]
pub(crate) struct RegistrySql {
    /// The registry version now (an expression).
    pub version_now: String,
    /// `select_tenant` with the registry version (for resolutions, under the registry lock).
    pub select_resolved: String,
    /// `select_resolved` with the tenant's node epoch too (Citus node-affine mode).
    pub select_resolved_affine: String,
    /// `"shared".tenantry_node_epochs`: the node epochs (a reference table, node-affine mode).
    pub node_epochs: String,
    /// `"shared".tenantry_enter`: the identity check of scoped access.
    pub enter: String,
    pub tenants: String,
    pub domains: String,
    pub ledger: String,
    pub select_tenant: String,
}

impl RegistrySql {
    pub(crate) fn new(shared_schema: &str) -> Self {
        let s = ident(shared_schema);
        let tenants = format!("{s}.tenantry_tenants");
        let domains = format!("{s}.tenantry_domains");
        let ledger = format!("{s}.tenantry_migration_ledger");
        let select_tenant = format!(
            "SELECT t.id, t.schema_name, t.display_name, t.status, t.tenant_type, t.data, t.created_at, \
             (SELECT p.domain FROM {domains} p WHERE p.tenant_id = t.id AND p.is_primary) AS primary_domain, \
             (SELECT n.oid::int8 FROM pg_catalog.pg_namespace n WHERE n.nspname = t.schema_name) AS schema_oid \
             FROM {tenants} t"
        );
        let version = literal(&format!("{s}.tenantry_registry_version"));
        let version_now = format!("coalesce(pg_sequence_last_value({version}::regclass), 0)");
        let select_resolved = select_tenant.replacen(
            &format!(" FROM {tenants} t"),
            &format!(", {version_now} AS registry_version FROM {tenants} t"),
            1,
        );
        let node_epochs = format!("{s}.tenantry_node_epochs");
        // The coordinator's own copy of the reference table, read in the same snapshot (Citus
        // executes it locally: the coordinator holds a placement of every reference table).
        let select_resolved_affine = select_resolved.replacen(
            &format!(" FROM {tenants} t"),
            &format!(
                ", (SELECT e.epoch FROM {node_epochs} e WHERE e.tenant_id = t.id) AS node_epoch \
                 FROM {tenants} t"
            ),
            1,
        );
        Self {
            version_now,
            select_resolved_affine,
            node_epochs,
            select_resolved,
            enter: format!("{s}.tenantry_enter"),
            tenants,
            domains,
            ledger,
            select_tenant,
        }
    }
}

impl RegistrySql {
    /// A statement on the registry tables: `{tenants}`, `{domains}`, `{ledger}`,
    /// `{select_tenant}` and `{select_resolved}` in `template` become the shared schema's qualified tables (quoted once,
    /// at start-up), so call sites never format a name into SQL.
    pub(crate) fn stmt(&self, template: &str) -> String {
        fill(
            template,
            &[
                ("tenants", &self.tenants),
                ("domains", &self.domains),
                ("ledger", &self.ledger),
                ("select_tenant", &self.select_tenant),
                ("select_resolved_affine", &self.select_resolved_affine),
                ("select_resolved", &self.select_resolved),
            ],
        )
    }
}

/// A registry row as read from the database.
pub(crate) struct TenantRow(pub Tenant);

impl<'r> FromRow<'r, PgRow> for TenantRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let status: TenantStatus = status.parse().map_err(|e| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: Box::new(e),
        })?;
        let created_at: DateTime<Utc> = row.try_get("created_at")?;
        Ok(TenantRow(Tenant {
            id: row.try_get("id")?,
            schema: row.try_get("schema_name")?,
            display_name: row.try_get("display_name")?,
            status,
            tenant_type: row.try_get("tenant_type")?,
            primary_domain: row.try_get("primary_domain")?,
            data: row.try_get("data")?,
            created_at,
            schema_oid: row
                .try_get::<Option<i64>, _>("schema_oid")?
                .and_then(|oid| u32::try_from(oid).ok()),
            // Only resolutions read it (under the registry lock); other reads leave it unset.
            registry_version: row.try_get::<i64, _>("registry_version").ok(),
            // Only resolutions in node-affine mode read it (see `citus/affine.rs`).
            node_epoch: row.try_get::<Option<i64>, _>("node_epoch").ok().flatten(),
        }))
    }
}

/// One row of `tenantry_domains`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, FromRow)]
pub struct DomainRecord {
    /// The domain (normalised).
    pub domain: String,
    /// Whether it is the tenant's primary domain.
    pub is_primary: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_migrations_are_pinned() {
        // Databases record each applied migration's checksum: the files must keep their exact
        // bytes (leading newline included) or every existing deployment refuses to start. Only
        // a new migration changes this value (the last one: 5, search trigram indexes).
        assert_eq!(
            super::registry_migrations().fingerprint(),
            "5fd9a9c627256ccd53a92c7845d6a5c7ae7a446a9925d19a90961364cd5fe451"
        );
    }
}
