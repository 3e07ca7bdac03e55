//! A tenant's data tools, on its page: clone it, export it as a download, import an archive
//! as a new tenant. Each calls the library as `tenantry tenant clone|export|import` does
//! (same validation, hooks and `tenantry::audit` line) and writes the console's own
//! `tenantry::console` line. The section and the clone live here; the archive's download and
//! upload in `archive.rs`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use tenantry_sqlx::{Error, NewTenant, Tenant};

use super::{error_status, layout, path_segment, tenant};
use crate::config::Shared;
use crate::session::{CheckedForm, Session};

/// Which tool's form an [`Attempt`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Clone,
    Export,
    Import,
}

/// A tool's form that failed: what it held (shown again) and why (shown beside it).
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    pub(crate) tool: Option<Tool>,
    pub(crate) form: NewForm,
    pub(crate) error: String,
}

impl Attempt {
    fn error_for(&self, tool: Tool) -> Option<&str> {
        (self.tool == Some(tool)).then_some(self.error.as_str())
    }

    fn form_for(&self, tool: Tool) -> Option<&NewForm> {
        (self.tool == Some(tool)).then_some(&self.form)
    }
}

/// The new tenant a clone or an import makes (form fields `new_name`, `domain`,
/// `display_name`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewForm {
    #[serde(default)]
    pub(crate) new_name: String,
    #[serde(default)]
    pub(crate) domain: String,
    #[serde(default)]
    pub(crate) display_name: String,
}

impl NewForm {
    /// The library's [`NewTenant`] (an empty display name: the library's default).
    pub(crate) fn new_tenant(&self) -> NewTenant {
        let new = NewTenant::new(self.new_name.trim(), self.domain.trim());
        match self.display_name.trim() {
            "" => new,
            name => new.display_name(name),
        }
    }
}

/// The data tools section of `tenant`'s page (forms carry `session`'s CSRF token), with
/// `attempt`'s form and error when one failed.
pub(crate) fn tenant_tools(
    shared: &Shared,
    session: &Session,
    tenant: &Tenant,
    attempt: &Attempt,
) -> Markup {
    let action =
        |what: &str| shared.link(&format!("/tenants/{}/{what}", path_segment(&tenant.schema)));
    let empty = NewForm::default();
    let error =
        |tool| html! { @if let Some(e) = attempt.error_for(tool) { p.error role="alert" { (e) } } };
    let fields = |tool| {
        let form = attempt.form_for(tool).unwrap_or(&empty);
        html! {
            label { "New name" input name="new_name" value=(form.new_name) required pattern="[a-z_][a-z0-9_]{0,62}" title="lowercase letters, digits and _, not starting with a digit"; }
            label { "Its primary domain" input name="domain" value=(form.domain) required placeholder="copy.example.com"; }
            label { "Display name " span.muted { "(optional)" } input name="display_name" value=(form.display_name); }
        }
    };
    html! {
        section.card.tools id="tools" {
            h2 { "Data tools" }
            h3 { "Clone" }
            p.muted { "A new tenant holding a copy of this one's tables and rows (one transaction)." }
            (error(Tool::Clone))
            form method="post" action=(action("clone")) {
                (layout::csrf(&session.csrf))
                (fields(Tool::Clone))
                button type="submit" { "Clone tenant" }
            }
            h3 { "Export" }
            p.muted { "Its rows, registry row, domains and migration history as an archive (.tenant.tar.gz)." }
            (error(Tool::Export))
            form method="post" action=(action("export")) {
                (layout::csrf(&session.csrf))
                button type="submit" { "Download archive" }
            }
            h3 { "Import an archive" }
            p.muted { "A new tenant from an exported archive (at most " (layout::size(Some(shared.max_archive_bytes as i64))) ")." }
            (error(Tool::Import))
            // The file comes last: the token and the names are read before the upload.
            form method="post" action=(action("import")) enctype="multipart/form-data" {
                (layout::csrf(&session.csrf))
                (fields(Tool::Import))
                label { "Archive" input type="file" name="archive" required accept=".gz,application/gzip"; }
                button type="submit" { "Import as a new tenant" }
            }
        }
    }
}

/// `name`'s page again, answering a failed tool with `e` shown inline: the error's message
/// for what the operator can act on, a generic one (and the log) for the rest.
pub(crate) async fn failed(
    shared: &Shared,
    session: &Session,
    name: &str,
    tool: Tool,
    form: NewForm,
    e: &Error,
) -> Response {
    let status = error_status(e);
    let error = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(target: "tenantry::console", error = %e, tenant = name, ?tool, "data tool failed");
        "It failed on the server's side; the server log has the details. Nothing was created."
            .to_owned()
    } else {
        e.to_string()
    };
    refused(shared, session, name, tool, form, status, error).await
}

/// `name`'s page with `error` beside `tool`'s form, answered with `status`.
pub(crate) async fn refused(
    shared: &Shared,
    session: &Session,
    name: &str,
    tool: Tool,
    form: NewForm,
    status: StatusCode,
    error: String,
) -> Response {
    let attempt = Attempt {
        tool: Some(tool),
        form,
        error,
    };
    tenant::render(shared, session, name, None, &attempt, status).await
}

/// 303 to a tenant a tool just made, with the notice its page shows.
pub(crate) fn to_new_tenant(shared: &Shared, schema: &str, query: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(query).unwrap_or_default();
    Redirect::to(&shared.link(&format!("/tenants/{}?{query}", path_segment(schema))))
        .into_response()
}

/// `POST /tenants/{name}/clone`: form `new_name`, `domain`, `display_name`, through
/// `admin().clone_tenant` (Citus refuses it: the refusal is shown).
pub(crate) async fn clone(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    CheckedForm(session, form): CheckedForm<NewForm>,
) -> Response {
    match shared
        .tenantry
        .admin()
        .clone_tenant(&name, form.new_tenant())
        .await
    {
        Ok(report) => {
            let rows = report.rows();
            tracing::info!(
                target: "tenantry::console",
                action = "clone",
                tenant = %report.tenant.schema,
                from = %name,
                rows,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "tenant cloned"
            );
            to_new_tenant(
                &shared,
                &report.tenant.schema,
                &[
                    ("done", "cloned"),
                    ("from", &name),
                    ("rows", &rows.to_string()),
                ],
            )
        }
        Err(e) => failed(&shared, &session, &name, Tool::Clone, form, &e).await,
    }
}
