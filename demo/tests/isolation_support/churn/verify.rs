//! Judging the churn: every answer on a churn host against the states its host may have been
//! in while the request ran, and every churn schema's rows after the run.

use std::collections::{BTreeMap, HashMap};

use sqlx::AssertSqlSafe;
use tenantry::{TenantStatus, Tenantry};

use super::super::{Kind, Obs};
use super::SCHEMA_PREFIX;
use super::log::{ChurnLog, HostState, Sample};

/// The answers of churn hosts, judged.
#[derive(Debug, Default)]
pub struct Verdict {
    pub requests: u64,
    /// Answers carrying another tenant's rows, or served by a tenant the host did not have.
    pub violations: Vec<String>,
    /// Answers that no state the host was in explains (not a breach, but wrong).
    pub unexplained: Vec<String>,
    /// Answers by (kind, answer).
    pub answers: BTreeMap<(String, &'static str), u64>,
    /// 200 answers to writes, by label.
    writes: HashMap<String, u64>,
}

/// Judges every sample against the states its host may have been in while it ran.
pub fn verify(log: &ChurnLog, samples: &[Sample]) -> Verdict {
    let mut v = Verdict::default();
    for x in samples {
        v.requests += 1;
        let deliberate_500 = matches!(
            x.kind,
            Kind::WriteFail | Kind::Panic | Kind::StatementTimeout
        );
        let events = &log.timeline[&x.host];
        let possible = log.states(&x.host, x.sent, x.done);
        let states: Vec<&HostState> = possible.iter().map(|&i| &events[i].state).collect();
        let took = (x.done - x.sent).as_secs_f64() * 1e3;
        let what = format!("{:?} on {} ({took:.0} ms)", x.kind, x.host);
        let (answer, unexplained) = match x.status {
            200 => {
                match &x.obs {
                    None => v.violations.push(format!("{what}: unparseable 200")),
                    Some(o) => judge_200(log, x, o, &possible, &what, &mut v),
                }
                ("200", false)
            }
            404 => ("404 (no tenant)", !states.contains(&&HostState::Nobody)),
            403 => (
                "403 (suspended)",
                !states
                    .iter()
                    .any(|s| matches!(s, HostState::Tenant { active: false, .. })),
            ),
            503 if x.retry_after => ("503 Retry-After", !log.touched(&x.host, x.sent, x.done)),
            500 if deliberate_500 => ("500 (deliberate)", false),
            504 if x.kind == Kind::TokioTimeout => ("504 (deliberate)", false),
            0 if x.kind == Kind::Disconnect => ("client walked away", false),
            _ => ("other", true),
        };
        if unexplained {
            v.unexplained.push(format!(
                "{what}: status {} (retry-after: {}) while the host was {states:?}",
                x.status, x.retry_after
            ));
        }
        *v.answers
            .entry((format!("{:?}", x.kind), answer))
            .or_default() += 1;
    }
    v
}

fn judge_200(log: &ChurnLog, x: &Sample, o: &Obs, possible: &[usize], what: &str, v: &mut Verdict) {
    let events = &log.timeline[&x.host];
    let states: Vec<&HostState> = possible.iter().map(|&i| &events[i].state).collect();
    // The transaction ran in its own tenant's schema, which holds that tenant's rows only.
    let consistent = !o.markers.is_empty()
        && o.markers.iter().all(|m| *m == o.label)
        && o.id == o.resolved_id
        && log.ids.get(&o.label) == Some(&o.id)
        && o.schema.as_deref() == Some(o.tenant.as_str())
        && o.path.starts_with(&o.tenant);
    // ... and that tenant had the host, under that schema name, while the request ran.
    let held = |s: &HostState, need_active: bool| {
        matches!(s, HostState::Tenant { label, schema, active }
            if *label == o.label && *schema == o.tenant && (*active || !need_active))
    };
    if !consistent || !states.iter().any(|s| held(s, false)) {
        v.violations
            .push(format!("{what}: {o:?} while the host was {states:?}"));
        return;
    }
    let held: Vec<usize> = possible
        .iter()
        .copied()
        .filter(|&i| held(&events[i].state, true))
        .collect();
    if held.is_empty() {
        v.unexplained
            .push(format!("{what}: served while suspended: {o:?}"));
        return;
    }
    // Read after the change that ended the tenant's hold on the host had returned? (The
    // hold that ended last; none if it still holds the host.)
    let end = events.get(held[held.len() - 1] + 1);
    if let Some(end) = end
        && o.read_at > end.returned_at
    {
        // The scoped BEGIN checks the tenant's identity, status and, for host-routed requests,
        // that the host is still the tenant's: no read may follow the change that ended the hold.
        let after_ms = (o.read_at - end.returned_at) * 1e3;
        v.violations.push(format!(
            "{what}: read {after_ms:.1} ms after {} had returned: {o:?}",
            end.op
        ));
        return;
    }
    if x.kind == Kind::Write {
        *v.writes.entry(o.label.clone()).or_default() += 1;
    }
}

/// After the run: the registry holds what the churn made, and every churn schema holds its own
/// tenant's rows only (no rolled-back row, every answered write). Returns (rows of another
/// tenant, other problems).
pub async fn check_rows(
    admin: &Tenantry,
    log: &ChurnLog,
    verdict: &Verdict,
) -> (Vec<String>, Vec<String>) {
    let (mut violations, mut problems) = (Vec::new(), Vec::new());
    let mut registry: Vec<(String, String, i64, TenantStatus)> = admin
        .admin()
        .tenants()
        .await
        .expect("tenants")
        .into_iter()
        .filter(|t| t.schema.starts_with(SCHEMA_PREFIX))
        .map(|t| (t.schema, t.display_name, t.id, t.status))
        .collect();
    let mut model: Vec<(String, String, i64, TenantStatus)> = log
        .live
        .iter()
        .map(|t| {
            let id = log.ids[&t.label];
            (t.schema.clone(), t.label.clone(), id, TenantStatus::Active)
        })
        .collect();
    registry.sort_by(|a, b| a.0.cmp(&b.0));
    model.sort_by(|a, b| a.0.cmp(&b.0));
    if registry != model {
        problems.push(format!(
            "registry {registry:?} differs from the churn's model {model:?}"
        ));
    }
    let pool = admin.raw_pool();
    for t in &log.live {
        let mut domains: Vec<(String, bool)> = admin
            .admin()
            .domains(&t.schema)
            .await
            .expect("domains")
            .into_iter()
            .map(|d| (d.domain, d.is_primary))
            .collect();
        let mut want: Vec<(String, bool)> = t.extras.iter().map(|x| (x.clone(), false)).collect();
        want.push((t.primary.clone(), true));
        domains.sort();
        want.sort();
        if domains != want {
            problems.push(format!(
                "{} ({}) has domains {domains:?}, expected {want:?}",
                t.schema, t.label
            ));
        }
        let (foreign, poison, writes): (Vec<String>, i64, i64) =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT coalesce(array_agg(DISTINCT tenant) FILTER (WHERE tenant <> $1), '{{}}'), \
                 count(*) FILTER (WHERE kind = 'poison'), count(*) FILTER (WHERE kind = 'write') \
                 FROM \"{}\".markers",
                t.schema
            )))
            .bind(&t.label)
            .fetch_one(pool)
            .await
            .expect("count markers");
        if !foreign.is_empty() {
            violations.push(format!(
                "{} ({}) holds rows of {foreign:?}",
                t.schema, t.label
            ));
        }
        if poison != 0 {
            problems.push(format!(
                "{} ({}): {poison} rolled-back rows survive",
                t.schema, t.label
            ));
        }
        let answered = verdict.writes.get(&t.label).copied().unwrap_or(0);
        if writes as u64 != answered {
            problems.push(format!(
                "{} ({}): {writes} written rows, {answered} writes answered 200",
                t.schema, t.label
            ));
        }
    }
    let mut schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
    )
    .bind(SCHEMA_PREFIX)
    .fetch_all(pool)
    .await
    .expect("schemas");
    let mut live: Vec<String> = log.live.iter().map(|t| t.schema.clone()).collect();
    live.sort();
    schemas.sort();
    if schemas != live {
        problems.push(format!("churn schemas {schemas:?}, live tenants {live:?}"));
    }
    (violations, problems)
}

