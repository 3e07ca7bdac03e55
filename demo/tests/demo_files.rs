//! The demo's files and cache over real HTTP: the attachments contract (201, bytes, 404 on
//! another tenant, 400 for `..` and `/`, 413 past the body limit) on the real filesystem, and
//! the home page's note count cached on real Redis (and in process), invalidated by a new note.

mod serve_support;

use std::path::PathBuf;

use tenantry_cache::TenantCache;
use tenantry_demo::attachments::{
    MAX_ATTACHMENT_BYTES, NOTE_COUNT_KEY, NOTES_GENERATION_KEY, connect_cache, database_namespace,
};
use tenantry_demo::{DemoConfig, build};
use tenantry_testing::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A Redis cache to look into, or `None` when Redis is not reachable (skipped visibly; fails
/// under CI).
async fn redis_probe() -> Option<TenantCache> {
    match TenantCache::redis(REDIS_URL).await {
        Ok(cache) => Some(cache),
        Err(e) => {
            tenantry_testing::skip(format!("Redis is not reachable at {REDIS_URL}: {e}"));
            None
        }
    }
}

struct Server {
    base: String,
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    tenantry: tenantry::Tenantry,
    files_dir: tempfile::TempDir,
    /// The server's cache (shared with it).
    cache: TenantCache,
    db: TestDb,
}

impl Server {
    async fn start(redis_url: Option<&str>) -> Self {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let db = TestDb::new().await;
        let files_dir = tempfile::tempdir().unwrap();
        let mut config = DemoConfig::new(db.url());
        // Far more requests per tenant than the Free plan's burst of 40 (limits: demo_limits).
        config.rate_limits = false;
        config.files_dir = files_dir.path().to_owned();
        config.redis_url = redis_url.map(str::to_owned);
        // What `build` does when `cache` is unset; kept here to look into it.
        let cache = connect_cache(&config).await;
        config.cache = Some(cache.clone());
        let (tenantry, app) = build(&config).await.expect("demo builds");
        let addr = serve_support::serve(app).await;
        let client = serve_support::client();
        Server {
            base: format!("http://{addr}"),
            addr,
            client,
            tenantry,
            files_dir,
            cache,
            db,
        }
    }

    async fn signup(&self, subdomain: &str) -> i64 {
        serve_support::signup(&self.client, &self.base, subdomain).await;
        self.tenantry.admin().tenant(subdomain).await.unwrap().id
    }

    fn host(tenant: &str) -> String {
        format!("{tenant}.localhost")
    }

    async fn put(&self, tenant: &str, name: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(format!("{}/api/attachments/{name}", self.base))
            .header("host", Self::host(tenant))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, tenant: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("host", Self::host(tenant))
            .send()
            .await
            .unwrap()
    }

    /// The status of a request sent byte for byte (no client normalises `..` away).
    async fn raw_status(&self, method: &str, tenant: &str, target: &str) -> u16 {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
            Self::host(tenant)
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        text.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// Every file under the files directory, relative, with `/`.
    fn files_on_disk(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out)
                } else {
                    out.push(path)
                }
            }
        }
        let mut out = Vec::new();
        walk(self.files_dir.path(), &mut out);
        let mut names: Vec<String> = out
            .iter()
            .map(|p| {
                p.strip_prefix(self.files_dir.path())
                    .unwrap()
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn attachments_belong_to_their_tenant() {
    let s = Server::start(None).await;
    let acme = s.signup("acme").await;
    let globex = s.signup("globex").await;

    assert_eq!(
        s.put("acme", "report.txt", b"acme's report".to_vec())
            .await
            .status(),
        201
    );
    let r = s.get("acme", "/api/attachments/report.txt").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), &b"acme's report"[..]);

    // Another tenant asking for the same name: 404, JSON.
    let r = s.get("globex", "/api/attachments/report.txt").await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "attachment_not_found");

    // Same name, its own bytes; replacing keeps the other's.
    assert_eq!(
        s.put("globex", "report.txt", vec![0, 159, 255])
            .await
            .status(),
        201
    );
    assert_eq!(
        s.put("acme", "report.txt", b"v2".to_vec()).await.status(),
        201
    );
    let r = s.get("globex", "/api/attachments/report.txt").await;
    assert_eq!(r.bytes().await.unwrap(), &[0, 159, 255][..]);
    let r = s.get("acme", "/api/attachments/report.txt").await;
    assert_eq!(r.bytes().await.unwrap(), &b"v2"[..]);
    // Unicode and dots inside a name are fine.
    assert_eq!(
        s.put("acme", "r%C3%A9sum%C3%A9.v1.pdf", b"x".to_vec())
            .await
            .status(),
        201
    );
    assert_eq!(
        s.get("acme", "/api/attachments/r%C3%A9sum%C3%A9.v1.pdf")
            .await
            .status(),
        200
    );

    // Names that climb or hold separators: 400 (encoded and raw), nothing written.
    for name in [
        // (A client resolves `..`, `.`, `%2E%2E` itself: those are sent raw below.)
        "..%2Fglobex",
        "a%2Fb",
        "a%5Cb",
        "a%00b",
        "a%0Ab",
        "%252F",
        "x..y",
        "%2Ftmp%2Fx",
    ] {
        let r = s.put("acme", name, b"evil".to_vec()).await;
        assert_eq!(r.status(), 400, "POST {name}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "invalid_name", "{name}");
        assert_eq!(
            s.get("acme", &format!("/api/attachments/{name}"))
                .await
                .status(),
            400,
            "GET {name}"
        );
    }
    for target in [
        "/api/attachments/..",
        "/api/attachments/.",
        "/api/attachments/%2E%2E",
        "/api/attachments/%2e%2E",
        "/api/attachments/%2E",
        "/api/attachments/../notes",
        "/api/attachments/a/b",
        "/api/attachments/../../tenant-1/report.txt",
        "/api/attachments/sub/../report.txt",
    ] {
        assert_eq!(
            s.raw_status("POST", "acme", target).await,
            400,
            "POST {target}"
        );
        assert_eq!(
            s.raw_status("GET", "acme", target).await,
            400,
            "GET {target}"
        );
    }

    // The tenant layer's buffering limit is the route's: one byte over it is 413.
    let r = s
        .put("acme", "big.bin", vec![7; MAX_ATTACHMENT_BYTES])
        .await;
    assert_eq!(r.status(), 201);
    let r = s
        .put("acme", "bigger.bin", vec![7; MAX_ATTACHMENT_BYTES + 1])
        .await;
    assert_eq!(r.status(), 413);

    // On disk: under the database's folder, then the tenant's id; nothing else.
    let ns = database_namespace(s.db.url());
    assert_eq!(
        s.files_on_disk(),
        [
            format!("{ns}/tenant-{acme}/big.bin"),
            format!("{ns}/tenant-{acme}/report.txt"),
            format!("{ns}/tenant-{acme}/résumé.v1.pdf"),
            format!("{ns}/tenant-{globex}/report.txt"),
        ]
    );
}

