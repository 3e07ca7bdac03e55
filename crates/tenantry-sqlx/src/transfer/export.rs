//! [`crate::Admin::export_tenant`]: one tenant's registry row, domains, migration history and
//! rows, read in one snapshot, written as a tenant archive.

use std::io::Write;
use std::time::Instant;

use futures::TryStreamExt;
use sqlx::{AssertSqlSafe, Executor};

use super::archive::ArchiveWriter;
use super::catalog::{history, sequence_position, sequences, tables};
use super::manifest::{
    ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, ArchivedDomain, ArchivedTenant, END_ENTRY, End,
    MANIFEST_ENTRY, Manifest, SequencePosition, TableEnd, data_entry,
};
use super::{ProgressFn, TableCount, TransferProgress, TransferReport, no_progress};
use crate::admin::audit::audit;
use crate::admin::lookup::fetch_tenant;
use crate::error::{Error, Result};
use crate::groups::Admin;
use crate::migrate::set::MIGRATIONS_TABLE;
use crate::request::begin::begin_shielded;
use crate::sql::{begin_snapshot_with_path, fill, ident, qualified, tenant_lock_shared};

/// Row data gathered before it becomes one tar entry.
const PART_BYTES: usize = 4 << 20;

impl Admin<'_> {
    /// Writes tenant `schema` as a tenant archive to `out` and hands `out` back with the
    /// report: a gzip-compressed tar holding `manifest.json` (format, Tenantry and PostgreSQL
    /// versions, the registry row, the domains, the schema's migration history, the tables
    /// and their columns), each table's rows in PostgreSQL's COPY text format (split in parts
    /// of 4 MiB), and `end.json` (row counts and the sequences' positions).
    ///
    /// Everything is read in one `REPEATABLE READ` snapshot while the tenant keeps being
    /// served; renames, deletes and migrations of the tenant wait until the export is done.
    /// The file is written on a blocking thread; memory stays around a few parts whatever the
    /// tenant's size. Read it back with [`Admin::import_tenant`]. On an error the archive is
    /// left unfinished (an import refuses it).
    ///
    /// ```no_run
    /// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
    /// let file = std::fs::File::create("acme.tenant.tar.gz").expect("file");
    /// let (_file, report) = tenantry.admin().export_tenant("acme", file).await?;
    /// println!("{} rows, {} bytes", report.rows(), report.archive_bytes);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn export_tenant<W: Write + Send + 'static>(
        self,
        schema: &str,
        out: W,
    ) -> Result<(W, TransferReport)> {
        self.export_tenant_reporting(schema, out, &no_progress)
            .await
    }

    /// [`Admin::export_tenant`], calling `progress` as tables are written.
    pub async fn export_tenant_reporting<W: Write + Send + 'static>(
        self,
        schema: &str,
        out: W,
        progress: ProgressFn<'_>,
    ) -> Result<(W, TransferReport)> {
        let start = Instant::now();
        let t = self.tenantry;
        let tenant = self.tenant(schema).await?;
        let begin = begin_snapshot_with_path(&t.search_path_for(schema), true);
        let mut tx = begin_shielded(&t.inner.pool, begin).await?;
        tx.execute(AssertSqlSafe(format!(
            "SELECT {}",
            tenant_lock_shared(tenant.id)
        )))
        .await?;
        let locked = tenant.id;
        let tenant = fetch_tenant(&mut tx, t, schema).await?;
        if tenant.id != locked {
            // Renamed or deleted (and the name reused) before the lock was taken.
            return Err(Error::TenantNotFound(schema.to_owned()));
        }
        let domains = sqlx::query_as::<_, (String, bool)>(AssertSqlSafe(t.inner.sql.stmt(
            "SELECT domain, is_primary FROM {domains} WHERE tenant_id = $1 \
             ORDER BY is_primary DESC, domain",
        )))
        .bind(tenant.id)
        .fetch_all(&mut *tx)
        .await?;
        let Some(migrations) = history(&mut tx, schema).await? else {
            return Err(Error::CannotCopy {
                schema: schema.to_owned(),
                reason: format!("its schema has no migration history ({MIGRATIONS_TABLE})"),
            });
        };
        let source_version = migrations.last().map(|m| m.0);
        let postgres_version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut *tx)
            .await?;
        let tables = tables(&mut tx, schema).await?;
        let manifest = Manifest {
            format: ARCHIVE_FORMAT.to_owned(),
            format_version: ARCHIVE_FORMAT_VERSION,
            tenantry_version: env!("CARGO_PKG_VERSION").to_owned(),
            postgres_version,
            exported_at: chrono::Utc::now(),
            tenant: ArchivedTenant {
                schema: tenant.schema.clone(),
                display_name: tenant.display_name.clone(),
                tenant_type: tenant.tenant_type.clone(),
                status: tenant.status.as_str().to_owned(),
                data: tenant.data.clone(),
                created_at: tenant.created_at,
            },
            domains: domains
                .into_iter()
                .map(|(domain, is_primary)| ArchivedDomain { domain, is_primary })
                .collect(),
            migrations: migrations.into_iter().map(Into::into).collect(),
            tables,
        };
        let mut writer = ArchiveWriter::start(out);
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest is JSON");
        writer.add(MANIFEST_ENTRY.to_owned(), json).await?;
        progress(&TransferProgress::Started {
            tables: manifest.tables.len(),
        });

        let mut ends = Vec::with_capacity(manifest.tables.len());
        for (i, table) in manifest.tables.iter().enumerate() {
            let columns: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
            let copy = fill(
                "COPY {table} ({columns}) TO STDOUT",
                &[
                    ("table", &qualified(schema, &table.name)),
                    ("columns", &columns.join(", ")),
                ],
            );
            let (mut rows, mut bytes, mut parts) = (0u64, 0u64, 0usize);
            let mut buf: Vec<u8> = Vec::with_capacity(PART_BYTES + 64 * 1024);
            {
                let mut stream = tx.copy_out_raw(&copy).await?;
                while let Some(chunk) = stream.try_next().await? {
                    // Text format: one line per row, newlines inside values escaped.
                    rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                    bytes += chunk.len() as u64;
                    buf.extend_from_slice(&chunk);
                    if buf.len() >= PART_BYTES {
                        let part = std::mem::replace(&mut buf, Vec::with_capacity(PART_BYTES));
                        writer.add(data_entry(i, parts), part).await?;
                        parts += 1;
                    }
                }
            }
            if !buf.is_empty() {
                writer.add(data_entry(i, parts), buf).await?;
                parts += 1;
            }
            progress(&TransferProgress::Table {
                name: table.name.clone(),
                rows,
                bytes,
            });
            ends.push(TableEnd {
                name: table.name.clone(),
                rows,
                parts,
            });
        }
        progress(&TransferProgress::Finishing);
        // After the rows: a sequence is never behind a value its table holds.
        let mut positions = Vec::new();
        for name in sequences(&mut tx, schema).await? {
            let (last_value, is_called) = sequence_position(&mut tx, schema, &name).await?;
            positions.push(SequencePosition {
                name,
                last_value,
                is_called,
            });
        }
        tx.commit().await?;
        let end = End {
            tables: ends,
            sequences: positions,
        };
        let json = serde_json::to_vec_pretty(&end).expect("an end entry is JSON");
        writer.add(END_ENTRY.to_owned(), json).await?;
        let (out, archive_bytes) = writer.finish().await?;
        let report = TransferReport {
            tenant,
            tables: end
                .tables
                .iter()
                .map(|t| TableCount {
                    table: t.name.clone(),
                    rows: t.rows,
                })
                .collect(),
            source_version,
            applied: Vec::new(),
            archive_bytes,
            elapsed: start.elapsed(),
        };
        audit("export", schema, schema, Some(&report));
        Ok((out, report))
    }
}
