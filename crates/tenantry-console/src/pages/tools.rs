//! A tenant's data tools, on its page: clone it, export it as a download, import an archive
//! as a new tenant. Each calls the library as `tenantry tenant clone|export|import` does
//! (same validation, hooks and `tenantry::audit` line) and writes the console's own
//! `tenantry::console` line. The clone lives here, the archive's download and upload in
//! `archive.rs`, the section's forms in `tools_section.rs`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tenantry_sqlx::Error;

use super::tools_section::{Attempt, NewForm, Tool};
use super::{error_status, path_segment, tenant};
use crate::config::Shared;
use crate::session::{CheckedForm, Session};

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
