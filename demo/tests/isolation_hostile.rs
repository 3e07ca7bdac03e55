//! Hostile input over real HTTP and into the life cycle.
//!
//! * A corpus of nasty `Host` headers / request targets sent as raw bytes over a `TcpStream`:
//!   each answers 400 or 404, or the right tenant where it legitimately is the same host; never
//!   500, never another tenant.
//! * Schema names and domains given to create/rename/add_domain: each refused with a clear error
//!   and nothing executed (no schema, no row, no domain).

mod isolation_support;

use std::time::Duration;

use isolation_support::*;
use tenantry::{Error, NewTenant};
use tenantry_testing::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw request bytes, returns (status, body).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
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

fn get_with_host(host: &[u8]) -> Vec<u8> {
    let mut r = b"GET /read HTTP/1.1\r\nHost: ".to_vec();
    r.extend_from_slice(host);
    r.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nasty_hosts_never_reach_another_tenant() {
    let db = TestDb::new().await;
    let tenantry = connect(db.url().parse().unwrap(), 4, Duration::from_secs(10), |b| b).await;
    create_tenants(&tenantry, 3).await; // t000.test, t001.test, t002.test
    let stack = serve(
        tenantry.clone(),
        3,
        AppOptions {
            unnamed_statements: false,
        },
    )
    .await;
    let addr = stack.addr;

    // (request bytes, the tenant it legitimately reaches, if any)
    let long_label = "a".repeat(64);
    let long_name = vec!["abcdefghi"; 30].join(".");
    let mut corpus: Vec<(String, Vec<u8>, Option<&str>)> = Vec::new();
    let mut host = |h: &[u8], ok: Option<&'static str>| {
        corpus.push((
            String::from_utf8_lossy(h).into_owned(),
            get_with_host(h),
            ok,
        ));
    };
    // Legitimately the same host.
    host(b"t001.test", Some("t001"));
    host(b"T001.TEST", Some("t001"));
    host(b"t001.test.", Some("t001"));
    host(b"t001.test:8080", Some("t001"));
    host(b"T001.Test.:80", Some("t001"));
    // Unknown, malformed, hostile.
    for h in [
        &b""[..],
        b" ",
        b"t001.test..",
        b"t001..test",
        b".t001.test",
        b"t001.test:",
        b"t001.test:abc",
        b"t001.test:99999",
        b"t001.test:80:80",
        b"t001.test/evil",
        b"t001.test\\evil",
        b"t001.test#x",
        b"t001.test?x",
        b"user@t001.test",
        b"t001.test@t002.test",
        b"t002.test@t001.test",
        b"t001.test t002.test",
        b"t001.test,t002.test",
        b"t001.test\tt002.test",
        b"t001.test\x00",
        b"t001.test\x7f",
        b"t001.test\x1b[31m",
        b"127.0.0.1",
        b"127.0.0.1:8000",
        b"0x7f.0.0.1",
        b"2130706433",
        b"[::1]",
        b"[::1]:80",
        b"[::ffff:127.0.0.1]",
        b"[t001.test]",
        b"[::1",
        b"::1",
        b"xn--t001-test",
        b"xn--bcher-kva.test",
        "t\u{f6}01.test".as_bytes(),
        "t001.t\u{e9}st".as_bytes(),
        b"t001.test\xff\xfe",
        b"\xc0\xae\xc0\xae",
        "\u{2024}t001.test".as_bytes(),
        "t001\u{3002}test".as_bytes(),
        long_label.as_bytes(),
        format!("{long_label}.test").as_bytes(),
        long_name.as_bytes(),
        "a".repeat(10_000).as_bytes(),
        b"t001.test'; DROP SCHEMA t002 CASCADE; --",
        b"' OR '1'='1",
        b"t002\".notes",
        b"$1",
        b"%74001.test",
        b"t001.test%00",
        b"-t001.test",
        b"t001-.test",
        b"t_001.test",
        b"*.test",
        b"t00?.test",
        b"public.test.evil",
        b"localhost",
    ] {
        host(h, None);
    }
    // Requests the `host()` helper can't express.
    corpus.push((
        "missing Host".into(),
        b"GET /read HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        None,
    ));
    corpus.push((
        "duplicate Host".into(),
        b"GET /read HTTP/1.1\r\nHost: t001.test\r\nHost: t002.test\r\nConnection: close\r\n\r\n"
            .to_vec(),
        None,
    ));
    corpus.push((
        "duplicate same Host".into(),
        b"GET /read HTTP/1.1\r\nHost: t001.test\r\nHost: t001.test\r\nConnection: close\r\n\r\n"
            .to_vec(),
        None,
    ));
    corpus.push((
        "absolute-form for t002, Host t001".into(),
        b"GET http://t002.test/read HTTP/1.1\r\nHost: t001.test\r\nConnection: close\r\n\r\n"
            .to_vec(),
        Some("t002"),
    ));
    corpus.push((
        "absolute-form with userinfo".into(),
        b"GET http://user@t001.test/read HTTP/1.1\r\nHost: t001.test\r\nConnection: close\r\n\r\n"
            .to_vec(),
        None,
    ));
    corpus.push((
        "absolute-form unknown host".into(),
        b"GET http://evil.test/read HTTP/1.1\r\nHost: t001.test\r\nConnection: close\r\n\r\n"
            .to_vec(),
        None,
    ));
    corpus.push((
        "HTTP/1.0 without Host".into(),
        b"GET /read HTTP/1.0\r\n\r\n".to_vec(),
        None,
    ));
    corpus.push((
        "Host with folded continuation".into(),
        b"GET /read HTTP/1.1\r\nHost: t001.test\r\n t002.test\r\nConnection: close\r\n\r\n"
            .to_vec(),
        None,
    ));
    assert!(corpus.len() >= 50, "{} cases", corpus.len());

    let mut failures = Vec::new();
    for (label, request, legit) in &corpus {
        let (status, body) = raw(addr, request).await;
        let ok = match legit {
            Some(t) => {
                status == 200
                    && serde_json::from_str::<Obs>(&body).is_ok_and(|o| check(&o, t).is_none())
            }
            // 400 from hyper (malformed request line/headers) or Tenantry; 404 unknown host.
            None => matches!(status, 400 | 404) && !body.contains("\"t0"),
        };
        if !ok {
            failures.push(format!("{label:?}: {status} {body:.120}"));
        }
    }
    eprintln!(
        "[hostile] {} Host cases sent over TCP, {} unexpected",
        corpus.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    drop(stack);
    tenantry.close().await;
}

#[tokio::test]
async fn nasty_names_are_refused_before_anything_runs() {
    let db = TestDb::new().await;
    let tenantry = connect(db.url().parse().unwrap(), 2, Duration::from_secs(10), |b| b).await;
    create_tenants(&tenantry, 1).await; // t000 at t000.test
    let snapshot = || async {
        let schemas: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1",
        )
        .fetch_all(tenantry.raw_pool())
        .await
        .unwrap();
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT t.schema_name || '@' || d.domain FROM tenantry_tenants t JOIN tenantry_domains d ON d.tenant_id = t.id ORDER BY 1",
        )
        .fetch_all(tenantry.raw_pool())
        .await
        .unwrap();
        (schemas, rows)
    };
    let before = snapshot().await;

    let bad_schemas = [
        "",
        "Acme",
        "ACME",
        "T000",
        "acme\"; DROP SCHEMA t000 CASCADE; --",
        "a'b",
        "a;b",
        "a b",
        "a-b",
        "a.b",
        "t000.notes",
        "1acme",
        "\u{fc}mlaut",
        "acme\u{200b}",
        "acme\0",
        "acme\n",
        &"a".repeat(64),
        &"a".repeat(1000),
        "pg_catalog",
        "pg_temp",
        "pg_toast",
        "pg_anything",
        "public",
        "information_schema",
        "tenantry_template",
        "t000", // exists already
    ];
    for name in bad_schemas {
        let r = tenantry
            .admin()
            .create_tenant(NewTenant::new(name, "fresh.test"))
            .await;
        let err = r
            .err()
            .unwrap_or_else(|| panic!("schema {name:?} accepted"));
        assert!(
            matches!(err, Error::InvalidName(_) | Error::TenantNameTaken { .. }),
            "schema {name:?}: unexpected error kind {err:?}"
        );
        assert!(!err.to_string().is_empty());
        let r = tenantry.admin().rename_tenant("t000", name).await;
        assert!(r.is_err(), "rename to {name:?} accepted");
    }
    let bad_domains = [
        "",
        "UPPER..test",
        "a_b.test",
        "evil.test'; DROP TABLE tenantry_domains; --",
        "t000.test",    // taken
        "T000.TEST.",   // taken, case/dot variant
        "t000.test:80", // taken, port variant
        "public.test",  // a public domain
        "127.0.0.1",
        "[::1]",
        "1.2.3.4",
        "\u{fc}ber.test",
        "-a.test",
        "a-.test",
        "user@host.test",
        "a b.test",
        "a/b.test",
        &format!("{}.test", "a".repeat(64)),
        &vec!["abcdefghi"; 30].join("."),
        "a\0.test",
    ];
    for domain in bad_domains {
        let r = tenantry
            .admin()
            .create_tenant(NewTenant::new("fresh", domain))
            .await;
        let err = r
            .err()
            .unwrap_or_else(|| panic!("domain {domain:?} accepted for create"));
        assert!(
            matches!(
                err,
                Error::InvalidName(_)
                    | Error::InvalidDomain { .. }
                    | Error::DomainTaken { .. }
                    | Error::DomainIsPublic { .. }
            ),
            "domain {domain:?}: unexpected error kind {err:?}"
        );
        let r = tenantry.admin().add_domain("t000", domain, false).await;
        assert!(r.is_err(), "domain {domain:?} accepted for add_domain");
    }
    assert_eq!(
        snapshot().await,
        before,
        "a refused call changed the database"
    );
    eprintln!(
        "[hostile] {} schema names and {} domains refused, database unchanged",
        bad_schemas.len(),
        bad_domains.len()
    );
    tenantry.close().await;
}
