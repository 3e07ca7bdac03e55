//! One tenant: its record, domains, status, application data, rename and delete (its data
//! tools are in `tools.rs`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use tenantry_sqlx::{SchemaOnDelete, TenantStatus};

use super::layout::{self, Nav, size};
use super::tenants::migration;
use super::tools_section::Attempt;
use super::{action_failed, path_segment, status_badge, to_tenant};
use crate::config::Shared;
use crate::session::{CheckedForm, Operator, Session};

/// `GET /tenants/{name}` (`?done=` after a clone or an import: see [`Done`]).
pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    Operator(session): Operator,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let notice = done.text();
    render(
        &shared,
        &session,
        &name,
        notice.as_deref(),
        &Attempt::default(),
        StatusCode::OK,
    )
    .await
}

/// What a clone or an import that just made this tenant says on its page (query string of
/// the redirect; only these fixed sentences are shown, with a schema name and a count).
#[derive(Deserialize, Default)]
pub(crate) struct Done {
    done: Option<String>,
    from: Option<String>,
    rows: Option<u64>,
}

impl Done {
    /// The notice, if the query names a known one.
    fn text(&self) -> Option<String> {
        let rows = self.rows.unwrap_or(0);
        match self.done.as_deref()? {
            "cloned" => {
                // Only a schema name is echoed (a link can't put other words on the page).
                let from = self.from.as_deref().filter(|f| {
                    !f.is_empty()
                        && f.len() <= 63
                        && f.bytes()
                            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
                })?;
                Some(format!(
                    "Created as a copy of {from}: {rows} row(s) copied."
                ))
            }
            "imported" => Some(format!(
                "Created from the uploaded archive: {rows} row(s) imported."
            )),
            _ => None,
        }
    }
}

