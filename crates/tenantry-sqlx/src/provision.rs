//! Fast provisioning: new tenant schemas cloned from a migrated template schema.
//!
//! Each tenant type has a template schema (`tenantry_template` for the default type,
//! `tenantry_template_<type>` for the others) that Tenantry migrates itself and never serves.
//! Its ledger row records the fingerprint of the migration set it was built from; when the
//! application's tenant migrations change, the template is dropped and rebuilt on the next
//! creation (or by [`Tenantry::refresh_template`]).
//!
//! From the template's catalogs Tenantry generates, once per process and fingerprint, a *clone
//! plan*: one SQL batch that recreates every object (sequences, tables with their columns,
//! identity and generated columns, defaults, constraints, foreign keys, views, materialized views,
//! functions, indexes, triggers, comments) plus the rows the migrations left in the template
//! (seed data, including the `_sqlx_migrations` history) and the sequences' positions. Creating a
//! tenant then sends that batch, with the new schema's name in place of the template's, in one
//! round trip inside the creation transaction: no migration is replayed, and a failure still
//! leaves nothing behind.
//!
//! Templates that use objects the generator does not reproduce (types or domains inside the
//! tenant schema, partitioned or inherited tables, row-level security, rules, aggregates,
//! privileges granted on tenant objects, ...) are reported as unusable; [`Provision::Auto`] then
//! falls back to migrating from scratch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::{AssertSqlSafe, Executor, PgConnection};
use tenantry_core::quote_ident;

use crate::error::{Error, Result};
use crate::handle::Tenantry;
use crate::lifecycle::write_ledger;
use crate::migrate::{MIGRATIONS_TABLE, MigrationSet, apply_in_tx};

/// How [`Tenantry::create_tenant`] builds a new tenant schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Provision {
    /// Clone the tenant type's template when it is usable, otherwise migrate from scratch
    /// (the default).
    #[default]
    Auto,
    /// Clone the template; fail if the template can't be cloned.
    Clone,
    /// Replay every tenant migration in the new schema (the template is not used).
    Migrate,
}

/// Stands for the new schema's quoted name in a clone plan (PostgreSQL text never holds NUL).
const SCHEMA_SLOT: &str = "\u{0}schema\u{0}";

/// The SQL that clones a template (built for the process's migration set).
#[derive(Debug)]
pub(crate) struct ClonePlan {
    sql: String,
}

impl ClonePlan {
    /// The batch for `schema` (a validated name).
    pub(crate) fn sql_for(&self, schema: &str) -> String {
        self.sql.replace(SCHEMA_SLOT, &quote_ident(schema))
    }
}

/// Clone plans (or why cloning is impossible) per tenant type, for the current fingerprints.
#[derive(Debug, Default)]
pub(crate) struct TemplateCache {
    plans: Mutex<HashMap<String, Arc<std::result::Result<ClonePlan, String>>>>,
}

/// The template schema of a tenant type, if the name is a valid identifier.
pub fn template_schema(tenant_type: &str) -> Option<String> {
    let name = if tenant_type == crate::DEFAULT_TENANT_TYPE {
        "tenantry_template".to_owned()
    } else {
        format!("tenantry_template_{tenant_type}")
    };
    let valid = name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    valid.then_some(name)
}

impl Tenantry {
    /// Rebuilds the template schema of `tenant_type` if its ledger fingerprint differs from the
    /// configured migration set's (or it is missing), and prepares the clone plan. Called
    /// automatically by [`Tenantry::create_tenant`]; call it at start-up to take the rebuild out
    /// of the first sign-up. Done once per process (later calls answer from memory). Returns
    /// whether the template can be cloned (and if not, why).
    pub async fn refresh_template(
        &self,
        tenant_type: &str,
    ) -> Result<std::result::Result<(), String>> {
        Ok(self
            .clone_plan(tenant_type)
            .await?
            .as_ref()
            .as_ref()
            .map(|_| ())
            .map_err(Clone::clone))
    }

