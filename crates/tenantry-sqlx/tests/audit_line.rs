//! The audit line (`target: "tenantry::audit"`): a life-cycle change logs `action`, `tenant` and
//! `detail`; a data tool logs `action`, `tenant`, `from` (its source) and what it moved.
//! Captured with a minimal subscriber of the test's own.

use std::sync::{Arc, Mutex};

use tenantry_sqlx::{NewTenant, Tenantry};
use tenantry_testing::{TestDb, notes_migrations};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The audit events seen, each as its `(field, value)` pairs in order.
type Lines = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// Keeps the events of target `tenantry::audit`; ignores spans.
struct AuditCapture(Lines);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for AuditCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "tenantry::audit" {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The names of an event's fields, and the value of the one named `name`.
fn names(line: &[(String, String)]) -> Vec<&str> {
    line.iter().map(|(k, _)| k.as_str()).collect()
}

fn value<'a>(line: &'a [(String, String)], name: &str) -> &'a str {
    &line.iter().find(|(k, _)| k == name).unwrap().1
}

#[tokio::test(flavor = "current_thread")]
async fn life_cycle_and_data_tool_lines_keep_their_fields() {
    let lines = Lines::default();
    let _capture = tracing::subscriber::set_default(AuditCapture(Arc::clone(&lines)));
    let db = TestDb::new().await;
    let t = db
        .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
        .await;
    t.admin()
        .create_tenant(NewTenant::new("acme", "acme.test"))
        .await
        .unwrap();
    let copy = t
        .admin()
        .clone_tenant("acme", NewTenant::new("acme_copy", "copy.test"))
        .await
        .unwrap();

    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let create = &lines[0];
    assert_eq!(names(create), ["message", "action", "tenant", "detail"]);
    assert_eq!(
        (
            value(create, "action"),
            value(create, "tenant"),
            value(create, "detail")
        ),
        ("create", "acme", "acme.test")
    );
    let clone = &lines[1];
    assert_eq!(
        names(clone),
        [
            "message",
            "action",
            "tenant",
            "from",
            "tables",
            "rows",
            "elapsed_ms"
        ]
    );
    assert_eq!(
        (
            value(clone, "action"),
            value(clone, "tenant"),
            value(clone, "from")
        ),
        ("clone", "acme_copy", "acme")
    );
    assert_eq!(value(clone, "tables"), copy.tables.len().to_string());
    assert_eq!(value(clone, "rows"), copy.rows().to_string());
}
