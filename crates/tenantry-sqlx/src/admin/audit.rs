//! The audit log line of the tenant life cycle: one INFO event, target `tenantry::audit`, after
//! each change committed (create, adopt, delete, rename, status, data, domains), whoever made
//! it (the CLI, the operator console, the application's own code).

/// Logs that `action` was done to tenant `tenant` (its schema name, or `#<id>` where only the
/// registry id is at hand); `detail` says the rest (a new name, a
/// status, a domain), empty when there is none.
pub(crate) fn audit(action: &'static str, tenant: &str, detail: &str) {
    tracing::info!(target: "tenantry::audit", action, tenant, detail, "tenant {action}");
}
