//! `TestTenants`: fresh tenants through the library, from spare schemas when filled; prints
//! how long one tenant takes with and without spares (`-- --nocapture`).

use std::time::{Duration, Instant};

use tenantry::Tenantry;
use tenantry_testing::{TestDb, TestTenants, notes_migrations};

const N: usize = 8;

async fn average(tenants: &TestTenants, n: usize) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        tenants.create().await.unwrap();
    }
    started.elapsed() / u32::try_from(n).unwrap()
}

#[tokio::test]
async fn tenants_are_fresh_and_spares_are_claimed() {
    let db = TestDb::new().await;
    let app = db
        .tenantry(Tenantry::builder().tenant_migration_set("default", notes_migrations()))
        .await;
    // The first creation builds the template and its clone plan: not measured.
    let plain = TestTenants::new(&app).prefix("plain");
    let first = plain.create().await.unwrap();
    assert_eq!(first.tenant.schema, "plain_1");
    assert_eq!(first.domain, "plain-1.test");
    assert_eq!(first.tenant.primary_domain.as_deref(), Some("plain-1.test"));
    let without = average(&plain, N).await;

    let filling = Instant::now();
    let spared = TestTenants::new(&app)
        .prefix("spared")
        .with_spares(N)
        .await
        .unwrap();
    let fill = filling.elapsed();
    assert_eq!(spared.spares_left().await.unwrap(), N);
    let with = average(&spared, N).await;
    assert_eq!(spared.spares_left().await.unwrap(), 0, "spares not claimed");

    eprintln!(
        "[fresh tenants] one tenant: {:.1} ms without spares, {:.1} ms with a spare \
         (filling {N} spares took {:.0} ms)",
        without.as_secs_f64() * 1e3,
        with.as_secs_f64() * 1e3,
        fill.as_secs_f64() * 1e3,
    );

    // Every tenant, spare-made or not, is an empty notes schema of its own.
    for schema in ["plain_2", "spared_1", &format!("spared_{N}")] {
        let tenant = std::sync::Arc::new(app.admin().tenant(schema).await.unwrap());
        let mut tx = app.begin(&tenant).await.unwrap();
        sqlx::query("INSERT INTO notes (title) VALUES ($1)")
            .bind(schema)
            .execute(&mut *tx)
            .await
            .unwrap();
        let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM notes")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(titles, [schema]);
        tx.commit().await.unwrap();
    }
    app.close().await;
}
