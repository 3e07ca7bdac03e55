//! Shared helpers for the fleet and provisioning tests: the 30+-table demo schema and a catalog
//! snapshot that can be compared between two schemas.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tenantry_sqlx::{MigrationSet, Tenantry};

/// Folder of the demo schema's tenant migrations.
pub(crate) fn tenant_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tenant")
}

/// Folder of the demo schema's shared migrations (enum, domain, reference table).
pub(crate) fn shared_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shared")
}

/// The demo tenant migrations plus `extra` `(version, description, sql)` migrations.
pub(crate) async fn demo_set_with(extra: &[(i64, &'static str, &'static str)]) -> MigrationSet {
    let base = MigrationSet::from_dir(tenant_fixture())
        .await
        .expect("fixture");
    let mut list = base.migrations().to_vec();
    list.extend(MigrationSet::from_sql(extra).migrations().iter().cloned());
    MigrationSet::from_migrations(list)
}

/// A handle on `url` with the demo shared migrations and `set` as default tenant migrations,
/// shared schema migrated.
pub(crate) async fn demo_tenantry(url: &str, set: MigrationSet) -> Tenantry {
    let t = Tenantry::builder()
        .shared_migrations(shared_fixture())
        .tenant_migration_set(tenantry_sqlx::DEFAULT_TENANT_TYPE, set)
        .listen_for_changes(false)
        .connect(url)
        .await
        .expect("connect");
    t.fleet().migrate_shared().await.expect("migrate shared");
    t
}

/// A catalog snapshot: kind -> sorted rows.
pub(crate) type Snapshot = BTreeMap<&'static str, Vec<String>>;

/// Catalog queries, each returning text rows describing one kind of object in schema `$1`.
const SNAPSHOT: &[(&str, &str)] = &[
    (
        "columns",
        "SELECT format('%s.%s #%s %s notnull=%s identity=%s generated=%s default=%s collation=%s', c.relname, a.attname,
                row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), format_type(a.atttypid, a.atttypmod),
                a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attcollation)
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
           LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
          WHERE c.relnamespace = $1::regnamespace AND a.attnum > 0 AND NOT a.attisdropped",
    ),
    (
        "relations",
        "SELECT format('%s kind=%s persistence=%s options=%s populated=%s', relname, relkind, relpersistence, reloptions, relispopulated)
           FROM pg_class WHERE relnamespace = $1::regnamespace",
    ),
    (
        "constraints",
        "SELECT format('%s on %s: %s %s deferrable=%s deferred=%s valid=%s', k.conname, k.conrelid::regclass, k.contype,
                pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred, k.convalidated)
           FROM pg_constraint k WHERE k.connamespace = $1::regnamespace",
    ),
    (
        "indexes",
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE c.relnamespace = $1::regnamespace",
    ),
    (
        "sequences",
        "SELECT format('%s %s start=%s inc=%s min=%s max=%s cache=%s cycle=%s last=%s owner=%s',
                c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
                s.seqcycle, pg_sequence_last_value(c.oid),
                (SELECT string_agg(d.deptype::text || ':' || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), ',')
                   FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
           FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = $1::regnamespace",
    ),
    (
        "views",
        "SELECT format('%s: %s', c.relname, pg_get_viewdef(c.oid)) FROM pg_class c
          WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('v', 'm')",
    ),
    (
        "functions",
        "SELECT format('%s kind=%s volatile=%s: %s', p.oid::regprocedure, p.prokind, p.provolatile, pg_get_functiondef(p.oid))
           FROM pg_proc p WHERE p.pronamespace = $1::regnamespace",
    ),
    (
        "triggers",
        "SELECT format('%s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled) FROM pg_trigger t
           JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal",
    ),
    (
        "comments",
        "SELECT format('%s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
           FROM pg_description d
          WHERE (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM pg_class WHERE relnamespace = $1::regnamespace))
             OR (d.classoid = 'pg_proc'::regclass AND d.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = $1::regnamespace))
             OR (d.classoid = 'pg_constraint'::regclass AND d.objoid IN (SELECT oid FROM pg_constraint WHERE connamespace = $1::regnamespace))
             OR (d.classoid = 'pg_trigger'::regclass AND d.objoid IN (SELECT t.oid FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace))",
    ),
    (
        "dependencies",
        "SELECT format('%s -> %s (%s)', pg_describe_object(d.classid, d.objid, d.objsubid),
                pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), d.deptype::text)
           FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
          WHERE c.relnamespace = $1::regnamespace AND d.deptype <> 'p'",
    ),
];

/// Every catalog fact about `schema`, by kind, sorted, with the schema's name replaced by `S`.
/// Rendered with `search_path` = the schema then `public`, as the application sees it.
pub(crate) async fn catalog_snapshot(url: &str, schema: &str) -> Snapshot {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET search_path TO \"{schema}\", public"
    )))
    .execute(&mut conn)
    .await
    .expect("search_path");
    let mut out = BTreeMap::new();
    for (kind, sql) in SNAPSHOT {
        let mut rows: Vec<String> = sqlx::query_scalar(*sql)
            .bind(schema)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        for r in &mut rows {
            *r = r.replace(schema, "S");
        }
        rows.sort();
        out.insert(*kind, rows);
    }
    // Seed rows and migration history (without timings).
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut data = Vec::new();
    for table in tables {
        // Timestamps of seed rows are when the migration ran: left out.
        let cols: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = format('%I.%I', $1::text, $2::text)::regclass
               AND attnum > 0 AND NOT attisdropped
               AND atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
               AND NOT ($2 = '_sqlx_migrations' AND attname = 'execution_time')
             ORDER BY attnum",
        )
        .bind(schema)
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .expect("columns");
        let select = format!(
            "SELECT format('%s', ROW({})) FROM \"{table}\"",
            cols.join(", ")
        );
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(select))
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        for r in rows {
            data.push(format!("{table}: {r}"));
        }
    }
    data.sort();
    out.insert("data", data);
    out
}
