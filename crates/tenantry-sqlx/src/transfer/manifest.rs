//! What a tenant archive says about itself (`manifest.json` first, `end.json` last) and the
//! check of its migration history against the application's.

use serde::{Deserialize, Serialize};
use sqlx::migrate::Migration;

use super::catalog::{Applied, TableDef};
use crate::error::{Error, Result};
use crate::migrate::set::MigrationSet;

/// The `format` field of every tenant archive's manifest.
pub const ARCHIVE_FORMAT: &str = "tenantry-tenant-archive";

/// The archive layout version this Tenantry writes and reads.
pub const ARCHIVE_FORMAT_VERSION: u32 = 1;

/// Entry names inside the tar.
pub(crate) const MANIFEST_ENTRY: &str = "manifest.json";
pub(crate) const END_ENTRY: &str = "end.json";

/// The name of part `part` of table number `table`'s rows.
pub(crate) fn data_entry(table: usize, part: usize) -> String {
    format!("data/{table:05}/{part:06}.copy")
}

/// Table number and part of a data entry name, if it is one.
pub(crate) fn parse_data_entry(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("data/")?.strip_suffix(".copy")?;
    let (table, part) = rest.split_once('/')?;
    Some((table.parse().ok()?, part.parse().ok()?))
}

/// The first entry: who the tenant was, where it was served, the migrations it was at and its
/// tables (the rows follow, one COPY text stream per table, in this order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// [`ARCHIVE_FORMAT`].
    pub(crate) format: String,
    /// [`ARCHIVE_FORMAT_VERSION`].
    pub(crate) format_version: u32,
    /// The Tenantry version that wrote it.
    pub(crate) tenantry_version: String,
    /// The PostgreSQL server version it was taken from.
    pub(crate) postgres_version: String,
    /// When the export's snapshot was taken.
    pub(crate) exported_at: chrono::DateTime<chrono::Utc>,
    /// The tenant's registry row.
    pub(crate) tenant: ArchivedTenant,
    /// Its domains, primary first.
    pub(crate) domains: Vec<ArchivedDomain>,
    /// Its schema's migration history, oldest first.
    pub(crate) migrations: Vec<ArchivedMigration>,
    /// Its tables, in the order their rows follow.
    pub(crate) tables: Vec<TableDef>,
}

/// The registry row of the exported tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArchivedTenant {
    /// Its schema name.
    pub(crate) schema: String,
    /// Its display name.
    pub(crate) display_name: String,
    /// Its tenant type.
    pub(crate) tenant_type: String,
    /// Its status when exported.
    pub(crate) status: String,
    /// The application's fields.
    pub(crate) data: serde_json::Value,
    /// When it was created.
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
}

/// One of the exported tenant's domains.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArchivedDomain {
    /// The domain.
    pub(crate) domain: String,
    /// Whether it was the primary one.
    pub(crate) is_primary: bool,
}

/// One applied migration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArchivedMigration {
    /// Its version.
    pub(crate) version: i64,
    /// Its description.
    pub(crate) description: String,
    /// Its checksum (SHA-384 of the SQL, as sqlx computes it), hex.
    pub(crate) checksum: String,
}

impl From<Applied> for ArchivedMigration {
    fn from((version, description, checksum): Applied) -> Self {
        Self {
            version,
            description,
            checksum: hex(&checksum),
        }
    }
}

/// The last entry: what was written, to check that nothing is missing, and the sequences'
/// positions (read after the rows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct End {
    /// Rows and parts per table, in manifest order.
    pub(crate) tables: Vec<TableEnd>,
    /// Every sequence of the schema.
    pub(crate) sequences: Vec<SequencePosition>,
}

/// Rows and parts of one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TableEnd {
    /// The table.
    pub(crate) name: String,
    /// Rows written.
    pub(crate) rows: u64,
    /// Data entries written.
    pub(crate) parts: usize,
}

/// A sequence's position.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SequencePosition {
    /// The sequence.
    pub(crate) name: String,
    /// `last_value`.
    pub(crate) last_value: i64,
    /// `is_called`.
    pub(crate) is_called: bool,
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses and checks a manifest's format.
pub(crate) fn read_manifest(bytes: &[u8]) -> Result<Manifest> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("manifest.json: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(ARCHIVE_FORMAT) {
        return Err(invalid(format!(
            "manifest.json does not say format {ARCHIVE_FORMAT:?}"
        )));
    }
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(ARCHIVE_FORMAT_VERSION) => {}
        Some(v) => {
            return Err(invalid(format!(
                "archive format version {v}; this Tenantry reads version {ARCHIVE_FORMAT_VERSION}"
            )));
        }
        None => return Err(invalid("manifest.json has no format_version".to_owned())),
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("manifest.json: {e}")))
}

