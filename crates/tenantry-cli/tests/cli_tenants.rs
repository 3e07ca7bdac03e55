//! End-to-end tests of the `tenantry` binary against a real PostgreSQL database (one fresh
//! database per test): `tenantry tenant ...` and `tenantry domain ...`: the life cycle, atomic failures, tenant types, display names, adopt, role mode.

mod cli_support;

use cli_support::*;
use serde_json::Value;

#[tokio::test]
async fn tenant_create_list_show_rename_delete() {
    let env = Env::new().await;
    env.setup(&[]);
    let out = env.run(&[
        "tenant",
        "create",
        "acme",
        "--domain",
        "Acme.Localhost",
        "--display-name",
        "Acme Corp",
        "--data",
        r#"{"plan":"pro"}"#,
    ]);
    assert!(out.ok().contains("created tenant acme"));
    env.run(&["tenant", "create", "beta", "--domain", "beta.localhost"])
        .ok();

    let list = tenants_json(&env);
    assert_eq!(list.len(), 2);
    let acme = &list[0];
    assert_eq!(acme["schema"], "acme");
    assert_eq!(acme["display_name"], "Acme Corp");
    assert_eq!(acme["status"], "active");
    assert_eq!(acme["type"], "default");
    assert_eq!(acme["primary_domain"], "acme.localhost");
    assert_eq!(acme["domains"], serde_json::json!(["acme.localhost"]));
    assert_eq!(acme["data"]["plan"], "pro");
    assert!(acme["created_at"].is_string());
    assert_eq!(list[1]["schema"], "beta");
    assert_eq!(list[1]["display_name"], "beta");

    let table = env.run(&["tenant", "list"]);
    assert!(table.ok().contains("acme"));
    let show = env.run(&["tenant", "show", "acme", "--json"]);
    let shown: Value = serde_json::from_str(show.ok()).unwrap();
    assert_eq!(shown["schema"], "acme");
    assert!(
        env.run(&["tenant", "show", "acme"])
            .ok()
            .contains("Acme Corp")
    );

    let pool = env.pool().await;
    env.run(&["tenant", "rename", "acme", "acme2"]).ok();
    assert!(!schema_exists(&pool, "acme").await);
    assert!(schema_exists(&pool, "acme2").await);
    assert!(table_exists(&pool, "acme2.items").await);
    let shown: Value =
        serde_json::from_str(env.run(&["tenant", "show", "acme2", "--json"]).ok()).unwrap();
    assert_eq!(shown["primary_domain"], "acme.localhost");
    env.run(&["tenant", "show", "acme"]).fails_with(1);

    // Renaming to the same name is a plain conflict.
    let err = env
        .run(&["tenant", "rename", "acme2", "acme2"])
        .fails_with(1);
    assert!(
        err.contains("error: tenant \"acme2\" is already called \"acme2\""),
        "{err}"
    );

    // Without a terminal to ask on, deleting needs --yes; nothing is changed without it.
    for args in [&["beta"][..], &["beta", "--keep-schema"]] {
        let err = env
            .run(&[&["tenant", "delete"][..], args].concat())
            .fails_with(1);
        assert!(
            err.contains("error: refusing to delete tenant beta") && err.contains("pass --yes"),
            "{err}"
        );
        assert!(registry_has(&pool, "beta").await);
        assert!(table_exists(&pool, "beta.items").await);
    }
    // --keep-schema keeps the schema, the default drops it.
    env.run(&["tenant", "delete", "acme2", "--keep-schema", "--yes"])
        .ok();
    assert!(schema_exists(&pool, "acme2").await);
    assert!(!registry_has(&pool, "acme2").await);
    env.run(&["tenant", "delete", "beta", "-y"]).ok();
    assert!(!schema_exists(&pool, "beta").await);
    assert!(!registry_has(&pool, "beta").await);
    assert!(tenants_json(&env).is_empty());
    // An unknown tenant is named before any confirmation is asked for.
    for args in [&["beta"][..], &["beta", "--yes"]] {
        let err = env
            .run(&[&["tenant", "delete"][..], args].concat())
            .fails_with(1);
        assert!(err.contains("error: no tenant \"beta\""), "{err}");
    }
}

