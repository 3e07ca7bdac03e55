//! The adversarial endpoints (the mix of the demo's isolation_stress): each reports what its
//! transaction could see ([`Obs`]); some write and then fail, panic, time out, or point
//! `app.tenant_id` at another tenant inside a savepoint they roll back.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Transaction};

use crate::resolve::TenantRef;
use crate::{App, begin_tenant, internal};

/// What a handler's transaction could see.
#[derive(Serialize)]
pub(crate) struct Obs {
    /// The tenant the request was resolved to.
    tenant: String,
    /// Distinct `markers.tenant` labels visible.
    markers: Vec<String>,
    /// Distinct owners of the visible notes (the `of tNNNNNN` of their titles).
    notes: Vec<String>,
}

type Answer = Result<Json<Obs>, (StatusCode, String)>;

async fn observe(conn: &mut PgConnection, tenant: &TenantRef) -> Result<Obs, sqlx::Error> {
    let (markers, notes): (Vec<String>, Vec<String>) = sqlx::query_as(
        "SELECT ARRAY(SELECT DISTINCT tenant FROM markers ORDER BY 1), \
         ARRAY(SELECT DISTINCT substring(title from ' of (.*)$') FROM notes ORDER BY 1)",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Obs {
        tenant: tenant.name.to_string(),
        markers,
        notes,
    })
}

async fn mark(
    tx: &mut Transaction<'static, Postgres>,
    t: &TenantRef,
    kind: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO markers (tenant, kind) VALUES ($1, $2)")
        .bind(&*t.name)
        .bind(kind)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn deliberate(msg: &str) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

/// Reads, commits.
pub(crate) async fn read(State(app): State<App>, t: TenantRef) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    let obs = observe(&mut tx, &t).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(Json(obs))
}

/// Writes a marker, reads, commits.
pub(crate) async fn write(State(app): State<App>, t: TenantRef) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    mark(&mut tx, &t, "write").await.map_err(internal)?;
    let obs = observe(&mut tx, &t).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(Json(obs))
}

/// Writes a row that must never be seen, then fails (the transaction is dropped).
pub(crate) async fn write_fail(State(app): State<App>, t: TenantRef) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    mark(&mut tx, &t, "poison").await.map_err(internal)?;
    Err(deliberate("deliberate failure after a write"))
}

/// Writes a row that must never be seen, then panics holding the transaction.
pub(crate) async fn panic(State(app): State<App>, t: TenantRef) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    mark(&mut tx, &t, "poison").await.map_err(internal)?;
    panic!("deliberate panic in a tenant handler (isolation stress)");
}

/// A slow query the client walks away from.
pub(crate) async fn slow(State(app): State<App>, t: TenantRef) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    sqlx::query("SELECT pg_sleep(0.1)")
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    let obs = observe(&mut tx, &t).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(Json(obs))
}

/// `?other=ID`: the tenant to point `app.tenant_id` at inside the rolled-back savepoint.
#[derive(Deserialize)]
pub(crate) struct Other {
    other: i64,
}

/// Another tenant's id set inside a savepoint that is rolled back: the setting must come back.
pub(crate) async fn savepoint(
    State(app): State<App>,
    t: TenantRef,
    Query(o): Query<Other>,
) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    let steps = async {
        sqlx::query("SAVEPOINT hop").execute(&mut *tx).await?;
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(o.other.to_string())
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
        Ok::<_, sqlx::Error>(())
    };
    steps.await.map_err(internal)?;
    let obs = observe(&mut tx, &t).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(Json(obs))
}

/// Cancelled by PostgreSQL's `statement_timeout` after a write: 500, rolled back.
pub(crate) async fn statement_timeout(State(app): State<App>, t: TenantRef) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    mark(&mut tx, &t, "poison").await.map_err(internal)?;
    sqlx::query("SET LOCAL statement_timeout = '15ms'")
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    match sqlx::query("SELECT pg_sleep(1)").execute(&mut *tx).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57014") => {
            Err(deliberate("statement_timeout fired (deliberate)"))
        }
        Err(e) => Err(internal(e)),
        Ok(_) => Err(deliberate("statement_timeout did not fire")),
    }
}

/// Cancelled by a Tokio timeout mid-query after a write: 504.
pub(crate) async fn tokio_timeout(State(app): State<App>, t: TenantRef) -> Answer {
    let mut tx = begin_tenant(&app.pool, &t).await.map_err(internal)?;
    mark(&mut tx, &t, "poison").await.map_err(internal)?;
    let slow = sqlx::query("SELECT pg_sleep(0.1)").execute(&mut *tx);
    match tokio::time::timeout(Duration::from_millis(15), slow).await {
        Err(_) => Err((StatusCode::GATEWAY_TIMEOUT, "timed out".into())),
        Ok(_) => Err(deliberate("timeout did not fire")),
    }
}

/// Runs the rest of the stack on a task of its own: a panic there answers 500. The task is
/// aborted when the request is (a client that walks away cancels its handler, as without it).
pub(crate) async fn catch_panic(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = tokio::spawn(next.run(req));
    let _guard = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(r) => r,
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "handler panicked").into_response(),
    }
}
