//! The console's tenant data tools over HTTP against a real PostgreSQL: a clone holds its
//! source's rows, an export downloaded and uploaded again round-trips them, the library's
//! refusals are shown on the tenant's page, and without a session or a valid CSRF token
//! nothing is copied, downloaded or created.

mod support;

use std::fmt::Write as _;

use support::{Served, csrf_in};
use tenantry_sqlx::{MigrationSet, NewTenant, Tenantry};
use tenantry_testing::{NOTES_TABLE, TestDb, TestTenants};

/// Every row of `schema`'s notes, as JSON, in id order.
async fn notes(tenantry: &Tenantry, schema: &str) -> Vec<String> {
    let mut tx = tenantry.admin().begin_schema(schema).await.unwrap();
    sqlx::query_scalar("SELECT to_jsonb(n)::text FROM notes n ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
}

/// A tenant with `n` notes (awkward text included) and a gap in its ids.
async fn tenant_with_notes(s: &Served, n: i64) -> String {
    let t = TestTenants::new(&s.tenantry).create().await.unwrap();
    let mut tx = s.tenantry.begin(&t.tenant).await.unwrap();
    sqlx::query("INSERT INTO notes (title) SELECT 'note ' || i || E'\\t\\\\ \\n ü' FROM generate_series(1, $1) i")
        .bind(n)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM notes WHERE id = 2")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    t.tenant.schema.clone()
}

/// Registered tenants and schemas: what a refused action must leave as it was.
async fn fleet(s: &Served) -> (Vec<String>, i64) {
    let names = s
        .tenantry
        .admin()
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.schema)
        .collect();
    let pool = sqlx::PgPool::connect(s.db.url()).await.unwrap();
    let schemas = sqlx::query_scalar("SELECT count(*) FROM pg_namespace")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    (names, schemas)
}

/// A `multipart/form-data` body of `fields` in this order (`archive` as a file) and its
/// content type.
fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "tenantry-test-7f3a9c";
    let mut body = Vec::new();
    for (name, value) in fields {
        let mut head = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"");
        if *name == "archive" {
            head.push_str("; filename=\"t.tenant.tar.gz\"\r\nContent-Type: application/gzip");
        }
        head.push_str("\r\n\r\n");
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    let mut end = String::new();
    write!(end, "--{boundary}--\r\n").unwrap();
    body.extend_from_slice(end.as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts `fields` as multipart to `url`.
async fn upload(
    client: &reqwest::Client,
    url: &str,
    fields: &[(&str, &[u8])],
) -> reqwest::Response {
    let (content_type, body) = multipart(fields);
    client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The archive of `schema` through the export form.
async fn download(s: &Served, client: &reqwest::Client, token: &str, schema: &str) -> Vec<u8> {
    let r = client
        .post(format!("{}/tenants/{schema}/export", s.base))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/gzip");
    let today = chrono::Utc::now().format("%Y-%m-%d");
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{schema}-{today}.tenant.tar.gz\"").as_str()
    );
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "a gzip stream");
    bytes
}