#[tokio::test]
async fn failed_creates_leave_no_schema_and_no_row() {
    let env = Env::new().await;
    env.setup(&["acme"]);
    let pool = env.pool().await;

    let err = env
        .run(&["tenant", "create", "Bad", "--domain", "bad.localhost"])
        .fails_with(1);
    assert!(
        err.contains("error: schema name \"Bad\" must match"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!schema_exists(&pool, "Bad").await);

    // Domain already taken.
    let err = env
        .run(&["tenant", "create", "other", "--domain", "acme.localhost"])
        .fails_with(1);
    assert!(err.contains("already taken"), "{err}");
    assert!(!schema_exists(&pool, "other").await);
    assert!(!registry_has(&pool, "other").await);

    // Bad --data.
    let err = env
        .run(&[
            "tenant",
            "create",
            "other",
            "--domain",
            "o.localhost",
            "--data",
            "{nope",
        ])
        .fails_with(1);
    assert!(err.contains("--data is not valid JSON"), "{err}");

    // A tenant migration that errors: nothing left behind.
    env.write("broken/1_ok.sql", "CREATE TABLE t (id INT);");
    env.write("broken/2_bad.sql", "INSERT INTO t VALUES ('not a number');");
    let err = env
        .run(&[
            "--tenant-type-migrations",
            "lab=broken",
            "tenant",
            "create",
            "lab1",
            "--type",
            "lab",
            "--domain",
            "lab1.localhost",
        ])
        .fails_with(1);
    assert!(err.contains("migration 2 (bad)"), "{err}");
    assert!(!schema_exists(&pool, "lab1").await);
    assert!(!registry_has(&pool, "lab1").await);

    // An IP address is named as such.
    let err = env
        .run(&["tenant", "create", "gamma", "--domain", "127.0.0.1"])
        .fails_with(1);
    assert!(
        err.contains(
            "error: domain \"127.0.0.1\" is an IP address: IP addresses can't be tenant domains"
        ),
        "{err}"
    );
    assert!(!schema_exists(&pool, "gamma").await);

    // Unknown tenant type.
    let err = env
        .run(&[
            "tenant",
            "create",
            "x",
            "--type",
            "nope",
            "--domain",
            "x.localhost",
        ])
        .fails_with(1);
    assert!(err.contains("unknown tenant type"), "{err}");
    assert_eq!(tenants_json(&env).len(), 1);
}

#[tokio::test]
async fn tenant_types_get_their_own_migrations() {
    let env = Env::new().await;
    env.write("lab/1_samples.sql", "CREATE TABLE samples (id INT);");
    let lab = ["--tenant-type-migrations", "lab=lab"];
    env.run(&[&lab[..], &["migrate"]].concat()).ok();
    env.run(
        &[
            &lab[..],
            &[
                "tenant",
                "create",
                "lab1",
                "--type",
                "lab",
                "--domain",
                "lab1.localhost",
            ],
        ]
        .concat(),
    )
    .ok();
    let pool = env.pool().await;
    assert!(table_exists(&pool, "lab1.samples").await);
    assert!(!table_exists(&pool, "lab1.items").await);
    env.write("lab/2_more.sql", "ALTER TABLE samples ADD COLUMN y INT;");
    let out = env.run(&[&lab[..], &["migrate"]].concat());
    assert!(out.ok().contains("schema lab1: applied 1 migration(s) [2]"));
}

#[tokio::test]
async fn domains_add_remove_set_primary() {
    let env = Env::new().await;
    env.setup(&["acme", "beta"]);
    env.run(&["domain", "add", "acme", "acme.example.com"]).ok();
    env.run(&["domain", "add", "acme", "www.acme.example.com", "--primary"])
        .ok();
    let list = env.run(&["domain", "list", "acme"]);
    assert_eq!(
        list.ok().lines().collect::<Vec<_>>(),
        [
            "www.acme.example.com (primary)",
            "acme.example.com",
            "acme.localhost"
        ]
    );
    let err = env
        .run(&["domain", "add", "beta", "acme.example.com"])
        .fails_with(1);
    assert!(err.contains("already taken"), "{err}");
    let err = env
        .run(&["domain", "add", "beta", "localhost"])
        .fails_with(1);
    assert!(err.contains("public domain"), "{err}");

    env.run(&["domain", "set-primary", "acme.localhost"]).ok();
    let err = env
        .run(&["domain", "remove", "acme.localhost"])
        .fails_with(1);
    assert!(err.contains("primary domain"), "{err}");
    env.run(&["domain", "remove", "www.acme.example.com"]).ok();
    let json: Value =
        serde_json::from_str(env.run(&["domain", "list", "acme", "--json"]).ok()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"domain": "acme.localhost", "is_primary": true},
            {"domain": "acme.example.com", "is_primary": false}
        ])
    );
    let acme = tenants_json(&env)
        .into_iter()
        .find(|t| t["schema"] == "acme")
        .unwrap();
    assert_eq!(acme["primary_domain"], "acme.localhost");
    assert_eq!(
        acme["domains"],
        serde_json::json!(["acme.localhost", "acme.example.com"])
    );
    let err = env
        .run(&["domain", "remove", "nope.example.com"])
        .fails_with(1);
    assert!(err.contains("no such domain"), "{err}");
    env.run(&["domain", "list", "nope"]).fails_with(1);
}

