//! Fresh tenants for tests, served from spare schemas.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tenantry_sqlx::{NewTenant, Result, Tenant, Tenantry};

/// Hands out fresh tenants on one [`Tenantry`] handle: unique schema names
/// (`<prefix>_<n>`) at `<prefix>-<n>.test`, created with the library's own
/// [`tenantry_sqlx::Admin::create_tenant`] (hooks, roles and tenant types apply as in the application).
///
/// [`TestTenants::with_spares`] pre-creates spare schemas with [`tenantry_sqlx::Fleet::fill_spares`]; a
/// creation then renames a spare instead of building the schema's tables and indexes. On
/// PostgreSQL 15 (2 shared cores, `fsync` on, the one-table `notes` schema, debug build) a
/// tenant took 24-31 ms without spares and 7-11 ms with one, and filling 8 spares took about
/// 200 ms (three runs of `cargo test -p tenantry-testing --test fresh_tenants -- --nocapture`,
/// which prints the figures). The gain grows with the number of tables and indexes: each
/// costs a file sync when it is built. Fill spares where the wait doesn't matter (a shared
/// set-up), and create tenants in the tests.
///
/// ```no_run
/// # async fn example() {
/// use tenantry::Tenantry;
/// use tenantry_testing::{TestDb, TestTenants, notes_migrations};
///
/// let db = TestDb::new().await;
/// let app = db
///     .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
///     .await;
/// let tenants = TestTenants::new(&app).with_spares(4).await.unwrap();
/// let acme = tenants.create().await.unwrap();
/// assert!(acme.domain.ends_with(".test"));
/// # }
/// ```
#[derive(Debug)]
pub struct TestTenants {
    tenantry: Tenantry,
    tenant_type: String,
    prefix: String,
    next: AtomicU64,
}

/// A tenant made by [`TestTenants::create`].
#[derive(Debug, Clone)]
pub struct TestTenant {
    /// The registry record (schema, id, type, ...), shared as [`Tenantry::begin`] takes it.
    pub tenant: Arc<Tenant>,
    /// Its primary domain: send it as the `Host` header to reach the tenant.
    pub domain: String,
}

impl TestTenants {
    /// Tenants of the default type on `tenantry`, named `t_<n>` at `t-<n>.test`.
    pub fn new(tenantry: &Tenantry) -> Self {
        Self {
            tenantry: tenantry.clone(),
            tenant_type: tenantry_sqlx::DEFAULT_TENANT_TYPE.to_owned(),
            prefix: "t".to_owned(),
            next: AtomicU64::new(1),
        }
    }

    /// Creates tenants of `tenant_type` instead (it needs a migration set on the handle).
    pub fn tenant_type(mut self, tenant_type: impl Into<String>) -> Self {
        self.tenant_type = tenant_type.into();
        self
    }

    /// Names tenants `<prefix>_<n>` at `<prefix>-<n>.test` (the prefix must start a valid
    /// schema name: lowercase letters, digits, underscores). Use distinct prefixes for two
    /// `TestTenants` on the same database.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Makes sure `count` spare schemas of the tenant type wait to be claimed (see
    /// [`tenantry_sqlx::Fleet::fill_spares`]); creations beyond them build their schema as usual.
    ///
    /// # Errors
    ///
    /// Those of [`tenantry_sqlx::Fleet::fill_spares`] (e.g. a template that can't be cloned).
    pub async fn with_spares(self, count: usize) -> Result<Self> {
        self.tenantry
            .fleet()
            .fill_spares(&self.tenant_type, count)
            .await?;
        Ok(self)
    }

    /// Creates the next tenant: a spare schema renamed when one is left, otherwise a clone of
    /// the type's template.
    ///
    /// # Errors
    ///
    /// Those of [`tenantry_sqlx::Admin::create_tenant`].
    pub async fn create(&self) -> Result<TestTenant> {
        self.create_with(|new| new).await
    }

    /// Like [`TestTenants::create`], letting `customize` set the display name, data or
    /// provisioning of the [`NewTenant`] (its schema and domain are chosen here).
    ///
    /// # Errors
    ///
    /// Those of [`tenantry_sqlx::Admin::create_tenant`].
    pub async fn create_with(
        &self,
        customize: impl FnOnce(NewTenant) -> NewTenant,
    ) -> Result<TestTenant> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let schema = format!("{}_{n}", self.prefix);
        let domain = format!("{}-{n}.test", self.prefix.replace('_', "-"));
        let new = customize(NewTenant::new(&schema, &domain).tenant_type(&self.tenant_type));
        let tenant = self.tenantry.admin().create_tenant(new).await?;
        Ok(TestTenant {
            tenant: Arc::new(tenant),
            domain,
        })
    }

    /// Spare schemas waiting to be claimed (of every tenant type).
    ///
    /// # Errors
    ///
    /// When the registry can't be read.
    pub async fn spares_left(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, 'tenantry_spare_')",
        )
        .fetch_one(self.tenantry.raw_pool())
        .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
