//! The audit log line of the tenant life cycle: one INFO event, target `tenantry::audit`, after
//! each change committed (create, adopt, delete, rename, status, data, domains, and the data
//! tools clone, export, import), whoever made it (the CLI, the operator console, the
//! application's own code).

use crate::transfer::TransferReport;

/// Logs that `action` was done to tenant `tenant` (its schema name, or `#<id>` where only the
/// registry id is at hand).
///
/// A life-cycle change passes `moved: None`: `detail` says the rest (a new name, a status, a
/// domain), empty when there is none. A data tool passes its report: `detail` is its source
/// (logged as `from`) and the line adds `tables`, `rows` and `elapsed_ms`.
pub(crate) fn audit(action: &str, tenant: &str, detail: &str, moved: Option<&TransferReport>) {
    // A field whose value is `None` is left out of the line, so each kind keeps its fields.
    let (detail, from) = match moved {
        None => (Some(detail), None),
        Some(_) => (None, Some(detail)),
    };
    tracing::info!(
        target: "tenantry::audit",
        action,
        tenant,
        detail,
        from,
        tables = moved.map(|r| r.tables.len()),
        rows = moved.map(TransferReport::rows),
        elapsed_ms = moved.map(|r| r.elapsed.as_millis() as u64),
        "tenant {action}"
    );
}
