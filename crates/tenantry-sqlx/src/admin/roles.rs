//! Database-enforced isolation ([`crate::Config::tenant_roles`]): role names, the group role,
//! and the tenant role created, dropped and renamed inside the life-cycle transaction, so it
//! exists exactly when the tenant does. Role names are validated prefixes plus validated schema
//! names, always quoted.

use sqlx::{AssertSqlSafe, Executor, PgConnection, PgPool};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::groups::Admin;
use crate::handle::Tenantry;
use crate::sql::{fill, ident, ident_literal, literal, path_list};

/// `<prefix><schema>`, or when that exceeds PostgreSQL's 63 bytes, a truncated name plus a hash
/// (PostgreSQL would truncate silently and two tenants could share a role).
pub(crate) fn tenant_role_name(prefix: &str, schema: &str) -> String {
    let name = format!("{prefix}{schema}");
    if name.len() <= 63 {
        return name;
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(schema.as_bytes());
    let tag: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}_{tag}", &name[..63 - 9])
}

/// The group role of all tenant roles (the `-` keeps it apart from any tenant role).
pub(crate) fn group_role_name(prefix: &str) -> String {
    format!("{prefix}all-tenants")
}

/// Creates the group role if missing and lets it use the shared schemas that exist (the extra
/// ones may be created by the shared migrations: `migrate_shared` calls this again).
pub(crate) async fn setup_group_role(pool: &PgPool, group: &str, config: &Config) -> Result<()> {
    let g = ident(group);
    let wanted: Vec<&str> = std::iter::once(config.shared_schema.as_str())
        .chain(config.extra_search_path.iter().map(String::as_str))
        .collect();
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
            .bind(&wanted)
            .fetch_all(pool)
            .await?;
    let mut sql = fill(include_str!("sql/group_role.sql"), &[("g", &g)]);
    if !existing.is_empty() {
        let schemas = path_list(existing.iter().map(String::as_str));
        sql.push_str(&fill(
            ";\nGRANT USAGE ON SCHEMA {schemas} TO {g}",
            &[("g", &g), ("schemas", &schemas)],
        ));
    }
    pool.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
    Ok(())
}

impl Tenantry {
    /// Creates the tenant's role, makes it own the schema and everything in it, and grants it
    /// what later migrations (run by the connecting user) create there.
    pub(crate) async fn create_tenant_role(
        &self,
        conn: &mut PgConnection,
        schema: &str,
    ) -> Result<()> {
        let (Some(role), Some(group)) = (self.role_of(schema), self.group_role()) else {
            return Ok(());
        };
        let (r, g, s) = (ident(&role), ident(&group), ident(schema));
        // `GRANT r TO CURRENT_USER` lets a non-superuser owner SET ROLE and migrate later.
        let (ns, rl) = (ident_literal(schema), literal(&role));
        let sql = fill(
            include_str!("sql/create_role.sql"),
            &[("r", &r), ("g", &g), ("s", &s), ("ns", &ns), ("rl", &rl)],
        );
        conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
            .await
            .map_err(|e| match &e {
                // 42710 duplicate_object; 23505 when two creations race on the catalog.
                sqlx::Error::Database(db)
                    if matches!(db.code().as_deref(), Some("42710" | "23505")) =>
                {
                    Error::RoleExists { role: role.clone() }
                }
                _ => Error::Database(e),
            })?;
        Ok(())
    }

    /// Hands what the role owns back to the connecting user and drops the role.
    pub(crate) async fn drop_tenant_role(
        &self,
        conn: &mut PgConnection,
        schema: &str,
    ) -> Result<()> {
        let Some(role) = self.role_of(schema) else {
            return Ok(());
        };
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&mut *conn)
                .await?;
        if exists {
            let r = ident(&role);
            conn.execute(sqlx::raw_sql(AssertSqlSafe(fill(
                "REASSIGN OWNED BY {r} TO CURRENT_USER; DROP OWNED BY {r}; DROP ROLE {r}",
                &[("r", &r)],
            ))))
            .await?;
        }
        Ok(())
    }

    /// Renames the tenant's role with its schema.
    pub(crate) async fn rename_tenant_role(
        &self,
        conn: &mut PgConnection,
        old: &str,
        new: &str,
    ) -> Result<()> {
        let (Some(old_role), Some(new_role)) = (self.role_of(old), self.role_of(new)) else {
            return Ok(());
        };
        conn.execute(AssertSqlSafe(fill(
            "ALTER ROLE {old} RENAME TO {new}",
            &[("old", &ident(&old_role)), ("new", &ident(&new_role))],
        )))
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42710") => {
                Error::RoleExists { role: new_role }
            }
            e => Error::Database(e),
        })?;
        Ok(())
    }
}

impl Tenantry {
    /// The role scoped access to `schema` runs as, in role mode (see [`Admin::tenant_role`]).
    pub(crate) fn role_of(&self, schema: &str) -> Option<String> {
        self.inner
            .config
            .tenant_roles
            .as_deref()
            .map(|prefix| tenant_role_name(prefix, schema))
    }

    /// The group role of every tenant role, in role mode.
    pub(crate) fn group_role(&self) -> Option<String> {
        self.inner
            .config
            .tenant_roles
            .as_deref()
            .map(group_role_name)
    }
}

impl Admin<'_> {
    /// The role scoped access to `schema` runs as, when [`Config::tenant_roles`] is on.
    pub fn tenant_role(self, schema: &str) -> Option<String> {
        self.tenantry.role_of(schema)
    }

    /// The group role every tenant role belongs to (grant shared tables to it), when
    /// [`Config::tenant_roles`] is on.
    pub fn tenant_group_role(self) -> Option<String> {
        self.tenantry.group_role()
    }
}
