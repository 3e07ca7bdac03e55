//! [`crate::Admin::import_tenant`]: a new tenant from a tenant archive, built at the archive's
//! migration version, filled with its rows, then migrated forward, in one transaction.

use std::io::Read;
use std::time::Instant;

use sqlx::{AssertSqlSafe, Executor, PgConnection};

use super::archive::{ArchiveReader, Part};
use super::catalog::{TableDef, sequences, tables};
use super::manifest::{
    End, Manifest, accepted_prefix, incompatible, invalid, prefix_set, read_manifest,
};
use super::{ProgressFn, TableCount, TransferProgress, TransferReport, no_progress};
use crate::admin::audit::audit;
use crate::admin::tenants::NewTenant;
use crate::error::{Error, Result, conflict_or, name_taken};
use crate::groups::Admin;
use crate::migrate::apply::apply_in_tx;
use crate::migrate::set::MIGRATIONS_TABLE;
use crate::sql::{create_schema, fill, ident, literal, qualified};

impl Admin<'_> {
    /// Creates tenant `new.schema` at `new.domain` from a tenant archive written by
    /// [`Admin::export_tenant`] (read from `input` on a blocking thread).
    ///
    /// 1. The manifest is read first. The tenant type is the archive's (or `new.tenant_type`);
    ///    the display name (unless `new.display_name` is set) and the data (unless `new.data`
    ///    is a non-empty object) are the archive's. The new name and domain are validated as
    ///    [`Admin::create_tenant`] validates them. The archive's other domains are not added
    ///    (they usually belong to the tenant it was taken from); see the manifest.
    /// 2. The archive's migration history must be the first migrations of the tenant type's
    ///    set, same versions and checksums. Refused with [`crate::Error::ArchiveIncompatible`],
    ///    saying why: a migration newer than the application knows (upgrade it first), one it
    ///    doesn't have, one whose SQL changed, or a gap.
    /// 3. The schema is created and migrated to the archive's version; its tables must match
    ///    the archive's (names, stored columns and types), or the import is refused.
    /// 4. The rows are loaded with `COPY` (foreign keys are dropped meanwhile and added back,
    ///    which checks every row; user triggers don't fire), the migration history is the
    ///    archive's, sequences are set where they were.
    /// 5. The remaining migrations are applied, then registry rows, ledger, hooks and role, as
    ///    for `create_tenant`.
    ///
    /// One transaction: a refused, damaged or truncated archive ([`crate::Error::ArchiveInvalid`])
    /// or any failure leaves no schema and no registry row.
    ///
    /// ```no_run
    /// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
    /// use tenantry_sqlx::NewTenant;
    ///
    /// let file = std::fs::File::open("acme.tenant.tar.gz").expect("file");
    /// let new = NewTenant::new("acme_restored", "restored.acme.example.com");
    /// let report = tenantry.admin().import_tenant(file, new).await?;
    /// println!("{} rows, migrations applied: {:?}", report.rows(), report.applied);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn import_tenant<R: Read + Send + 'static>(
        self,
        input: R,
        new: NewTenant,
    ) -> Result<TransferReport> {
        self.import_tenant_reporting(input, new, &no_progress).await
    }

    /// [`Admin::import_tenant`], calling `progress` as tables are loaded.
    pub async fn import_tenant_reporting<R: Read + Send + 'static>(
        self,
        input: R,
        mut new: NewTenant,
        progress: ProgressFn<'_>,
    ) -> Result<TransferReport> {
        let start = Instant::now();
        let t = self.tenantry;
        if t.is_citus() {
            // The schema would be created undistributed and loaded with triggers switched off,
            // which Citus refuses on distributed tables.
            return Err(Error::CitusUnsupported {
                what: "tenant import",
                why: "importing into a distributed schema is not built yet; import on plain \
                      PostgreSQL, then move the database's tenants with Citus",
            });
        }
        let mut reader = ArchiveReader::start(input);
        let manifest = match reader.next().await? {
            Some(Part::Manifest(bytes)) => read_manifest(&bytes)?,
            Some(_) => return Err(invalid("it does not start with manifest.json".to_owned())),
            None => return Err(invalid("it is empty".to_owned())),
        };
        let archived = &manifest.tenant;
        if new.tenant_type.is_none() {
            new.tenant_type = Some(archived.tenant_type.clone());
        }
        if new.display_name.is_none() {
            new.display_name = Some(archived.display_name.clone());
        }
        if new.data.as_object().is_some_and(|o| o.is_empty()) {
            new.data = archived.data.clone();
        }
        let new = t.check_new(new)?;
        let at = accepted_prefix(&manifest.migrations, &new.set, &new.tenant_type)?;
        let source_version = manifest.migrations.last().map(|m| m.version);

        // At the application's latest migration (the usual case), the schema is cloned from the
        // tenant type's template, as `create_tenant` does; otherwise the archive's migrations
        // are replayed.
        let latest = at == new.set.migrations().len();
        let plan = match latest {
            true => Some(t.clone_plan(&new.tenant_type).await?),
            false => None,
        };
        let mut tx = t.begin_admin(&new.schema).await?;
        t.check_free(&mut tx, &new).await?;
        match plan.as_deref() {
            Some(Ok(plan)) => {
                tx.execute(sqlx::raw_sql(AssertSqlSafe(plan.sql_for(&new.schema))))
                    .await
                    .map_err(|e| conflict_or(e, || name_taken(&new.schema)))?;
            }
            _ => {
                tx.execute(AssertSqlSafe(create_schema(&new.schema)))
                    .await
                    .map_err(|e| conflict_or(e, || name_taken(&new.schema)))?;
                let prefix = prefix_set(&new.set, at);
                apply_in_tx(&mut tx, &new.schema, MIGRATIONS_TABLE, &prefix, false).await?;
            }
        }
        check_tables(&mut tx, &new.schema, &manifest, source_version).await?;
        let foreign_keys = prepare_load(&mut tx, &new.schema, &manifest.tables).await?;

        progress(&TransferProgress::Started {
            tables: manifest.tables.len(),
        });
        let (tables, end) =
            load_rows(&mut tx, &new.schema, &manifest, &mut reader, progress).await?;
        // Nothing may follow end.json, and the gzip checksum is verified at the stream's end.
        if let Some(part) = reader.next().await? {
            return Err(invalid(format!("unexpected data after end.json: {part:?}")));
        }
        progress(&TransferProgress::Finishing);
        finish_load(&mut tx, &new.schema, &foreign_keys, &end).await?;
        let applied = apply_in_tx(&mut tx, &new.schema, MIGRATIONS_TABLE, &new.set, false).await?;
        let tenant = t.register_tenant(&mut tx, &new, &applied).await?;
        tx.commit().await?;
        t.invalidate_cache();
        let report = TransferReport {
            tenant,
            tables,
            source_version,
            applied,
            archive_bytes: reader.bytes_read(),
            elapsed: start.elapsed(),
        };
        audit("import", &new.schema, &archived.schema, Some(&report));
        Ok(report)
    }
}

