//! Jobs with their tenant on a real PostgreSQL-backed apalis queue.

mod support;

use std::time::Duration;

use support::{Setup, WriteNote};
use tenantry_apalis::job_state;
use tenantry_core::TenantStatus;
use tenantry_sqlx::SchemaOnDelete;
use tenantry_testing::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_of_fifty_tenants_land_in_their_own_schemas() {
    let s = Setup::new().await;
    let mut tenants = Vec::new();
    for _ in 0..50 {
        tenants.push(s.tenant().await);
    }
    // Two jobs per tenant, enqueued before any worker runs, interleaved across tenants.
    for round in 0..2 {
        for t in &tenants {
            s.enqueue(t, WriteNote::new(format!("{}#{round}", t.schema)))
                .await;
        }
    }
    let _w1 = s.start_worker("fifty-1");
    let _w2 = s.start_worker("fifty-2");
    let all_done = eventually(Duration::from_secs(60), async || {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE status = 'Done'")
                .fetch_one(s.tenantry.raw_pool())
                .await
                .unwrap();
        done == 100
    })
    .await;
    assert!(all_done, "the 100 jobs did not all finish");
    for t in &tenants {
        let titles = s.titles_in(&t.schema).await;
        let mut want = vec![format!("{}#0", t.schema), format!("{}#1", t.schema)];
        let mut got = titles.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "tenant {} holds other tenants' notes", t.schema);
    }
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_never_runs() {
    let s = Setup::new().await;
    let t = s.tenant().await;

    // Rolled back: the request's write and its job go together.
    let mut tx = s.tenantry.begin(&t).await.unwrap();
    sqlx::query("INSERT INTO notes (title) VALUES ('request write')")
        .execute(&mut tx)
        .await
        .unwrap();
    let lost = s
        .queue
        .push(&mut tx, &WriteNote::new("lost"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    // Committed: the job row appears with the commit, not before.
    let mut tx = s.tenantry.begin(&t).await.unwrap();
    let kept = s
        .queue
        .push(&mut tx, &WriteNote::new("kept"))
        .await
        .unwrap();
    let before = job_state(&s.tenantry, &t, support::QUEUE, &kept.to_string())
        .await
        .unwrap();
    assert_eq!(
        before, None,
        "the job is visible before its transaction commits"
    );
    tx.commit().await.unwrap();

    let _w = s.start_worker("rollback");
    assert!(
        s.wait_status(&kept.to_string(), "Done").await,
        "the committed job never ran"
    );
    assert_eq!(
        s.job_row(&lost.to_string()).await,
        None,
        "the rolled-back job exists"
    );
    assert_eq!(s.titles_in(&t.schema).await, vec!["kept".to_owned()]);
}

#[tokio::test]
async fn a_suspended_tenants_job_waits_and_runs_after_resume() {
    let s = Setup::new().await;
    let t = s.tenant().await;
    let other = s.tenant().await;
    let id = s.enqueue(&t, WriteNote::new("after resume")).await;
    s.set_status(&t, TenantStatus::Suspended).await;
    let _w = s.start_worker("suspended");

    // The worker looks at it (the row is locked by the worker) and puts it back to wait.
    let waited = eventually(Duration::from_secs(90), async || {
        let looked: Option<bool> = sqlx::query_scalar(
            "SELECT lock_by IS NOT NULL AND status = 'Pending' AND run_at > now() - interval '1 minute' \
             FROM apalis.jobs WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(s.tenantry.raw_pool())
        .await
        .unwrap();
        looked == Some(true)
    })
    .await;
    assert!(
        waited,
        "the suspended tenant's job was never put back to wait"
    );
    // Meanwhile other tenants' jobs run.
    let other_id = s.enqueue(&other, WriteNote::new("meanwhile")).await;
    assert!(
        s.wait_status(&other_id, "Done").await,
        "another tenant's job was held up"
    );
    let row = s.job_row(&id).await.unwrap();
    assert_eq!(
        row.0, "Pending",
        "the suspended tenant's job ran or failed: {row:?}"
    );
    assert!(
        s.titles_in(&t.schema).await.is_empty(),
        "the job wrote while suspended"
    );

    s.set_status(&t, TenantStatus::Active).await;
    s.assert_ran(
        &id,
        "the job did not run after resume",
        &t.schema,
        "after resume",
    )
    .await;
    let (_, attempts, max_attempts, _) = s.job_row(&id).await.unwrap();
    assert!(
        attempts <= max_attempts,
        "waiting used up the job's attempts"
    );
}

#[tokio::test]
async fn a_job_refused_at_begin_because_its_tenant_was_suspended_waits_too() {
    let s = Setup::new().await;
    let t = s.tenant().await;
    let job = WriteNote {
        title: "second run".into(),
        suspend_first: true,
    };
    let id = s.enqueue(&t, job).await;
    let _w = s.start_worker("refused");
    // The first run suspends its tenant, then its BEGIN is refused: back to wait.
    let waited = eventually(Duration::from_secs(30), async || {
        s.job_row(&id)
            .await
            .is_some_and(|r| r.0 == "Pending" && r.1 >= 1)
    })
    .await;
    assert!(
        waited,
        "the refused job was not put back: {:?}",
        s.job_row(&id).await
    );
    let (_, attempts, max_attempts, _) = s.job_row(&id).await.unwrap();
    assert_eq!(
        max_attempts - attempts,
        3,
        "the refused run used up an attempt ({attempts} of {max_attempts})"
    );
    s.set_status(&t, TenantStatus::Active).await;
    s.assert_ran(
        &id,
        "the job did not run after resume",
        &t.schema,
        "second run",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_tenants_job_fails_clearly_and_is_not_retried() {
    let s = Setup::new().await;
    let gone = s.tenant().await;
    let alive = s.tenant().await;
    let id = s.enqueue(&gone, WriteNote::new("never")).await;
    s.tenantry
        .admin()
        .delete_tenant(&gone.schema, SchemaOnDelete::Drop)
        .await
        .unwrap();
    // A new tenant takes the deleted one's name: the job must not run there either.
    let heir = s
        .tenantry
        .admin()
        .create_tenant(tenantry_sqlx::NewTenant::new(&gone.schema, "heir.test"))
        .await
        .unwrap();
    let _w = s.start_worker("deleted");
    assert!(
        s.wait_status(&id, "Killed").await,
        "the deleted tenant's job was not dropped"
    );
    let (_, attempts, _, last) = s.job_row(&id).await.unwrap();
    let last = last.unwrap_or_default();
    assert!(
        last.contains(&format!("tenant {}", gone.id)) && last.contains("no longer exists"),
        "unclear error: {last}"
    );
    // The worker moves on; the dropped job is not picked up again.
    let next = s.enqueue(&alive, WriteNote::new("next")).await;
    assert!(s.wait_status(&next, "Done").await);
    let again = s.enqueue(&alive, WriteNote::new("again")).await;
    assert!(s.wait_status(&again, "Done").await);
    let (status, attempts_after, _, _) = s.job_row(&id).await.unwrap();
    assert_eq!(
        (status.as_str(), attempts_after),
        ("Killed", attempts),
        "retried"
    );
    assert!(attempts <= 1, "the dropped job ran {attempts} times");
    assert!(
        s.titles_in(&heir.schema).await.is_empty(),
        "the job ran in the heir's schema"
    );
}

#[tokio::test]
async fn a_job_follows_its_tenant_through_a_rename_and_never_runs_under_the_old_name() {
    let s = Setup::new().await;
    let a = s.tenant().await;
    let b = s.tenant().await;
    let id = s.enqueue(&a, WriteNote::new("a's job")).await;
    // Swap names: a's old name now belongs to b.
    let admin = s.tenantry.admin();
    admin.rename_tenant(&a.schema, "swap_tmp").await.unwrap();
    admin.rename_tenant(&b.schema, &a.schema).await.unwrap();
    admin.rename_tenant("swap_tmp", &b.schema).await.unwrap();
    let _w = s.start_worker("rename");
    // a is now called b.schema, b is called a.schema.
    s.assert_ran(
        &id,
        "the renamed tenant's job did not run",
        &b.schema,
        "a's job",
    )
    .await;
    assert!(
        s.titles_in(&a.schema).await.is_empty(),
        "the job ran under its tenant's old name"
    );
}

#[tokio::test]
async fn job_state_answers_only_the_jobs_tenant() {
    let s = Setup::new().await;
    let a = s.tenant().await;
    let b = s.tenant().await;
    let id = s.enqueue(&a, WriteNote::new("mine")).await;
    let pool = &s.tenantry;
    let mine = job_state(pool, &a, support::QUEUE, &id).await.unwrap();
    assert!(mine.is_some_and(|j| !j.is_done()), "pending job not found");
    assert_eq!(
        job_state(pool, &b, support::QUEUE, &id).await.unwrap(),
        None
    );
    assert_eq!(job_state(pool, &a, "other-queue", &id).await.unwrap(), None);
    assert_eq!(
        job_state(pool, &a, support::QUEUE, "' OR 1=1 --")
            .await
            .unwrap(),
        None
    );
    let _w = s.start_worker("state");
    assert!(s.wait_status(&id, "Done").await);
    let done = job_state(pool, &a, support::QUEUE, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(done.is_done());
}

#[tokio::test]
async fn role_mode_tenants_enqueue_in_their_transaction_and_cannot_read_the_queue() {
    let s = Setup::with(|b, db| b.tenant_roles(db.role_prefix())).await;
    let t = s.tenant().await;
    let other = s.tenant().await;
    let id = s.enqueue(&t, WriteNote::new("as a role")).await;
    s.enqueue(&other, WriteNote::new("other's")).await;
    // The tenant's role may add jobs, not read anyone's.
    let mut tx = s.tenantry.begin(&t).await.unwrap();
    let read = sqlx::query("SELECT count(*) FROM apalis.jobs")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(read.to_string().contains("permission denied"), "{read}");
    drop(tx);
    let _w = s.start_worker("roles");
    s.assert_ran(&id, "role mode job did not run", &t.schema, "as a role")
        .await;
}
