//! Tenants by name, and a rename whose old name is taken again: the fixture of tests that check
//! a per-tenant store (cache, files) keys its data by tenant id, not by schema name.

use tenantry_sqlx::{NewTenant, Result, Tenant, Tenantry};

/// Creates one tenant per name in `schemas`, in order, each at `<schema>.test`.
pub async fn create_named<const N: usize>(
    tenantry: &Tenantry,
    schemas: [&str; N],
) -> Result<[Tenant; N]> {
    let mut created = Vec::with_capacity(N);
    for schema in schemas {
        let new = NewTenant::new(schema, format!("{schema}.test"));
        created.push(tenantry.admin().create_tenant(new).await?);
    }
    Ok(created
        .try_into()
        .unwrap_or_else(|_| unreachable!("one tenant per name")))
}

/// Renames tenant `from` to `to`, then creates a new tenant named `from` (at `new-<from>.test`):
/// returns the renamed tenant (same id as before) and the newcomer that took its old name.
pub async fn rename_and_reuse(
    tenantry: &Tenantry,
    from: &str,
    to: &str,
) -> Result<(Tenant, Tenant)> {
    let admin = tenantry.admin();
    let renamed = admin.rename_tenant(from, to).await?;
    let newcomer = admin
        .create_tenant(NewTenant::new(from, format!("new-{from}.test")))
        .await?;
    Ok((renamed, newcomer))
}