/// `name`'s page with `status`: `notice` above it, `attempt` (a data tool's form that
/// failed, with the reason) in its tools section.
pub(crate) async fn render(
    shared: &Shared,
    session: &Session,
    name: &str,
    notice: Option<&str>,
    attempt: &Attempt,
    status: StatusCode,
) -> Response {
    let admin = shared.tenantry.admin();
    let row = match admin.tenant_overview(name).await {
        Ok(row) => row,
        Err(e) => return action_failed(shared, "show this tenant", &e),
    };
    let domains = match admin.domains(name).await {
        Ok(d) => d,
        Err(e) => return action_failed(shared, "read its domains", &e),
    };
    let t = &row.tenant;
    let base = format!("/tenants/{}", path_segment(&t.schema));
    let action = |what: &str| shared.link(&format!("{base}/{what}"));
    let data = serde_json::to_string_pretty(&t.data).unwrap_or_else(|_| "{}".into());
    let body = html! {
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        div.heading {
            h1 { (t.display_name) " " span.muted { "(" (t.schema) ")" } }
            (status_badge(t.status))
            @if let Some(domain) = &t.primary_domain {
                a.button.secondary href=((shared.site_url)(domain)) target="_blank" rel="noopener" { "Open its site ↗" }
            }
        }
        dl.facts {
            dt { "Id" } dd { (t.id) }
            dt { "Type" } dd { (t.tenant_type) }
            dt { "Created" } dd { (t.created_at.format("%Y-%m-%d %H:%M UTC")) }
            dt { "Schema size" } dd { (size(row.schema_bytes)) }
            dt { "Migrations" } dd { (migration(&row)) }
        }
        div.grid {
            section.card {
                h2 { "Domains" }
                table.domains {
                    @for d in &domains {
                        tr {
                            td { (d.domain) @if d.is_primary { " " span.badge.ok { "primary" } } }
                            td.actions {
                                @if !d.is_primary {
                                    form.inline method="post" action=(action("domains/primary")) {
                                        (layout::csrf(&session.csrf))
                                        input type="hidden" name="domain" value=(d.domain);
                                        button.small type="submit" { "Make primary" }
                                    }
                                    form.inline method="post" action=(action("domains/remove")) {
                                        (layout::csrf(&session.csrf))
                                        input type="hidden" name="domain" value=(d.domain);
                                        button.small.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action=(action("domains")) {
                    (layout::csrf(&session.csrf))
                    label { "Add a domain" input name="domain" required placeholder="acme.example.com"; }
                    label.check { input type="checkbox" name="primary" value="true"; " make it the primary domain" }
                    button type="submit" { "Add domain" }
                }
            }
            section.card {
                h2 { "Status" }
                p.muted { "Suspended sites answer 403; in maintenance, 503 with Retry-After." }
                form method="post" action=(action("status")) {
                    (layout::csrf(&session.csrf))
                    label { "Status"
                        select name="status" {
                            @for s in [TenantStatus::Active, TenantStatus::Suspended, TenantStatus::Maintenance] {
                                option value=(s.as_str()) selected[s == t.status] { (s.as_str()) }
                            }
                        }
                    }
                    button type="submit" { "Set status" }
                }
            }
            section.card {
                h2 { "Application data" }
                form method="post" action=(action("data")) {
                    (layout::csrf(&session.csrf))
                    label { "JSON object" textarea name="data" rows="6" spellcheck="false" { (data) } }
                    button type="submit" { "Save data" }
                }
            }
            section.card {
                h2 { "Rename" }
                p.muted { "Renames the schema; domains stay." }
                form method="post" action=(action("rename")) {
                    (layout::csrf(&session.csrf))
                    label { "New name" input name="new_name" required pattern="[a-z_][a-z0-9_]{0,62}"; }
                    button type="submit" { "Rename" }
                }
            }
            (super::tools_section::tenant_tools(shared, session, t, attempt))
            section.card.danger-zone {
                h2 { "Delete" }
                p { "Deletes the tenant, its domains and (unless kept) its schema with all its data." }
                form method="post" action=(action("delete")) {
                    (layout::csrf(&session.csrf))
                    label { "Type " code { (t.schema) } " to confirm" input name="confirm" required autocomplete="off"; }
                    label.check { input type="checkbox" name="keep_schema" value="true"; " keep the schema (it can be adopted again)" }
                    button.danger type="submit" { "Delete tenant" }
                }
            }
        }
    };
    let page = layout::page(shared, Some(&session.csrf), Nav::Tenants, &t.schema, body);
    (status, Html(page.into_string())).into_response()
}

#[derive(Deserialize)]
pub(crate) struct StatusForm {
    status: String,
}

/// `POST /tenants/{name}/status`.
pub(crate) async fn set_status(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(_, form): CheckedForm<StatusForm>,
) -> Response {
    let Ok(status) = form.status.parse::<TenantStatus>() else {
        return layout::message_page(
            &shared,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Could not set the status",
            "The status must be active, suspended or maintenance.",
        );
    };
    match shared.tenantry.admin().set_status(&name, status).await {
        Ok(()) => {
            tracing::info!(target: "tenantry::console", action = "set_status", tenant = %name, status = status.as_str(), "status set");
            to_tenant(&shared, &name)
        }
        Err(e) => action_failed(&shared, "set the status", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct DataForm {
    data: String,
}

/// `POST /tenants/{name}/data`: a JSON object, checked before anything is written.
pub(crate) async fn set_data(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(_, form): CheckedForm<DataForm>,
) -> Response {
    let value: serde_json::Value = match serde_json::from_str(&form.data) {
        Ok(v) => v,
        Err(e) => {
            return layout::message_page(
                &shared,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Could not save the data",
                &format!("That is not valid JSON: {e}. Nothing was changed."),
            );
        }
    };
    match shared.tenantry.admin().set_data(&name, &value).await {
        Ok(()) => {
            tracing::info!(target: "tenantry::console", action = "set_data", tenant = %name, "data saved");
            to_tenant(&shared, &name)
        }
        Err(e) => action_failed(&shared, "save the data", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct RenameForm {
    new_name: String,
}

/// `POST /tenants/{name}/rename`.
pub(crate) async fn rename(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(_, form): CheckedForm<RenameForm>,
) -> Response {
    let new_name = form.new_name.trim();
    match shared.tenantry.admin().rename_tenant(&name, new_name).await {
        Ok(renamed) => {
            tracing::info!(target: "tenantry::console", action = "rename", tenant = %name, new_name = %renamed.schema, "tenant renamed");
            to_tenant(&shared, &renamed.schema)
        }
        Err(e) => action_failed(&shared, "rename the tenant", &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    keep_schema: bool,
}

/// `POST /tenants/{name}/delete`: only when `confirm` is the tenant's name.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(_, form): CheckedForm<DeleteForm>,
) -> Response {
    if form.confirm.trim() != name {
        return layout::message_page(
            &shared,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not deleted",
            &format!(
                "Type the tenant's name ({name}) to confirm the deletion. Nothing was deleted."
            ),
        );
    }
    let on_delete = if form.keep_schema {
        SchemaOnDelete::Keep
    } else {
        SchemaOnDelete::Drop
    };
    match shared
        .tenantry
        .admin()
        .delete_tenant(&name, on_delete)
        .await
    {
        Ok(()) => {
            tracing::info!(target: "tenantry::console", action = "delete", tenant = %name, keep_schema = form.keep_schema, "tenant deleted");
            Redirect::to(&shared.link("/")).into_response()
        }
        Err(e) => action_failed(&shared, "delete the tenant", &e),
    }
}