    /// The SQL batch that would create `schema` as a clone of `tenant_type`'s template (for
    /// inspection and debugging), or why the template can't be cloned.
    pub async fn clone_script(
        &self,
        tenant_type: &str,
        schema: &str,
    ) -> Result<std::result::Result<String, String>> {
        Ok(match self.clone_plan(tenant_type).await?.as_ref() {
            Ok(plan) => Ok(plan.sql_for(schema)),
            Err(why) => Err(why.clone()),
        })
    }

    /// The clone plan for `tenant_type`, building the template and the plan when needed.
    pub(crate) async fn clone_plan(
        &self,
        tenant_type: &str,
    ) -> Result<Arc<std::result::Result<ClonePlan, String>>> {
        let set = self
            .tenant_migration_set(tenant_type)
            .ok_or_else(|| Error::UnknownTenantType {
                tenant_type: tenant_type.to_owned(),
            })?
            .clone();
        let cache = &self.inner.templates;
        // A process's migration sets never change, and a plan is self-contained (it doesn't
        // read the template when used): an answer, good or bad, holds for the process.
        if let Some(plan) = cache.plans.lock().expect("template cache").get(tenant_type) {
            return Ok(Arc::clone(plan));
        }
        let Some(template) = template_schema(tenant_type) else {
            let why = format!("tenant type {tenant_type:?} has no valid template schema name");
            return Ok(Arc::new(Err(why)));
        };
        let plan = Arc::new(self.build_template(&template, tenant_type, &set).await?);
        if let Err(why) = plan.as_ref() {
            tracing::warn!(tenant_type, %why, "template cannot be cloned; tenants will be migrated from scratch");
        }
        cache
            .plans
            .lock()
            .expect("template cache")
            .insert(tenant_type.to_owned(), Arc::clone(&plan));
        Ok(plan)
    }

    /// Brings the template schema up to `set` (rebuilding it from scratch if its fingerprint
    /// differs) and generates the clone plan from its catalogs, in one transaction holding the
    /// template's migration lock.
    async fn build_template(
        &self,
        template: &str,
        tenant_type: &str,
        set: &MigrationSet,
    ) -> Result<std::result::Result<ClonePlan, String>> {
        let begin = format!(
            "BEGIN; SET LOCAL search_path TO {}",
            self.search_path_for(template)
        );
        let mut tx = crate::handle::begin_shielded(&self.inner.pool, begin).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate'), hashtext($1))")
            .bind(template)
            .execute(&mut *tx)
            .await?;
        let registered: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE schema_name = $1)",
            self.inner.sql.tenants
        )))
        .bind(template)
        .fetch_one(&mut *tx)
        .await?;
        if registered {
            return Ok(Err(format!("{template:?} is a registered tenant")));
        }
        let current: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT l.fingerprint FROM {} l WHERE l.schema_name = $1 \
             AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            self.inner.sql.ledger
        )))
        .bind(template)
        .fetch_optional(&mut *tx)
        .await?;
        if current.as_deref() != Some(set.fingerprint()) {
            tracing::info!(template, tenant_type, "rebuilding tenant template schema");
            let q = quote_ident(template);
            tx.execute(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {q} CASCADE; CREATE SCHEMA {q}; \
                 COMMENT ON SCHEMA {q} IS 'Tenantry template: cloned into new tenant schemas, never served'"
            )))
            .await?;
            apply_in_tx(&mut tx, template, MIGRATIONS_TABLE, set).await?;
            write_ledger(&mut tx, self, template, tenant_type, set).await?;
        }
        let plan = generate_plan(&mut tx, template).await?;
        tx.commit().await?;
        Ok(plan.map(|sql| ClonePlan { sql }))
    }
}

/// Prefix of spare schemas (pre-created clones waiting for a sign-up).
pub(crate) const SPARE_PREFIX: &str = "tenantry_spare_";

