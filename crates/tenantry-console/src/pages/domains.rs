//! A tenant's domains: add, remove, make primary (the library refuses a domain that is taken,
//! public or malformed, and the removal of the primary domain).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{action_failed, to_tenant};
use crate::config::Shared;
use crate::session::CheckedForm;

#[derive(Deserialize)]
pub(crate) struct DomainForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    primary: bool,
}

/// `POST /tenants/{name}/domains`: form `domain`, `primary`.
pub(crate) async fn add(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(_, form): CheckedForm<DomainForm>,
) -> Response {
    let domain = form.domain.trim();
    match shared
        .tenantry
        .admin()
        .add_domain(&name, domain, form.primary)
        .await
    {
        Ok(()) => {
            tracing::info!(target: "tenantry::console", action = "add_domain", tenant = %name, domain, primary = form.primary, "domain added");
            to_tenant(&shared, &name)
        }
        Err(e) => action_failed(&shared, "add the domain", &e),
    }
}

/// The domain must be one of this tenant's (the library's calls take a domain alone).
async fn owned(shared: &Shared, name: &str, domain: &str) -> Result<(), tenantry_sqlx::Error> {
    let domains = shared.tenantry.admin().domains(name).await?;
    if domains.iter().any(|d| d.domain == domain) {
        Ok(())
    } else {
        Err(tenantry_sqlx::Error::DomainNotFound {
            domain: domain.to_owned(),
        })
    }
}

/// `POST /tenants/{name}/domains/remove`: form `domain`.
pub(crate) async fn remove(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(_, form): CheckedForm<DomainForm>,
) -> Response {
    let domain = form.domain.trim();
    let done = match owned(&shared, &name, domain).await {
        Ok(()) => shared.tenantry.admin().remove_domain(domain).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => {
            tracing::info!(target: "tenantry::console", action = "remove_domain", tenant = %name, domain, "domain removed");
            to_tenant(&shared, &name)
        }
        Err(e) => action_failed(&shared, "remove the domain", &e),
    }
}

/// `POST /tenants/{name}/domains/primary`: form `domain`.
pub(crate) async fn make_primary(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(_, form): CheckedForm<DomainForm>,
) -> Response {
    let domain = form.domain.trim();
    let done = match owned(&shared, &name, domain).await {
        Ok(()) => shared.tenantry.admin().set_primary_domain(domain).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => {
            tracing::info!(target: "tenantry::console", action = "set_primary_domain", tenant = %name, domain, "primary domain set");
            to_tenant(&shared, &name)
        }
        Err(e) => action_failed(&shared, "make the domain primary", &e),
    }
}
