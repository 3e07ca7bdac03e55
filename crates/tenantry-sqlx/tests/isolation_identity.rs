//! A tenant is its registry id, not its schema name. A rename or a delete hands the name to
//! another tenant while work of the old one may still hold it; these tests pin that such work
//! runs in its own tenant's schema or not at all:
//!
//! * a stale tenant record (resolved before a swap of names, a delete and re-creation, or a
//!   suspension) is refused by `begin` and `session`, in plain and role mode;
//! * renames, deletes and status changes wait for the tenant's transactions and sessions in
//!   flight (the name can't change under them), bounded by `lifecycle_wait` (then
//!   `TenantBusy`, nothing changed);
//! * tenant transactions carry `idle_in_transaction_session_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use tenantry_sqlx::{
    Error, MigrationSet, NewTenant, SchemaOnDelete, Tenant, TenantStatus, Tenantry,
};
use tenantry_testing::TestDb;

const TENANT: &str =
    "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body TEXT NOT NULL)";

async fn tenantry(db: &TestDb, roles: bool, wait: Duration) -> Tenantry {
    let mut b = Tenantry::builder()
        .tenant_migration_set("default", MigrationSet::from_sql(&[(1, "notes", TENANT)]))
        .pool_options(
            PgPoolOptions::new()
                .max_connections(6)
                .acquire_timeout(Duration::from_secs(10)),
        )
        .lifecycle_wait(wait)
        .listen_for_changes(false);
    if roles {
        b = b.tenant_roles(db.role_prefix());
    }
    let t = b.connect(db.url()).await.unwrap();
    t.fleet().migrate_shared().await.unwrap();
    t
}

/// Creates `schema` (at `<schema>.test`) with one note naming it.
async fn tenant(t: &Tenantry, schema: &str) -> Arc<Tenant> {
    tenant_at(t, schema, &format!("{schema}.test")).await
}

async fn tenant_at(t: &Tenantry, schema: &str, domain: &str) -> Arc<Tenant> {
    let tenant = Arc::new(
        t.admin()
            .create_tenant(NewTenant::new(schema, domain))
            .await
            .unwrap(),
    );
    write(t, &tenant, &format!("secret of {schema}"))
        .await
        .unwrap();
    tenant
}

async fn write(t: &Tenantry, tenant: &Arc<Tenant>, body: &str) -> Result<(), Error> {
    let mut tx = t.begin(tenant).await?;
    sqlx::query("INSERT INTO notes (body) VALUES ($1)")
        .bind(body)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn bodies(t: &Tenantry, tenant: &Arc<Tenant>) -> Result<Vec<String>, Error> {
    let mut tx = t.begin(tenant).await?;
    let rows = sqlx::query_scalar("SELECT body FROM notes ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

/// The current record of a tenant (as a fresh resolution would give it).
async fn fresh(t: &Tenantry, tenant: &Tenant) -> Arc<Tenant> {
    Arc::new(
        t.admin()
            .tenant_by_id(tenant.id)
            .await
            .unwrap()
            .expect("tenant exists"),
    )
}

fn assert_moved<T>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::TenantMoved(_) | Error::SchemaMissing(_)) => {}
        Err(other) => panic!("{what}: expected TenantMoved/SchemaMissing, got {other}"),
        Ok(_) => panic!("{what}: a stale tenant record was given a scoped connection"),
    }
}

/// Swaps the schema names of `a` and `b` with three renames, as an operator would.
async fn swap(t: &Tenantry, a: &str, b: &str) {
    t.admin().rename_tenant(a, "swap_tmp").await.unwrap();
    t.admin().rename_tenant(b, a).await.unwrap();
    t.admin().rename_tenant("swap_tmp", b).await.unwrap();
}

