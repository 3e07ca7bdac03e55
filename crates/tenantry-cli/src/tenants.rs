//! `tenantry tenant ...` and `tenantry domain ...`.

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tenantry::{NewTenant, SchemaOnDelete, Tenant, TenantStatus, Tenantry};

use crate::cli::{DomainCommand, TenantCommand};
use crate::output::{outln, print_table};

/// A tenant as printed by `list --json` and `show --json`.
#[derive(Debug, Serialize)]
struct TenantView {
    id: i64,
    schema: String,
    display_name: String,
    status: TenantStatus,
    #[serde(rename = "type")]
    tenant_type: String,
    primary_domain: Option<String>,
    /// Every domain, primary first.
    domains: Vec<String>,
    created_at: String,
    data: serde_json::Value,
}

async fn view(t: &Tenantry, tenant: Tenant) -> Result<TenantView> {
    let domains = t
        .domains(&tenant.schema)
        .await?
        .into_iter()
        .map(|d| d.domain)
        .collect();
    Ok(TenantView {
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

/// Runs a `tenant` subcommand.
pub async fn tenant(t: &Tenantry, cmd: &TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Create {
            name,
            domain,
            display_name,
            tenant_type,
            data,
        } => {
            let mut new = NewTenant::new(name.clone(), domain.clone());
            new.display_name = display_name.clone();
            new.tenant_type = tenant_type.clone();
            if let Some(data) = data {
                new.data = serde_json::from_str(data).context("--data is not valid JSON")?;
            }
            let tenant = t.create_tenant(new).await?;
            outln!(
                "created tenant {} (type {}, domain {})",
                tenant.schema,
                tenant.tenant_type,
                tenant.primary_domain.as_deref().unwrap_or("-")
            );
        }
        TenantCommand::List { json } => {
            let tenants = t.tenants().await?;
            if *json {
                let views: Vec<TenantView> = futures::stream::iter(tenants)
                    .map(|tenant| view(t, tenant))
                    .buffered(4)
                    .try_collect()
                    .await?;
                outln!("{}", serde_json::to_string_pretty(&views)?);
            } else if tenants.is_empty() {
                outln!("no tenants");
            } else {
                let rows: Vec<[String; 5]> = tenants
                    .into_iter()
                    .map(|t| {
                        [
                            t.schema,
                            t.status.to_string(),
                            t.tenant_type,
                            t.primary_domain.unwrap_or_else(|| "-".into()),
                            t.display_name,
                        ]
                    })
                    .collect();
                print_table(
                    &["SCHEMA", "STATUS", "TYPE", "PRIMARY DOMAIN", "DISPLAY NAME"],
                    &rows,
                );
            }
        }
        TenantCommand::Show { name, json } => {
            let v = view(t, t.tenant(name).await?).await?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("schema:         {}", v.schema);
                outln!("display name:   {}", v.display_name);
                outln!("status:         {}", v.status);
                outln!("type:           {}", v.tenant_type);
                outln!(
                    "primary domain: {}",
                    v.primary_domain.as_deref().unwrap_or("-")
                );
                outln!("domains:        {}", v.domains.join(", "));
                outln!("created at:     {}", v.created_at);
                outln!("data:           {}", v.data);
            }
        }
        TenantCommand::Delete { name, keep_schema } => {
            let on_delete = if *keep_schema {
                SchemaOnDelete::Keep
            } else {
                SchemaOnDelete::Drop
            };
            t.delete_tenant(name, on_delete).await?;
            if *keep_schema {
                outln!("deleted tenant {name} (schema {name} kept)");
            } else {
                outln!("deleted tenant {name} and dropped schema {name}");
            }
        }
        TenantCommand::Rename { old, new } => {
            t.rename_tenant(old, new).await?;
            outln!("renamed tenant {old} to {new}");
        }
        TenantCommand::Suspend { name } => status(t, name, TenantStatus::Suspended).await?,
        TenantCommand::Maintenance { name } => status(t, name, TenantStatus::Maintenance).await?,
        TenantCommand::Resume { name } => status(t, name, TenantStatus::Active).await?,
    }
    Ok(())
}

async fn status(t: &Tenantry, name: &str, status: TenantStatus) -> Result<()> {
    t.set_status(name, status).await?;
    let state = match status {
        TenantStatus::Maintenance => "in maintenance",
        other => other.as_str(),
    };
    outln!("tenant {name} is now {state}");
    Ok(())
}

/// Runs a `domain` subcommand.
pub async fn domain(t: &Tenantry, cmd: &DomainCommand) -> Result<()> {
    match cmd {
        DomainCommand::Add {
            name,
            host,
            primary,
        } => {
            t.add_domain(name, host, *primary).await?;
            outln!(
                "added domain {host} to tenant {name}{}",
                if *primary { " (primary)" } else { "" }
            );
        }
        DomainCommand::Remove { host } => {
            t.remove_domain(host).await?;
            outln!("removed domain {host}");
        }
        DomainCommand::SetPrimary { host } => {
            t.set_primary_domain(host).await?;
            outln!("{host} is now its tenant's primary domain");
        }
        DomainCommand::List { name, json } => {
            // Distinguish "no such tenant" from "no domains".
            t.tenant(name).await?;
            let domains = t.domains(name).await?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&domains)?);
            } else {
                for d in domains {
                    if d.is_primary {
                        outln!("{} (primary)", d.domain);
                    } else {
                        outln!("{}", d.domain);
                    }
                }
            }
        }
    }
    Ok(())
}