#[tokio::test]
async fn suspend_maintenance_resume() {
    let env = Env::new().await;
    env.setup(&["acme"]);
    let status = |env: &Env| tenants_json(env)[0]["status"].as_str().unwrap().to_owned();
    assert!(
        env.run(&["tenant", "suspend", "acme"])
            .ok()
            .contains("suspended")
    );
    assert_eq!(status(&env), "suspended");
    let out = env.run(&["tenant", "maintenance", "acme"]);
    assert_eq!(out.ok(), "tenant acme is now in maintenance\n");
    assert_eq!(status(&env), "maintenance");
    env.run(&["tenant", "resume", "acme"]).ok();
    assert_eq!(status(&env), "active");
    let err = env.run(&["tenant", "suspend", "nope"]).fails_with(1);
    assert!(err.contains("no tenant \"nope\""), "{err}");
}

#[tokio::test]
async fn display_names_are_limited_and_listed_clipped() {
    let env = Env::new().await;
    env.setup(&["acme"]);
    let pool = env.pool().await;
    let create = |name: &str, display: &str| {
        env.run(&[
            "tenant",
            "create",
            name,
            "--domain",
            &format!("{name}.localhost"),
            "--display-name",
            display,
        ])
    };
    let err = create("long", &"x".repeat(201)).fails_with(1);
    assert!(
        err.contains("error: display name is 201 characters long; at most 200 are allowed"),
        "{err}"
    );
    let err = create("ctl", "Acme\u{1}Corp").fails_with(1);
    assert!(
        err.contains("error: display name contains the control character U+0001"),
        "{err}"
    );
    for refused in ["long", "ctl"] {
        assert!(!schema_exists(&pool, refused).await);
    }
    create("wide", &"é".repeat(200)).ok();

    // A name stored before the limit (or by plain SQL): 100,000 characters and a newline.
    sqlx::query(
        "UPDATE public.tenantry_tenants SET display_name = repeat('y', 100000) || E'\\nz' \
         WHERE schema_name = 'acme'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let out = env.run(&["tenant", "list"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 3, "one line per tenant: {lines:?}");
    assert!(lines[0].starts_with("SCHEMA"), "{lines:?}");
    assert!(
        lines[1].starts_with("acme ") && lines[1].ends_with("yyy…"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("wide ") && lines[2].ends_with("ééé…"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.chars().count() < 150), "{lines:?}");
    // JSON keeps the whole value.
    let acme = &tenants_json(&env)[0];
    assert_eq!(acme["display_name"].as_str().unwrap().len(), 100_002);
}

#[tokio::test]
async fn tenant_create_refuses_without_tenant_migrations() {
    let env = Env::new().await;
    env.setup(&[]);
    // No flags and no tenantry.toml: what a user outside the project folder runs.
    let err = env
        .run_raw(
            &["tenant", "create", "acme", "--domain", "acme.localhost"],
            Some(env.db.url()),
        )
        .fails_with(1);
    let cwd = env.dir.path().canonicalize().unwrap();
    assert!(
        err.contains("error: no tenant migrations configured for tenant type \"default\""),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "./tenantry.toml (no such file in {})",
            cwd.display()
        )),
        "{err}"
    );
    assert!(err.contains("--tenant-migrations DIR"), "{err}");
    // A config file without tenant migrations is named.
    env.write(
        "conf/tenantry.toml",
        "[migrations]\nshared = \"../shared\"\n",
    );
    let err = env
        .run_raw(
            &[
                "--config",
                "conf/tenantry.toml",
                "tenant",
                "create",
                "acme",
                "--domain",
                "acme.localhost",
            ],
            Some(env.db.url()),
        )
        .fails_with(1);
    assert!(
        err.contains("[migrations] tenant in conf/tenantry.toml (not set)"),
        "{err}"
    );
    let pool = env.pool().await;
    assert!(!schema_exists(&pool, "acme").await);
    assert!(!registry_has(&pool, "acme").await);
}

