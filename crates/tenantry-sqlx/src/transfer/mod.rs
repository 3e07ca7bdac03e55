//! Tenant data tools: a copy of a tenant with its rows ([`crate::Admin::clone_tenant`]) and,
//! with the `archive` feature, a portable archive of one tenant (`Admin::export_tenant`,
//! `Admin::import_tenant`).
//!
//! Every one is atomic like `create_tenant` (one transaction: a failure leaves no schema and
//! no registry row), reads its source in one snapshot (`REPEATABLE READ`) while the source
//! keeps being written, and validates, registers and runs hooks as `create_tenant` does.
//!
//! Files: `clone.rs` (the copy inside the database, from the clone script of
//! `provision/script.rs`), `manifest.rs` (what an archive says about itself and the migration
//! checks), `catalog.rs` (tables, columns, sequences, foreign keys of a schema),
//! `export.rs` and `import.rs` (the two halves of an archive), `archive.rs` (the tar + gzip
//! file, written and read on a blocking thread).

#[cfg(feature = "archive")]
pub(crate) mod archive;
pub(crate) mod catalog;
pub(crate) mod clone;
#[cfg(feature = "archive")]
pub(crate) mod export;
#[cfg(feature = "archive")]
pub(crate) mod import;
#[cfg(feature = "archive")]
pub(crate) mod manifest;

use std::time::Duration;

use serde::Serialize;
use tenantry_core::Tenant;

#[cfg(feature = "archive")]
pub use manifest::{ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION};

/// What a copy, export or import reports while it runs (for progress bars); see
/// [`crate::Admin::clone_tenant_reporting`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TransferProgress {
    /// The tables are known: `tables` of them will be copied.
    Started {
        /// How many tables.
        tables: usize,
    },
    /// One table is done.
    Table {
        /// The table.
        name: String,
        /// Its rows.
        rows: u64,
        /// Bytes of row data moved (COPY text; 0 for a copy inside the database).
        bytes: u64,
    },
    /// Rows are in; migrations, registry rows, hooks (or, for an export, the archive's end)
    /// follow.
    Finishing,
}

/// A progress callback.
pub type ProgressFn<'a> = &'a (dyn Fn(&TransferProgress) + Send + Sync);

/// Rows of one table, as copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TableCount {
    /// The table (unqualified).
    pub table: String,
    /// Its rows.
    pub rows: u64,
}

/// What a copy, export or import did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransferReport {
    /// The new tenant (clone, import) or the exported one.
    pub tenant: Tenant,
    /// Rows per table, in the order they were copied.
    pub tables: Vec<TableCount>,
    /// The source's (or archive's) last applied migration version.
    pub source_version: Option<i64>,
    /// Migrations applied to the new schema after its rows were in (the source was behind the
    /// application's tenant migrations); empty for an export.
    pub applied: Vec<i64>,
    /// Size of the archive in bytes (export and import; 0 for a copy).
    pub archive_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl TransferReport {
    /// Rows of every table.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// A progress callback that ignores everything.
pub(crate) fn no_progress(_: &TransferProgress) {}
