//! The data tools section of a tenant's page (clone, export, import forms) and what a failed
//! tool's form held. The handlers behind the forms are in `tools.rs` and `archive.rs`.

use maud::{Markup, html};
use serde::Deserialize;
use tenantry_sqlx::{NewTenant, Tenant};

use super::{layout, path_segment};
use crate::config::Shared;
use crate::session::Session;

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