/// Refuses an archive whose tables are not the ones the migrations made.
async fn check_tables(
    conn: &mut PgConnection,
    schema: &str,
    manifest: &Manifest,
    version: Option<i64>,
) -> Result<()> {
    let ours = tables(conn, schema).await?;
    let at = version.map_or_else(|| "no migration".to_owned(), |v| format!("migration {v}"));
    let names = |list: &[TableDef]| {
        list.iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if ours.len() != manifest.tables.len()
        || ours
            .iter()
            .zip(&manifest.tables)
            .any(|(a, b)| a.name != b.name)
    {
        return Err(incompatible(format!(
            "the archive's tables ({}) are not the ones this application's migrations make at \
             {at} ({}): the tenant's schema was changed outside its migrations",
            names(&manifest.tables),
            names(&ours)
        )));
    }
    for (a, b) in ours.iter().zip(&manifest.tables) {
        if a.columns != b.columns {
            let cols = |t: &TableDef| {
                t.columns
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.ty))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(incompatible(format!(
                "table {}: the archive has columns ({}), this application's migrations make \
                 ({}) at {at}",
                a.name,
                cols(b),
                cols(a)
            )));
        }
    }
    Ok(())
}

/// Before loading: the foreign keys inside the schema dropped (returned, to add back), user
/// triggers off, every table emptied (migrations may have seeded rows the archive also holds).
async fn prepare_load(
    conn: &mut PgConnection,
    schema: &str,
    tables: &[TableDef],
) -> Result<Vec<(String, String, String)>> {
    let keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid) \
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
          WHERE c.relnamespace = $1::regnamespace AND k.contype = 'f' ORDER BY k.oid",
    )
    .bind(ident(schema))
    .fetch_all(&mut *conn)
    .await?;
    let mut sql = String::new();
    for (table, name, _) in &keys {
        sql.push_str(&format!(
            "ALTER TABLE {} DROP CONSTRAINT {};\n",
            qualified(schema, table),
            ident(name)
        ));
    }
    for table in triggered(conn, schema).await? {
        sql.push_str(&format!(
            "ALTER TABLE {} DISABLE TRIGGER USER;\n",
            qualified(schema, &table)
        ));
    }
    // DELETE rather than TRUNCATE: a fresh schema's tables are empty or hold a few seed rows,
    // and TRUNCATE would give every table and index a new file.
    for table in tables {
        sql.push_str(&format!(
            "DELETE FROM {};\n",
            qualified(schema, &table.name)
        ));
    }
    conn.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
    Ok(keys)
}

