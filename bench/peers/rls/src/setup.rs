//! Creates and seeds the RLS database: the `peers_rls_app` role (LOGIN, not a superuser, no
//! BYPASSRLS) owns `tenants`, `domains`, `notes` and `markers`; `notes` and `markers` have
//! `ENABLE` + `FORCE ROW LEVEL SECURITY` and one policy each, for reads and writes:
//! `tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint` (no tenant set: no
//! rows, and no row can be written). Seeding is one `INSERT ... SELECT` per table over
//! `generate_series` (100,000 tenants and their million notes in well under a minute).

use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection};

/// The role the app connects as.
pub(crate) const APP_ROLE: &str = "peers_rls_app";

/// The tenant's rows: reads and writes.
const POLICY: &str = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint";

/// Creates the database if missing, then the schema and the seed.
pub(crate) async fn run(url: &str, count: i64, notes: i32) -> anyhow::Result<()> {
    let options: PgConnectOptions = url.parse()?;
    let db = options
        .get_database()
        .ok_or_else(|| anyhow::anyhow!("the URL names no database"))?
        .to_owned();
    anyhow::ensure!(
        db.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {db:?}: lowercase letters, digits and _ only"
    );
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&db)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
            .await?;
    }
    let role_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(APP_ROLE)
            .fetch_one(&mut admin)
            .await?;
    if !role_exists {
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"
            )))
            .await?;
    }
    admin.close().await?;

    let mut conn = options.connect().await?;
    schema(&mut conn).await?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&mut conn)
        .await?;
    if have >= count {
        println!("rls: {have} tenants already there, creating 0");
        return Ok(());
    }
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO tenants (id, name) SELECT g, 't' || lpad(g::text, 6, '0') \
         FROM generate_series($1, $2) g",
    )
    .bind(have + 1)
    .bind(count)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO domains (host, tenant_id) SELECT name || '.bench.local', id FROM tenants \
         WHERE id > $1",
    )
    .bind(have)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO notes (tenant_id, title, body) \
         SELECT t.id, 'note ' || n || ' of ' || t.name, 'body of note ' || n \
         FROM tenants t CROSS JOIN generate_series(1, $2) n WHERE t.id > $1 ORDER BY t.id, n",
    )
    .bind(have)
    .bind(notes)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    conn.execute("VACUUM ANALYZE").await?;
    println!(
        "rls: creating {} tenants ({notes} notes each) took {:.1}s",
        count - have,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn schema(conn: &mut PgConnection) -> anyhow::Result<()> {
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS tenants (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE);
         CREATE TABLE IF NOT EXISTS domains (
             host TEXT PRIMARY KEY,
             tenant_id BIGINT NOT NULL REFERENCES tenants);
         CREATE TABLE IF NOT EXISTS notes (
             id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             tenant_id BIGINT NOT NULL REFERENCES tenants
                 DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::bigint,
             title TEXT NOT NULL,
             body TEXT NOT NULL DEFAULT '',
             created_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE INDEX IF NOT EXISTS notes_tenant_id ON notes (tenant_id, id);
         CREATE TABLE IF NOT EXISTS markers (
             id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             tenant_id BIGINT NOT NULL REFERENCES tenants
                 DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::bigint,
             tenant TEXT NOT NULL,
             kind TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS markers_tenant_id ON markers (tenant_id);
         ALTER TABLE tenants OWNER TO {APP_ROLE};
         ALTER TABLE domains OWNER TO {APP_ROLE};
         ALTER TABLE notes OWNER TO {APP_ROLE};
         ALTER TABLE markers OWNER TO {APP_ROLE};
         ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
         ALTER TABLE notes FORCE ROW LEVEL SECURITY;
         ALTER TABLE markers ENABLE ROW LEVEL SECURITY;
         ALTER TABLE markers FORCE ROW LEVEL SECURITY;
         DROP POLICY IF EXISTS tenant_rows ON notes;
         CREATE POLICY tenant_rows ON notes USING ({POLICY}) WITH CHECK ({POLICY});
         DROP POLICY IF EXISTS tenant_rows ON markers;
         CREATE POLICY tenant_rows ON markers USING ({POLICY}) WITH CHECK ({POLICY});"
    );
    conn.execute(AssertSqlSafe(sql)).await?;
    Ok(())
}