async fn stale_records_are_refused(roles: bool) {
    let db = TestDb::new().await;
    let t = tenantry(&db, roles, Duration::from_secs(5)).await;
    let acme = tenant(&t, "acme").await;
    let globex = tenant(&t, "globex").await;

    // Names swapped: acme's old record now names globex's schema, and the reverse.
    swap(&t, "acme", "globex").await;
    assert_moved(bodies(&t, &acme).await, "read after swap");
    assert_moved(write(&t, &globex, "stray").await, "write after swap");
    if !roles {
        assert_moved(t.session(&acme).await, "session after swap");
    }
    // Fresh records reach each tenant's own rows under its new name.
    assert_eq!(
        bodies(&t, &fresh(&t, &acme).await).await.unwrap(),
        ["secret of acme"]
    );
    assert_eq!(
        bodies(&t, &fresh(&t, &globex).await).await.unwrap(),
        ["secret of globex"]
    );

    // Deleted, then a new tenant under the same name: the old record never reaches it.
    let acme_now = fresh(&t, &acme).await; // named "globex" now
    t.admin()
        .delete_tenant(&acme_now.schema, SchemaOnDelete::Drop)
        .await
        .unwrap();
    let successor = tenant_at(&t, &acme_now.schema, "successor.test").await;
    assert_moved(
        write(&t, &acme_now, "from the grave").await,
        "write after delete",
    );
    assert_eq!(
        bodies(&t, &successor).await.unwrap(),
        [format!("secret of {}", acme_now.schema)]
    );

    // Suspended: new work is refused with the status, maintenance work still possible.
    t.admin()
        .set_status(&successor.schema, TenantStatus::Suspended)
        .await
        .unwrap();
    match t.begin(&successor).await {
        Err(Error::TenantNotServing { status, .. }) => assert_eq!(status, TenantStatus::Suspended),
        Err(other) => panic!("expected TenantNotServing, got {other}"),
        Ok(_) => panic!("a suspended tenant started new work"),
    }
    let mut tx = t.begin_any_status(&successor).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.commit().await.unwrap();

    // In maintenance (the record still says suspended): refused as maintenance, which answers
    // 503 with Retry-After, not as suspended (403). Registry migration 3 said suspended.
    t.admin()
        .set_status(&successor.schema, TenantStatus::Maintenance)
        .await
        .unwrap();
    match t.begin(&successor).await {
        Err(Error::TenantNotServing { status, .. }) => {
            assert_eq!(status, TenantStatus::Maintenance)
        }
        Err(other) => panic!("expected TenantNotServing, got {other}"),
        Ok(_) => panic!("a tenant in maintenance started new work"),
    }
}

#[tokio::test]
async fn stale_tenant_records_are_refused() {
    stale_records_are_refused(false).await;
}

#[tokio::test]
async fn stale_tenant_records_are_refused_in_role_mode() {
    stale_records_are_refused(true).await;
}

/// A rename started while a transaction of the tenant is open waits for it; the transaction's
/// statements after the rename was requested still run in its own schema.
async fn rename_waits_for_work_in_flight(roles: bool) {
    let db = TestDb::new().await;
    let t = tenantry(&db, roles, Duration::from_secs(10)).await;
    let acme = tenant(&t, "acme").await;
    let globex = tenant(&t, "globex").await;

    let mut tx = t.begin(&acme).await.unwrap();
    let swapper = {
        let t = t.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            swap(&t, "acme", "globex").await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !swapper.is_finished(),
        "the rename must wait for acme's open transaction"
    );
    // Still acme's schema, whatever the swap is trying to do.
    sqlx::query("INSERT INTO notes (body) VALUES ('late write of acme')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let seen: Vec<String> = sqlx::query_scalar("SELECT body FROM notes ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, ["secret of acme", "late write of acme"]);
    tx.commit().await.unwrap();
    let waited = swapper.await.unwrap();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");

    assert_eq!(
        bodies(&t, &fresh(&t, &acme).await).await.unwrap(),
        ["secret of acme", "late write of acme"]
    );
    assert_eq!(
        bodies(&t, &fresh(&t, &globex).await).await.unwrap(),
        ["secret of globex"]
    );
}

#[tokio::test]
async fn a_rename_waits_for_the_tenants_open_transaction() {
    rename_waits_for_work_in_flight(false).await;
}

#[tokio::test]
async fn a_rename_waits_for_the_tenants_open_transaction_in_role_mode() {
    rename_waits_for_work_in_flight(true).await;
}

#[tokio::test]
async fn changes_give_up_after_lifecycle_wait_and_change_nothing() {
    let db = TestDb::new().await;
    let t = tenantry(&db, false, Duration::from_millis(300)).await;
    let acme = tenant(&t, "acme").await;
    let tx = t.begin(&acme).await.unwrap();

    let busy = |r: Result<(), Error>, what: &str| match r {
        Err(Error::TenantBusy { schema, waited }) => {
            assert_eq!(schema, "acme", "{what}");
            assert_eq!(waited, Duration::from_millis(300), "{what}");
        }
        other => panic!("{what}: expected TenantBusy, got {other:?}"),
    };
    busy(
        t.admin().rename_tenant("acme", "acme2").await.map(drop),
        "rename",
    );
    busy(
        t.admin().delete_tenant("acme", SchemaOnDelete::Drop).await,
        "delete",
    );
    busy(
        t.admin().set_status("acme", TenantStatus::Suspended).await,
        "suspend",
    );
    drop(tx);

    // Nothing changed.
    let now = fresh(&t, &acme).await;
    assert_eq!(now.schema, "acme");
    assert_eq!(now.status, TenantStatus::Active);
    assert_eq!(bodies(&t, &acme).await.unwrap(), ["secret of acme"]);
    // And with the transaction gone, the change goes through.
    t.admin().rename_tenant("acme", "acme2").await.unwrap();
}