/// Prints what the churn did and how its hosts answered (visible with `--nocapture`).
pub fn print(label: &str, log: &ChurnLog, v: &Verdict) {
    let ops: u64 = log.ops.values().sum();
    eprintln!(
        "[{label}] churn: {ops} operations in {:.1}s; the server's resolver saw each change within {:.1} ms of the call",
        log.elapsed.as_secs_f64(),
        log.max_lag.as_secs_f64() * 1e3
    );
    for (op, n) in &log.ops {
        eprintln!("[{label}]   {op:<45} x{n}");
    }
    for (call, n) in &log.calls {
        let busy = log.busy.get(call).copied().unwrap_or(0);
        eprintln!("[{label}]   call {call:<16} x{n:<5} refused TenantBusy (then retried) x{busy}");
    }
    eprintln!(
        "[{label}] churn hosts: {} requests, {} violations, {} unexplained answers",
        v.requests,
        v.violations.len(),
        v.unexplained.len()
    );
    for ((kind, answer), n) in &v.answers {
        eprintln!("[{label}]   {kind:<17} {answer:<20} x{n}");
    }
    for e in v.violations.iter().take(10) {
        eprintln!("[{label}] VIOLATION {e}");
    }
    for e in v.unexplained.iter().take(10) {
        eprintln!("[{label}] UNEXPLAINED {e}");
    }
}
