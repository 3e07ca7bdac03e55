//! Template schemas: built and kept at the tenant migrations' fingerprint, and their clone
//! scripts cached per process.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, Executor};
use tenantry_core::SchemaName;

use super::script::{CloneScript, Rows, generate_script};
use super::template_schema;
use crate::error::{Error, Result};
use crate::groups::Fleet;
use crate::handle::Tenantry;
use crate::migrate::apply::apply_in_tx;
use crate::migrate::ledger::write_ledger;
use crate::migrate::set::{MIGRATIONS_TABLE, MigrationSet};
use crate::request::begin::begin_shielded;
use crate::sql::{begin_with_path, create_schema, drop_schema, fill, ident, lock_migrations};

impl Tenantry {
    /// The clone plan for `tenant_type`, building the template and the plan when needed.
    pub(crate) async fn clone_plan(
        &self,
        tenant_type: &str,
    ) -> Result<Arc<std::result::Result<CloneScript, String>>> {
        let set = self
            .tenant_migration_set(tenant_type)
            .ok_or_else(|| Error::UnknownTenantType {
                tenant_type: tenant_type.to_owned(),
            })?
            .clone();
        if self.is_citus() {
            // See `citus/mod.rs`: tenant schemas are created distributed and migrated.
            return Ok(Arc::new(Err(
                "Citus mode: tenant schemas are created distributed and \
                 migrated, not cloned from a template"
                    .to_owned(),
            )));
        }
        let cache = &self.inner.templates;
        // A process's migration sets never change, and a plan is self-contained (it doesn't
        // read the template when used): an answer, good or bad, holds for the process.
        if let Some(plan) = cache
            .scripts
            .lock()
            .expect("template cache")
            .get(tenant_type)
        {
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
            .scripts
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
    ) -> Result<std::result::Result<CloneScript, String>> {
        let begin = begin_with_path(&self.search_path_for(template));
        let mut tx = begin_shielded(&self.inner.pool, begin).await?;
        lock_migrations(&mut tx, template).await?;
        let registered: bool = sqlx::query_scalar(AssertSqlSafe(
            self.inner
                .sql
                .stmt("SELECT EXISTS (SELECT 1 FROM {tenants} WHERE schema_name = $1)"),
        ))
        .bind(template)
        .fetch_one(&mut *tx)
        .await?;
        if registered {
            return Ok(Err(format!("{template:?} is a registered tenant")));
        }
        let current: Option<String> = sqlx::query_scalar(AssertSqlSafe(self.inner.sql.stmt(
            "SELECT l.fingerprint FROM {ledger} l WHERE l.schema_name = $1 \
             AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        )))
        .bind(template)
        .fetch_optional(&mut *tx)
        .await?;
        if current.as_deref() != Some(set.fingerprint()) {
            tracing::info!(template, tenant_type, "rebuilding tenant template schema");
            let name = SchemaName::system(template)?;
            tx.execute(AssertSqlSafe(fill(
                "{drop}; {create}; COMMENT ON SCHEMA {schema} IS 'Tenantry template: cloned into new tenant schemas, never served'",
                &[
                    ("drop", &drop_schema(&name)),
                    ("create", &create_schema(&name)),
                    ("schema", &ident(&name)),
                ],
            )))
            .await?;
            apply_in_tx(&mut tx, template, MIGRATIONS_TABLE, set, false).await?;
            write_ledger(&mut tx, self, template, tenant_type, set).await?;
        }
        let script = generate_script(&mut tx, template, Rows::Literal).await?;
        tx.commit().await?;
        Ok(script)
    }
}

impl Fleet<'_> {
    /// Rebuilds the template schema of `tenant_type` if its ledger fingerprint differs from the
    /// configured migration set's (or it is missing), and prepares the clone plan. Called
    /// automatically by [`crate::Admin::create_tenant`]; call it at start-up to take the rebuild out
    /// of the first sign-up. Done once per process (later calls answer from memory). Returns
    /// whether the template can be cloned (and if not, why).
    pub async fn refresh_template(
        self,
        tenant_type: &str,
    ) -> Result<std::result::Result<(), String>> {
        Ok(self
            .tenantry
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
        self,
        tenant_type: &str,
        schema: &str,
    ) -> Result<std::result::Result<String, String>> {
        Ok(
            match self.tenantry.clone_plan(tenant_type).await?.as_ref() {
                Ok(plan) => Ok(plan.sql_for(&SchemaName::new(schema)?)),
                Err(why) => Err(why.clone()),
            },
        )
    }
}
