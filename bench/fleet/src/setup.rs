//! Setup: a database per phase ([`BenchDb`]), the fixture schema, `Tenantry` handles, and the
//! migration sets of the timed `ADD COLUMN` runs.

use std::path::PathBuf;

use anyhow::Result;
use sqlx::migrate::Migration;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqlSafeStr};
use tenantry_sqlx::{MigrationSet, Tenantry};

/// A database for one phase, dropped on `drop_now`.
pub(crate) struct BenchDb {
    admin_url: String,
    name: String,
}

impl BenchDb {
    pub(crate) async fn create(admin_url: &str, label: &str) -> Result<Self> {
        let name = format!("tenantry_bench_{label}_{:08x}", rand::random::<u32>());
        let mut admin = PgConnection::connect(admin_url).await?;
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    pub(crate) fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }

    pub(crate) async fn drop_now(self) -> Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .await?;
        Ok(())
    }
}

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crates/tenantry-sqlx/tests/fixtures")
}

pub(crate) async fn handle(
    url: &str,
    shared: Option<PathBuf>,
    set: MigrationSet,
    pool: u32,
) -> Result<Tenantry> {
    let mut b = Tenantry::builder()
        .tenant_migration_set("default", set)
        .listen_for_changes(false)
        .pool_options(sqlx::postgres::PgPoolOptions::new().max_connections(pool));
    if let Some(dir) = shared {
        b = b.shared_migrations(dir);
    }
    Ok(b.connect(url).await?)
}

/// `base` plus `ADD COLUMN` migrations numbered 1000, 1001, ... (`count` of them).
/// The base set plus the ADD COLUMN migration of timed run `k` (0-based), every earlier run's
/// column having been added and then dropped again (`drop_last`: run `k`'s too).
///
/// Each timed run must do the same work as django-tenants' one added column: adding a second
/// and a third `VARCHAR(200)` would cross PostgreSQL's TOAST threshold, and the run that crosses
/// it creates a TOAST table and its index (with a file sync) in every schema. That made "the
/// second ADD COLUMN run" slow in earlier sessions, whatever its `jobs`. Dropped columns don't
/// count towards that threshold, so between timed runs an untimed run drops the previous column.
pub(crate) fn with_add_columns(
    base: &MigrationSet,
    table: &str,
    k: usize,
    drop_last: bool,
) -> MigrationSet {
    let mut list: Vec<Migration> = base.migrations().to_vec();
    let step = |version: i64, description: String, sql: String| {
        Migration::new(
            version,
            description.into(),
            sqlx::migrate::MigrationType::Simple,
            AssertSqlSafe(sql).into_sql_str(),
            false,
        )
    };
    for i in 0..=k {
        list.push(step(
            1000 + 2 * i as i64,
            format!("add bench_note_{i}"),
            format!("ALTER TABLE {table} ADD COLUMN bench_note_{i} VARCHAR(200) NULL;"),
        ));
        if i < k || drop_last {
            list.push(step(
                1001 + 2 * i as i64,
                format!("drop bench_note_{i}"),
                format!("ALTER TABLE {table} DROP COLUMN bench_note_{i};"),
            ));
        }
    }
    MigrationSet::from_migrations(list)
}