impl Tenantry {
    /// Pre-creates spare clones of `tenant_type`'s template so that up to `count` sign-ups are
    /// served by renaming a spare (`ALTER SCHEMA ... RENAME`, a few milliseconds) instead of
    /// building tables and indexes. Spares are ordinary schemas named `tenantry_spare_*` with a
    /// ledger row (no tenant row); spares left from an older migration set are dropped here and
    /// never claimed. Run it from a background job. Returns the number of spares created.
    ///
    /// On PostgreSQL 15 every index build ends with an fsync of the new index file, so creating
    /// a schema costs roughly one disk sync per index and per TOAST table; spares move that cost
    /// off the sign-up path.
    pub async fn fill_spares(&self, tenant_type: &str, count: usize) -> Result<usize> {
        let set = self
            .tenant_migration_set(tenant_type)
            .ok_or_else(|| Error::UnknownTenantType {
                tenant_type: tenant_type.to_owned(),
            })?
            .clone();
        let plan = self.clone_plan(tenant_type).await?;
        let plan = match plan.as_ref() {
            Ok(plan) => plan,
            Err(why) => {
                return Err(Error::CannotClone {
                    tenant_type: tenant_type.to_owned(),
                    reason: why.clone(),
                });
            }
        };
        let ledger = &self.inner.sql.ledger;
        let spares: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT schema_name, fingerprint FROM {ledger} WHERE starts_with(schema_name, $1) AND tenant_type = $2"
        )))
        .bind(SPARE_PREFIX)
        .bind(tenant_type)
        .fetch_all(&self.inner.pool)
        .await?;
        let mut fresh = 0;
        for (schema, fingerprint) in &spares {
            if fingerprint == set.fingerprint() {
                fresh += 1;
                continue;
            }
            // Stale: drop it unless a creation is claiming it right now.
            let mut tx =
                crate::handle::begin_shielded(&self.inner.pool, "BEGIN".to_owned()).await?;
            let locked: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT schema_name FROM {ledger} WHERE schema_name = $1 FOR UPDATE SKIP LOCKED"
            )))
            .bind(schema)
            .fetch_optional(&mut *tx)
            .await?;
            if locked.is_some() {
                tx.execute(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    quote_ident(schema)
                )))
                .await?;
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM {ledger} WHERE schema_name = $1"
                )))
                .bind(schema)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        let mut created = 0;
        while fresh + created < count {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let schema = format!("{SPARE_PREFIX}{nanos:x}");
            let begin = format!(
                "BEGIN; SET LOCAL search_path TO {}",
                self.search_path_for(&schema)
            );
            let mut tx = crate::handle::begin_shielded(&self.inner.pool, begin).await?;
            tx.execute(sqlx::raw_sql(AssertSqlSafe(plan.sql_for(&schema))))
                .await?;
            write_ledger(&mut tx, self, &schema, tenant_type, &set).await?;
            tx.commit().await?;
            created += 1;
        }
        Ok(created)
    }
}

/// Inside a creation transaction: takes a spare clone of the current fingerprint, if any, and
/// renames it to `schema`. Returns whether one was taken.
pub(crate) async fn claim_spare(
    conn: &mut PgConnection,
    t: &Tenantry,
    schema: &str,
    tenant_type: &str,
    set: &MigrationSet,
) -> Result<bool> {
    let ledger = &t.inner.sql.ledger;
    let spare: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT schema_name FROM {ledger} WHERE starts_with(schema_name, $1) AND tenant_type = $2 \
         AND fingerprint = $3 LIMIT 1 FOR UPDATE SKIP LOCKED"
    )))
    .bind(SPARE_PREFIX)
    .bind(tenant_type)
    .bind(set.fingerprint())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(spare) = spare else {
        return Ok(false);
    };
    conn.execute(AssertSqlSafe(format!(
        "ALTER SCHEMA {} RENAME TO {}",
        quote_ident(&spare),
        quote_ident(schema)
    )))
    .await?;
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {ledger} WHERE schema_name = $1"
    )))
    .bind(&spare)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Why a template can't be cloned faithfully, if it can't.
