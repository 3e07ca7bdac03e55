//! Applying a set's pending migrations to one schema, inside the caller's transaction.

use std::time::Instant;

use sqlx::{AssertSqlSafe, Executor, PgConnection};

use super::set::MigrationSet;
use super::split::split_statements;
use crate::error::{Error, Result};
use crate::sql::{fill, lock_migrations, qualified};

/// Applies the pending migrations of `set` to `schema`, on a connection that is already inside a
/// transaction whose `search_path` starts with `schema`. Takes the schema's advisory lock first.
///
/// With `split` (Citus mode), each migration is sent one statement at a time
/// ([`split_statements`]), in the same transaction.
///
/// Returns the versions applied. On error nothing is committed by this function; the caller's
/// transaction must be rolled back.
pub(crate) async fn apply_in_tx(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    set: &MigrationSet,
    split: bool,
) -> Result<Vec<i64>> {
    // One lock per schema, held until the transaction ends: two concurrent runs serialise on the
    // same schema and never wait on each other across schemas.
    lock_migrations(conn, schema).await?;
    let qualified = qualified(schema, table);
    conn.execute(AssertSqlSafe(fill(
        "CREATE TABLE IF NOT EXISTS {qualified} (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
            success BOOLEAN NOT NULL,
            checksum BYTEA NOT NULL,
            execution_time BIGINT NOT NULL
        )",
        &[("qualified", &qualified)],
    )))
    .await?;
    let applied: Vec<(i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(fill(
        "SELECT version, checksum FROM {qualified} ORDER BY version",
        &[("qualified", &qualified)],
    )))
    .fetch_all(&mut *conn)
    .await?;

    for (version, checksum) in &applied {
        match set.migrations().iter().find(|m| m.version == *version) {
            None => {
                return Err(Error::MigrationState {
                    schema: schema.to_owned(),
                    message: format!(
                        "migration {version} was applied but is missing from the migration folder"
                    ),
                });
            }
            Some(m) if *m.checksum != checksum[..] => {
                return Err(Error::MigrationState {
                    schema: schema.to_owned(),
                    message: format!(
                        "migration {version} ({}) was changed after it was applied (checksum mismatch)",
                        m.description
                    ),
                });
            }
            Some(_) => {}
        }
    }

    let mut done = Vec::new();
    let insert = fill(
        "INSERT INTO {qualified} (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, TRUE, $3, $4)",
        &[("qualified", &qualified)],
    );
    for m in set.migrations() {
        if applied.iter().any(|(v, _)| *v == m.version) {
            continue;
        }
        let start = Instant::now();
        let failed = |e: sqlx::Error| Error::Migration {
            schema: schema.to_owned(),
            version: m.version,
            description: m.description.to_string(),
            message: db_message(&e),
        };
        if split {
            for statement in split_statements(m.sql.as_str()) {
                conn.execute(sqlx::raw_sql(AssertSqlSafe(statement)))
                    .await
                    .map_err(failed)?;
            }
        } else {
            conn.execute(sqlx::raw_sql(m.sql.clone()))
                .await
                .map_err(failed)?;
        }
        sqlx::query(AssertSqlSafe(insert.clone()))
            .bind(m.version)
            .bind(&*m.description)
            .bind(&*m.checksum)
            .bind(start.elapsed().as_nanos() as i64)
            .execute(&mut *conn)
            .await?;
        done.push(m.version);
    }
    Ok(done)
}

/// PostgreSQL's message (with SQLSTATE) rather than sqlx's wrapper text.
pub(crate) fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}
