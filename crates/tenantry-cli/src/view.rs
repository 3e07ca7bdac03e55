//! A tenant as the CLI prints it in JSON (`tenant list --json`, `tenant show --json`, and the
//! reports of `tenant clone|export|import --json`).

use anyhow::Result;
use serde::Serialize;
use tenantry_sqlx::{Tenant, TenantStatus, Tenantry};

/// A tenant as printed by `list --json`, `show --json` and the data tools' reports.
#[derive(Debug, Serialize)]
pub(crate) struct TenantView {
    pub(crate) id: i64,
    pub(crate) schema: String,
    pub(crate) display_name: String,
    pub(crate) status: TenantStatus,
    #[serde(rename = "type")]
    pub(crate) tenant_type: String,
    pub(crate) primary_domain: Option<String>,
    /// Every domain, primary first.
    pub(crate) domains: Vec<String>,
    pub(crate) created_at: String,
    pub(crate) data: serde_json::Value,
    /// Citus: the node holding the schema (`None` outside Citus mode, or not distributed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
}

/// The tenant with its domains, for printing.
pub(crate) async fn view(t: &Tenantry, tenant: Tenant) -> Result<TenantView> {
    let domains = t
        .admin()
        .domains(&tenant.schema)
        .await?
        .into_iter()
        .map(|d| d.domain)
        .collect();
    let node = if t.is_citus() {
        t.placement()
            .tenant_node(&tenant.schema)
            .await?
            .map(|n| n.to_string())
    } else {
        None
    };
    Ok(TenantView {
        node,
        id: tenant.id,
        schema: tenant.schema,
        display_name: tenant.display_name,
        status: tenant.status,
        tenant_type: tenant.tenant_type,
        primary_domain: tenant.primary_domain,
        domains,
        created_at: tenant.created_at.to_rfc3339(),
        data: tenant.data,
    })
}