const UNSUPPORTED_SQL: &str = r#"
SELECT kind || ' ' || name FROM (
    SELECT 'type' AS kind, t.typname::text AS name FROM pg_type t
     WHERE t.typnamespace = $1::regnamespace AND t.typtype <> 'c'
       AND NOT (t.typcategory = 'A' AND EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c'))
    UNION ALL
    SELECT 'relation of kind ' || c.relkind::text, c.relname::text FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND (c.relkind NOT IN ('r', 'i', 'S', 'v', 'm', 't') OR c.relispartition)
    UNION ALL
    SELECT 'inherited table', c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT 'row-level security on', c.relname::text FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND (c.relrowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
    UNION ALL
    SELECT 'privileges granted on', c.relname::text FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND c.relacl IS NOT NULL
    UNION ALL
    SELECT 'rule', r.rulename::text FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
     WHERE c.relnamespace = $1::regnamespace AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT 'routine of kind ' || p.prokind::text, p.proname::text FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace AND (p.prokind NOT IN ('f', 'p') OR p.proacl IS NOT NULL)
    UNION ALL
    SELECT 'object', n.nm FROM (
        SELECT oprname::text AS nm FROM pg_operator WHERE oprnamespace = $1::regnamespace
        UNION ALL SELECT collname::text FROM pg_collation WHERE collnamespace = $1::regnamespace
        UNION ALL SELECT stxname::text FROM pg_statistic_ext WHERE stxnamespace = $1::regnamespace
        UNION ALL SELECT cfgname::text FROM pg_ts_config WHERE cfgnamespace = $1::regnamespace
        UNION ALL SELECT conname::text FROM pg_conversion WHERE connamespace = $1::regnamespace
        UNION ALL SELECT opcname::text FROM pg_opclass WHERE opcnamespace = $1::regnamespace
    ) n
    UNION ALL
    SELECT 'trigger (disabled or replica)', t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal AND t.tgenabled <> 'O'
) u ORDER BY 1
"#;

/// Sequences, with how they are tied to a column: 'i' identity, 'a' owned (serial), none.
const SEQUENCES_SQL: &str = r#"
SELECT c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle, pg_sequence_last_value(c.oid),
       d.deptype::text, t.relname::text, a.attname::text
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  LEFT JOIN pg_class t ON t.oid = d.refobjid
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE c.relnamespace = $1::regnamespace
 ORDER BY c.oid
"#;

/// Columns of the template's tables, in order.
const COLUMNS_SQL: &str = r#"
SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attidentity::text, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co
                   JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.oid, a.attnum
"#;

/// Tables, in creation order.
const TABLES_SQL: &str = r#"
SELECT c.relname::text, c.relpersistence::text, array_to_string(c.reloptions, ', ')
  FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY c.oid
"#;

/// Functions and procedures; `late` when the signature uses a type of the template (a table's
/// row type), so they must come after the tables.
const FUNCTIONS_SQL: &str = r#"
SELECT pg_get_functiondef(p.oid), p.proname::text,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                AND d.refclassid = 'pg_type'::regclass
                AND d.refobjid IN (SELECT oid FROM pg_type WHERE typnamespace = $1::regnamespace))
  FROM pg_proc p WHERE p.pronamespace = $1::regnamespace ORDER BY p.oid
"#;

/// Constraints of tables (primary/unique/check/exclusion first, then foreign keys). For a foreign
/// key: the referenced table when it is in the template (NULL when it is elsewhere, e.g. shared),
/// and whether the referenced key is a primary key or unique constraint (not a bare unique index,
/// which the clone creates only at the end).
const CONSTRAINTS_SQL: &str = r#"
SELECT c.relname::text, k.contype::text, format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)),
       (SELECT r.relname::text FROM pg_class r WHERE r.oid = k.confrelid AND r.relnamespace = $1::regnamespace),
       k.contype <> 'f' OR EXISTS (SELECT 1 FROM pg_constraint u WHERE u.conrelid = k.confrelid
                                    AND u.conindid = k.conindid AND u.contype IN ('p', 'u'))
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE c.relnamespace = $1::regnamespace AND k.contype IN ('p', 'u', 'c', 'x', 'f')
 ORDER BY k.contype = 'f', k.oid
"#;

/// Views and materialized views in creation order.
const VIEWS_SQL: &str = r#"
SELECT format('CREATE %s %I%s AS %s %s;',
              CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END, c.relname,
              CASE WHEN c.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(c.reloptions, ', ') || ')' END,
              rtrim(pg_get_viewdef(c.oid), ';'),
              CASE WHEN c.relkind = 'v' THEN '' WHEN c.relispopulated THEN 'WITH DATA' ELSE 'WITH NO DATA' END)
  FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('v', 'm') ORDER BY c.oid
