//! The `notes` fixture: the one-table tenant schema most of Tenantry's own tests (and its
//! examples) use.

use tenantry_sqlx::MigrationSet;

/// DDL of the fixture's tenant table: `notes (id BIGINT identity primary key, title TEXT NOT
/// NULL)`.
pub const NOTES_TABLE: &str =
    "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title TEXT NOT NULL)";

/// Tenant migrations with the `notes` table as version 1 (`1_notes`).
pub fn notes_migrations() -> MigrationSet {
    MigrationSet::from_sql(&[(1, "notes", NOTES_TABLE)])
}
