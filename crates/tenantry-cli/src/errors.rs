//! Error messages: one line per error chain.

/// One line from an error chain: causes joined with ": ", repeated text skipped, and a
/// PostgreSQL error shown as its message and SQLSTATE rather than sqlx's wrapper text.
pub(crate) fn render(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        if let Some(db) = database_error(cause) {
            let mut msg = match db.code() {
                Some(code) => format!("{} (SQLSTATE {code})", db.message()),
                None => db.message().to_owned(),
            };
            // The registry's tables are missing: the database was never migrated.
            if db.code().as_deref() == Some("42P01") && db.message().contains("tenantry_") {
                msg.push_str(" (run `tenantry migrate` first)");
            }
            parts.push(msg);
            break;
        }
        let msg = cause.to_string();
        if !parts.last().is_some_and(|p| p.ends_with(&msg)) {
            parts.push(msg);
        }
    }
    parts.join(": ")
}

fn database_error<'a>(
    cause: &'a (dyn std::error::Error + 'static),
) -> Option<&'a dyn sqlx::error::DatabaseError> {
    let sqlx_error = match cause.downcast_ref::<tenantry_sqlx::Error>() {
        Some(tenantry_sqlx::Error::Database(e)) => e,
        Some(_) => return None,
        None => cause.downcast_ref::<sqlx::Error>()?,
    };
    match sqlx_error {
        sqlx::Error::Database(db) => Some(db.as_ref()),
        _ => None,
    }
}

/// PostgreSQL's message with its SQLSTATE, rather than sqlx's wrapper text.
pub(crate) fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}
