//! `tenantry tenant ...` and `tenantry domain ...`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use tenantry_sqlx::{NewTenant, SchemaOnDelete, TenantStatus, Tenantry};

use crate::cli::{DomainCommand, TenantCommand};
use crate::output::{outln, print_table};
use crate::view::{TenantView, view};

/// The tenant that `tenant create` and `tenant adopt` describe: `data` is JSON text.
fn new_tenant(
    name: &str,
    domain: &str,
    display_name: &Option<String>,
    tenant_type: &Option<String>,
    data: &Option<String>,
) -> Result<NewTenant> {
    let mut new = NewTenant::new(name, domain);
    new.display_name = display_name.clone();
    new.tenant_type = tenant_type.clone();
    if let Some(data) = data {
        new.data = serde_json::from_str(data).context("--data is not valid JSON")?;
    }
    Ok(new)
}

/// Runs a `tenant` subcommand.
pub(crate) async fn tenant(t: &Tenantry, cmd: &TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Create {
            name,
            domain,
            display_name,
            tenant_type,
            data,
        } => {
            let new = new_tenant(name, domain, display_name, tenant_type, data)?;
            let tenant = t.admin().create_tenant(new).await?;
            outln!(
                "created tenant {} (type {}, domain {})",
                tenant.schema,
                tenant.tenant_type,
                tenant.primary_domain.as_deref().unwrap_or("-")
            );
        }
        TenantCommand::List { json } => {
            let tenants = t.admin().tenants().await?;
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
            let v = view(t, t.admin().tenant(name).await?).await?;
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
                if t.is_citus() {
                    let node = v.node.as_deref().unwrap_or("coordinator (not distributed)");
                    outln!("node:           {node}");
                }
            }
        }
        TenantCommand::Delete {
            name,
            keep_schema,
            yes,
        } => {
            // An unknown tenant fails before anything is asked.
            let tenant = t.admin().tenant(name).await?;
            if !*yes {
                let served_at = tenant.primary_domain.as_deref().unwrap_or("no domain");
                let (action, question) = if *keep_schema {
                    (
                        format!("delete tenant {name}"),
                        format!(
                            "Delete tenant {name} ({served_at})? It will no longer be served; schema {name} and its data are kept."
                        ),
                    )
                } else {
                    (
                        format!("delete tenant {name} and drop its schema with all its data"),
                        format!(
                            "Delete tenant {name} ({served_at}) and drop schema {name} with all its data? This cannot be undone."
                        ),
                    )
                };
                confirm_on_terminal(&action, &question)?;
            }
            let on_delete = if *keep_schema {
                SchemaOnDelete::Keep
            } else {
                SchemaOnDelete::Drop
            };
            t.admin().delete_tenant(name, on_delete).await?;
            if *keep_schema {
                outln!("deleted tenant {name} (schema {name} kept)");
            } else {
                outln!("deleted tenant {name} and dropped schema {name}");
            }
        }
        TenantCommand::Adopt {
            name,
            domain,
            display_name,
            tenant_type,
            data,
        } => {
            let new = new_tenant(name, domain, display_name, tenant_type, data)?;
            let adopted = t.admin().adopt_tenant(new).await?;
            let applied = if adopted.applied.is_empty() {
                "its migrations were up to date".to_owned()
            } else {
                format!(
                    "applied pending migration(s) [{}]",
                    adopted
                        .applied
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            outln!(
                "adopted schema {} as a tenant (type {}, domain {}); {applied}",
                adopted.tenant.schema,
                adopted.tenant.tenant_type,
                adopted.tenant.primary_domain.as_deref().unwrap_or("-")
            );
        }
        TenantCommand::Clone { .. }
        | TenantCommand::Export { .. }
        | TenantCommand::Import { .. } => crate::transfer::run(t, cmd).await?,
        TenantCommand::Rename { old, new } => {
            t.admin().rename_tenant(old, new).await?;
            outln!("renamed tenant {old} to {new}");
        }
        TenantCommand::Suspend { name } => status(t, name, TenantStatus::Suspended).await?,
        TenantCommand::Maintenance { name } => status(t, name, TenantStatus::Maintenance).await?,
        TenantCommand::Resume { name } => status(t, name, TenantStatus::Active).await?,
        TenantCommand::Move { name, to, json } => {
            crate::nodes::move_tenant(t, name, &to.0, to.1, *json).await?;
        }
    }
    Ok(())
}

async fn status(t: &Tenantry, name: &str, status: TenantStatus) -> Result<()> {
    t.admin().set_status(name, status).await?;
    let state = match status {
        TenantStatus::Maintenance => "in maintenance",
        other => other.as_str(),
    };
    outln!("tenant {name} is now {state}");
    Ok(())
}

/// Runs a `domain` subcommand.
pub(crate) async fn domain(t: &Tenantry, cmd: &DomainCommand) -> Result<()> {
    match cmd {
        DomainCommand::Add {
            name,
            host,
            primary,
        } => {
            t.admin().add_domain(name, host, *primary).await?;
            outln!(
                "added domain {host} to tenant {name}{}",
                if *primary { " (primary)" } else { "" }
            );
        }
        DomainCommand::Remove { host } => {
            t.admin().remove_domain(host).await?;
            outln!("removed domain {host}");
        }
        DomainCommand::SetPrimary { host } => {
            t.admin().set_primary_domain(host).await?;
            outln!("{host} is now its tenant's primary domain");
        }
        DomainCommand::List { name, json } => {
            // Distinguish "no such tenant" from "no domains".
            t.admin().tenant(name).await?;
            let domains = t.admin().domains(name).await?;
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

/// Asks `question` on the terminal and fails unless the answer is yes. Without a terminal
/// (scripts, CI) there is no one to ask: fails, naming `--yes`. `action` completes
/// "refusing to ...".
fn confirm_on_terminal(action: &str, question: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to {action} without confirmation: pass --yes (stdin is not a terminal, so there is no one to ask)"
        );
    }
    if !confirm(question, &mut stdin.lock(), &mut std::io::stderr())? {
        bail!("not confirmed: nothing was changed");
    }
    Ok(())
}

/// Writes `question [y/N] ` to `out` and reads one line of `input`: true for `y` or `yes`.
fn confirm(
    question: &str,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> std::io::Result<bool> {
    write!(out, "{question} [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::confirm;

    #[test]
    fn only_yes_confirms() {
        let ask = |answer: &str| {
            let mut out = Vec::new();
            let yes = confirm("Drop it?", &mut answer.as_bytes(), &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), "Drop it? [y/N] ");
            yes
        };
        for yes in ["y\n", "Y\n", "yes\n", " YES \n", "y"] {
            assert!(ask(yes), "{yes:?}");
        }
        // Anything else, an empty line and end of input (Ctrl-D) are a no.
        for no in ["n\n", "\n", "", "yep\n", "no\n"] {
            assert!(!ask(no), "{no:?}");
        }
    }
}
