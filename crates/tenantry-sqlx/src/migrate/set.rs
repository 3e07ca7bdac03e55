//! Migration sets: sqlx migration folders (or migrations given in code), ordered, with a
//! fingerprint that identifies the set in the ledger.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

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
