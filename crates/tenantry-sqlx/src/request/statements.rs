//! The SQL that opens scoped access: the full and fast forms of the tenant `BEGIN`, the shared
//! schema's `BEGIN`, and how their refusals map to [`Error`]s.

use tenantry_core::{Tenant, TenantStatus};

use crate::error::Error;
use crate::sql::{ident, ident_literal, literal, tenant_lock_shared};

/// The statement that opens a scoped transaction on a shared schema in one round trip.
///
/// The existence checks (schema, and role when given) run *before* `BEGIN`, in the same simple
/// query: if one fails, PostgreSQL skips the rest and the connection is left idle. A failure
/// after `BEGIN` would leave it in an aborted transaction that sqlx's release check (a bare
/// `Sync`) does not notice, poisoning the pooled connection for every later user
/// (`tests/isolation_begin.rs`).
pub(crate) fn begin_sql(path: &str, first_schema: &str, role: Option<&str>) -> String {
    // The schema name is validated (`[a-z0-9_]`), so it can't contain a quote; quoting as
    // identifier inside a literal is still done for defence in depth.
    let schema = ident_literal(first_schema);
    let (role_check, role_set) = match role {
        Some(r) => (
            format!(", {}::regrole", ident_literal(r)),
            format!("; SET LOCAL ROLE {}", ident(r)),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "SELECT {schema}::regnamespace{role_check}; BEGIN; SET LOCAL search_path TO {path}{role_set}"
    )
}

/// What a tenant-scoped access checks and sets (see [`tenant_begin_sql`]).
pub(crate) struct Enter<'a> {
    /// `"shared".tenantry_enter`.
    pub function: &'a str,
    pub tenant: &'a Tenant,
    /// Refuse a tenant that is not active.
    pub serving: bool,
    /// The full search path (tenant first).
    pub path: &'a str,
    /// The tenant role, in role mode.
    pub role: Option<&'a str>,
    /// The domain the work came in on, which must still be the tenant's.
    pub domain: Option<&'a str>,
    pub idle_timeout: Option<std::time::Duration>,
    /// Set `application_name` to `tenant=<schema>` for the transaction.
    pub tag: bool,
}

impl Enter<'_> {
    /// `SELECT tenantry_enter(...)` (and the role's existence): the checks that must pass before
    /// anything runs in the tenant's schema. `session` takes the tenant lock at session level.
    pub(crate) fn check(&self, session: bool) -> String {
        let t = self.tenant;
        let oid = t
            .schema_oid
            .map_or_else(|| "NULL".to_owned(), |o| o.to_string());
        let role_check = self
            .role
            .map(|r| format!(", {}::regrole", ident_literal(r)))
            .unwrap_or_default();
        let domain = self.domain.map_or_else(|| "NULL".to_owned(), literal);
        format!(
            "SELECT {}({}, {}, {oid}, {}, {session}, {domain}){role_check}",
            self.function,
            t.id,
            literal(&t.schema),
            self.serving,
        )
    }
}

/// The statement that opens a tenant transaction in one round trip:
///
/// `SELECT tenantry_enter(id, 'schema', oid, ...); BEGIN; SET LOCAL search_path TO ...;
/// SET LOCAL idle_in_transaction_session_timeout = ...[; SET LOCAL ROLE ...]`
///
/// The check runs before `BEGIN` in the same simple query. A statement before `BEGIN` runs in
/// the implicit transaction that `BEGIN` turns into the explicit one, so the tenant lock it takes
/// is held until COMMIT/ROLLBACK; and if it fails, PostgreSQL skips the rest and rolls the
/// implicit transaction back, leaving the connection idle. (A failure *after* `BEGIN` would leave
/// it in an aborted transaction that sqlx's release check, a bare `Sync`, does not notice,
/// poisoning the pooled connection for every later user: `tests/isolation_begin.rs`.)
pub(crate) fn tenant_begin_sql(enter: &Enter<'_>) -> String {
    let idle = enter
        .idle_timeout
        .map(|t| {
            format!(
                "; SET LOCAL idle_in_transaction_session_timeout = {}",
                t.as_millis().max(1)
            )
        })
        .unwrap_or_default();
    let role_set = enter
        .role
        .map(|r| format!("; SET LOCAL ROLE {}", ident(r)))
        .unwrap_or_default();
    let tag = if enter.tag {
        format!(
            "; SET LOCAL application_name TO {}",
            literal(&format!("tenant={}", enter.tenant.schema))
        )
    } else {
        String::new()
    };
    format!(
        "{}; BEGIN; SET LOCAL search_path TO {}{idle}{tag}{role_set}",
        enter.check(false),
        enter.path
    )
}