#[tokio::test]
async fn delete_keep_schema_then_adopt_round_trip() {
    let env = Env::new().await;
    env.setup(&["acme"]);
    env.run(&[
        "exec",
        "--schema",
        "acme",
        "-c",
        "INSERT INTO items (name) VALUES ('kept')",
    ])
    .ok();
    env.run(&["tenant", "delete", "acme", "--keep-schema", "--yes"])
        .ok();
    let pool = env.pool().await;
    assert!(!registry_has(&pool, "acme").await);

    // A newer migration appeared meanwhile: adopt checks the history and applies it.
    env.write(
        "tenant/2_tags.sql",
        "CREATE TABLE tags (name TEXT PRIMARY KEY);",
    );
    let out = env.run(&[
        "tenant",
        "adopt",
        "acme",
        "--domain",
        "acme.example",
        "--name",
        "Acme again",
    ]);
    assert!(
        out.ok().contains(
            "adopted schema acme as a tenant (type default, domain acme.example); applied pending migration(s) [2]"
        ),
        "{out:?}"
    );
    assert_eq!(applied_versions(&pool, "acme").await, [1, 2]);
    let out = env.run(&["exec", "--schema", "acme", "-c", "SELECT name FROM items"]);
    assert!(out.ok().contains("  kept"), "{out:?}");
    let list = tenants_json(&env);
    assert_eq!(list[0]["schema"], "acme");
    assert_eq!(list[0]["display_name"], "Acme again");
    assert_eq!(list[0]["primary_domain"], "acme.example");

    // Refusals, each naming the problem, and nothing registered.
    let err = env
        .run(&["tenant", "adopt", "acme", "--domain", "x.example"])
        .fails_with(1);
    assert!(err.contains("already belongs to tenant \"acme\""), "{err}");
    let err = env
        .run(&["tenant", "adopt", "ghost", "--domain", "ghost.example"])
        .fails_with(1);
    assert!(err.contains("schema \"ghost\" does not exist"), "{err}");
    sqlx::raw_sql("CREATE SCHEMA plain")
        .execute(&pool)
        .await
        .unwrap();
    let err = env
        .run(&["tenant", "adopt", "plain", "--domain", "plain.example"])
        .fails_with(1);
    assert!(err.contains("no migration history"), "{err}");
    assert!(!registry_has(&pool, "plain").await);
    pool.close().await;
}

#[tokio::test]
async fn tenant_roles_in_the_config_file_turn_role_mode_on() {
    let env = Env::new().await;
    let prefix = env.db.role_prefix();
    env.write(
        "tenantry.toml",
        &format!(
            "database_url = \"{}\"\ntenant_roles = \"{prefix}\"\n\
             [migrations]\nshared = \"shared\"\ntenant = \"tenant\"\n",
            env.db.url()
        ),
    );
    env.run_raw(&["migrate"], None).ok();
    for name in ["alpha", "beta"] {
        env.run_raw(
            &[
                "tenant",
                "create",
                name,
                "--domain",
                &format!("{name}.localhost"),
            ],
            None,
        )
        .ok();
    }
    // exec runs as the tenant's role: its own table works, another tenant's is refused.
    let out = env.run_raw(
        &[
            "exec",
            "--schema",
            "alpha",
            "-c",
            "SELECT current_user, count(*) FROM items",
        ],
        None,
    );
    assert!(
        out.ok().contains(&format!("  {prefix}alpha | 0")),
        "{out:?}"
    );
    let err = env
        .run_raw(
            &[
                "exec",
                "--schema",
                "alpha",
                "-c",
                "SELECT * FROM beta.items",
            ],
            None,
        )
        .fails_with(1);
    assert!(err.contains("permission denied"), "{err}");
    // delete drops the role with the tenant.
    env.run_raw(&["tenant", "delete", "beta", "--yes"], None)
        .ok();
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_roles WHERE left(rolname, length($1)) = $1 ORDER BY 1",
    )
    .bind(&prefix)
    .fetch_all(&env.pool().await)
    .await
    .unwrap();
    assert_eq!(
        roles,
        [format!("{prefix}all-tenants"), format!("{prefix}alpha")]
    );
}
