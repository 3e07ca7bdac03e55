//! The administration and fleet groups of a [`Tenantry`]'s methods: [`Admin`] (tenants,
//! domains, roles, registry reads) and [`Fleet`] (migrations, templates, spares). The request
//! path stays on [`Tenantry`] itself.

use crate::handle::Tenantry;

/// Administration of tenants: life cycle, domains, registry reads, tenant roles. Borrowed
/// from a handle with [`Tenantry::admin`]; every operation is one transaction.
///
/// ```no_run
/// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
/// use tenantry_sqlx::{NewTenant, SchemaOnDelete, TenantStatus};
///
/// let admin = tenantry.admin();
/// let acme = admin
///     .create_tenant(NewTenant::new("acme", "acme.example.com").display_name("Acme"))
///     .await?;
/// admin.add_domain(&acme.schema, "acme.test", false).await?;
/// admin.set_status("acme", TenantStatus::Suspended).await?;
/// for tenant in admin.tenants().await? {
///     println!("{} {}", tenant.schema, tenant.status);
/// }
/// admin.delete_tenant("acme", SchemaOnDelete::Drop).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    pub(crate) tenantry: &'a Tenantry,
}

/// The fleet of schemas: shared and tenant migrations, tenant templates and spare schemas.
/// Borrowed from a handle with [`Tenantry::fleet`].
///
/// ```no_run
/// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
/// use tenantry_sqlx::MigrateOptions;
///
/// let fleet = tenantry.fleet();
/// fleet.migrate_shared().await?;
/// let report = fleet.migrate_tenants(MigrateOptions::default()).await?;
/// for (schema, error) in report.failures() {
///     eprintln!("{schema}: {error}");
/// }
/// // Take the template rebuild out of the first sign-up, and keep two clones ready.
/// fleet.refresh_template("default").await?.ok();
/// fleet.fill_spares("default", 2).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fleet<'a> {
    pub(crate) tenantry: &'a Tenantry,
}

impl Tenantry {
    /// Administration: create, delete, rename tenants, their status, data and domains,
    /// registry reads, tenant roles. See [`Admin`].
    pub fn admin(&self) -> Admin<'_> {
        Admin { tenantry: self }
    }

    /// Migrations, templates and spare schemas. See [`Fleet`].
    pub fn fleet(&self) -> Fleet<'_> {
        Fleet { tenantry: self }
    }
}