"#;

/// Indexes that don't back a constraint.
const INDEXES_SQL: &str = r#"
SELECT pg_get_indexdef(i.indexrelid) || ';'
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = $1::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                    AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
 ORDER BY i.indexrelid
"#;

/// User triggers.
const TRIGGERS_SQL: &str = r#"
SELECT pg_get_triggerdef(t.oid) || ';'
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal ORDER BY t.oid
"#;

/// Comments on relations, columns, constraints, routines and triggers.
const COMMENTS_SQL: &str = r#"
SELECT format('COMMENT ON %s IS %L;', target, description) FROM (
    SELECT CASE WHEN d.objsubid > 0 THEN format('COLUMN %I.%I', c.relname, a.attname)
                ELSE format('%s %I', CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW'
                     WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX' END,
                     c.relname) END AS target, d.description, 1 AS ord, c.oid AS o, d.objsubid AS sub
      FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
     WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'i')
    UNION ALL
    SELECT format('CONSTRAINT %I ON %I', k.conname, c.relname), d.description, 2, k.oid, 0
      FROM pg_description d JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = d.objoid
      JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT format('%s %s', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, p.oid::regprocedure),
           d.description, 3, p.oid, 0
      FROM pg_description d JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid
     WHERE p.pronamespace = $1::regnamespace
    UNION ALL
    SELECT format('TRIGGER %I ON %I', t.tgname, c.relname), d.description, 4, t.oid, 0
      FROM pg_description d JOIN pg_trigger t ON d.classoid = 'pg_trigger'::regclass AND t.oid = d.objoid
      JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace
) x ORDER BY ord, o, sub
"#;

type SequenceRow = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    bool,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Table, kind, definition, referenced template table (foreign keys), key is a constraint.
type ConstraintRow = (String, String, String, Option<String>, bool);

