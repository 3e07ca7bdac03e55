//! What the data tools read from a schema's catalogs: its tables and their stored columns, its
//! sequences, its migration history.

#[cfg(feature = "archive")]
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::error::Result;
use crate::migrate::set::MIGRATIONS_TABLE;
use crate::sql::{fill, qualified};

#[cfg(feature = "archive")]
/// A column whose values are stored (generated columns are computed again, never copied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ColumnDef {
    /// Its name.
    pub(crate) name: String,
    /// Its type, as `format_type` spells it (`integer`, `character varying(20)`...).
    #[serde(rename = "type")]
    pub(crate) ty: String,
}

#[cfg(feature = "archive")]
/// A table and its stored columns, in column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TableDef {
    /// Its name (unqualified).
    pub(crate) name: String,
    /// Its stored columns.
    pub(crate) columns: Vec<ColumnDef>,
}

#[cfg(feature = "archive")]
/// Every table of `schema` (ordinary tables, not partitions), by name.
pub(crate) async fn tables(conn: &mut PgConnection, schema: &str) -> Result<Vec<TableDef>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod) \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 \
                AND NOT a.attisdropped AND a.attgenerated = '' \
          WHERE n.nspname = $1 AND c.relkind = 'r' AND NOT c.relispartition \
          ORDER BY c.relname, a.attnum",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<TableDef> = Vec::new();
    for (table, column, ty) in rows {
        if out.last().is_none_or(|t| t.name != table) {
            out.push(TableDef {
                name: table,
                columns: Vec::new(),
            });
        }
        if let (Some(name), Some(ty), Some(last)) = (column, ty, out.last_mut()) {
            last.columns.push(ColumnDef { name, ty });
        }
    }
    Ok(out)
}

#[cfg(feature = "archive")]
/// The sequences of `schema`, by name.
pub(crate) async fn sequences(conn: &mut PgConnection, schema: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = $1 AND c.relkind = 'S' ORDER BY c.relname",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?)
}

#[cfg(feature = "archive")]
/// A sequence's position: `(last_value, is_called)`.
pub(crate) async fn sequence_position(
    conn: &mut PgConnection,
    schema: &str,
    sequence: &str,
) -> Result<(i64, bool)> {
    Ok(sqlx::query_as(AssertSqlSafe(fill(
        "SELECT last_value, is_called FROM {seq}",
        &[("seq", &qualified(schema, sequence))],
    )))
    .fetch_one(&mut *conn)
    .await?)
}

/// One applied migration: version, description, checksum.
pub(crate) type Applied = (i64, String, Vec<u8>);

/// The schema's migration history ([`MIGRATIONS_TABLE`]), oldest first; `None` without one.
pub(crate) async fn history(conn: &mut PgConnection, schema: &str) -> Result<Option<Vec<Applied>>> {
    let has: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r')",
    )
    .bind(schema)
    .bind(MIGRATIONS_TABLE)
    .fetch_one(&mut *conn)
    .await?;
    if !has {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_as(AssertSqlSafe(fill(
            "SELECT version, description, checksum FROM {t} WHERE success ORDER BY version",
            &[("t", &qualified(schema, MIGRATIONS_TABLE))],
        )))
        .fetch_all(&mut *conn)
        .await?,
    ))
}
