//! `TestDb`: a database per test, dropped at the end, also when the test panics.

use sqlx::{Connection, PgConnection};
use tenantry_testing::{TestDb, admin_url};

async fn exists(name: &str) -> bool {
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_database_is_dropped_after_the_test_even_on_panic() {
    let db = TestDb::new().await;
    let name = db.name().to_owned();
    // Usable, with an open pool when it is dropped.
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    assert!(exists(&name).await);
    drop(db);
    assert!(!exists(&name).await, "{name} survived its TestDb");

    // A test that panics while holding its database.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let panicked = tokio::spawn(async move {
        let db = TestDb::new().await;
        tx.send(db.name().to_owned()).unwrap();
        panic!("deliberate panic while holding {}", db.name());
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    let name = rx.await.unwrap();
    assert!(!exists(&name).await, "{name} survived a panicking test");
}