type ColumnRow = (
    String,
    String,
    String,
    bool,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// Sequence options; identity sequences take their type from the column (no `AS`).
fn sequence_options(s: &SequenceRow, with_type: bool) -> String {
    let (_, ty, start, inc, min, max, cache, cycle, ..) = s;
    let ty = if with_type {
        format!("AS {ty} ")
    } else {
        String::new()
    };
    format!(
        "{ty}INCREMENT BY {inc} MINVALUE {min} MAXVALUE {max} START WITH {start} CACHE {cache}{}",
        if *cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

/// Reads the template's catalogs (the connection's `search_path` starts with the template, so
/// names render unqualified) and writes the clone batch, or says why it can't.
async fn generate_plan(
    conn: &mut PgConnection,
    template: &str,
) -> Result<std::result::Result<String, String>> {
    let unsupported: Vec<String> = sqlx::query_scalar(UNSUPPORTED_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    if !unsupported.is_empty() {
        return Ok(Err(format!(
            "template {template:?} uses objects the cloner does not copy: {}",
            unsupported.join(", ")
        )));
    }
    let sequences: Vec<SequenceRow> = sqlx::query_as(SEQUENCES_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let tables: Vec<(String, String, Option<String>)> = sqlx::query_as(TABLES_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let columns: Vec<ColumnRow> = sqlx::query_as(COLUMNS_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let functions: Vec<(String, String, bool)> = sqlx::query_as(FUNCTIONS_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let list = |sql: &'static str| sqlx::query_scalar::<_, String>(sql).bind(template.to_owned());
    let constraints: Vec<ConstraintRow> = sqlx::query_as(CONSTRAINTS_SQL)
        .bind(template)
        .fetch_all(&mut *conn)
        .await?;
    let views: Vec<String> = list(VIEWS_SQL).fetch_all(&mut *conn).await?;
    let indexes: Vec<String> = list(INDEXES_SQL).fetch_all(&mut *conn).await?;
    let triggers: Vec<String> = list(TRIGGERS_SQL).fetch_all(&mut *conn).await?;
    let comments: Vec<String> = list(COMMENTS_SQL).fetch_all(&mut *conn).await?;

    let mut out = String::with_capacity(64 * 1024);
    let mut push = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    push(&format!("CREATE SCHEMA {SCHEMA_SLOT};"));
    // Bodies reference tables that don't exist yet when functions are created first.
    push("SET LOCAL check_function_bodies = off;");
    for s in sequences.iter().filter(|s| s.9.as_deref() != Some("i")) {
        push(&format!(
            "CREATE SEQUENCE {} {};",
            quote_ident(&s.0),
            sequence_options(s, true)
        ));
    }
    let (late_functions, early_functions): (Vec<_>, Vec<_>) =
        functions.into_iter().partition(|f| f.2);
    for (def, ..) in &early_functions {
        push(&format!("{def};"));
    }
    // Defaults and constraints go inside CREATE TABLE (far fewer statements) unless a function
    // that can only be created after the tables exists: then they are added afterwards.
    let late_names: Vec<String> = late_functions.iter().map(|f| format!("{}(", f.1)).collect();
    let inline = |expr: &str| !late_names.iter().any(|n| expr.contains(n.as_str()));
    let mut defaults = Vec::new();
    let mut later_constraints: Vec<(String, &String)> = Vec::new();
    let mut seed_queries = Vec::new();
    let mut created: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (table, persistence, options) in &tables {
        let cols: Vec<&ColumnRow> = columns.iter().filter(|c| &c.0 == table).collect();
        let mut defs = Vec::new();
        let mut copied = Vec::new();
        for (_, name, ty, not_null, identity, generated, default, collation) in &cols {
            let mut d = format!("{} {ty}", quote_ident(name));
            if let Some(coll) = collation {
                d.push_str(&format!(" COLLATE {coll}"));
            }
            if !generated.is_empty() {
                d.push_str(&format!(
                    " GENERATED ALWAYS AS ({}) STORED",
                    default.as_deref().unwrap_or_default()
                ));
            } else {
                copied.push((name.clone(), ty.clone()));
                if let Some(expr) = default
                    && inline(expr)
                {
                    d.push_str(&format!(" DEFAULT {expr}"));
                } else if let Some(expr) = default {
                    defaults.push(format!(
                        "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {expr};",
                        quote_ident(table),
                        quote_ident(name)
                    ));
                }
            }
            if !identity.is_empty() {
                let seq = sequences.iter().find(|s| {
                    s.9.as_deref() == Some("i")
                        && s.10.as_ref() == Some(table)
                        && s.11.as_ref() == Some(name)
                });
                let kind = if identity == "a" {
                    "ALWAYS"
                } else {
                    "BY DEFAULT"
                };
                let opts = seq
                    .map(|s| {
                        format!(
                            " (SEQUENCE NAME {} {})",
                            quote_ident(&s.0),
                            sequence_options(s, false)
                        )
                    })
                    .unwrap_or_default();
                d.push_str(&format!(" GENERATED {kind} AS IDENTITY{opts}"));
            }
            if *not_null {
                d.push_str(" NOT NULL");
            }
            defs.push(d);
        }
        for (_, kind, def, referenced, key_is_constraint) in
            constraints.iter().filter(|c| &c.0 == table)
        {
            // A foreign key goes inside CREATE TABLE when what it references exists by then
            // (a table created earlier, the table itself, or a table outside the template): no
            // ALTER TABLE, and no validation query (a new table is known to be empty). Others
            // are added once every table exists. NOT VALID is only kept by ALTER TABLE.
            let references_ready = kind != "f"
                || (*key_is_constraint
                    && referenced
                        .as_deref()
                        .is_none_or(|r| r == table || created.contains(r)));
            if inline(def) && references_ready && !def.ends_with("NOT VALID") {
                defs.push(def.clone());
            } else {
                later_constraints.push((table.clone(), def));
            }
        }
        let unlogged = if persistence == "u" { "UNLOGGED " } else { "" };
        let with = options
            .as_ref()
            .map(|o| format!(" WITH ({o})"))
            .unwrap_or_default();
        push(&format!(
            "CREATE {unlogged}TABLE {} ({}){with};",
            quote_ident(table),
            defs.join(", ")
        ));
        created.insert(table);
        if !copied.is_empty() {
            seed_queries.push((table.clone(), copied));
        }
    }
    // Seed rows: whatever the migrations left in the template, rendered as typed literals.
    for (table, cols) in &seed_queries {
        let names: Vec<String> = cols.iter().map(|c| quote_ident(&c.0)).collect();
        let values: Vec<String> = cols
            .iter()
            .map(|(name, ty)| {
                format!(
                    "quote_nullable({}::text) || '::' || {}",
                    quote_ident(name),
                    quote_literal(ty)
                )
            })
            .collect();
        let select = format!(
            "SELECT string_agg('(' || concat_ws(', ', {}) || ')', ', ' ORDER BY ctid) FROM {}.{}",
            values.join(", "),
            quote_ident(template),
            quote_ident(table)
        );
        let rows: Option<String> = sqlx::query_scalar(AssertSqlSafe(select))
            .fetch_one(&mut *conn)
            .await?;
        if let Some(rows) = rows {
            push(&format!(
                "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES {rows};",
                quote_ident(table),
                names.join(", ")
            ));
        }
    }
    for (def, ..) in &late_functions {
        push(&format!("{def};"));
    }
    for d in &defaults {
        push(d);
    }
    for s in &sequences {
        if let (Some("a"), Some(table), Some(col)) = (s.9.as_deref(), &s.10, &s.11) {
            push(&format!(
                "ALTER SEQUENCE {} OWNED BY {}.{};",
                quote_ident(&s.0),
                quote_ident(table),
                quote_ident(col)
            ));
        }
        if let Some(last) = s.8 {
            push(&format!(
                "SELECT pg_catalog.setval({}, {last}, true);",
                quote_literal(&quote_ident(&s.0))
            ));
        }
    }
    // Non-FK constraints first (FKs need the referenced keys), one ALTER TABLE per table.
    later_constraints.sort_by_key(|(_, def)| def.contains(" FOREIGN KEY "));
    let mut i = 0;
    while i < later_constraints.len() {
        let table = &later_constraints[i].0;
        let mut adds = Vec::new();
        while i < later_constraints.len() && &later_constraints[i].0 == table {
            adds.push(format!("ADD {}", later_constraints[i].1));
            i += 1;
        }
        push(&format!(
            "ALTER TABLE {} {};",
            quote_ident(table),
            adds.join(", ")
        ));
    }
    for group in [&views, &indexes, &triggers, &comments] {
        for s in group {
            push(s);
        }
    }
    Ok(Ok(requalify(&out, template)))
}

/// A SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Replaces references qualified with the template schema (`tpl.` or `"tpl".`, not inside a
/// longer identifier) by the new-schema slot. The template name is a fixed, validated identifier.
fn requalify(sql: &str, template: &str) -> String {
    let quoted = format!("\"{template}\".");
    let bare = format!("{template}.");
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '"';
    while !rest.is_empty() {
        let prev_ok = out.chars().next_back().is_none_or(|c| !is_ident(c));
        if prev_ok && rest.starts_with(&quoted) {
            out.push_str(SCHEMA_SLOT);
            out.push('.');
            rest = &rest[quoted.len()..];
        } else if prev_ok && rest.starts_with(&bare) {
            out.push_str(SCHEMA_SLOT);
            out.push('.');
            rest = &rest[bare.len()..];
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requalify_only_whole_qualifiers() {
        let sql = "SELECT tenantry_template.f(), \"tenantry_template\".t, my_tenantry_template.x, tenantry_template_b.y";
        let out = requalify(sql, "tenantry_template").replace(SCHEMA_SLOT, "\"acme\"");
        assert_eq!(
            out,
            "SELECT \"acme\".f(), \"acme\".t, my_tenantry_template.x, tenantry_template_b.y"
        );
    }

    #[test]
    fn template_names() {
        assert_eq!(
            template_schema("default").as_deref(),
            Some("tenantry_template")
        );
        assert_eq!(
            template_schema("pro").as_deref(),
            Some("tenantry_template_pro")
        );
        assert_eq!(template_schema("Pro"), None);
        assert_eq!(template_schema(&"x".repeat(60)), None);
    }
}