/// The fast form of [`tenant_begin_sql`], for a record resolved at registry version `version`
/// (`Tenant::registry_version`) with schema OID `oid`:
///
/// `SELECT CASE WHEN pg_advisory_xact_lock_shared(...) IS NULL THEN NULL ELSE (CASE WHEN
/// <registry version now> = version AND to_regnamespace('"acme"')::oid = oid THEN 'true' ELSE
/// '<REGISTRY_CHANGED>' END)::boolean END, set_config('search_path', '...', true), ...; BEGIN`
///
/// The same tenant lock first (the `CASE` orders it before the reads). If the registry is still
/// at the record's version, nothing about any tenant or domain changed since the record was
/// read (every registry write bumps the version, and resolutions read it under the registry
/// lock, see `registry_row`), so the registry lookups of `tenantry_enter` would find what the
/// record says: only the schema itself is looked up again (out-of-band DDL does not bump the
/// version; the catalog cache is fresh as of the transaction's start). Otherwise the cast fails
/// before `BEGIN` ([`is_registry_changed`]) and the caller runs the full check.
pub(crate) fn tenant_fast_begin_sql<'a>(
    enter: &Enter<'_>,
    path_schemas: impl IntoIterator<Item = &'a str>,
    version_now: &str,
    version: i64,
    oid: u32,
) -> String {
    let t = enter.tenant;
    let (settings, role_set) = transaction_settings(enter, path_schemas);
    format!(
        "SELECT CASE WHEN {} IS NULL THEN NULL \
         ELSE (CASE WHEN {version_now} = {version} AND to_regnamespace({})::oid = {oid} \
         THEN 'true' ELSE '{REGISTRY_CHANGED}' END)::boolean END{settings}; BEGIN{role_set}",
        tenant_lock_shared(t.id),
        ident_literal(&t.schema),
    )
}

/// The scoped `BEGIN` sent straight to the worker holding the tenant's schema (Citus
/// node-affine routing, see `citus/affine.rs`), for a record resolved with node epoch `epoch`
/// whose schema has colocation id `colocation`:
///
/// `SELECT pg_advisory_xact_lock_shared(<tenant lock>); SELECT (CASE WHEN (SELECT e.epoch FROM
/// <the worker's shard of tenantry_node_epochs> e WHERE e.tenant_id = id) IS DISTINCT FROM epoch
/// THEN '<REGISTRY_CHANGED>' ELSE (CASE WHEN (SELECT colocationid FROM pg_dist_schema WHERE
/// schemaid = to_regnamespace('"acme"')) = colocation THEN 'true' ELSE '<REGISTRY_CHANGED>'
/// END) END)::boolean, set_config(...); BEGIN`
///
/// The tenant's lock, shared, on the worker first (held to the transaction's end: a `BEGIN`
/// later in the same simple query makes the implicit transaction explicit). Every registry
/// change of the tenant and every move updates its row of the epochs table on every node
/// (Citus's two-phase commit), and a trigger on the worker's copy takes the same lock
/// exclusively in that update: such a change waits for this transaction, and a transaction
/// arriving during the change waits for it. The check is a second statement, so its snapshot
/// is taken after the lock is granted and sees the new epoch. Nothing is written: a read-only
/// request stays read-only on the worker (a row lock would write the tuple and WAL, take a
/// transaction id, and make multixacts on a busy tenant). The colocation id stands for the
/// schema's identity (OIDs are per node; every node's `pg_dist_schema` gives a schema the same
/// colocation id, kept by a rename, never reused). A mismatch fails the cast before `BEGIN`
/// ([`is_registry_changed`]): the caller goes through the coordinator instead.
pub(crate) fn tenant_node_begin_sql<'a>(
    enter: &Enter<'_>,
    path_schemas: impl IntoIterator<Item = &'a str>,
    epochs_shard: &str,
    epoch: i64,
    colocation: i32,
) -> String {
    let t = enter.tenant;
    let (settings, role_set) = transaction_settings(enter, path_schemas);
    format!(
        "SELECT {}; \
         SELECT (CASE WHEN (SELECT e.epoch FROM {epochs_shard} e WHERE e.tenant_id = {}) \
         IS DISTINCT FROM {epoch} THEN '{REGISTRY_CHANGED}' \
         ELSE (CASE WHEN (SELECT d.colocationid FROM pg_catalog.pg_dist_schema d \
         WHERE d.schemaid = to_regnamespace({})) = {colocation} \
         THEN 'true' ELSE '{REGISTRY_CHANGED}' END) END)::boolean{settings}; BEGIN{role_set}",
        tenant_lock_shared(t.id),
        t.id,
        ident_literal(&t.schema),
    )
}