/// The tables of `schema` with user triggers.
async fn triggered(conn: &mut PgConnection, schema: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT c.relname::text FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid \
          WHERE c.relnamespace = $1::regnamespace AND NOT g.tgisinternal ORDER BY 1",
    )
    .bind(ident(schema))
    .fetch_all(&mut *conn)
    .await?)
}

/// After loading: triggers on, foreign keys back (checking every row), sequences set.
async fn finish_load(
    conn: &mut PgConnection,
    schema: &str,
    foreign_keys: &[(String, String, String)],
    end: &End,
) -> Result<()> {
    let ours = sequences(conn, schema).await?;
    let mut sql = String::new();
    for table in triggered(conn, schema).await? {
        sql.push_str(&format!(
            "ALTER TABLE {} ENABLE TRIGGER USER;\n",
            qualified(schema, &table)
        ));
    }
    for (table, name, def) in foreign_keys {
        // `def` is PostgreSQL's own rendering of a constraint it holds.
        sql.push_str(&format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {def};\n",
            qualified(schema, table),
            ident(name)
        ));
    }
    for s in &end.sequences {
        if !ours.contains(&s.name) {
            return Err(incompatible(format!(
                "the archive has sequence {}, which this application's migrations don't make",
                s.name
            )));
        }
        sql.push_str(&format!(
            "SELECT pg_catalog.setval({}, {}, {});\n",
            literal(&qualified(schema, &s.name)),
            s.last_value,
            s.is_called
        ));
    }
    conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
        .await
        .map_err(|e| match &e {
            // A row pointing at a row that isn't there (e.g. a shared table's).
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => incompatible(
                format!("the archive's rows break a foreign key: {}", db.message()),
            ),
            _ => e.into(),
        })?;
    Ok(())
}

/// A COPY refused by the data it was given (SQLSTATE classes 22, data exceptions, and 23,
/// integrity violations): the archive's rows don't fit, which says the archive is damaged.
fn bad_rows(e: sqlx::Error, table: &str) -> crate::Error {
    match &e {
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23")) =>
        {
            invalid(format!(
                "the rows of table {table} don't load: {}",
                db.message()
            ))
        }
        _ => e.into(),
    }
}

