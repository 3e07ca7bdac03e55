//! [`crate::Admin::clone_tenant`]: a new tenant whose schema is a copy of another tenant's,
//! objects and rows, made inside the database in one transaction.

use std::time::Instant;

use sqlx::{AssertSqlSafe, Executor};
use tenantry_core::SchemaName;

use super::catalog::history;
use super::{ProgressFn, TableCount, TransferProgress, TransferReport, no_progress};
use crate::admin::audit::audit;
use crate::admin::lookup::fetch_tenant;
use crate::admin::tenants::NewTenant;
use crate::error::{Error, Result, conflict_or, name_taken};
use crate::groups::Admin;
use crate::migrate::apply::apply_in_tx;
use crate::migrate::set::MIGRATIONS_TABLE;
use crate::provision::script::{Rows, generate_script};
use crate::request::begin::begin_shielded;
use crate::sql::{begin_snapshot_with_path, lock_migrations, set_path, tenant_lock_shared};

impl Admin<'_> {
    /// Creates tenant `new.schema` (at `new.domain`) as a copy of tenant `source`: every table
    /// with its rows, sequences and identity columns at the source's positions (the next
    /// insert gets a fresh id), defaults, constraints, indexes, views, functions, triggers and
    /// comments, as the template clone script makes them (see [`crate::Provision`]).
    ///
    /// * Validation, registry rows, ledger, role and hooks are those of
    ///   [`crate::Admin::create_tenant`] (`after_create` runs, and sees the copied rows).
    /// * The tenant type is the source's (`new.tenant_type` must be unset or the same); the
    ///   display name defaults to the new name, the data (`new.data` left empty) to the
    ///   source's.
    /// * The source is read in one snapshot (`REPEATABLE READ`) while it keeps being written;
    ///   renames, deletes and migrations of the source wait until the copy is done.
    /// * A source behind the application's migrations is copied as it is, then migrated
    ///   forward in the same transaction (`TransferReport::applied`); one holding a migration
    ///   the application doesn't know is refused ([`Error::MigrationState`]).
    /// * Atomic: any failure leaves no schema and no registry row. Refused: a source whose
    ///   schema holds objects the copier does not reproduce ([`Error::CannotCopy`], e.g.
    ///   partitioned tables, row-level security, types defined in the tenant schema).
    ///
    /// ```no_run
    /// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
    /// use tenantry_sqlx::NewTenant;
    ///
    /// let copy = tenantry
    ///     .admin()
    ///     .clone_tenant("acme", NewTenant::new("acme_staging", "staging.acme.example.com"))
    ///     .await?;
    /// println!("{} rows copied in {:?}", copy.rows(), copy.elapsed);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn clone_tenant(self, source: &str, new: NewTenant) -> Result<TransferReport> {
        self.clone_tenant_reporting(source, new, &no_progress).await
    }

    /// [`Admin::clone_tenant`], calling `progress` as tables are copied.
    pub async fn clone_tenant_reporting(
        self,
        source: &str,
        mut new: NewTenant,
        progress: ProgressFn<'_>,
    ) -> Result<TransferReport> {
        let start = Instant::now();
        let t = self.tenantry;
        if t.is_citus() {
            // The copy is built by one multi-statement script, which Citus can't propagate
            // into a distributed schema; the copy would also not be distributed.
            return Err(Error::CitusUnsupported {
                what: "tenant clone",
                why: "the copy script is not propagated to distributed schemas yet; export the \
                      tenant from a plain PostgreSQL copy instead",
            });
        }
        let src = self.tenant(source).await?;
        match &new.tenant_type {
            Some(ty) if *ty != src.tenant_type => {
                return Err(Error::CannotCopy {
                    schema: source.to_owned(),
                    reason: format!(
                        "a copy keeps its source's tenant type {:?}, not {ty:?}",
                        src.tenant_type
                    ),
                });
            }
            _ => new.tenant_type = Some(src.tenant_type.clone()),
        }
        if new.data.as_object().is_some_and(|o| o.is_empty()) {
            new.data = src.data.clone();
        }
        let new = t.check_new(new)?;
        let src_name = SchemaName::system(src.schema.as_str())?;

        let begin = begin_snapshot_with_path(&t.search_path_for(&src.schema), false);
        let mut tx = begin_shielded(&t.inner.pool, begin).await?;
        // The source's lock, shared, as its own transactions take it: a rename or delete of
        // the source waits for the copy (or gives up after `lifecycle_wait`).
        tx.execute(AssertSqlSafe(format!(
            "SELECT {}",
            tenant_lock_shared(src.id)
        )))
        .await?;
        if fetch_tenant(&mut tx, t, source).await?.id != src.id {
            return Err(Error::TenantNotFound(source.to_owned()));
        }
        // No migration of the source between reading its catalogs and its rows.
        lock_migrations(&mut tx, source).await?;
        t.check_free(&mut tx, &new).await?;
        let source_version = match history(&mut tx, source).await? {
            Some(applied) => applied.last().map(|m| m.0),
            None => {
                return Err(Error::CannotCopy {
                    schema: source.to_owned(),
                    reason: format!("its schema has no migration history ({MIGRATIONS_TABLE})"),
                });
            }
        };
        let mode = Rows::FromSource {
            skip_privileges: t.role_of(source).is_some(),
        };
        let script = generate_script(&mut tx, source, mode)
            .await?
            .map_err(|reason| Error::CannotCopy {
                schema: source.to_owned(),
                reason,
            })?;
        let (head, rows, tail) = script.parts_for(&new.schema, &src_name);
        tx.execute(AssertSqlSafe(set_path(&t.search_path_for(&new.schema))))
            .await?;
        progress(&TransferProgress::Started { tables: rows.len() });
        tx.execute(sqlx::raw_sql(AssertSqlSafe(head)))
            .await
            .map_err(|e| conflict_or(e, || name_taken(&new.schema)))?;
        let mut tables = Vec::with_capacity(rows.len());
        for (table, insert) in rows {
            let done = tx.execute(sqlx::raw_sql(AssertSqlSafe(insert))).await?;
            progress(&TransferProgress::Table {
                name: table.clone(),
                rows: done.rows_affected(),
                bytes: 0,
            });
            tables.push(TableCount {
                table,
                rows: done.rows_affected(),
            });
        }
        tx.execute(sqlx::raw_sql(AssertSqlSafe(tail))).await?;
        progress(&TransferProgress::Finishing);
        let applied = apply_in_tx(&mut tx, &new.schema, MIGRATIONS_TABLE, &new.set, false).await?;
        let tenant = t.register_tenant(&mut tx, &new, &applied).await?;
        tx.commit().await?;
        t.invalidate_cache();
        let report = TransferReport {
            tenant,
            tables,
            source_version,
            applied,
            archive_bytes: 0,
            elapsed: start.elapsed(),
        };
        audit("clone", &new.schema, source, Some(&report));
        Ok(report)
    }
}