/// The transaction's settings as `set_config(.., true)` calls (to append to a check's
/// `SELECT`), and the `SET LOCAL ROLE` to send after `BEGIN` (empty without a role).
fn transaction_settings<'a>(
    enter: &Enter<'_>,
    path_schemas: impl IntoIterator<Item = &'a str>,
) -> (String, String) {
    let t = enter.tenant;
    // The settings as `set_config(.., true)` in the same statement: a local setting made before
    // `BEGIN` in one simple query belongs to the transaction `BEGIN` makes explicit, and reverts
    // at its end like `SET LOCAL` (two statements fewer to parse and run than the full form).
    // The path is spelled by the server's `quote_ident`, as `SET` would store it.
    let path = path_schemas
        .into_iter()
        .map(|schema| format!("quote_ident({})", literal(schema)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut settings = format!(", set_config('search_path', concat_ws(', ', {path}), true)");
    if let Some(idle) = enter.idle_timeout {
        settings.push_str(&format!(
            ", set_config('idle_in_transaction_session_timeout', '{}', true)",
            idle.as_millis().max(1)
        ));
    }
    if enter.tag {
        settings.push_str(&format!(
            ", set_config('application_name', {}, true)",
            literal(&format!("tenant={}", t.schema))
        ));
    }
    // The role last, after BEGIN (the checks read the registry as the connecting user).
    let role_set = enter
        .role
        .map(|r| format!("; SET LOCAL ROLE {}", ident(r)))
        .unwrap_or_default();
    (settings, role_set)
}

/// The text of the fast check's failure (see [`tenant_fast_begin_sql`]).
const REGISTRY_CHANGED: &str = "tenantry: registry changed since the tenant was resolved";

/// True when the fast check found the registry changed (run the full check).
pub(crate) fn is_registry_changed(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("22P02") && db.message().contains(REGISTRY_CHANGED))
}

/// Maps the scoped `BEGIN`'s refusals to their [`Error`]s: a missing schema (SQLSTATE 3F000), a
/// schema that no longer belongs to the tenant (TY001), a tenant that is not active (TY002
/// suspended, TY003 maintenance).
pub(crate) fn map_begin_error(err: sqlx::Error, schema: &str) -> Error {
    if let sqlx::Error::Database(db) = &err {
        let schema = schema.to_owned();
        match db.code().as_deref() {
            Some("3F000") => return Error::SchemaMissing(schema),
            Some("TY001") => return Error::TenantMoved(schema),
            Some("TY002") => {
                return Error::TenantNotServing {
                    schema,
                    status: TenantStatus::Suspended,
                };
            }
            Some("TY003") => {
                return Error::TenantNotServing {
                    schema,
                    status: TenantStatus::Maintenance,
                };
            }
            _ => {}
        }
    }
    Error::Database(err)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tenantry_core::{Tenant, TenantStatus};

    use super::*;

    fn acme() -> Tenant {
        Tenant {
            id: 7,
            schema: "acme".into(),
            display_name: "Acme".into(),
            status: TenantStatus::Active,
            tenant_type: "default".into(),
            primary_domain: None,
            data: serde_json::json!({}),
            created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            schema_oid: Some(123),
            registry_version: Some(5),
            node_epoch: Some(9),
        }
    }

    // The request path's statements, spelled out: they travel with every tenant BEGIN, so a
    // change here is a behaviour change (and a round-trip or plan-cache change) to review.
    #[test]
    fn tenant_begin_statements_are_pinned() {
        let tenant = acme();
        let enter = Enter {
            function: "\"public\".tenantry_enter",
            tenant: &tenant,
            serving: true,
            path: "\"acme\", \"public\"",
            role: Some("app_acme"),
            domain: Some("acme.example.com"),
            idle_timeout: Some(Duration::from_secs(30)),
            tag: false,
        };
        assert_eq!(
            tenant_begin_sql(&enter),
            "SELECT \"public\".tenantry_enter(7, E'acme', 123, true, false, E'acme.example.com'), \
             E'\"app_acme\"'::regrole; BEGIN; SET LOCAL search_path TO \"acme\", \"public\"; \
             SET LOCAL idle_in_transaction_session_timeout = 30000; SET LOCAL ROLE \"app_acme\""
        );
        assert_eq!(
            tenant_fast_begin_sql(&enter, ["acme", "public"], "V", 5, 123),
            "SELECT CASE WHEN pg_advisory_xact_lock_shared(1952804468, 7) IS NULL THEN NULL \
             ELSE (CASE WHEN V = 5 AND to_regnamespace(E'\"acme\"')::oid = 123 \
             THEN 'true' ELSE 'tenantry: registry changed since the tenant was resolved' END)::boolean END, \
             set_config('search_path', concat_ws(', ', quote_ident(E'acme'), quote_ident(E'public')), true), \
             set_config('idle_in_transaction_session_timeout', '30000', true); BEGIN; SET LOCAL ROLE \"app_acme\""
        );
        // Tagged: one more setting, in the same statement.
        let tagged = Enter { tag: true, ..enter };
        assert_eq!(
            tenant_begin_sql(&tagged),
            "SELECT \"public\".tenantry_enter(7, E'acme', 123, true, false, E'acme.example.com'), \
             E'\"app_acme\"'::regrole; BEGIN; SET LOCAL search_path TO \"acme\", \"public\"; \
             SET LOCAL idle_in_transaction_session_timeout = 30000; \
             SET LOCAL application_name TO E'tenant=acme'; SET LOCAL ROLE \"app_acme\""
        );
        assert!(
            tenant_fast_begin_sql(&tagged, ["acme", "public"], "V", 5, 123).contains(
                "set_config('idle_in_transaction_session_timeout', '30000', true), \
                 set_config('application_name', E'tenant=acme', true); BEGIN"
            )
        );
        let plain = Enter {
            role: None,
            idle_timeout: None,
            ..enter
        };
        assert_eq!(
            tenant_node_begin_sql(&plain, ["acme", "public"], "\"public\".\"e_1\"", 9, 4),
            "SELECT pg_advisory_xact_lock_shared(1952804468, 7); \
             SELECT (CASE WHEN (SELECT e.epoch FROM \"public\".\"e_1\" e WHERE e.tenant_id = 7) \
             IS DISTINCT FROM 9 THEN 'tenantry: registry changed since the tenant was resolved' \
             ELSE (CASE WHEN (SELECT d.colocationid FROM pg_catalog.pg_dist_schema d \
             WHERE d.schemaid = to_regnamespace(E'\"acme\"')) = 4 \
             THEN 'true' ELSE 'tenantry: registry changed since the tenant was resolved' END) END)::boolean, \
             set_config('search_path', concat_ws(', ', quote_ident(E'acme'), quote_ident(E'public')), true); BEGIN"
        );
        assert_eq!(
            begin_sql("\"public\"", "public", None),
            "SELECT E'\"public\"'::regnamespace; BEGIN; SET LOCAL search_path TO \"public\""
        );
    }
}
