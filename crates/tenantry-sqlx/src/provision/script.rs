//! The clone script: one SQL batch, generated from a template schema's catalogs, that recreates
//! the template's objects and rows in a new schema (see [`crate::provision`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::{AssertSqlSafe, PgConnection};
use tenantry_core::SchemaName;

use crate::error::Result;
use crate::sql::{ident, ident_literal, literal, qualified};

/// Stands for the new schema's quoted name in a clone script (PostgreSQL text never holds NUL).
const SCHEMA_SLOT: &str = "\u{0}schema\u{0}";

/// Stands for the source schema's quoted name in the row copies of a [`Rows::FromSource`]
/// script.
const SOURCE_SLOT: &str = "\u{0}source\u{0}";

/// Where a clone script's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    /// The rows as they are when the script is generated, written into the script as typed
    /// literals (templates: their seed rows; the script is reused for many schemas).
    Literal,
    /// `INSERT ... SELECT` from the source schema when the script runs, and each sequence set
    /// from the source's (a tenant's data: the script runs once, in the transaction that read
    /// the catalogs). Privileges granted on the source's objects are not refused when
    /// `skip_privileges` says they are the tenant role's (role mode gives the copy its own).
    FromSource {
        /// Ignore privileges granted on the source's objects (role mode).
        skip_privileges: bool,
    },
}

/// The SQL that clones a schema: the objects up to the tables (`head`), one statement per
/// table filling it (`rows`), and the rest (`tail`: sequences' positions, later constraints,
/// views, indexes, triggers, comments).
#[derive(Debug)]
pub(crate) struct CloneScript {
    head: String,
    rows: Vec<(String, String)>,
    tail: String,
}

impl CloneScript {
    /// The whole batch for `schema` (a validated name).
    pub(crate) fn sql_for(&self, schema: &SchemaName) -> String {
        let mut sql = self.head.clone();
        for (_, insert) in &self.rows {
            push(&mut sql, insert);
        }
        sql.push_str(&self.tail);
        sql.replace(SCHEMA_SLOT, &ident(schema))
    }

    /// The three parts for a copy of `source` into `schema`: the head, `(table, INSERT)` per
    /// table, the tail (see [`Rows::FromSource`]).
    pub(crate) fn parts_for(
        &self,
        schema: &SchemaName,
        source: &SchemaName,
    ) -> (String, Vec<(String, String)>, String) {
        let (new, src) = (ident(schema), ident(source));
        let fill = |sql: &str| sql.replace(SCHEMA_SLOT, &new).replace(SOURCE_SLOT, &src);
        (
            fill(&self.head),
            self.rows
                .iter()
                .map(|(table, sql)| (table.clone(), fill(sql)))
                .collect(),
            fill(&self.tail),
        )
    }
}

/// Clone scripts (or why cloning is impossible) per tenant type, for the current fingerprints.
#[derive(Debug, Default)]
pub(crate) struct TemplateCache {
    pub(crate) scripts: Mutex<HashMap<String, Arc<std::result::Result<CloneScript, String>>>>,
}

/// Why a template can't be cloned faithfully, if it can't.
const UNSUPPORTED_SQL: &str = include_str!("catalog/unsupported.sql");

/// Sequences, with how they are tied to a column: 'i' identity, 'a' owned (serial), none.
const SEQUENCES_SQL: &str = include_str!("catalog/sequences.sql");

/// Columns of the template's tables, in order.
const COLUMNS_SQL: &str = include_str!("catalog/columns.sql");

/// Tables, in creation order.
const TABLES_SQL: &str = include_str!("catalog/tables.sql");

/// Functions and procedures; `late` when the signature uses a type of the template (a table's
/// row type), so they must come after the tables.
const FUNCTIONS_SQL: &str = include_str!("catalog/functions.sql");

/// Constraints of tables (primary/unique/check/exclusion first, then foreign keys). For a foreign
/// key: the referenced table when it is in the template (NULL when it is elsewhere, e.g. shared),
/// and whether the referenced key is a primary key or unique constraint (not a bare unique index,
/// which the clone creates only at the end).
const CONSTRAINTS_SQL: &str = include_str!("catalog/constraints.sql");

/// Views and materialized views in creation order.
const VIEWS_SQL: &str = include_str!("catalog/views.sql");

