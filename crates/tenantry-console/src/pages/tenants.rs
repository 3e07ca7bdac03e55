//! The tenants list (search, keyset pagination) and the create-a-tenant form.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_sqlx::{DEFAULT_TENANT_TYPE, MigrationState, NewTenant, TenantOverview, TenantQuery};

use super::layout::{self, Nav, size};
use super::{error_status, path_segment, status_badge};
use crate::config::Shared;
use crate::session::{CheckedForm, Operator, Session};

/// Tenants per page.
const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
}

/// `GET /`: the tenants, `?q=` searches, `?after=` pages.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Operator(session): Operator,
    Query(query): Query<ListQuery>,
) -> Response {
    let admin = shared.tenantry.admin();
    let page = admin
        .tenant_page(&TenantQuery {
            search: query.q.clone(),
            after: query.after.clone().filter(|a| !a.is_empty()),
            limit: PAGE + 1,
        })
        .await;
    let counts = admin.tenant_counts().await.unwrap_or_default();
    let mut rows = match page {
        Ok(rows) => rows,
        Err(e) => {
            return layout::message_page(
                &shared,
                error_status(&e),
                "Tenants unavailable",
                &e.to_string(),
            );
        }
    };
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let next = more
        .then(|| rows.last().map(|r| r.tenant.schema.clone()))
        .flatten();
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let body = html! {
        div.heading {
            h1 { "Tenants" }
            p.muted {
                (total) " in all"
                @for (status, n) in &counts { " · " (n) " " (status.as_str()) }
            }
            a.button href=(shared.link("/tenants/new")) { "New tenant" }
        }
        form.search method="get" action=(shared.link("/")) {
            input type="search" name="q" value=(query.q) placeholder="Name, display name or domain" aria-label="Search";
            button type="submit" { "Search" }
            @if !query.q.is_empty() { a href=(shared.link("/")) { "Clear" } }
        }
        (table(&shared, &rows))
        nav.pager {
            @if query.after.as_deref().is_some_and(|a| !a.is_empty()) {
                a href=(shared.link(&format!("/?q={}", enc(&query.q)))) { "« First page" }
            }
            @if let Some(next) = next {
                a rel="next" href=(shared.link(&format!("/?q={}&after={}", enc(&query.q), enc(&next)))) { "Next page »" }
            }
        }
    };
    layout::ok(layout::page(
        &shared,
        Some(&session.csrf),
        Nav::Tenants,
        "Tenants",
        body,
    ))
}

/// A query-string value, percent-encoded.
fn enc(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

fn table(shared: &Shared, rows: &[TenantOverview]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No tenant matches." }
        } @else {
            table.tenants {
                thead { tr {
                    th { "Tenant" } th { "Status" } th { "Type" } th { "Primary domain" }
                    th { "Created" } th.num { "Schema size" } th { "Migrations" }
                } }
                tbody {
                    @for row in rows {
                        @let t = &row.tenant;
                        tr {
                            td {
                                a href=(shared.link(&format!("/tenants/{}", path_segment(&t.schema)))) { strong { (t.schema) } }
                                @if t.display_name != t.schema { br; span.muted { (t.display_name) } }
                            }
                            td { (status_badge(t.status)) }
                            td { (t.tenant_type) }
                            td { (t.primary_domain.as_deref().unwrap_or("–")) }
                            td { time datetime=(t.created_at.to_rfc3339()) { (t.created_at.format("%Y-%m-%d")) } }
                            td.num { (size(row.schema_bytes)) }
                            td { (migration(row)) }
                        }
                    }
                }
            }
        }
    }
}

/// A tenant's migration state as a badge.
pub(crate) fn migration(row: &TenantOverview) -> Markup {
    let version = row
        .ledger_version
        .map(|v| format!(" (v{v})"))
        .unwrap_or_default();
    match row.migration {
        MigrationState::UpToDate => html! { span.badge.ok { "up to date" } (version) },
        MigrationState::Pending(n) => html! { span.badge.warn { (n) " pending" } (version) },
        MigrationState::Unknown => html! { span.badge.muted { "not recorded" } },
    }
}

/// `GET /tenants/new`.
pub(crate) async fn new_form(
    State(shared): State<Arc<Shared>>,
    Operator(session): Operator,
) -> Response {
    layout::ok(create_page(
        &shared,
        &session,
        &NewTenantForm::default(),
        None,
    ))
}

fn create_page(
    shared: &Shared,
    session: &Session,
    form: &NewTenantForm,
    error: Option<&str>,
) -> Markup {
    // The default type first, and chosen unless the form says otherwise.
    let mut types: Vec<&str> = shared.tenantry.tenant_types().collect();
    types.sort_by_key(|t| (*t != DEFAULT_TENANT_TYPE, *t));
    let chosen = match form.tenant_type.as_str() {
        "" => DEFAULT_TENANT_TYPE,
        ty => ty,
    };
    let body = html! {
        section.card {
            h1 { "New tenant" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action=(shared.link("/tenants")) {
                (layout::csrf(&session.csrf))
                label { "Name (schema)" input name="name" value=(form.name) required pattern="[a-z_][a-z0-9_]{0,62}" title="lowercase letters, digits and _, not starting with a digit"; }
                label { "Primary domain" input name="domain" value=(form.domain) required placeholder="acme.example.com"; }
                label { "Display name" input name="display_name" value=(form.display_name) placeholder="Acme Corp"; }
                label { "Type"
                    select name="tenant_type" {
                        @for ty in &types { option value=(ty) selected[*ty == chosen] { (ty) } }
                    }
                }
                button type="submit" { "Create tenant" }
            }
        }
    };
    layout::page(
        shared,
        Some(&session.csrf),
        Nav::NewTenant,
        "New tenant",
        body,
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct NewTenantForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    tenant_type: String,
}

/// `POST /tenants`: creates a tenant through `admin().create_tenant` (hooks, roles, template).
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    CheckedForm(session, form): CheckedForm<NewTenantForm>,
) -> Response {
    let name = form.name.trim();
    let mut new = NewTenant::new(name, form.domain.trim());
    if !form.display_name.trim().is_empty() {
        new = new.display_name(form.display_name.trim());
    }
    if !form.tenant_type.is_empty() {
        new = new.tenant_type(&form.tenant_type);
    }
    match shared.tenantry.admin().create_tenant(new).await {
        Ok(tenant) => {
            tracing::info!(target: "tenantry::console", action = "create", tenant = %tenant.schema, id = tenant.id, "tenant created");
            Redirect::to(&shared.link(&format!("/tenants/{}", path_segment(&tenant.schema))))
                .into_response()
        }
        Err(e) => {
            let status = error_status(&e);
            let text = if status.is_server_error() {
                tracing::error!(target: "tenantry::console", error = %e, "create failed");
                "The tenant could not be created (see the server log).".to_owned()
            } else {
                e.to_string()
            };
            let status = if status == StatusCode::NOT_FOUND {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                status
            };
            (
                status,
                Html(create_page(&shared, &session, &form, Some(&text)).into_string()),
            )
                .into_response()
        }
    }
}
