//! End-to-end tests of `tenantry tenant clone|export|import` through the real binary, against
//! a real PostgreSQL database (one fresh database per test).

mod cli_support;

use cli_support::*;
use serde_json::Value;
use sqlx::PgPool;

async fn items(pool: &PgPool, schema: &str) -> Vec<(i32, String)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, name FROM \"{schema}\".items ORDER BY id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

fn fill(env: &Env, schema: &str, n: u32) {
    env.run(&[
        "exec",
        "--schema",
        schema,
        "-c",
        &format!("INSERT INTO items (name) SELECT E'item\\t' || g FROM generate_series(1, {n}) g"),
    ])
    .ok();
}

#[tokio::test]
async fn tenant_clone_copies_rows_into_a_new_tenant() {
    let env = Env::new().await;
    env.setup(&["acme", "beta"]);
    fill(&env, "acme", 100);
    let pool = env.pool().await;

    let out = env.run(&[
        "tenant",
        "clone",
        "acme",
        "acme2",
        "--domain",
        "acme2.localhost",
    ]);
    let text = out.ok();
    assert!(
        text.contains(
            "cloned tenant acme as acme2 (domain acme2.localhost): 2 table(s), 101 row(s)"
        ),
        "{text}"
    );
    assert_eq!(items(&pool, "acme2").await, items(&pool, "acme").await);

    let out = env.run(&[
        "tenant",
        "clone",
        "acme",
        "acme3",
        "--domain",
        "acme3.localhost",
        "--display-name",
        "Acme Three",
        "--json",
    ]);
    let report: Value = serde_json::from_str(out.ok()).expect("--json prints JSON");
    assert_eq!(report["action"], "clone");
    assert_eq!(report["source"], "acme");
    assert_eq!(report["tenant"]["schema"], "acme3");
    assert_eq!(report["tenant"]["display_name"], "Acme Three");
    assert_eq!(report["tenant"]["primary_domain"], "acme3.localhost");
    assert_eq!(report["migration_version"], 1);
    assert_eq!(report["rows"], 101);
    let items_count = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "items")
        .unwrap()["rows"]
        .clone();
    assert_eq!(items_count, 100);

    // The copy is a tenant of its own: its sequence continues, and writes stay in it.
    env.run(&[
        "exec",
        "--schema",
        "acme3",
        "-c",
        "INSERT INTO items (name) VALUES ('only3')",
    ])
    .ok();
    assert_eq!(items(&pool, "acme3").await.last().unwrap().0, 101);
    assert_eq!(items(&pool, "acme").await.len(), 100);
    let list = tenants_json(&env);
    assert_eq!(
        list.iter()
            .map(|t| t["schema"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["acme", "acme2", "acme3", "beta"]
    );

    // Refusals say why and leave nothing.
    let err = env
        .run(&[
            "tenant",
            "clone",
            "acme",
            "acme4",
            "--domain",
            "beta.localhost",
        ])
        .fails_with(1);
    assert!(
        err.contains("domain \"beta.localhost\" is already taken"),
        "{err}"
    );
    assert!(!schema_exists(&pool, "acme4").await);
    assert!(!registry_has(&pool, "acme4").await);
    let err = env
        .run(&[
            "tenant",
            "clone",
            "nosuch",
            "acme4",
            "--domain",
            "acme4.localhost",
        ])
        .fails_with(1);
    assert!(err.contains("no tenant \"nosuch\""), "{err}");
    assert!(!schema_exists(&pool, "acme4").await);
}

#[tokio::test]
async fn tenant_export_then_import_round_trips() {
    let env = Env::new().await;
    env.setup(&["acme"]);
    fill(&env, "acme", 250);
    env.run(&["domain", "add", "acme", "www.acme.localhost"])
        .ok();
    let pool = env.pool().await;

    let out = env.run(&["tenant", "export", "acme", "-o", "acme.tar.gz", "--json"]);
    let report: Value = serde_json::from_str(out.ok()).expect("--json prints JSON");
    assert_eq!(report["action"], "export");
    assert_eq!(report["rows"], 251);
    assert_eq!(report["migration_version"], 1);
    let size = std::fs::metadata(env.dir.path().join("acme.tar.gz"))
        .unwrap()
        .len();
    assert_eq!(report["archive_bytes"], size);
    assert!(!env.dir.path().join("acme.tar.gz.partial").exists());

    // A failed export leaves no file, not even a partial one.
    let err = env
        .run(&["tenant", "export", "nosuch", "-o", "nosuch.tar.gz"])
        .fails_with(1);
    assert!(err.contains("no tenant \"nosuch\""), "{err}");
    assert!(!env.dir.path().join("nosuch.tar.gz").exists());
    assert!(!env.dir.path().join("nosuch.tar.gz.partial").exists());

    // An existing file is not overwritten without --force.
    let err = env
        .run(&["tenant", "export", "acme", "-o", "acme.tar.gz"])
        .fails_with(1);
    assert!(err.contains("acme.tar.gz exists: pass --force"), "{err}");
    let text = env
        .run(&["tenant", "export", "acme", "-o", "acme.tar.gz", "--force"])
        .ok()
        .to_owned();
    assert!(
        text.contains("exported tenant acme to acme.tar.gz"),
        "{text}"
    );

    let out = env.run(&[
        "tenant",
        "import",
        "acme.tar.gz",
        "--as",
        "restored",
        "--domain",
        "restored.localhost",
        "--json",
    ]);
    let report: Value = serde_json::from_str(out.ok()).expect("--json prints JSON");
    assert_eq!(report["action"], "import");
    assert_eq!(report["tenant"]["schema"], "restored");
    assert_eq!(
        report["tenant"]["domains"],
        serde_json::json!(["restored.localhost"])
    );
    assert_eq!(report["rows"], 251);
    assert_eq!(items(&pool, "restored").await, items(&pool, "acme").await);
    let history = |schema: &str| {
        let pool = pool.clone();
        let sql = format!("SELECT t::text FROM \"{schema}\"._sqlx_migrations t");
        async move {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(history("restored").await, history("acme").await);

    // A tenant name that is taken: refused, nothing changed.
    let err = env
        .run(&[
            "tenant",
            "import",
            "acme.tar.gz",
            "--as",
            "acme",
            "--domain",
            "x.localhost",
        ])
        .fails_with(1);
    assert!(err.contains("tenant name \"acme\" is taken"), "{err}");
    let err = env
        .run(&[
            "tenant",
            "import",
            "nosuch.tar.gz",
            "--as",
            "x",
            "--domain",
            "x.localhost",
        ])
        .fails_with(1);
    assert!(err.contains("cannot open nosuch.tar.gz"), "{err}");
    env.write("junk.tar.gz", "this is not an archive");
    let err = env
        .run(&[
            "tenant",
            "import",
            "junk.tar.gz",
            "--as",
            "x",
            "--domain",
            "x.localhost",
        ])
        .fails_with(1);
    assert!(err.contains("not a usable tenant archive"), "{err}");
    assert!(!schema_exists(&pool, "x").await);
    assert!(!registry_has(&pool, "x").await);
}

#[tokio::test]
async fn tenant_import_refuses_an_archive_from_newer_migrations() {
    let env = Env::new().await;
    env.setup(&[]);
    env.write(
        "tenant_v2/1_items.sql",
        "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL);",
    );
    env.write(
        "tenant_v2/2_tags.sql",
        "ALTER TABLE items ADD COLUMN tag TEXT;",
    );
    let v2 = |args: &[&str]| {
        env.run_raw(
            &[
                &[
                    "--shared-migrations",
                    "shared",
                    "--tenant-migrations",
                    "tenant_v2",
                ][..],
                args,
            ]
            .concat(),
            Some(env.db.url()),
        )
    };
    v2(&["tenant", "create", "newer", "--domain", "newer.localhost"]).ok();
    v2(&["tenant", "export", "newer", "-o", "newer.tar.gz"]).ok();

    let err = env
        .run(&[
            "tenant",
            "import",
            "newer.tar.gz",
            "--as",
            "imp",
            "--domain",
            "imp.localhost",
        ])
        .fails_with(1);
    assert!(
        err.contains(
            "archive refused: the archive was taken at migration 2 (tags), newer than this \
             application's latest \"default\" migration 1: upgrade the application first"
        ),
        "{err}"
    );
    let pool = env.pool().await;
    assert!(!schema_exists(&pool, "imp").await);
    assert!(!registry_has(&pool, "imp").await);
    // The application that knows migration 2 takes it.
    v2(&[
        "tenant",
        "import",
        "newer.tar.gz",
        "--as",
        "imp",
        "--domain",
        "imp.localhost",
    ])
    .ok();
    assert!(table_exists(&pool, "imp.items").await);
}
