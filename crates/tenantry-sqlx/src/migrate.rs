//! Migrations: sqlx migration folders, applied per schema, atomically.
//!
//! Folders use sqlx's format (`<version>_<description>.sql`) and are loaded with sqlx's own
//! loader. Tenantry applies them itself rather than through `sqlx::migrate::Migrator::run`
//! because a schema must end up *fully migrated or untouched*: all pending migrations of a schema
//! run in one transaction, under a per-schema advisory lock (so concurrent runs neither deadlock
//! nor apply anything twice). Each schema keeps its own sqlx-compatible `_sqlx_migrations` table,
//! and a ledger row in the shared schema records the fingerprint of the set each tenant schema
//! is at, so that an up-to-date fleet is recognised with one query.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, Executor, PgConnection, SqlSafeStr};
use tenantry_core::quote_ident;

use crate::error::{Error, Result};

/// Name of the per-schema applied-migrations table (the same as sqlx's).
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// An ordered set of migrations, e.g. one folder.
#[derive(Clone, Debug, Default)]
pub struct MigrationSet {
    migrations: Arc<Vec<Migration>>,
    fingerprint: Arc<str>,
}

impl MigrationSet {
    /// Loads a sqlx migration folder. Reversible (`.up.sql`/`.down.sql`) folders are accepted;
    /// only the up migrations are applied. `-- no-transaction` migrations are refused: they
    /// would break the "fully migrated or untouched" guarantee.
    pub async fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let migrator = Migrator::new(dir.to_path_buf()).await?;
        let list: Vec<Migration> = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .cloned()
            .collect();
        if let Some(m) = list.iter().find(|m| m.no_tx) {
            return Err(Error::MigrationState {
                schema: dir.display().to_string(),
                message: format!(
                    "migration {} is marked no-transaction, which Tenantry cannot apply atomically",
                    m.version
                ),
            });
        }
        Ok(Self::from_migrations(list))
    }

    /// Builds a set from migrations given in code.
    pub fn from_migrations(mut list: Vec<Migration>) -> Self {
        list.sort_by_key(|m| m.version);
        let mut hash = Sha256::new();
        for m in &list {
            hash.update(m.version.to_le_bytes());
            hash.update(&*m.checksum);
        }
        let fingerprint: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Self {
            migrations: Arc::new(list),
            fingerprint: fingerprint.into(),
        }
    }

    /// Builds a set from `(version, description, sql)` triples (Tenantry's own registry).
    pub fn from_sql(list: &[(i64, &'static str, &'static str)]) -> Self {
        Self::from_migrations(
            list.iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        description.into(),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect(),
        )
    }

    /// The migrations, ordered by version.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The highest version, if any.
    pub fn latest_version(&self) -> Option<i64> {
        self.migrations.last().map(|m| m.version)
    }

    /// A digest of every version and checksum: two schemas with the same fingerprint in the
    /// ledger have applied the same migrations.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// What happened to one schema.
#[derive(Debug, Clone)]
pub struct SchemaOutcome {
    /// The schema.
    pub schema: String,
    /// Versions applied by this run (empty: it was up to date).
    pub applied: Vec<i64>,
    /// Wall time spent on the schema.
    pub elapsed: Duration,
}

/// Applies the pending migrations of `set` to `schema`, on a connection that is already inside a
/// transaction whose `search_path` starts with `schema`. Takes the schema's advisory lock first.
///
/// Returns the versions applied. On error nothing is committed by this function; the caller's
/// transaction must be rolled back.
pub(crate) async fn apply_in_tx(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    set: &MigrationSet,
) -> Result<Vec<i64>> {
    // One lock per schema, held until the transaction ends: two concurrent runs serialise on the
    // same schema and never wait on each other across schemas.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate'), hashtext($1))")
        .bind(schema)
        .execute(&mut *conn)
        .await?;
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    conn.execute(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {qualified} (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
            success BOOLEAN NOT NULL,
            checksum BYTEA NOT NULL,
            execution_time BIGINT NOT NULL
        )"
    )))
    .await?;
    let applied: Vec<(i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT version, checksum FROM {qualified} ORDER BY version"
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
    let insert = format!(
        "INSERT INTO {qualified} (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, TRUE, $3, $4)"
    );
    for m in set.migrations() {
        if applied.iter().any(|(v, _)| *v == m.version) {
            continue;
        }
        let start = Instant::now();
        conn.execute(sqlx::raw_sql(m.sql.clone()))
            .await
            .map_err(|e| Error::Migration {
                schema: schema.to_owned(),
                version: m.version,
                description: m.description.to_string(),
                message: db_message(&e),
            })?;
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