#[tokio::test]
async fn a_clone_through_the_console_holds_the_same_rows() {
    let s = Served::start().await;
    let src = tenant_with_notes(&s, 40).await;
    let (client, token) = s.signed_in().await;
    let url = format!("{}/tenants/{src}/clone", s.base);

    // The tenant's page offers the three tools, each form with the session's token.
    let page = s.page(&client, &format!("/tenants/{src}")).await;
    for action in ["clone", "export", "import"] {
        let form = format!("action=\"/admin/tenants/{src}/{action}\"");
        let at = page
            .find(&form)
            .unwrap_or_else(|| panic!("{action}: {page}"));
        assert_eq!(csrf_in(&page[at..]).as_deref(), Some(token.as_str()));
    }

    let rows = notes(&s.tenantry, &src).await;
    let r = client
        .post(&url)
        .form(&[
            ("new_name", "copy_one"),
            ("domain", "copy-one.test"),
            ("display_name", "Copy One"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        // Every table's rows: the notes and the one row of the migration history.
        format!(
            "/admin/tenants/copy_one?done=cloned&from={src}&rows={}",
            rows.len() + 1
        )
    );
    assert_eq!(notes(&s.tenantry, "copy_one").await, rows);
    let copy = s.tenantry.admin().tenant("copy_one").await.unwrap();
    assert_eq!(copy.display_name, "Copy One");
    assert_eq!(copy.primary_domain.as_deref(), Some("copy-one.test"));
    let origin = location.split("/admin").nth(1).unwrap();
    let page = s.page(&client, origin).await;
    assert!(
        page.contains(&format!(
            "Created as a copy of {src}: {} row(s) copied.",
            rows.len() + 1
        )),
        "{page}"
    );
    // Another text in `from` than a schema name is not echoed.
    let page = s
        .page(
            &client,
            "/tenants/copy_one?done=cloned&from=Call+us+now&rows=1",
        )
        .await;
    assert!(!page.contains("Call us"));

    // Refusals are shown beside the clone form, which keeps what was typed; nothing is made.
    let before = fleet(&s).await;
    for (new_name, domain, status, says) in [
        (
            "copy_one",
            "other.test",
            409,
            "tenant name \"copy_one\" is taken",
        ),
        ("copy_two", "copy-one.test", 409, "is already taken"),
        ("copy_two", "not a domain", 422, "domain \"not a domain\""),
        ("Bad-Name", "bad.test", 422, "Bad-Name"),
    ] {
        let r = client
            .post(&url)
            .form(&[
                ("new_name", new_name),
                ("domain", domain),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{new_name} at {domain}");
        let page = r.text().await.unwrap().replace("&quot;", "\"");
        let error = page.find("class=\"error\"").expect("an inline error");
        assert!(page[error..].contains(says), "{says}: {page}");
        assert!(
            page.contains(&format!("value=\"{domain}\"")),
            "the form is refilled"
        );
    }
    assert_eq!(fleet(&s).await, before);

    // The copy's identity continues past the source's rows.
    let mut tx = s.tenantry.admin().begin_schema("copy_one").await.unwrap();
    let (max, id): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT max(id) FROM notes), (SELECT nextval(pg_get_serial_sequence('notes', 'id')))",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(id, max + 1);
}

#[tokio::test]
async fn an_exported_download_uploaded_again_round_trips_the_rows() {
    let s = Served::start().await;
    let src = tenant_with_notes(&s, 300).await;
    let (client, token) = s.signed_in().await;
    let archive = download(&s, &client, &token, &src).await;
    let rows = notes(&s.tenantry, &src).await;
    let url = format!("{}/tenants/{src}/import", s.base);

    let r = upload(
        &client,
        &url,
        &[
            ("csrf_token", token.as_bytes()),
            ("new_name", b"restored"),
            ("domain", b"restored.test"),
            ("display_name", b"Restored Co"),
            ("archive", &archive),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        // The notes and the migration history's row.
        format!(
            "/admin/tenants/restored?done=imported&rows={}",
            rows.len() + 1
        )
        .as_str()
    );
    assert_eq!(notes(&s.tenantry, "restored").await, rows);
    let restored = s.tenantry.admin().tenant("restored").await.unwrap();
    assert_eq!(restored.display_name, "Restored Co");
    assert_eq!(restored.primary_domain.as_deref(), Some("restored.test"));

    // Refused archives are explained on the page; nothing is created.
    let before = fleet(&s).await;
    let other = TestDb::new().await;
    let newer = other
        .tenantry(Tenantry::builder().tenant_migration_set(
            "default",
            MigrationSet::from_sql(&[
                (1, "notes", NOTES_TABLE),
                (
                    2,
                    "pinned",
                    "ALTER TABLE notes ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE",
                ),
            ]),
        ))
        .await;
    newer
        .admin()
        .create_tenant(NewTenant::new("later", "later.test"))
        .await
        .unwrap();
    let (from_newer, _) = newer
        .admin()
        .export_tenant("later", Vec::new())
        .await
        .unwrap();
    let truncated = archive[..archive.len() / 2].to_vec();
    for (bytes, says) in [
        (
            from_newer,
            "migration 2 (pinned), newer than this application's latest",
        ),
        (truncated, "not a usable tenant archive"),
        (b"not an archive".to_vec(), "not a usable tenant archive"),
    ] {
        let r = upload(
            &client,
            &url,
            &[
                ("csrf_token", token.as_bytes()),
                ("new_name", b"imported"),
                ("domain", b"imported.test"),
                ("archive", &bytes),
            ],
        )
        .await;
        assert_eq!(r.status(), 422, "{says}");
        let page = r.text().await.unwrap().replace("&quot;", "\"");
        let error = page.find("class=\"error\"").expect("an inline error");
        assert!(page[error..].contains(says), "{says}: {page}");
        assert!(
            page.contains("value=\"imported.test\""),
            "the form is refilled"
        );
    }
    // A form without its file.
    let r = upload(
        &client,
        &url,
        &[
            ("csrf_token", token.as_bytes()),
            ("new_name", b"imported"),
            ("domain", b"imported.test"),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Choose an archive file"));
    assert_eq!(fleet(&s).await, before);

    // An unknown tenant has nothing to export.
    let r = client
        .post(format!("{}/tenants/nobody_here/export", s.base))
        .form(&[("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("content-disposition").is_none());
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_while_it_streams() {
    let s = Served::start_with(|console| console.max_archive_bytes(64 * 1024)).await;
    let t = TestTenants::new(&s.tenantry).create().await.unwrap();
    let mut tx = s.tenantry.begin(&t.tenant).await.unwrap();
    // md5 text barely compresses: the archive is well over 64 KiB.
    sqlx::query("INSERT INTO notes (title) SELECT md5(i::text) FROM generate_series(1, 20000) i")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (client, token) = s.signed_in().await;
    let archive = download(&s, &client, &token, &t.tenant.schema).await;
    assert!(archive.len() > 128 * 1024, "{} bytes", archive.len());
    let before = fleet(&s).await;
    let r = upload(
        &client,
        &format!("{}/tenants/{}/import", s.base, t.tenant.schema),
        &[
            ("csrf_token", token.as_bytes()),
            ("new_name", b"too_big"),
            ("domain", b"too-big.test"),
            ("archive", &archive),
        ],
    )
    .await;
    assert_eq!(r.status(), 413);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("larger than the console accepts (65536 bytes)")
    );
    assert_eq!(fleet(&s).await, before);
}

#[tokio::test]
async fn data_tools_are_refused_without_a_session_or_a_valid_csrf_token() {
    let s = Served::start().await;
    let src = tenant_with_notes(&s, 5).await;
    let (client, token) = s.signed_in().await;
    let archive = download(&s, &client, &token, &src).await;
    let before = fleet(&s).await;
    let clone_url = format!("{}/tenants/{src}/clone", s.base);
    let export_url = format!("{}/tenants/{src}/export", s.base);
    let import_url = format!("{}/tenants/{src}/import", s.base);
    let clone_form = |token: Option<&str>| {
        let mut form = vec![("new_name", "intruder"), ("domain", "intruder.test")];
        form.extend(token.map(|t| ("csrf_token", t)));
        form.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let import_fields = |token: Option<&[u8]>| {
        let mut fields: Vec<(&str, Vec<u8>)> = Vec::new();
        fields.extend(token.map(|t| ("csrf_token", t.to_vec())));
        fields.push(("new_name", b"intruder".to_vec()));
        fields.push(("domain", b"intruder.test".to_vec()));
        fields.push(("archive", archive.clone()));
        fields
    };
    let post_upload = async |client: &reqwest::Client, fields: Vec<(&str, Vec<u8>)>| {
        let fields: Vec<(&str, &[u8])> = fields.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        upload(client, &import_url, &fields).await
    };

    // No session (the sign-in page's token doesn't make one).
    let anonymous = s.client();
    let pre = s.token(&anonymous, "/login").await;
    let r = anonymous
        .post(&clone_url)
        .form(&clone_form(Some(&pre)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("not signed in"));
    let r = anonymous
        .post(&export_url)
        .form(&[("csrf_token", &pre)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("content-disposition").is_none());
    let r = post_upload(&anonymous, import_fields(Some(pre.as_bytes()))).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("not signed in"));

    // Signed in, without the token, with a wrong one or another session's.
    let (_, other_token) = s.signed_in().await;
    for bad in [
        None,
        Some("nope"),
        Some(other_token.as_str()),
        Some(pre.as_str()),
    ] {
        let r = client
            .post(&clone_url)
            .form(&clone_form(bad))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "clone, token {bad:?}");
        assert!(r.text().await.unwrap().contains("security token"));
        let mut form = Vec::new();
        form.extend(bad.map(|t| ("csrf_token", t)));
        let r = client.post(&export_url).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 403, "export, token {bad:?}");
        assert!(r.headers().get("content-disposition").is_none());
        let r = post_upload(&client, import_fields(bad.map(str::as_bytes))).await;
        assert_eq!(r.status(), 403, "import, token {bad:?}");
        assert!(r.text().await.unwrap().contains("security token"));
    }
    // The right token after the file is too late: the file is not read.
    let mut fields = import_fields(None);
    fields.push(("csrf_token", token.as_bytes().to_vec()));
    let r = post_upload(&client, fields).await;
    assert_eq!(r.status(), 403);
    assert_eq!(fleet(&s).await, before, "nothing was created");

    // With its token, the same forms work.
    let r = client
        .post(&clone_url)
        .form(&clone_form(Some(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        notes(&s.tenantry, "intruder").await,
        notes(&s.tenantry, &src).await
    );
}
