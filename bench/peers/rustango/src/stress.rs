//! The adversarial endpoints (the mix of the demo's isolation_stress), on rustango's tenant
//! connection: each handler works in a transaction on it and reports what it could see
//! ([`Obs`]); some write and then fail, panic, time out, or point `search_path` at another
//! tenant's schema inside a savepoint they roll back.

use std::time::Duration;

use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use rustango::sql::sqlx::{self, Acquire, PgConnection};
use serde::{Deserialize, Serialize};

use crate::db::{Db, Failure};

/// What a handler's transaction could see.
#[derive(Serialize)]
pub(crate) struct Obs {
    /// The org the request was resolved to (its slug = its schema).
    tenant: String,
    /// Distinct `markers.tenant` labels visible.
    markers: Vec<String>,
    /// Distinct owners of the visible notes (the `of tNNNNNN` of their titles).
    notes: Vec<String>,
}

type Answer = Result<Json<Obs>, Failure>;

async fn observe(conn: &mut PgConnection, tenant: &str) -> Result<Obs, sqlx::Error> {
    let (markers, notes): (Vec<String>, Vec<String>) = sqlx::query_as(
        "SELECT ARRAY(SELECT DISTINCT tenant FROM markers ORDER BY 1), \
         ARRAY(SELECT DISTINCT substring(title from ' of (.*)$') FROM notes ORDER BY 1)",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Obs {
        tenant: tenant.to_owned(),
        markers,
        notes,
    })
}

async fn mark(conn: &mut PgConnection, tenant: &str, kind: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO markers (tenant, kind) VALUES ($1, $2)")
        .bind(tenant)
        .bind(kind)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn deliberate(msg: &str) -> Failure {
    Failure(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

/// Reads, commits.
pub(crate) async fn read(mut db: Db) -> Answer {
    let mut tx = db.conn.begin().await?;
    let obs = observe(&mut tx, &db.org.slug).await?;
    tx.commit().await?;
    Ok(Json(obs))
}

/// Writes a marker, reads, commits.
pub(crate) async fn write(mut db: Db) -> Answer {
    let mut tx = db.conn.begin().await?;
    mark(&mut tx, &db.org.slug, "write").await?;
    let obs = observe(&mut tx, &db.org.slug).await?;
    tx.commit().await?;
    Ok(Json(obs))
}

/// Writes a row that must never be seen, then fails (the transaction is dropped).
pub(crate) async fn write_fail(mut db: Db) -> Answer {
    let mut tx = db.conn.begin().await?;
    mark(&mut tx, &db.org.slug, "poison").await?;
    Err(deliberate("deliberate failure after a write"))
}

/// Writes a row that must never be seen, then panics holding the transaction.
pub(crate) async fn panic(mut db: Db) -> Answer {
    let mut tx = db.conn.begin().await?;
    mark(&mut tx, &db.org.slug, "poison").await?;
    panic!("deliberate panic in a tenant handler (isolation stress)");
}

/// A slow query the client walks away from.
pub(crate) async fn slow(mut db: Db) -> Answer {
    let mut tx = db.conn.begin().await?;
    sqlx::query("SELECT pg_sleep(0.1)")
        .execute(&mut *tx)
        .await?;
    let obs = observe(&mut tx, &db.org.slug).await?;
    tx.commit().await?;
    Ok(Json(obs))
}

/// `?other=N`: the tenant (t00000N) whose schema the rolled-back savepoint points at.
#[derive(Deserialize)]
pub(crate) struct Other {
    other: u32,
}

/// Another tenant's schema set inside a savepoint that is rolled back: the path must come back.
pub(crate) async fn savepoint(Query(o): Query<Other>, mut db: Db) -> Answer {
    let other = format!("t{:06}", o.other);
    let mut tx = db.conn.begin().await?;
    sqlx::query("SAVEPOINT hop").execute(&mut *tx).await?;
    // `other` is `t` and six digits (built above): a safe identifier.
    sqlx::query(&format!("SET search_path TO \"{other}\""))
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT count(*) FROM markers")
        .execute(&mut *tx)
        .await?;
    sqlx::query("ROLLBACK TO SAVEPOINT hop")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SAVEPOINT bad").execute(&mut *tx).await?;
    let _ = sqlx::query("SELECT * FROM no_such_table")
        .execute(&mut *tx)
        .await;
    sqlx::query("ROLLBACK TO SAVEPOINT bad")
        .execute(&mut *tx)
        .await?;
    let obs = observe(&mut tx, &db.org.slug).await?;
    tx.commit().await?;
    Ok(Json(obs))
}

/// Cancelled by PostgreSQL's `statement_timeout` after a write: 500, rolled back.
pub(crate) async fn statement_timeout(mut db: Db) -> Answer {
    let mut tx = db.conn.begin().await?;
    mark(&mut tx, &db.org.slug, "poison").await?;
    sqlx::query("SET LOCAL statement_timeout = '15ms'")
        .execute(&mut *tx)
        .await?;
    match sqlx::query("SELECT pg_sleep(1)").execute(&mut *tx).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57014") => {
            Err(deliberate("statement_timeout fired (deliberate)"))
        }
        Err(e) => Err(e.into()),
        Ok(_) => Err(deliberate("statement_timeout did not fire")),
    }
}

/// Cancelled by a Tokio timeout mid-query after a write: 504.
pub(crate) async fn tokio_timeout(mut db: Db) -> Answer {
    let mut tx = db.conn.begin().await?;
    mark(&mut tx, &db.org.slug, "poison").await?;
    let slow = sqlx::query("SELECT pg_sleep(0.1)").execute(&mut *tx);
    match tokio::time::timeout(Duration::from_millis(15), slow).await {
        Err(_) => Err(Failure(StatusCode::GATEWAY_TIMEOUT, "timed out".into())),
        Ok(_) => Err(deliberate("timeout did not fire")),
    }
}
