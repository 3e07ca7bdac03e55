//! Violation detection: one answer against the tenant it was meant for, and the pool and the
//! tenant schemas after a run.

use std::time::Duration;

use sqlx::AssertSqlSafe;
use tenantry::Tenantry;

use super::app::{Obs, schema};

/// Checks one observation; returns a description of the violation, if any.
pub fn check(obs: &Obs, expected: &str) -> Option<String> {
    let ok = if expected == "public" {
        obs.tenant == "public"
            && obs.schema.as_deref() == Some("public")
            && obs.markers.is_empty()
            && obs.path == "public"
    } else {
        obs.tenant == expected
            && obs.label == expected
            && obs.id == obs.resolved_id
            && obs.schema.as_deref() == Some(expected)
            && obs.markers.iter().all(|m| m == expected)
            && !obs.markers.is_empty()
            && obs.path.starts_with(expected)
    };
    (!ok).then(|| format!("expected {expected}, saw {obs:?}"))
}

/// After a run: the pool drains back to idle, every connection's session is clean, nothing is
/// left in a transaction, no rolled-back row survived and every row sits in its own tenant.
pub async fn check_after_run(tenantry: &Tenantry, n_tenants: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let pool = tenantry.raw_pool();
    // Returning connections finish asynchronously (a cancelled pg_sleep must end first).
    for _ in 0..100 {
        if pool.size() as usize == pool.num_idle() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if pool.size() as usize != pool.num_idle() {
        problems.push(format!(
            "{} of {} connections still checked out",
            pool.size() as usize - pool.num_idle(),
            pool.size()
        ));
    }
    // Hold every connection of the pool at once and look at its session.
    let size = pool.size();
    let mut conns = Vec::new();
    for _ in 0..size {
        conns.push(pool.acquire().await.expect("acquire"));
    }
    for conn in &mut conns {
        // Simple protocol: there now() = statement_timestamp() exactly when no transaction is open.
        use sqlx::Row;
        let row = sqlx::raw_sql(
            "SELECT current_setting('search_path'), current_user::text, session_user::text, now() = statement_timestamp()",
        )
        .fetch_one(&mut **conn)
        .await
        .expect("session state");
        let (path, user, session_user, idle): (String, String, String, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if path != "\"$user\", public" || user != session_user || !idle {
            problems.push(format!("dirty pooled connection: path={path} user={user} session_user={session_user} idle={idle}"));
        }
    }
    let conn = &mut conns[0];
    let in_tx: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .persistent(false)
    .fetch_one(&mut **conn)
    .await
    .unwrap();
    if in_tx != 0 {
        problems.push(format!("{in_tx} backends idle in transaction"));
    }
    let union = (0..n_tenants)
        .map(|i| {
            format!(
                "SELECT '{s}' AS schema, tenant, kind FROM \"{s}\".markers WHERE kind = 'poison' OR tenant <> '{s}'",
                s = schema(i)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let bad: Vec<(String, String, String)> = sqlx::query_as(AssertSqlSafe(union))
        .persistent(false)
        .fetch_all(&mut **conn)
        .await
        .unwrap();
    if !bad.is_empty() {
        problems.push(format!(
            "{} misplaced or rolled-back rows survive, e.g. {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        ));
    }
    problems
}
