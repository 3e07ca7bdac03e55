//! The demo on a real Citus cluster (coordinator + 2 workers), `DATABASE_URL` pointing at the
//! coordinator and nothing else changed: the demo contract, isolation and hostile hosts; tenant
//! schemas on both workers; a tenant moved under a stream of POSTs (none lost); a worker down
//! (its tenants 503, the others served). Each scenario also runs with node-affine routing
//! (`TENANTRY_DEMO_NODE_AFFINE=1`: tenant transactions sent straight to their worker).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tenantry_demo::{DemoConfig, build};
use tenantry_testing::{CITUS_INSTALL_HINT, CitusCluster, skip};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Demo {
    citus: CitusCluster,
    base: String,
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    tenantry: tenantry::Tenantry,
}

async fn start(node_affine: bool) -> Option<Demo> {
    let Some(citus) = CitusCluster::start(2).await else {
        skip(CITUS_INSTALL_HINT);
        return None;
    };
    let mut config = DemoConfig::new(citus.url());
    // Load tests: the Free plan's 20 requests per second would answer 429.
    config.rate_limits = false;
    config.redis_url = None;
    config.node_affine = node_affine;
    let (tenantry, app) = build(&config).await.expect("the demo builds on Citus");
    assert!(tenantry.is_citus());
    assert_eq!(tenantry.is_node_affine(), node_affine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .unwrap()
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Some(Demo {
        citus,
        base: format!("http://{addr}"),
        addr,
        client,
        tenantry,
    })
}

impl Demo {
    fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header("host", host)
    }

    fn post(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("host", host)
    }

    async fn signup(&self, sub: &str) {
        let r = self
            .post("localhost:8000", "/signup")
            .form(&[("name", sub), ("subdomain", sub)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "signup {sub}: {}", r.text().await.unwrap());
    }

    async fn add_note(&self, sub: &str, title: &str) -> reqwest::StatusCode {
        self.post(&format!("{sub}.localhost:8000"), "/api/notes")
            .json(&serde_json::json!({"title": title, "body": "b"}))
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn notes(&self, sub: &str) -> (u16, Vec<serde_json::Value>) {
        let r = self
            .get(&format!("{sub}.localhost:8000"), "/api/notes")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = if status == 200 {
            r.json().await.unwrap()
        } else {
            Vec::new()
        };
        (status, body)
    }

    async fn port_of(&self, schema: &str) -> u16 {
        self.tenantry
            .placement()
            .tenant_node(schema)
            .await
            .unwrap()
            .expect("distributed")
            .port
    }

    /// Raw request bytes with a given Host header: (status, body).
    async fn raw_host(&self, host: &[u8]) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut r = b"GET /api/notes HTTP/1.1\r\nHost: ".to_vec();
        r.extend_from_slice(host);
        r.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        s.write_all(&r).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_contract_isolation_and_hostile_hosts_on_citus() {
    contract_isolation_and_hostile_hosts(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_contract_isolation_and_hostile_hosts_on_citus_node_affine() {
    contract_isolation_and_hostile_hosts(true).await;
}

async fn contract_isolation_and_hostile_hosts(node_affine: bool) {
    let Some(d) = start(node_affine).await else {
        return;
    };
    for sub in ["acme", "globex", "initech", "hooli", "umbrella", "wonka"] {
        d.signup(sub).await;
    }
    // Schemas on both workers; nothing shared distributed.
    let nodes = d.tenantry.placement().nodes().await.unwrap();
    assert!(nodes[1].tenants > 0 && nodes[2].tenants > 0, "{nodes:?}");
    let shared: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM citus_schemas WHERE schema_name::text IN ('public', 'extensions')",
    )
    .fetch_one(d.tenantry.raw_pool())
    .await
    .unwrap();
    assert_eq!(shared, 0);

    // The contract.
    assert_eq!(d.add_note("acme", "acme secret").await, 201);
    assert_eq!(d.add_note("globex", "globex secret").await, 201);
    let (status, acme) = d.notes("acme").await;
    assert_eq!(status, 200);
    let titles: Vec<&str> = acme.iter().map(|n| n["title"].as_str().unwrap()).collect();
    assert!(
        titles.contains(&"acme secret") && !titles.contains(&"globex secret"),
        "{titles:?}"
    );
    let (_, globex) = d.notes("globex").await;
    assert!(globex.iter().all(|n| n["title"] != "acme secret"));
    // Another tenant's note id, asked in this tenant: this tenant's own note of that id (ids
    // come from each tenant's own sequence) or 404, never the other tenant's note.
    let acme_id = acme.iter().find(|n| n["title"] == "acme secret").unwrap()["id"].clone();
    let r = d
        .get("globex.localhost:8000", &format!("/api/notes/{acme_id}"))
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 200 | 404));
    assert!(!r.text().await.unwrap().contains("acme secret"));
    let r = d
        .get("acme.localhost:8000", &format!("/api/notes/{acme_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let who: serde_json::Value = d
        .get("acme.localhost:8000", "/api/whoami")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["tenant"], "acme");
    // The tenant home page reads its plan from the shared `plans` (a reference table).
    let home = d.get("acme.localhost:8000", "/").send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Free"));
    let tenants: Vec<serde_json::Value> = d
        .get("localhost:8000", "/api/tenants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenants.len(), 6);
    assert_eq!(
        d.get("nosuch.localhost:8000", "/")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Hostile hosts: 400 or 404, never a 500, never a tenant's notes.
    for host in [
        &b"acme.localhost:8000\x00globex.localhost"[..],
        b"acme'.localhost:8000",
        b"acme\".localhost",
        b"public.localhost:8000",
        b"extensions.localhost:8000",
        b"pg_catalog.localhost",
        b"acme.localhost:99999",
        b"..localhost",
        b"",
        b"acme.localhost:8000/../globex",
        b"ACME.LOCALHOST:8000.",
    ] {
        let (status, body) = d.raw_host(host).await;
        let shown = String::from_utf8_lossy(host);
        assert!(
            matches!(status, 200 | 400 | 404),
            "{shown:?}: {status} {body}"
        );
        assert!(
            !body.contains("globex secret"),
            "{shown:?} reached globex: {body}"
        );
        if status == 200 {
            assert!(
                body.contains("acme secret"),
                "{shown:?} is acme or nothing: {body}"
            );
        }
    }

    // Where the tenant transactions ran: the demo's own connections to each worker (Citus's
    // are named `citus_internal ...`) exist with node-affine routing only.
    for i in 0..2 {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&d.citus.worker_url(i))
            .await
            .unwrap();
        let direct: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND pid <> pg_backend_pid() AND application_name NOT LIKE 'citus%'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(
            direct > 0,
            node_affine,
            "worker {i}: {direct} direct connections"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_moves_under_posts_and_a_worker_down_answers_503_for_its_tenants_only() {
    move_under_posts_and_worker_down(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_affine_a_tenant_moves_under_posts_and_a_worker_down_answers_503_for_its_tenants_only()
{
    move_under_posts_and_worker_down(true).await;
}

async fn move_under_posts_and_worker_down(node_affine: bool) {
    let Some(d) = start(node_affine).await else {
        return;
    };
    for sub in ["mover", "a1", "a2", "a3", "a4"] {
        d.signup(sub).await;
    }
    let from = d.port_of("mover").await;
    let to = *d.citus.worker_ports().iter().find(|p| **p != from).unwrap();

    // A steady stream of POSTs while the tenant moves; a 503 is retried (documented).
    const POSTS: usize = 320;
    let d = Arc::new(d);
    let sent = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (d, sent, retried) = (d.clone(), sent.clone(), retried.clone());
        tokio::spawn(async move {
            for i in 0..POSTS {
                loop {
                    match d.add_note("mover", &format!("p{i}")).await.as_u16() {
                        201 => break,
                        503 => {
                            retried.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("POST {i} answered {other}"),
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let reader = {
        let (d, sent) = (d.clone(), sent.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while sent.load(Ordering::Relaxed) < POSTS {
                let (status, _) = d.notes("mover").await;
                assert_eq!(status, 200, "the tenant stays readable while it moves");
                reads += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            reads
        })
    };
    while sent.load(Ordering::Relaxed) < 40 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = d
        .tenantry
        .placement()
        .move_tenant("mover", "127.0.0.1", to, |_| {})
        .await
        .expect("move");
    let during = sent.load(Ordering::Relaxed);
    writer.await.unwrap();
    let reads = reader.await.unwrap();
    eprintln!(
        "move {:?}: {during}/{POSTS} POSTs done when it ended, {} retried (503), {reads} reads",
        report.elapsed,
        retried.load(Ordering::Relaxed)
    );
    assert!(
        during < POSTS,
        "the move ended after the POSTs: nothing was tested"
    );
    assert_eq!(d.port_of("mover").await, to, "served from the new node");
    assert_eq!(d.notes("mover").await.0, 200);
    // The API lists the latest notes only: count them all in the tenant's schema.
    let mut tx = d.tenantry.admin().begin_schema("mover").await.unwrap();
    let (posted, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT title) FROM notes WHERE title LIKE 'p%'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    if posted != POSTS as i64 {
        // Say which writes are missing and whether the old node's copy holds them.
        let mut tx = d.tenantry.admin().begin_schema("mover").await.unwrap();
        let have: Vec<String> = sqlx::query_scalar("SELECT title FROM notes")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let missing: Vec<usize> = (0..POSTS)
            .filter(|i| !have.contains(&format!("p{i}")))
            .collect();
        let shard: i64 = sqlx::query_scalar(
            "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'mover.notes'::regclass",
        )
        .fetch_one(d.tenantry.raw_pool())
        .await
        .unwrap();
        let old = format!(
            "postgres://postgres@127.0.0.1:{from}/{}",
            tenantry_testing::CITUS_DATABASE
        );
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&old)
            .await
            .unwrap();
        // An integer we read, not text: safe to spell into the statement.
        let left: Result<Vec<String>, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT title FROM mover.notes_{shard}"
        )))
        .fetch_all(&mut c)
        .await;
        let on_old: Vec<usize> = missing
            .iter()
            .copied()
            .filter(|i| left.as_ref().is_ok_and(|l| l.contains(&format!("p{i}"))))
            .collect();
        panic!("POSTs answered 201 but missing: {missing:?}; of them on the old node: {on_old:?}");
    }
    assert_eq!(
        (posted, distinct),
        (POSTS as i64, POSTS as i64),
        "every POST answered 201 is there, once"
    );

    // A worker down: its tenants 503, the others served.
    let down = d.citus.worker_ports()[0];
    let mut on_down = Vec::new();
    let mut on_up = Vec::new();
    for sub in ["mover", "a1", "a2", "a3", "a4"] {
        if d.port_of(sub).await == down {
            on_down.push(sub);
        } else {
            on_up.push(sub);
        }
    }
    assert!(
        !on_down.is_empty() && !on_up.is_empty(),
        "{on_down:?} {on_up:?}"
    );
    tokio::task::block_in_place(|| d.citus.stop_worker(0));
    for sub in &on_down {
        let (status, _) = d.notes(sub).await;
        assert_eq!(status, 503, "{sub} on the stopped worker");
        assert_eq!(d.add_note(sub, "lost?").await, 503);
    }
    for sub in &on_up {
        let (status, notes) = d.notes(sub).await;
        assert_eq!(status, 200, "{sub} on the live worker");
        assert!(notes.iter().all(|n| n["title"] != "acme secret"));
        assert_eq!(d.add_note(sub, "still here").await, 201);
    }
    tokio::task::block_in_place(|| d.citus.start_worker(0));
}