/// Loads every table's rows with `COPY ... FROM STDIN` (one per table, in manifest order) up
/// to `end.json`, and checks the row counts against it.
async fn load_rows(
    conn: &mut PgConnection,
    schema: &str,
    manifest: &Manifest,
    reader: &mut ArchiveReader,
    progress: ProgressFn<'_>,
) -> Result<(Vec<TableCount>, End)> {
    let mut rows = vec![0u64; manifest.tables.len()];
    let mut next_table = 0;
    let mut pending = reader.next().await?;
    let end = loop {
        match pending.take() {
            Some(Part::Data { table, bytes }) => {
                // Tables come in manifest order, each once; empty ones have no data.
                if table < next_table || table >= manifest.tables.len() {
                    return Err(invalid(format!(
                        "rows of table number {table} are out of order or not in the manifest"
                    )));
                }
                for empty in &manifest.tables[next_table..table] {
                    progress(&TransferProgress::Table {
                        name: empty.name.clone(),
                        rows: 0,
                        bytes: 0,
                    });
                }
                next_table = table + 1;
                let def = &manifest.tables[table];
                let columns: Vec<String> = def.columns.iter().map(|c| ident(&c.name)).collect();
                let statement = fill(
                    "COPY {table} ({columns}) FROM STDIN",
                    &[
                        ("table", &qualified(schema, &def.name)),
                        ("columns", &columns.join(", ")),
                    ],
                );
                let mut copy = conn.copy_in_raw(&statement).await?;
                let mut sent = bytes.len() as u64;
                let streamed: Result<()> = async {
                    copy.send(bytes).await.map_err(|e| bad_rows(e, &def.name))?;
                    loop {
                        match reader.next().await? {
                            Some(Part::Data { table: same, bytes }) if same == table => {
                                sent += bytes.len() as u64;
                                copy.send(bytes).await.map_err(|e| bad_rows(e, &def.name))?;
                            }
                            other => {
                                pending = other;
                                return Ok(());
                            }
                        }
                    }
                }
                .await;
                if let Err(e) = streamed {
                    // Ends the COPY with CopyDone rather than CopyFail: whether or not the
                    // server already refused the rows, `finish` reads its answer through to
                    // ReadyForQuery, so the connection stays in step (sqlx's `abort` leaves it
                    // out of step when the server had failed first). Whatever was loaded is
                    // rolled back with the transaction.
                    let _ = copy.finish().await;
                    return Err(e);
                }
                let loaded = copy.finish().await.map_err(|e| bad_rows(e, &def.name))?;
                rows[table] = loaded;
                progress(&TransferProgress::Table {
                    name: def.name.clone(),
                    rows: loaded,
                    bytes: sent,
                });
            }
            Some(Part::End(bytes)) => {
                break serde_json::from_slice::<End>(&bytes)
                    .map_err(|e| invalid(format!("end.json: {e}")))?;
            }
            Some(Part::Manifest(_)) => return Err(invalid("it holds two manifests".to_owned())),
            None => {
                return Err(invalid(
                    "it ends before end.json (truncated, or the export failed)".to_owned(),
                ));
            }
        }
    };
    for empty in &manifest.tables[next_table.min(manifest.tables.len())..] {
        progress(&TransferProgress::Table {
            name: empty.name.clone(),
            rows: 0,
            bytes: 0,
        });
    }
    if end.tables.len() != manifest.tables.len() {
        return Err(invalid(
            "end.json and manifest.json list different tables".to_owned(),
        ));
    }
    let mut counts = Vec::with_capacity(rows.len());
    for ((def, expected), rows) in manifest.tables.iter().zip(&end.tables).zip(rows) {
        if expected.name != def.name || expected.rows != rows {
            return Err(invalid(format!(
                "table {}: end.json says {} rows, the archive held {rows} (damaged archive)",
                def.name, expected.rows
            )));
        }
        counts.push(TableCount {
            table: def.name.clone(),
            rows,
        });
    }
    Ok((counts, end))
}
