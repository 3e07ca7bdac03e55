//! Report: the recorded django-tenants baseline the one-table phase compares against, and the
//! statistics of the printed lines.

use std::time::Duration;

/// django-tenants figures recorded with `bench/django-tenants/run_all.sh` (its README,
/// "Recorded baseline"; 2 cores, PostgreSQL 15): per-tenant creation median ms (schema,
/// migrate, domain, 10 items), then `migrate_schemas` seconds at 1,000 tenants.
pub(crate) const DT_CREATE_MEDIAN_MS: f64 = 87.0;
pub(crate) const DT_NOOP_SEQ_S: f64 = 64.84;
pub(crate) const DT_NOOP_PAR2_S: f64 = 35.83;
pub(crate) const DT_ADD_SEQ_S: f64 = 73.83;
pub(crate) const DT_ADD_PAR2_S: f64 = 43.35;

pub(crate) struct Stats {
    pub(crate) median: f64,
    pub(crate) p99: f64,
    pub(crate) mean: f64,
}

pub(crate) fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        median: at(0.5),
        p99: at(0.99),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
    }
}

pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
