//! The one place where SQL text is built from names: identifier and literal quoting, qualified
//! names, search paths, the schema DDL Tenantry runs, and every advisory-lock statement.
//!
//! Values are bound wherever the protocol allows. Text is only written into SQL for
//! identifiers (which can't be bound) and for the few simple-protocol statements that travel
//! with a `BEGIN` in one round trip; both go through [`ident`] and [`literal`] here. Names are
//! validated before they get here ([`SchemaName`] for schemas); quoting is the second line of
//! defence.

use sqlx::PgConnection;
use tenantry_core::SchemaName;

/// A quoted identifier: `"name"`, embedded quotes doubled.
pub(crate) fn ident(name: &str) -> String {
    tenantry_core::quote_ident(name)
}

/// A string literal, `E'...'` with quotes and backslashes doubled: it means the same whatever
/// `standard_conforming_strings` says.
pub(crate) fn literal(value: &str) -> String {
    tenantry_core::quote_literal(value)
}

/// A literal holding a quoted identifier, for `::regnamespace` / `::regrole` casts.
pub(crate) fn ident_literal(name: &str) -> String {
    literal(&ident(name))
}

/// `"schema"."object"`.
pub(crate) fn qualified(schema: &str, object: &str) -> String {
    format!("{}.{}", ident(schema), ident(object))
}

/// `"a", "b", ...`: a search path from schema names.
pub(crate) fn path_list<'a>(schemas: impl IntoIterator<Item = &'a str>) -> String {
    schemas
        .into_iter()
        .map(ident)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills `{key}` slots of a statement template with SQL fragments built here (quoted names,
/// qualified names), in one pass: a filled-in fragment is never scanned again. Unknown slots
/// are left as they are (the tests of each template catch them).
pub(crate) fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            slots
                .iter()
                .find(|(k, _)| *k == &after[..close])
                .map(|s| (close, s.1))
        }) {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `BEGIN; SET LOCAL search_path TO <path>` (`path` from [`path_list`]).
pub(crate) fn begin_with_path(path: &str) -> String {
    format!("BEGIN; SET LOCAL search_path TO {path}")
}

/// `BEGIN ISOLATION LEVEL REPEATABLE READ[, READ ONLY]; SET LOCAL search_path TO <path>`: one
/// snapshot for every table a copy or an export reads.
pub(crate) fn begin_snapshot_with_path(path: &str, read_only: bool) -> String {
    let ro = if read_only { ", READ ONLY" } else { "" };
    format!("BEGIN ISOLATION LEVEL REPEATABLE READ{ro}; SET LOCAL search_path TO {path}")
}

/// `SET LOCAL search_path TO <path>`.
pub(crate) fn set_path(path: &str) -> String {
    format!("SET LOCAL search_path TO {path}")
}

/// `CREATE SCHEMA "name"`.
pub(crate) fn create_schema(schema: &SchemaName) -> String {
    format!("CREATE SCHEMA {}", ident(schema))
}

/// `DROP SCHEMA IF EXISTS "name" CASCADE`.
pub(crate) fn drop_schema(schema: &SchemaName) -> String {
    format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema))
}

/// `ALTER SCHEMA "old" RENAME TO "new"`.
pub(crate) fn rename_schema(old: &SchemaName, new: &SchemaName) -> String {
    format!("ALTER SCHEMA {} RENAME TO {}", ident(old), ident(new))
}

// ---- Advisory locks. The numbers are also written in the registry's SQL (`tenantry_enter`,
// ---- `tenantry_notify`): change them together or not at all.

/// First key of the advisory lock that guards a tenant's identity: scoped access takes it
/// shared (in `tenantry_enter`, or [`tenant_lock_shared`] in the fast form), renames, deletes,
/// status and domain changes exclusively ([`tenant_lock_exclusive`]).
pub(crate) const TENANT_LOCK_CLASS: i32 = 1_952_804_468;

