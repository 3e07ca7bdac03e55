//! The database before and after the run (as a superuser, so row-level security does not hide
//! anything): markers emptied before; after, rows written under another tenant's name, rows of
//! rolled-back work (`poison`), tables that appeared in `public`, connections idle in a
//! transaction.

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

use crate::App;

/// What the database showed after the run.
#[derive(Default)]
pub(crate) struct After {
    pub(crate) wrong_writes: usize,
    pub(crate) survived: usize,
    pub(crate) stray_public: usize,
    pub(crate) idle_in_tx: usize,
    pub(crate) details: Vec<String>,
}

async fn pool(url: &str) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new().max_connections(2).connect(url).await?)
}

fn schemas(n: u32) -> Vec<String> {
    (1..=n).map(|i| format!("t{i:06}")).collect()
}

/// Empties the markers tables.
pub(crate) async fn reset(app: App, url: &str, n: u32) -> anyhow::Result<()> {
    let pool = pool(url).await?;
    match app {
        App::Rls => {
            sqlx::query("TRUNCATE markers").execute(&pool).await?;
        }
        App::Rustango => {
            let mut tx = pool.begin().await?;
            for s in schemas(n) {
                let q = format!("TRUNCATE \"{s}\".markers");
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }
    pool.close().await;
    Ok(())
}

/// The checks after the run.
pub(crate) async fn after(app: App, url: &str, n: u32) -> anyhow::Result<After> {
    let pool = pool(url).await?;
    let mut a = After::default();
    match app {
        App::Rls => {
            let rows = sqlx::query(
                "SELECT m.tenant, t.name, m.kind FROM markers m JOIN tenants t ON t.id = m.tenant_id \
                 WHERE m.tenant <> t.name OR m.kind = 'poison'",
            )
            .fetch_all(&pool)
            .await?;
            for r in rows {
                let (label, owner, kind): (String, String, String) = (r.get(0), r.get(1), r.get(2));
                if label != owner {
                    a.wrong_writes += 1;
                    a.details
                        .push(format!("marker of {label} stored as {owner}'s"));
                }
                if kind == "poison" {
                    a.survived += 1;
                    a.details
                        .push(format!("rolled-back marker of {label} survived"));
                }
            }
        }
        App::Rustango => {
            for s in schemas(n) {
                let q = format!(
                    "SELECT tenant, kind FROM \"{s}\".markers WHERE tenant <> $1 OR kind = 'poison'"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(q))
                    .bind(&s)
                    .fetch_all(&pool)
                    .await?;
                for r in rows {
                    let (label, kind): (String, String) = (r.get(0), r.get(1));
                    if label != s {
                        a.wrong_writes += 1;
                        a.details.push(format!("marker of {label} in schema {s}"));
                    }
                    if kind == "poison" {
                        a.survived += 1;
                        a.details
                            .push(format!("rolled-back marker of {label} survived in {s}"));
                    }
                }
            }
        }
    }
    let stray: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename IN ('notes', 'markers') AND $1",
    )
    .bind(app == App::Rustango)
    .fetch_all(&pool)
    .await?;
    a.stray_public = stray.len();
    for t in stray {
        a.details.push(format!("table public.{t} appeared"));
    }
    a.idle_in_tx = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&pool)
    .await? as usize;
    pool.close().await;
    Ok(a)
}