/// Indexes that don't back a constraint.
const INDEXES_SQL: &str = include_str!("catalog/indexes.sql");

/// User triggers.
const TRIGGERS_SQL: &str = include_str!("catalog/triggers.sql");

/// Comments on relations, columns, constraints, routines and triggers.
const COMMENTS_SQL: &str = include_str!("catalog/comments.sql");

type SequenceRow = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    bool,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Table, kind, definition, referenced template table (foreign keys), key is a constraint.
type ConstraintRow = (String, String, String, Option<String>, bool);

type ColumnRow = (
    String,
    String,
    String,
    bool,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// Sequence options; identity sequences take their type from the column (no `AS`).
fn sequence_options(s: &SequenceRow, with_type: bool) -> String {
    let (_, ty, start, inc, min, max, cache, cycle, ..) = s;
    let ty = if with_type {
        format!("AS {ty} ")
    } else {
        String::new()
    };
    format!(
        "{ty}INCREMENT BY {inc} MINVALUE {min} MAXVALUE {max} START WITH {start} CACHE {cache}{}",
        if *cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

/// Reads the template's catalogs (the connection's `search_path` starts with the template, so
/// names render unqualified) and writes the clone script, or says why it can't.
pub(crate) async fn generate_script(
    conn: &mut PgConnection,
    template: &str,
    mode: Rows,
) -> Result<std::result::Result<CloneScript, String>> {
    let mut unsupported: Vec<String> = sqlx::query_scalar(UNSUPPORTED_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    if mode
        == (Rows::FromSource {
            skip_privileges: true,
        })
    {
        unsupported.retain(|what| !what.starts_with("privileges granted on "));
    }
    if !unsupported.is_empty() {
        return Ok(Err(format!(
            "template {template:?} uses objects the cloner does not copy: {}",
            unsupported.join(", ")
        )));
    }
    let sequences: Vec<SequenceRow> = sqlx::query_as(SEQUENCES_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let tables: Vec<(String, String, Option<String>)> = sqlx::query_as(TABLES_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let columns: Vec<ColumnRow> = sqlx::query_as(COLUMNS_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let functions: Vec<(String, String, bool)> = sqlx::query_as(FUNCTIONS_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let list = |sql: &'static str| sqlx::query_scalar::<_, String>(sql).bind(template.to_owned());
    let constraints: Vec<ConstraintRow> = sqlx::query_as(CONSTRAINTS_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let views: Vec<String> = list(VIEWS_SQL).fetch_all(&mut *conn).await?;
    let indexes: Vec<String> = list(INDEXES_SQL).fetch_all(&mut *conn).await?;
    let triggers: Vec<String> = list(TRIGGERS_SQL).fetch_all(&mut *conn).await?;
    let comments: Vec<String> = list(COMMENTS_SQL).fetch_all(&mut *conn).await?;

    let mut out = String::with_capacity(64 * 1024);
    push(&mut out, &format!("CREATE SCHEMA {SCHEMA_SLOT};"));
    // Bodies reference tables that don't exist yet when functions are created first.
    push(&mut out, "SET LOCAL check_function_bodies = off;");
    for s in sequences.iter().filter(|s| s.9.as_deref() != Some("i")) {
        push(
            &mut out,
            &format!(
                "CREATE SEQUENCE {} {};",
                ident(&s.0),
                sequence_options(s, true)
            ),
        );
    }
    let (late_functions, early_functions): (Vec<_>, Vec<_>) =
        functions.into_iter().partition(|f| f.2);
    for (def, ..) in &early_functions {
        push(&mut out, &format!("{def};"));
    }
    // Defaults and constraints go inside CREATE TABLE (far fewer statements) unless a function
    // that can only be created after the tables exists: then they are added afterwards.
    let late_names: Vec<String> = late_functions.iter().map(|f| format!("{}(", f.1)).collect();
    let inline = |expr: &str| !late_names.iter().any(|n| expr.contains(n.as_str()));
    let mut defaults = Vec::new();
    let mut later_constraints: Vec<(String, &String)> = Vec::new();
    let mut seed_queries = Vec::new();
    let mut created: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (table, persistence, options) in &tables {
        let cols: Vec<&ColumnRow> = columns.iter().filter(|c| &c.0 == table).collect();
        let mut defs = Vec::new();
        let mut copied = Vec::new();
        for (_, name, ty, not_null, identity, generated, default, collation) in &cols {
            let mut d = format!("{} {ty}", ident(name));
            if let Some(coll) = collation {
                d.push_str(&format!(" COLLATE {coll}"));
            }
            if !generated.is_empty() {
                d.push_str(&format!(
                    " GENERATED ALWAYS AS ({}) STORED",
                    default.as_deref().unwrap_or_default()
                ));
            } else {
                copied.push((name.clone(), ty.clone()));
                if let Some(expr) = default
                    && inline(expr)
                {
                    d.push_str(&format!(" DEFAULT {expr}"));
                } else if let Some(expr) = default {
                    defaults.push(format!(
                        "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {expr};",
                        ident(table),
                        ident(name)
                    ));
                }
            }
            if !identity.is_empty() {
                let seq = sequences.iter().find(|s| {
                    s.9.as_deref() == Some("i")
                        && s.10.as_ref() == Some(table)
                        && s.11.as_ref() == Some(name)
                });
                let kind = if identity == "a" {
                    "ALWAYS"
                } else {
                    "BY DEFAULT"
                };
                let opts = seq
                    .map(|s| {
                        format!(
                            " (SEQUENCE NAME {} {})",
                            ident(&s.0),
                            sequence_options(s, false)
                        )
                    })
                    .unwrap_or_default();
                d.push_str(&format!(" GENERATED {kind} AS IDENTITY{opts}"));
            }
            if *not_null {
                d.push_str(" NOT NULL");
            }
            defs.push(d);
        }
        for (_, kind, def, referenced, key_is_constraint) in
            constraints.iter().filter(|c| &c.0 == table)
        {
            // A foreign key goes inside CREATE TABLE when what it references exists by then
            // (a table created earlier, the table itself, or a table outside the template): no
            // ALTER TABLE, and no validation query (a new table is known to be empty). Others
            // are added once every table exists. NOT VALID is only kept by ALTER TABLE.
            let references_ready = kind != "f"
                || (*key_is_constraint
                    && referenced
                        .as_deref()
                        .is_none_or(|r| r == table || created.contains(r)));
            if inline(def) && references_ready && !def.ends_with("NOT VALID") {
                defs.push(def.clone());
            } else {
                later_constraints.push((table.clone(), def));
            }
        }
        let unlogged = if persistence == "u" { "UNLOGGED " } else { "" };
        let with = options
            .as_ref()
            .map(|o| format!(" WITH ({o})"))
            .unwrap_or_default();
        push(
            &mut out,
            &format!(
                "CREATE {unlogged}TABLE {} ({}){with};",
                ident(table),
                defs.join(", ")
            ),
        );
        created.insert(table);
        if !copied.is_empty() {
            seed_queries.push((table.clone(), copied));
        }
    }
    let head = std::mem::take(&mut out);
    if mode != Rows::Literal {
        // Deferred foreign keys (inline in CREATE TABLE) queue their checks; an index can't
        // be built on a table with checks pending: run them now, once the rows are in.
        push(&mut out, "SET CONSTRAINTS ALL IMMEDIATE;");
    }
    let mut rows = Vec::new();
    // A tenant's rows: copied from the source when the script runs.
    for (table, cols) in seed_queries.iter().filter(|_| mode != Rows::Literal) {
        let names = cols
            .iter()
            .map(|c| ident(&c.0))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push((
            table.clone(),
            format!(
                "INSERT INTO {t} ({names}) OVERRIDING SYSTEM VALUE SELECT {names} FROM {SOURCE_SLOT}.{t};",
                t = ident(table)
            ),
        ));
    }
    // Seed rows: whatever the migrations left in the template, rendered as typed literals.
    for (table, cols) in seed_queries.iter().filter(|_| mode == Rows::Literal) {
        let names: Vec<String> = cols.iter().map(|c| ident(&c.0)).collect();
        let values: Vec<String> = cols
            .iter()
            .map(|(name, ty)| {
                format!(
                    "quote_nullable({}::text) || '::' || {}",
                    ident(name),
                    literal(ty)
                )
            })
            .collect();
        let select = format!(
            "SELECT string_agg('(' || concat_ws(', ', {}) || ')', ', ' ORDER BY ctid) FROM {}",
            values.join(", "),
            qualified(template, table)
        );
        let values: Option<String> = sqlx::query_scalar(AssertSqlSafe(select))
            .fetch_one(&mut *conn)
            .await?;
        if let Some(values) = values {
            rows.push((
                table.clone(),
                format!(
                    "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES {values};",
                    ident(table),
                    names.join(", ")
                ),
            ));
        }
    }
    for (def, ..) in &late_functions {
        push(&mut out, &format!("{def};"));
    }
    for d in &defaults {
        push(&mut out, d);
    }
    for s in &sequences {
        if let (Some("a"), Some(table), Some(col)) = (s.9.as_deref(), &s.10, &s.11) {
            push(
                &mut out,
                &format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{};",
                    ident(&s.0),
                    ident(table),
                    ident(col)
                ),
            );
        }
        if mode != Rows::Literal {
            // Read after the rows were copied: at or past every copied value (sequences are
            // not transactional, so a concurrent insert can only move it further).
            push(
                &mut out,
                &format!(
                    "SELECT pg_catalog.setval({}, last_value, is_called) FROM {SOURCE_SLOT}.{};",
                    ident_literal(&s.0),
                    ident(&s.0)
                ),
            );
        } else if let Some(last) = s.8 {
            push(
                &mut out,
                &format!(
                    "SELECT pg_catalog.setval({}, {last}, true);",
                    ident_literal(&s.0)
                ),
            );
        }
    }
    // Non-FK constraints first (FKs need the referenced keys), one ALTER TABLE per table.
    later_constraints.sort_by_key(|(_, def)| def.contains(" FOREIGN KEY "));
    let mut i = 0;
    while i < later_constraints.len() {
        let table = &later_constraints[i].0;
        let mut adds = Vec::new();
        while i < later_constraints.len() && &later_constraints[i].0 == table {
            adds.push(format!("ADD {}", later_constraints[i].1));
            i += 1;
        }
        push(
            &mut out,
            &format!("ALTER TABLE {} {};", ident(table), adds.join(", ")),
        );
    }
    for group in [&views, &indexes, &triggers, &comments] {
        for s in group {
            push(&mut out, s);
        }
    }
    let rows = match mode {
        // Literal rows may name the template (text that looks qualified): as before.
        Rows::Literal => rows
            .into_iter()
            .map(|(table, sql)| (table, requalify(&sql, template)))
            .collect(),
        // Copies name the source through its slot only, and must keep doing so.
        Rows::FromSource { .. } => rows,
    };
    Ok(Ok(CloneScript {
        head: requalify(&head, template),
        rows,
        tail: requalify(&out, template),
    }))
}

/// Appends one statement (or line) to a script.
fn push(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// Replaces references qualified with the template schema (`tpl.` or `"tpl".`, not inside a
/// longer identifier) by the new-schema slot. The template name is a fixed, validated identifier.
fn requalify(sql: &str, template: &str) -> String {
    let quoted = format!("\"{template}\".");
    let bare = format!("{template}.");
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '"';
    while !rest.is_empty() {
        let prev_ok = out.chars().next_back().is_none_or(|c| !is_ident(c));
        if prev_ok && rest.starts_with(&quoted) {
            out.push_str(SCHEMA_SLOT);
            out.push('.');
            rest = &rest[quoted.len()..];
        } else if prev_ok && rest.starts_with(&bare) {
            out.push_str(SCHEMA_SLOT);
            out.push('.');
            rest = &rest[bare.len()..];
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requalify_only_whole_qualifiers() {
        let sql = "SELECT tenantry_template.f(), \"tenantry_template\".t, my_tenantry_template.x, tenantry_template_b.y";
        let out = requalify(sql, "tenantry_template").replace(SCHEMA_SLOT, "\"acme\"");
        assert_eq!(
            out,
            "SELECT \"acme\".f(), \"acme\".t, my_tenantry_template.x, tenantry_template_b.y"
        );
    }

    #[test]
    fn template_names() {
        use crate::provision::template_schema;
        assert_eq!(
            template_schema("default").as_deref(),
            Some("tenantry_template")
        );
        assert_eq!(
            template_schema("pro").as_deref(),
            Some("tenantry_template_pro")
        );
        assert_eq!(template_schema("Pro"), None);
        assert_eq!(template_schema(&"x".repeat(60)), None);
    }
}
