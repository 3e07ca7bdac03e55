//! The console over HTTP against a real PostgreSQL: sessions and CSRF tokens guard every
//! action, a console deletion drops exactly one tenant, the tenant list pages and searches.

mod support;

use std::collections::BTreeMap;

use support::{PASSWORD, Served, csrf_in};
use tenantry_sqlx::{TenantQuery, TenantStatus};
use tenantry_testing::TestTenants;

#[tokio::test]
async fn actions_are_refused_without_a_session_or_a_valid_csrf_token() {
    let s = Served::start().await;
    let tenants = TestTenants::new(&s.tenantry);
    let a = tenants.create().await.unwrap();
    let name = a.tenant.schema.clone();
    let status_url = format!("{}/tenants/{name}/status", s.base);
    let status_now = async || s.tenantry.admin().tenant(&name).await.unwrap().status;

    // No session: pages redirect to the sign-in page, actions are refused.
    let anonymous = s.client();
    let r = anonymous.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/login");
    let r = anonymous.get(&s.base).send().await.unwrap();
    assert_eq!(r.status(), 303, "the mount path alone");
    // The sign-in page's token alone doesn't sign anyone in.
    let pre = s.token(&anonymous, "/login").await;
    for (url, form) in [
        (
            status_url.clone(),
            vec![("status", "suspended"), ("csrf_token", pre.as_str())],
        ),
        (
            format!("{}/tenants/{name}/delete", s.base),
            vec![("confirm", name.as_str()), ("csrf_token", pre.as_str())],
        ),
        (
            format!("{}/tenants", s.base),
            vec![
                ("name", "intruder"),
                ("domain", "intruder.test"),
                ("csrf_token", pre.as_str()),
            ],
        ),
    ] {
        let r = anonymous.post(&url).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 403, "{url} without a session");
        assert!(r.text().await.unwrap().contains("not signed in"));
    }
    assert_eq!(status_now().await, TenantStatus::Active);
    assert!(s.tenantry.admin().tenant("intruder").await.is_err());

    // Sign-in: a wrong password and a missing or wrong token are refused.
    let r = anonymous
        .post(format!("{}/login", s.base))
        .form(&[("password", "wrong"), ("csrf_token", pre.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Wrong password"));
    let r = anonymous
        .post(format!("{}/login", s.base))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "sign-in without the CSRF token");
    let r = anonymous
        .post(format!("{}/login", s.base))
        .form(&[("password", PASSWORD), ("csrf_token", &"0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "sign-in with a wrong CSRF token");
    let r = anonymous.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 303, "still not signed in");

    // Signed in: an action without the token, with a wrong one or with another session's one
    // is refused and changes nothing.
    let (client, token) = s.signed_in().await;
    let (_, other_token) = s.signed_in().await;
    assert_ne!(token, other_token);
    for bad in [
        None,
        Some("nope"),
        Some(other_token.as_str()),
        Some(pre.as_str()),
    ] {
        let mut form = vec![("status", "suspended")];
        if let Some(bad) = bad {
            form.push(("csrf_token", bad));
        }
        let r = client.post(&status_url).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 403, "token {bad:?}");
        assert!(r.text().await.unwrap().contains("security token"));
    }
    assert_eq!(status_now().await, TenantStatus::Active);

    // With its own token, the action runs (through admin().set_status).
    let r = client
        .post(&status_url)
        .form(&[("status", "suspended"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(status_now().await, TenantStatus::Suspended);

    // A bad status value is refused with a message.
    let r = client
        .post(&status_url)
        .form(&[("status", "gone"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // Sign-out ends the session: the old token no longer works.
    let r = client
        .post(format!("{}/logout", s.base))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = client
        .post(&status_url)
        .form(&[("status", "active"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(status_now().await, TenantStatus::Suspended);
}

/// Everything a deletion could touch: registry rows, domains, ledger, schemas, tenant rows.
async fn snapshot(s: &Served) -> BTreeMap<String, String> {
    let pool = sqlx::PgPool::connect(s.db.url()).await.unwrap();
    let mut out = BTreeMap::new();
    for (what, sql) in [
        (
            "tenants",
            "SELECT string_agg(format('%s|%s|%s|%s|%s', id, schema_name, display_name, status, data), ';' ORDER BY id) FROM tenantry_tenants",
        ),
        (
            "domains",
            "SELECT string_agg(format('%s|%s|%s', domain, tenant_id, is_primary), ';' ORDER BY domain) FROM tenantry_domains",
        ),
        (
            "ledger",
            "SELECT string_agg(format('%s|%s', schema_name, last_version), ';' ORDER BY schema_name) FROM tenantry_migration_ledger",
        ),
        (
            "schemas",
            "SELECT string_agg(nspname, ';' ORDER BY nspname) FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'",
        ),
    ] {
        let v: Option<String> = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        out.insert(what.to_owned(), v.unwrap_or_default());
    }
    for t in s.tenantry.admin().tenants().await.unwrap() {
        let mut tx = s.tenantry.admin().begin_schema(&t.schema).await.unwrap();
        let notes: Option<String> =
            sqlx::query_scalar("SELECT string_agg(id || ':' || title, ';' ORDER BY id) FROM notes")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        out.insert(format!("notes of {}", t.schema), notes.unwrap_or_default());
    }
    pool.close().await;
    out
}

#[tokio::test]
async fn deleting_from_the_console_drops_exactly_that_tenant() {
    let s = Served::start().await;
    let tenants = TestTenants::new(&s.tenantry);
    let mut made = Vec::new();
    for i in 0..3 {
        let t = tenants.create().await.unwrap();
        s.tenantry
            .admin()
            .add_domain(&t.tenant.schema, &format!("alias-{i}.test"), false)
            .await
            .unwrap();
        let mut tx = s.tenantry.begin(&t.tenant).await.unwrap();
        for n in 0..=i {
            sqlx::query("INSERT INTO notes (title) VALUES ($1)")
                .bind(format!("note {n} of {}", t.tenant.schema))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        made.push(t);
    }
    let victim = made[1].tenant.schema.clone();
    let before = snapshot(&s).await;
    let (client, token) = s.signed_in().await;
    let url = format!("{}/tenants/{victim}/delete", s.base);

    // The confirmation must be the tenant's name: otherwise nothing happens.
    for wrong in ["", "yes", made[0].tenant.schema.as_str()] {
        let r = client
            .post(&url)
            .form(&[("confirm", wrong), ("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "confirm {wrong:?}");
    }
    assert_eq!(
        snapshot(&s).await,
        before,
        "a refused deletion changed something"
    );

    let r = client
        .post(&url)
        .form(&[("confirm", victim.as_str()), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/");

    let after = snapshot(&s).await;
    let mut expected = before.clone();
    expected.remove(&format!("notes of {victim}"));
    let strip = |text: &str, drop: &dyn Fn(&str) -> bool| {
        text.split(';')
            .filter(|part| !drop(part))
            .collect::<Vec<_>>()
            .join(";")
    };
    let id = made[1].tenant.id;
    expected.insert(
        "tenants".into(),
        strip(&before["tenants"], &|row| {
            row.starts_with(&format!("{id}|"))
        }),
    );
    expected.insert(
        "domains".into(),
        strip(&before["domains"], &|row| {
            row.split('|').nth(1) == Some(&id.to_string())
        }),
    );
    expected.insert(
        "ledger".into(),
        strip(&before["ledger"], &|row| {
            row.starts_with(&format!("{victim}|"))
        }),
    );
    expected.insert(
        "schemas".into(),
        strip(&before["schemas"], &|schema| schema == victim),
    );
    assert_ne!(
        before["schemas"], expected["schemas"],
        "the victim's schema was listed"
    );
    assert_eq!(after, expected);

    // Its page is gone; the others are there.
    let r = client
        .get(format!("{}/tenants/{victim}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let list = s.page(&client, "/").await;
    assert!(!list.contains(&format!(">{victim}<")));
    for other in [&made[0], &made[2]] {
        assert!(
            list.contains(&format!(">{}<", other.tenant.schema)),
            "{list}"
        );
    }
}

#[tokio::test]
async fn the_tenant_list_pages_by_keyset_and_searches() {
    let s = Served::start().await;
    let tenants = TestTenants::new(&s.tenantry).prefix("page");
    let mut names = Vec::new();
    for _ in 0..7 {
        names.push(tenants.create().await.unwrap().tenant.schema.clone());
    }
    let special = s
        .tenantry
        .admin()
        .create_tenant(
            tenantry_sqlx::NewTenant::new("percent_co", "odd-host.test").display_name("100% Co"),
        )
        .await
        .unwrap();
    names.push(special.schema.clone());
    names.sort();

    // Pages of 3 walk every tenant once, in order.
    let admin = s.tenantry.admin();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = admin
            .tenant_page(&TenantQuery {
                after: after.clone(),
                limit: 3,
                ..TenantQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|r| r.tenant.schema.clone());
        seen.extend(page.into_iter().map(|r| r.tenant.schema));
    }
    assert_eq!(seen, names);

    // Search: schema name, display name or domain; `%` and `_` match themselves.
    let search = async |text: &str| -> Vec<String> {
        admin
            .tenant_page(&TenantQuery {
                search: text.into(),
                ..TenantQuery::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.tenant.schema)
            .collect()
    };
    assert_eq!(search("100%").await, ["percent_co"]);
    assert_eq!(search("ODD-HOST").await, ["percent_co"]);
    assert_eq!(search("%").await, ["percent_co"], "% is not a wildcard");
    assert_eq!(search("page").await.len(), 7);
    assert!(search("nothing-like-this").await.is_empty());

    // Each row carries its size and migration state.
    let row = admin.tenant_overview("percent_co").await.unwrap();
    assert!(row.schema_bytes.is_some_and(|b| b > 0), "{row:?}");
    assert_eq!(row.migration, tenantry_sqlx::MigrationState::UpToDate);
    assert_eq!(row.ledger_version, Some(1));

    // The page shows them, with a link to the next page.
    let (client, _) = s.signed_in().await;
    let html = s.page(&client, "/?q=page").await;
    assert!(
        html.contains("up to date") && html.contains("KiB"),
        "{html}"
    );
    assert!(
        csrf_in(&html).is_some(),
        "the sign-out form carries the token"
    );
}
