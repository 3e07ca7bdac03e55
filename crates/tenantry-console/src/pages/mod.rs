//! The console's pages, one file per screen, and what they share.

pub(crate) mod archive;
pub(crate) mod charts;
pub(crate) mod domains;
pub(crate) mod fleet;
pub(crate) mod layout;
pub(crate) mod tenant;
pub(crate) mod tenants;
pub(crate) mod tools;
pub(crate) mod tools_section;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tenantry_sqlx::{Error, TenantStatus};

use crate::config::Shared;

/// The HTTP status of a refused or failed action (the same classes as `tenantry-axum`'s
/// `HttpError`: the user's mistakes are 4xx, the rest 5xx).
pub(crate) fn error_status(e: &Error) -> StatusCode {
    match e {
        Error::InvalidName(_)
        | Error::InvalidDomain { .. }
        | Error::UnknownTenantType { .. }
        | Error::TenantDataNotObject { .. }
        | Error::DisplayNameTooLong { .. }
        | Error::DisplayNameControlCharacter { .. }
        | Error::CannotCopy { .. }
        | Error::CannotClone { .. }
        | Error::ArchiveInvalid { .. }
        | Error::ArchiveIncompatible { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::TenantNotFound(_) | Error::DomainNotFound { .. } => StatusCode::NOT_FOUND,
        Error::TenantNameTaken { .. }
        | Error::RenameToSameName { .. }
        | Error::DomainTaken { .. }
        | Error::DomainIsPublic { .. }
        | Error::PrimaryDomainRemoval { .. }
        | Error::RoleExists { .. }
        | Error::SchemaAlreadyTenant { .. }
        | Error::MigrationState { .. }
        | Error::CitusUnsupported { .. } => StatusCode::CONFLICT,
        Error::TenantBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The page answering a failed action: the error's message for the user's mistakes, a
/// generic one (and the log) for the rest.
pub(crate) fn action_failed(shared: &Shared, what: &str, e: &Error) -> Response {
    let status = error_status(e);
    let text = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(target: "tenantry::console", error = %e, "{what} failed");
        "It failed on the server's side; the server log has the details.".to_owned()
    } else {
        e.to_string()
    };
    layout::message_page(shared, status, &format!("Could not {what}"), &text)
}

/// 303 to a tenant's page.
pub(crate) fn to_tenant(shared: &Shared, schema: &str) -> Response {
    Redirect::to(&shared.link(&format!("/tenants/{}", path_segment(schema)))).into_response()
}

/// A schema name as a URL path segment (schema names are `[a-z0-9_]`; anything else, which the
/// registry refuses, is percent-encoded all the same).
pub(crate) fn path_segment(schema: &str) -> String {
    schema
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A tenant status as a coloured badge.
pub(crate) fn status_badge(status: TenantStatus) -> Markup {
    let class = match status {
        TenantStatus::Active => "ok",
        TenantStatus::Suspended => "bad",
        TenantStatus::Maintenance => "warn",
    };
    html! { span class={"badge " (class)} { (status.as_str()) } }
}
