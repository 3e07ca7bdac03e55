//! The place on a tenant's page for tenant data tools (clone, export as a download, import):
//! they are built on another branch and wired in here. Until then the section is empty.

use maud::{Markup, html};
use tenantry_sqlx::Tenant;

use crate::config::Shared;
use crate::session::Session;

/// The data tools section of `tenant`'s page (forms carry `session`'s CSRF token). Empty for
/// now: nothing is offered that does not work.
pub(crate) fn tenant_tools(_shared: &Shared, _session: &Session, _tenant: &Tenant) -> Markup {
    html! {}
}
