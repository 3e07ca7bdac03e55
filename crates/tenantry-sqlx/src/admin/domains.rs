//! A tenant's domains: add, remove, choose the primary one. Each change is one transaction and
//! empties the resolution caches (here at once, elsewhere through the registry's notification).

use sqlx::AssertSqlSafe;
use tenantry_core::{DomainName, normalize_host};

use super::audit::audit;
use super::lookup::fetch_tenant;
use crate::error::{Error, Result, conflict_or, domain_taken};
use crate::groups::Admin;
use crate::handle::Tenantry;
use crate::request::begin::begin_shielded;

impl Tenantry {
    /// Normalises and validates a domain given by a user.
    pub(crate) fn clean_domain(&self, raw: &str) -> Result<DomainName> {
        let host = DomainName::new(self.normalize_domain(raw)?)?;
        if self.config().public_domains.iter().any(|d| *d == *host) {
            return Err(Error::DomainIsPublic {
                domain: host.into_string(),
            });
        }
        Ok(host)
    }

    /// Normalises a domain given by a user as a `Host` would be (lookup key form).
    pub(crate) fn normalize_domain(&self, raw: &str) -> Result<String> {
        normalize_host(raw, self.config().host_policy).map_err(|reason| Error::InvalidDomain {
            domain: raw.to_owned(),
            reason,
        })
    }
}

impl Admin<'_> {
    /// Adds a domain to a tenant; with `primary`, it becomes the primary one.
    pub async fn add_domain(self, schema: &str, domain: &str, primary: bool) -> Result<()> {
        let domain = self.tenantry.clean_domain(domain)?;
        let sql = &self.tenantry.inner.sql;
        let mut tx = begin_shielded(&self.tenantry.inner.pool, "BEGIN".to_owned()).await?;
        let tenant = fetch_tenant(&mut tx, self.tenantry, schema).await?;
        if primary {
            sqlx::query(AssertSqlSafe(sql.stmt(
                "UPDATE {domains} SET is_primary = FALSE WHERE tenant_id = $1 AND is_primary",
            )))
            .bind(tenant.id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(AssertSqlSafe(sql.stmt(
            "INSERT INTO {domains} (domain, tenant_id, is_primary) VALUES ($1, $2, $3)",
        )))
        .bind(domain.as_str())
        .bind(tenant.id)
        .bind(primary || tenant.primary_domain.is_none())
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || domain_taken(&domain)))?;
        tx.commit().await?;
        audit("add_domain", schema, domain.as_str(), None);
        self.tenantry.invalidate_cache();
        Ok(())
    }

    /// Removes a domain. The primary domain can only be removed when it is the tenant's last
    /// one... which is refused too: set another primary first, or delete the tenant.
    pub async fn remove_domain(self, domain: &str) -> Result<()> {
        let domain = self.tenantry.normalize_domain(domain)?;
        let sql = &self.tenantry.inner.sql;
        let mut tx = begin_shielded(&self.tenantry.inner.pool, "BEGIN".to_owned()).await?;
        let row: Option<(bool, i64)> = sqlx::query_as(AssertSqlSafe(
            sql.stmt("SELECT is_primary, tenant_id FROM {domains} WHERE domain = $1 FOR UPDATE"),
        ))
        .bind(&domain)
        .fetch_optional(&mut *tx)
        .await?;
        // Requests that came in on this domain finish before it goes (it may be added to another
        // tenant next).
        if let Some((_, tenant_id)) = row {
            self.tenantry
                .lock_tenant_id(&mut tx, tenant_id, &domain)
                .await?;
        }
        let owner = row.map(|(_, id)| format!("#{id}")).unwrap_or_default();
        match row.map(|(primary, _)| primary) {
            None => return Err(Error::DomainNotFound { domain }),
            Some(true) => return Err(Error::PrimaryDomainRemoval { domain }),
            Some(false) => {}
        }
        sqlx::query(AssertSqlSafe(
            sql.stmt("DELETE FROM {domains} WHERE domain = $1"),
        ))
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        audit("remove_domain", &owner, &domain, None);
        self.tenantry.invalidate_cache();
        Ok(())
    }

    /// Makes `domain` its tenant's primary domain.
    pub async fn set_primary_domain(self, domain: &str) -> Result<()> {
        let domain = self.tenantry.normalize_domain(domain)?;
        let sql = &self.tenantry.inner.sql;
        let mut tx = begin_shielded(&self.tenantry.inner.pool, "BEGIN".to_owned()).await?;
        let tenant_id: Option<i64> = sqlx::query_scalar(AssertSqlSafe(
            sql.stmt("SELECT tenant_id FROM {domains} WHERE domain = $1 FOR UPDATE"),
        ))
        .bind(&domain)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tenant_id) = tenant_id else {
            return Err(Error::DomainNotFound { domain });
        };
        // Two statements: the partial unique index is checked row by row, so the old primary
        // must be cleared before the new one is set.
        sqlx::query(AssertSqlSafe(sql.stmt("UPDATE {domains} SET is_primary = FALSE WHERE tenant_id = $1 AND is_primary AND domain <> $2")))
        .bind(tenant_id)
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(
            sql.stmt("UPDATE {domains} SET is_primary = TRUE WHERE domain = $1"),
        ))
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        audit(
            "set_primary_domain",
            &format!("#{tenant_id}"),
            &domain,
            None,
        );
        self.tenantry.invalidate_cache();
        Ok(())
    }
}