/// The note count on the home page, and whether it came from the cache.
async fn home_count(s: &Server, tenant: &str) -> (i64, String) {
    let r = s.get(tenant, "/").await;
    assert_eq!(r.status(), 200);
    let state = r.headers()["x-note-count-cache"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = r.text().await.unwrap();
    let count = html
        .split("<span id=\"note-count\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .parse()
        .unwrap();
    (count, state)
}

async fn note_count_is_cached_and_invalidated(s: &Server) -> Vec<i64> {
    let acme = s.signup("acme").await;
    let globex = s.signup("globex").await;
    // The welcome note.
    assert_eq!(home_count(s, "acme").await, (1, "miss".into()));
    assert_eq!(home_count(s, "acme").await, (1, "hit".into()));
    assert_eq!(home_count(s, "globex").await, (1, "miss".into()));
    let r = s
        .client
        .post(format!("{}/api/notes", s.base))
        .header("host", Server::host("acme"))
        .json(&serde_json::json!({"title": "second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(home_count(s, "acme").await, (2, "miss".into()));
    assert_eq!(home_count(s, "acme").await, (2, "hit".into()));
    // The other tenant's count is its own.
    assert_eq!(home_count(s, "globex").await, (1, "hit".into()));

    // A count taken before a note's commit but stored after it (a slow home page) is never
    // served: it carries the generation from before the note.
    let cache = s.cache.for_tenant_id(acme);
    let before: String = cache.get_json(NOTES_GENERATION_KEY).await.unwrap().unwrap();
    let r = s
        .client
        .post(format!("{}/api/notes", s.base))
        .header("host", Server::host("acme"))
        .json(&serde_json::json!({"title": "third"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    cache
        .set_json(NOTE_COUNT_KEY, &(before, 2_i64), None)
        .await
        .unwrap();
    assert_eq!(home_count(s, "acme").await, (3, "miss".into()));
    assert_eq!(home_count(s, "acme").await, (3, "hit".into()));
    vec![acme, globex]
}

#[tokio::test]
async fn note_count_cached_in_process() {
    let s = Server::start(None).await;
    assert_eq!(s.cache.backend_name(), "in-process");
    note_count_is_cached_and_invalidated(&s).await;
}

#[tokio::test]
async fn note_count_cached_on_redis() {
    let Some(probe) = redis_probe().await else {
        return;
    };
    let s = Server::start(Some(REDIS_URL)).await;
    let ids = note_count_is_cached_and_invalidated(&s).await;
    // The keys are in Redis under this database's namespace and the tenants' ids; removed.
    assert_eq!(s.cache.backend_name(), "redis");
    let cache = probe.namespace(&database_namespace(s.db.url())).unwrap();
    for id in ids {
        // The count and its generation.
        assert_eq!(cache.drop_tenant(id).await.unwrap(), 2, "tenant {id}");
    }
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_in_process() {
    let s = Server::start(Some("redis://127.0.0.1:1")).await;
    assert_eq!(s.cache.backend_name(), "in-process");
    note_count_is_cached_and_invalidated(&s).await;
}

/// The binary: `TENANTRY_DEMO_FILES_DIR` is where attachments go, and without Redis the demo
/// still runs, saying so in one log line.
#[tokio::test]
async fn binary_uses_files_dir_and_says_when_redis_is_missing() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let db = TestDb::new().await;
    let files_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry-demo"))
        .env("DATABASE_URL", db.url())
        .env("TENANTRY_DEMO_ADDR", format!("127.0.0.1:{port}"))
        .env("TENANTRY_DEMO_FILES_DIR", files_dir.path())
        .env("TENANTRY_DEMO_REDIS_URL", "redis://127.0.0.1:1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tenantry-demo");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the demo stopped");
        match client
            .get(format!("{base}/api/tenants"))
            .header("host", "localhost")
            .send()
            .await
        {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the demo never answered: {e}"),
        }
    }
    let r = client
        .post(format!("{base}/signup"))
        .header("host", "localhost")
        .form(&[("name", "acme"), ("subdomain", "acme")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = client
        .post(format!("{base}/api/attachments/hello.txt"))
        .header("host", "acme.localhost")
        .body("hi")
        .send()
        .await
        .unwrap();
    let put = r.status();
    let r = client
        .get(format!("{base}/"))
        .header("host", "acme.localhost")
        .send()
        .await
        .unwrap();
    let home = (r.status(), r.headers().get("x-note-count-cache").cloned());
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(put, 201, "{log}");
    assert_eq!(home.0, 200, "{log}");
    assert_eq!(home.1.unwrap(), "miss");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("cache: ")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("cache: in-process") && lines[0].contains("redis://127.0.0.1:1"),
        "{}",
        lines[0]
    );
    let ns = database_namespace(db.url());
    let tenants: Vec<_> = std::fs::read_dir(files_dir.path().join(ns))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(tenants.len(), 1, "{tenants:?}");
    assert!(
        tenants[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("tenant-")
    );
    assert_eq!(std::fs::read(tenants[0].join("hello.txt")).unwrap(), b"hi");
}

/// `tenantry-demo tenant delete` (the CLI, another process) removes the tenant's attachments
/// and its Redis keys once the deletion has committed, and nothing of the other tenants.
#[tokio::test]
async fn cli_delete_drops_the_tenants_files_and_cache_keys() {
    let Some(probe) = redis_probe().await else {
        return;
    };
    let s = Server::start(Some(REDIS_URL)).await;
    let acme = s.signup("acme").await;
    let globex = s.signup("globex").await;
    for tenant in ["acme", "globex"] {
        assert_eq!(s.put(tenant, "a.txt", b"x".to_vec()).await.status(), 201);
        assert_eq!(home_count(&s, tenant).await, (1, "miss".into()));
    }
    let ns = database_namespace(s.db.url());
    assert_eq!(
        s.files_on_disk(),
        [
            format!("{ns}/tenant-{acme}/a.txt"),
            format!("{ns}/tenant-{globex}/a.txt")
        ]
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantry-demo"))
        .args(["tenant", "delete", "acme", "--yes"])
        .env("DATABASE_URL", s.db.url())
        .env("TENANTRY_DEMO_FILES_DIR", s.files_dir.path())
        .env("TENANTRY_DEMO_REDIS_URL", REDIS_URL)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        s.files_on_disk(),
        [format!("{ns}/tenant-{globex}/a.txt")],
        "{stderr}"
    );
    let cache = probe.namespace(&ns).unwrap();
    assert_eq!(
        cache.drop_tenant(acme).await.unwrap(),
        0,
        "acme's keys are gone"
    );
    assert_eq!(home_count(&s, "globex").await, (1, "hit".into()));
    assert_eq!(cache.drop_tenant(globex).await.unwrap(), 2);
}