/// [`Error::ArchiveInvalid`].
pub(crate) fn invalid(reason: String) -> Error {
    Error::ArchiveInvalid { reason }
}

/// [`Error::ArchiveIncompatible`].
pub(crate) fn incompatible(reason: String) -> Error {
    Error::ArchiveIncompatible { reason }
}

/// How many of `set`'s migrations the archive's history holds: it must be exactly the first
/// ones of `set` (same versions, same checksums). Otherwise why not, in words.
pub(crate) fn accepted_prefix(
    archived: &[ArchivedMigration],
    set: &MigrationSet,
    tenant_type: &str,
) -> Result<usize> {
    let ours = set.migrations();
    let latest = set.latest_version();
    for (i, m) in archived.iter().enumerate() {
        let Some(known) = ours.iter().find(|o| o.version == m.version) else {
            return Err(incompatible(match latest {
                Some(latest) if m.version > latest => format!(
                    "the archive was taken at migration {} ({}), newer than this application's \
                     latest {tenant_type:?} migration {latest}: upgrade the application first",
                    m.version, m.description
                ),
                _ => format!(
                    "the archive has migration {} ({}), which this application's \
                     {tenant_type:?} migrations do not have: the migration histories diverge",
                    m.version, m.description
                ),
            }));
        };
        if hex(&known.checksum) != m.checksum {
            return Err(incompatible(format!(
                "migration {} ({}) is not the same in the archive and in this application \
                 (checksums differ): the migration histories diverge",
                m.version, m.description
            )));
        }
        if let Some(skipped) = ours[..ours.len().min(i + 1)]
            .iter()
            .find(|o| !archived.iter().any(|a| a.version == o.version))
        {
            return Err(incompatible(format!(
                "this application applies migration {} ({}) before {}, and the archive's \
                 history lacks it: the migration histories diverge",
                skipped.version, skipped.description, m.version
            )));
        }
    }
    Ok(archived.len())
}

/// The first `n` migrations of `set`, as a set of their own.
pub(crate) fn prefix_set(set: &MigrationSet, n: usize) -> MigrationSet {
    let list: Vec<Migration> = set.migrations()[..n].to_vec();
    MigrationSet::from_migrations(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archived(set: &MigrationSet, versions: &[i64]) -> Vec<ArchivedMigration> {
        versions
            .iter()
            .map(|v| {
                let m = set.migrations().iter().find(|m| m.version == *v).unwrap();
                ArchivedMigration {
                    version: *v,
                    description: m.description.to_string(),
                    checksum: hex(&m.checksum),
                }
            })
            .collect()
    }

    #[test]
    fn only_a_prefix_of_the_history_is_accepted() {
        let set = MigrationSet::from_sql(&[
            (1, "a", "SELECT 1"),
            (2, "b", "SELECT 2"),
            (3, "c", "SELECT 3"),
        ]);
        assert_eq!(accepted_prefix(&[], &set, "default").unwrap(), 0);
        assert_eq!(
            accepted_prefix(&archived(&set, &[1, 2]), &set, "default").unwrap(),
            2
        );
        assert_eq!(
            accepted_prefix(&archived(&set, &[1, 2, 3]), &set, "default").unwrap(),
            3
        );
        let err = accepted_prefix(&archived(&set, &[1, 3]), &set, "default").unwrap_err();
        assert!(err.to_string().contains("lacks it"), "{err}");

        let newer = MigrationSet::from_sql(&[(1, "a", "SELECT 1"), (4, "d", "SELECT 4")]);
        let err = accepted_prefix(&archived(&newer, &[1, 4]), &set, "default").unwrap_err();
        assert!(err.to_string().contains("newer than"), "{err}");

        let changed = MigrationSet::from_sql(&[(1, "a", "SELECT 10")]);
        let err = accepted_prefix(&archived(&changed, &[1]), &set, "default").unwrap_err();
        assert!(err.to_string().contains("checksums differ"), "{err}");

        let between = MigrationSet::from_sql(&[(1, "a", "SELECT 1"), (2, "x", "SELECT 2")]);
        let mut other = archived(&between, &[1]);
        other.push(ArchivedMigration {
            version: 0,
            description: "zero".into(),
            checksum: "00".into(),
        });
        let err = accepted_prefix(&other, &set, "default").unwrap_err();
        assert!(err.to_string().contains("do not have"), "{err}");
        assert_eq!(prefix_set(&set, 2).latest_version(), Some(2));
    }
}
