//! Tenant life cycle against work in flight (issue 11): withheld request bodies. A request whose
//! body is still on its way when its tenant is deleted, and a flood of withheld bodies while
//! another tenant is served. The demo over real HTTP on a fresh database each time.
//!
//! Identity is the tenant (its registry id, reached through its domain), not the schema name:
//! after a swap of names, `alpha.localhost` still belongs to the tenant created as `alpha`,
//! whose schema is now called `bravo`. Every note title names the tenant it was written for
//! (`alpha-secret-3`, `bravo-w-7-12`...), so a foreign row is recognisable wherever it shows up.
//!
//! Each test failed against the code before the fix (commit 4ac0362); what it saw there is
//! noted on the test.
//!
//! Run: `cargo test -p tenantry-demo --test isolation_lifecycle_bodies -- --nocapture` (reports).

mod isolation_lifecycle_support;

use std::time::Duration;

use isolation_lifecycle_support::*;
use sqlx::{Connection, PgConnection};
use tenantry::{NewTenant, SchemaOnDelete};
use tenantry_demo::TenantData;
use tenantry_demo::tenant_site::Note;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// 2. A request of `acme` sends its headers and half its body; acme is deleted (at once: the
/// request holds nothing) and a new tenant signs up as `acme`; the rest of the body arrives.
/// The old request must not write into the new tenant. Before the fix: 201, the row in the new
/// tenant's notes.
#[tokio::test]
async fn a_withheld_body_of_a_deleted_tenant_never_writes_into_its_successor() {
    let _serial = SERIAL.lock().await;
    let d = Demo::start().await;
    d.signup("acme").await;
    let old_id = d.id_of("acme").await;

    let body = note_body("withheld-from-the-old-acme", 120);
    let (first, rest) = body.split_at(40);
    let mut tcp = TcpStream::connect(d.addr).await.unwrap();
    tcp.write_all(post_head("acme.localhost", body.len()).as_bytes())
        .await
        .unwrap();
    tcp.write_all(first).await.unwrap();
    // The server has routed the request and waits for the rest of the body.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    d.tenantry
        .admin()
        .delete_tenant("acme", SchemaOnDelete::Drop)
        .await
        .expect("delete while a request of the tenant waits for its body");
    let delete_took = started.elapsed();
    // Nothing of the tenant is held while the body is on its way: no wait for lifecycle_wait.
    assert!(
        delete_took < Duration::from_secs(2),
        "delete waited {delete_took:?}"
    );

    d.signup("acme").await;
    let new_id = d.id_of("acme").await;
    assert_ne!(new_id, old_id, "a new tenant under the old name");
    let before = d.titles_in("acme").await;
    assert_eq!(before, ["Welcome to acme"]);

    tcp.write_all(rest).await.unwrap();
    let (status, answer) = read_response(&mut tcp, Duration::from_secs(10)).await;
    eprintln!(
        "[withheld] delete took {:.0}ms; the old request answered {status}: {:?}",
        delete_took.as_secs_f64() * 1000.0,
        answer.lines().next().unwrap_or_default()
    );
    assert!(
        (400..600).contains(&status) && status != 500,
        "the old tenant's request must be refused with a status that says why, got: {answer}"
    );
    assert_eq!(
        d.titles_in("acme").await,
        before,
        "the new acme's notes changed"
    );
}
/// 5. 70 connections send the headers of `POST /api/notes` (Content-Length: 100) on tenants of
/// every pool shard and withhold the bodies; meanwhile another tenant's GETs keep answering 200
/// within 2 s each, and no transaction waits on a client. Before the fix the sockets pinned all
/// 16 pooled connections "idle in transaction" and the first GET did not answer within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_flood_does_not_starve_other_tenants() {
    const SOCKETS: usize = 70;
    const BODY: usize = 100;
    let _serial = SERIAL.lock().await;
    let d = Demo::start().await;
    // Three flood tenants in every pool shard (default demo: 8 shards of 2 connections).
    let shards = d.tenantry.config().pool_shards;
    let mut per_shard = vec![0; shards];
    let flood: Vec<String> = (0..)
        .map(|i| format!("flood{i:03}"))
        .filter(|name| {
            let shard = d.tenantry.pool_shard_of(name).unwrap_or(0);
            per_shard[shard] += 1;
            per_shard[shard] <= 3
        })
        .take(3 * shards)
        .collect();
    let plan = TenantData {
        plan: "free".into(),
    };
    for name in flood.iter().map(String::as_str).chain(["victim"]) {
        let new = NewTenant::new(name, format!("{name}.localhost"));
        d.tenantry
            .admin()
            .create_tenant(new.data(&plan).unwrap())
            .await
            .unwrap();
    }

    let mut sockets = Vec::new();
    for i in 0..SOCKETS {
        let host = format!("{}.localhost", flood[i % flood.len()]);
        let mut tcp = TcpStream::connect(d.addr).await.unwrap();
        tcp.write_all(post_head(&host, BODY).as_bytes())
            .await
            .unwrap();
        sockets.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Another tenant is served, promptly, all along.
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            d.get("victim.localhost", "/api/notes").send(),
        )
        .await
        .unwrap_or_else(|_| panic!("GET {i} of another tenant took over 2 s"))
        .unwrap();
        assert_eq!(r.status(), 200, "GET {i} of another tenant");
        let notes: Vec<Note> = r.json().await.unwrap();
        let titles: Vec<_> = notes.into_iter().map(|n| n.title).collect();
        assert_eq!(titles, ["Welcome to victim"]);
        slowest = slowest.max(started.elapsed());
    }
    // No transaction is waiting on a client.
    let mut conn = PgConnection::connect(d.db.url()).await.unwrap();
    let idle_in_tx: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(idle_in_tx, 0, "transactions held open by withheld bodies");

    // The flood was real: no withheld request has been answered yet...
    let mut probe = [0u8; 1];
    for (i, tcp) in sockets.iter().enumerate() {
        assert!(
            matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "withheld request {i} was answered early"
        );
    }
    // ...and each one completes once its body arrives.
    for (i, tcp) in sockets.iter_mut().enumerate() {
        tcp.write_all(&note_body(&format!("flood-{i}"), BODY))
            .await
            .unwrap();
    }
    for tcp in &mut sockets {
        let (status, answer) = read_response(tcp, Duration::from_secs(10)).await;
        assert_eq!(status, 201, "{answer}");
    }
    let mut rows = 0;
    for name in &flood {
        let titles = d.titles_in(name).await;
        rows += titles.iter().filter(|t| t.starts_with("flood-")).count();
    }
    eprintln!(
        "[flood] {SOCKETS} withheld bodies on {} tenants: 50 GETs of another tenant answered 200, \
         slowest {:.0}ms; no transaction idle; then {SOCKETS} x 201, {rows} rows",
        flood.len(),
        slowest.as_secs_f64() * 1000.0
    );
    assert_eq!(rows, SOCKETS);
}