#[tokio::test]
async fn sessions_hold_their_tenant_until_released() {
    let db = TestDb::new().await;
    let t = tenantry(&db, false, Duration::from_secs(10)).await;
    let acme = tenant(&t, "acme").await;
    tenant(&t, "globex").await;

    let mut session = t.session(&acme).await.unwrap();
    let swapper = {
        let t = t.clone();
        tokio::spawn(async move { swap(&t, "acme", "globex").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !swapper.is_finished(),
        "the rename must wait for acme's session"
    );
    // Several transactions on the session: all in acme's schema.
    for i in 0..3 {
        sqlx::query("INSERT INTO notes (body) VALUES ($1)")
            .bind(format!("session write {i}"))
            .execute(&mut *session)
            .await
            .unwrap();
    }
    session.release().await.unwrap();
    swapper.await.unwrap();
    let acme_now = fresh(&t, &acme).await;
    assert_eq!(acme_now.schema, "globex");
    assert_eq!(
        bodies(&t, &acme_now).await.unwrap(),
        [
            "secret of acme",
            "session write 0",
            "session write 1",
            "session write 2"
        ]
    );
    // A session dropped without release (cancelled task) also lets go: its connection closes.
    let session = t.session(&acme_now).await.unwrap();
    drop(session);
    t.admin()
        .rename_tenant("globex", "acme_again")
        .await
        .unwrap();
}

#[tokio::test]
async fn tenant_transactions_cannot_idle_forever() {
    let db = TestDb::new().await;
    let t = Tenantry::builder()
        .tenant_migration_set("default", MigrationSet::from_sql(&[(1, "notes", TENANT)]))
        .tenant_idle_timeout(Some(Duration::from_millis(200)))
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    let acme = tenant(&t, "acme").await;
    let mut tx = t.begin(&acme).await.unwrap();
    let setting: String =
        sqlx::query_scalar("SELECT current_setting('idle_in_transaction_session_timeout')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(setting, "200ms");
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The server ended the idle session: the next statement fails, nothing was kept.
    let late = sqlx::query("INSERT INTO notes (body) VALUES ('too late')")
        .execute(&mut *tx)
        .await;
    assert!(
        late.is_err(),
        "an idle tenant transaction outlived its timeout"
    );
    drop(tx);
    assert_eq!(bodies(&t, &acme).await.unwrap(), ["secret of acme"]);
}

#[tokio::test]
async fn work_that_came_in_on_a_moved_domain_is_refused() {
    let db = TestDb::new().await;
    let t = tenantry(&db, false, Duration::from_secs(5)).await;
    let acme = tenant(&t, "acme").await;
    tenant(&t, "globex").await;
    t.admin()
        .add_domain("acme", "shop.test", false)
        .await
        .unwrap();
    t.begin_via_domain(&acme, "shop.test").await.unwrap();

    t.admin().remove_domain("shop.test").await.unwrap();
    t.admin()
        .add_domain("globex", "shop.test", false)
        .await
        .unwrap();
    // The record is still acme's, valid by id and schema; the domain is not its own any more.
    assert_moved(t.begin_via_domain(&acme, "shop.test").await, "moved domain");
    t.begin_via_domain(&acme, "acme.test").await.unwrap();
    t.begin(&acme).await.unwrap();
}

/// The fast check (a resolved record, registry unchanged) sets what the full one sets: path,
/// idle timeout and, in role mode, the tenant role, all reverted with the transaction.
#[tokio::test]
async fn the_fast_check_sets_path_timeout_and_role() {
    let db = TestDb::new().await;
    let t = tenantry(&db, true, Duration::from_secs(5)).await;
    tenant(&t, "acme").await;
    let acme = match t.resolve_host("acme.test").await.unwrap() {
        tenantry_sqlx::Resolution::Tenant(tenant) => tenant,
        other => panic!("{other:?}"),
    };
    assert!(
        acme.registry_version.is_some(),
        "resolutions carry the version"
    );
    let mut tx = t.begin(&acme).await.unwrap();
    let (schema, idle, user): (String, String, String) = sqlx::query_as(
        "SELECT current_schema()::text, current_setting('idle_in_transaction_session_timeout'), \
         current_user::text",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(schema, "acme");
    assert_eq!(idle, "30s");
    assert_eq!(Some(user), t.admin().tenant_role("acme"));
    sqlx::query("INSERT INTO notes (body) VALUES ('fast')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(bodies(&t, &acme).await.unwrap(), ["secret of acme", "fast"]);
}
