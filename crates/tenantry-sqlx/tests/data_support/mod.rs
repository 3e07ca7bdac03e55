//! Shared by the data tool tests (clone, export, import): rows in the demo schema, every row
//! of every table of a schema, and what a failed operation must not leave behind.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, PgPool};
use tenantry_sqlx::Tenantry;

/// Writes rows into the demo schema's tables through the tenant's own scoped transaction:
/// identity and serial keys, a self-reference, foreign keys across tables, arrays, JSON,
/// text with tabs, newlines, backslashes and quotes, NULLs (and the audit trigger's
/// rows in `audit_log`).
pub async fn fill_demo(t: &Tenantry, schema: &str, users: i64) {
    let mut tx = t.admin().begin_schema(schema).await.expect("begin");
    sqlx::query(
        "INSERT INTO users (email, display_name, tags, prefs, balance, phone, country)
         SELECT 'u' || i || '@example.com', E'name\\t' || i || E'\\n\\\\ \"q\" ''s', ARRAY['a', 'b' || i],
                jsonb_build_object('n', i), i * 1.5, CASE WHEN i % 2 = 0 THEN '+33 ' || i END,
                CASE WHEN i % 3 = 0 THEN 'fr' END
           FROM generate_series(1, $1) i",
    )
    .bind(users)
    .execute(&mut tx)
    .await
    .expect("users");
    sqlx::raw_sql(
        "INSERT INTO teams (name, owner_id) SELECT 'Team ' || id, id FROM users WHERE id % 10 = 1;
         INSERT INTO team_members (team_id, user_id) SELECT t.id, u.id FROM teams t JOIN users u ON u.id % 7 = t.id % 7;
         INSERT INTO projects (team_id, name, budget) SELECT id, 'Project ' || id, id * 100.25 FROM teams;
         INSERT INTO tasks (project_id, title, body, assignee_id) SELECT p.id, 'Task ' || g, 'body ' || g, NULL
           FROM projects p, generate_series(1, 3) g;
         UPDATE tasks SET parent_id = (SELECT min(id) FROM tasks) WHERE id > (SELECT min(id) FROM tasks);
         INSERT INTO folders (name) VALUES ('root');
         INSERT INTO folders (parent_id, name) SELECT id, 'child' FROM folders;
         INSERT INTO tags (label, color) VALUES ('red', '{255,0,0}'), ('none', NULL);
         UPDATE settings SET value = '\"fr\"' WHERE key = 'locale';
         DELETE FROM templates WHERE name = 'Todo';",
    )
    .execute(&mut tx)
    .await
    .expect("fill");
    tx.commit().await.expect("commit");
}

/// Every row of every table of `schema`, as text, by table (sorted).
pub async fn rows_by_table(pool: &PgPool, schema: &str) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut out = BTreeMap::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT t::text FROM \"{schema}\".\"{table}\" t ORDER BY 1"
        )))
        .fetch_all(pool)
        .await
        .expect("rows");
        out.insert(table, rows);
    }
    out
}

/// Asserts that two schemas hold the same tables with the same rows, naming the first
/// difference.
pub fn assert_same_rows(
    a: &BTreeMap<String, Vec<String>>,
    b: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: tables differ"
    );
    for (table, rows) in a {
        assert_eq!(rows, &b[table], "{what}: rows of {table} differ");
    }
}

/// Whether a schema exists.
pub async fn schema_exists(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
        .expect("schema")
}

/// Whether the registry has a tenant row or a ledger row for `schema`.
pub async fn registered(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM public.tenantry_tenants WHERE schema_name = $1)
             OR EXISTS (SELECT 1 FROM public.tenantry_migration_ledger WHERE schema_name = $1)",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .expect("registry")
}

/// Asserts that nothing named `schema` exists: no schema, no tenant row, no ledger row.
pub async fn assert_nothing_left(pool: &PgPool, schema: &str) {
    assert!(
        !schema_exists(pool, schema).await,
        "schema {schema} left behind"
    );
    assert!(
        !registered(pool, schema).await,
        "registry rows of {schema} left behind"
    );
}
