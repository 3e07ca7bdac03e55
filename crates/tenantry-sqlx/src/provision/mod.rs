//! Fast provisioning: new tenant schemas cloned from a migrated template schema.
//!
//! Each tenant type has a template schema (`tenantry_template` for the default type,
//! `tenantry_template_<type>` for the others) that Tenantry migrates itself and never serves.
//! Its ledger row records the fingerprint of the migration set it was built from; when the
//! application's tenant migrations change, the template is dropped and rebuilt on the next
//! creation (or by [`crate::Fleet::refresh_template`]).
//!
//! From the template's catalogs Tenantry generates, once per process and fingerprint, a *clone
//! script*: one SQL batch that recreates every object (sequences, tables with their columns,
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

//! Files: `script.rs` generates the clone script from the template's catalogs (queries in
//! `catalog/*.sql`); `template.rs` keeps templates current; `spares.rs` pre-creates clones.

use crate::config::DEFAULT_TENANT_TYPE;

pub(crate) mod script;
pub(crate) mod spares;
pub(crate) mod template;

/// How [`crate::Admin::create_tenant`] builds a new tenant schema.
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

/// The template schema of a tenant type, if the name is a valid identifier.
pub fn template_schema(tenant_type: &str) -> Option<String> {
    let name = if tenant_type == DEFAULT_TENANT_TYPE {
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

/// Prefix of spare schemas (pre-created clones waiting for a sign-up).
pub(crate) const SPARE_PREFIX: &str = "tenantry_spare_";