/// The registry lock (one `bigint` key): registry writes take it exclusively (in the
/// `tenantry_notify` trigger, until they commit), resolutions shared
/// ([`registry_read_begin`]), so the version a resolution reads matches the rows it reads.
pub(crate) const REGISTRY_LOCK: i64 = 1_952_804_469;

/// The second key of a tenant's lock (its id, folded into `int4` as `tenantry_enter` does).
pub(crate) fn tenant_lock_key(id: i64) -> i32 {
    (id & 0x7fff_ffff) as i32
}

/// `pg_advisory_xact_lock_shared(<class>, <key>)`: the tenant's lock, shared, as an expression
/// (the fast form of the tenant `BEGIN`).
pub(crate) fn tenant_lock_shared(id: i64) -> String {
    format!(
        "pg_advisory_xact_lock_shared({}, {})",
        TENANT_LOCK_CLASS,
        tenant_lock_key(id)
    )
}

/// Takes the tenant's lock exclusively, waiting at most `wait_ms` (then SQLSTATE 55P03).
pub(crate) fn tenant_lock_exclusive(id: i64, wait_ms: u128) -> String {
    format!(
        "SET LOCAL lock_timeout = {wait_ms}; SELECT pg_advisory_xact_lock({}, {}); \
         SET LOCAL lock_timeout TO DEFAULT",
        TENANT_LOCK_CLASS,
        tenant_lock_key(id),
    )
}

/// The registry lock shared, then `BEGIN`, in one simple query (resolution lookups).
pub(crate) fn registry_read_begin() -> String {
    format!("SELECT pg_advisory_xact_lock_shared({REGISTRY_LOCK}); BEGIN")
}

/// The per-schema migration lock, keyed by the schema name (bound as `$1`): migrations,
/// template rebuilds, renames and deletes of one schema serialise on it, and never wait on
/// each other across schemas.
const MIGRATION_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate'), hashtext($1))";

/// Takes `schema`'s migration lock until the transaction `conn` is in ends.
pub(crate) async fn lock_migrations(conn: &mut PgConnection, schema: &str) -> sqlx::Result<()> {
    sqlx::query(MIGRATION_LOCK)
        .bind(schema)
        .execute(conn)
        .await?;
    Ok(())
}

/// The lock that serialises installing the schema event triggers (an expression statement for
/// a `DO` block).
pub(crate) const SCHEMA_EVENTS_LOCK: &str =
    "PERFORM pg_advisory_xact_lock(hashtext('tenantry.schema_events'))";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_slots_once() {
        assert_eq!(
            fill(
                "SELECT {a} FROM {t} WHERE x = '{}' {b",
                &[("t", "\"s\".\"t\""), ("a", "{t}")]
            ),
            "SELECT {t} FROM \"s\".\"t\" WHERE x = '{}' {b"
        );
    }

    #[test]
    fn statements_read_as_before() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "E'it''s'");
        assert_eq!(ident_literal("acme"), "E'\"acme\"'");
        assert_eq!(qualified("s", "t"), "\"s\".\"t\"");
        assert_eq!(path_list(["a", "public"]), "\"a\", \"public\"");
        let acme = SchemaName::new("acme").unwrap();
        let beta = SchemaName::new("beta").unwrap();
        assert_eq!(
            rename_schema(&acme, &beta),
            "ALTER SCHEMA \"acme\" RENAME TO \"beta\""
        );
        assert_eq!(
            tenant_lock_shared(5_000_000_000),
            format!(
                "pg_advisory_xact_lock_shared(1952804468, {})",
                5_000_000_000i64 & 0x7fff_ffff
            )
        );
        assert_eq!(
            registry_read_begin(),
            "SELECT pg_advisory_xact_lock_shared(1952804469); BEGIN"
        );
        assert_eq!(
            tenant_lock_exclusive(7, 250),
            "SET LOCAL lock_timeout = 250; SELECT pg_advisory_xact_lock(1952804468, 7); \
             SET LOCAL lock_timeout TO DEFAULT"
        );
    }
}
