//! End-to-end tests of the `tenantry` binary against a real PostgreSQL database (one fresh
//! database per test): `tenantry exec`, configuration precedence, and how the binary talks: one-line errors, closed pipes, unreachable databases, colours.

mod cli_support;

use cli_support::*;

#[tokio::test]
async fn exec_runs_in_each_tenant_schema() {
    let env = Env::new().await;
    env.setup(&["acme", "beta", "gamma"]);
    let pool = env.pool().await;

    // Multi-statement SQL; rows of the final SELECT are printed per schema.
    let out = env.run(&[
        "exec",
        "--all",
        "-c",
        "INSERT INTO items (name) VALUES (current_schema()); SELECT name, NULL AS nothing FROM items",
    ]);
    let text = out.ok();
    for t in ["acme", "beta", "gamma"] {
        assert!(text.contains(&format!("schema {t}: 1 row(s)")), "{text}");
        assert!(text.contains(&format!("  {t} | NULL")), "{text}");
        let names: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT name FROM {t}.items")))
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(names, [t], "ran in the tenant's own schema");
    }
    assert!(
        text.contains("exec: 3 of 3 schema(s) ok, 0 failed"),
        "{text}"
    );

    // One schema only; a statement without rows reports rows affected.
    let out = env.run(&[
        "exec",
        "--schema",
        "beta",
        "-c",
        "UPDATE items SET name = 'changed'",
    ]);
    assert!(
        out.ok().contains("schema beta: ok, 1 row(s) affected"),
        "{out:#?}"
    );
    let changed: Vec<(String, String)> = sqlx::query_as(
        "SELECT 'acme', name FROM acme.items UNION ALL SELECT 'beta', name FROM beta.items \
         UNION ALL SELECT 'gamma', name FROM gamma.items ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        changed,
        [
            ("acme".into(), "acme".into()),
            ("beta".into(), "changed".into()),
            ("gamma".into(), "gamma".into())
        ]
    );

    // A failure in one schema is rolled back there, reported, and exits 1.
    let out = env.run(&[
        "exec",
        "--all",
        "-c",
        "DELETE FROM items; SELECT 1 / (CASE WHEN current_schema() = 'beta' THEN 0 ELSE 1 END)",
    ]);
    let text = out.fails_with(1);
    assert!(
        text.contains("schema beta: FAILED: division by zero"),
        "{text}"
    );
    assert!(
        out.stderr.contains("error: SQL failed in 1 schema(s)"),
        "{out:#?}"
    );
    let beta_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM beta.items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(beta_rows, 1, "beta's DELETE was rolled back");
    let acme_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM acme.items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(acme_rows, 0);

    let err = env
        .run(&["exec", "--schema", "nope", "-c", "SELECT 1"])
        .fails_with(1);
    assert!(err.contains("no tenant \"nope\""), "{err}");
    // --all or --schema is required.
    env.run(&["exec", "-c", "SELECT 1"]).fails_with(1);
}

#[tokio::test]
async fn config_file_and_precedence() {
    let env = Env::new().await;
    env.write(
        "conf/tenantry.toml",
        &format!(
            "database_url = \"{}\"\nshared_schema = \"public\"\npublic_domains = [\"localhost\", \"www.example.com\"]\n\
             [migrations]\nshared = \"../shared\"\ntenant = \"../tenant\"\n",
            env.db.url()
        ),
    );
    // --config with paths relative to the file; no DATABASE_URL.
    let out = env.run_raw(&["--config", "conf/tenantry.toml", "migrate"], None);
    assert!(
        out.ok().contains("applied 1 shared migration(s)"),
        "{out:#?}"
    );
    // ./tenantry.toml is picked up from the current directory.
    std::fs::copy(
        env.dir.path().join("conf/tenantry.toml"),
        env.dir.path().join("tenantry.toml"),
    )
    .unwrap();
    std::fs::write(
        env.dir.path().join("tenantry.toml"),
        std::fs::read_to_string(env.dir.path().join("tenantry.toml"))
            .unwrap()
            .replace("../", ""),
    )
    .unwrap();
    env.run_raw(
        &["tenant", "create", "acme", "--domain", "acme.localhost"],
        None,
    )
    .ok();
    assert!(table_exists(&env.pool().await, "acme.items").await);
    // public_domains from the file are refused as tenant domains.
    let err = env
        .run_raw(&["domain", "add", "acme", "www.example.com"], None)
        .fails_with(1);
    assert!(err.contains("public domain"), "{err}");

    // The environment beats the file, the flag beats the environment.
    let bad = "postgres://postgres@127.0.0.1:5432/tenantry_no_such_db";
    let err = env.run_raw(&["tenant", "list"], Some(bad)).fails_with(1);
    assert!(err.contains("tenantry_no_such_db"), "{err}");
    let out = env.run_raw(
        &["--database-url", env.db.url(), "tenant", "list"],
        Some(bad),
    );
    assert!(out.ok().contains("acme"));

    // Unknown keys are warned about, not fatal.
    std::fs::write(
        env.dir.path().join("tenantry.toml"),
        format!("database_url = \"{}\"\ndatabse = 1\n", env.db.url()),
    )
    .unwrap();
    let out = env.run_raw(&["tenant", "list"], None);
    out.ok();
    assert!(out.stderr.contains("unknown key \"databse\""), "{out:#?}");
}

#[tokio::test]
async fn user_errors_are_one_line_messages() {
    let env = Env::new().await;
    let out = env.run_raw(&["tenant", "list"], None);
    let err = out.fails_with(1);
    assert!(err.starts_with("error: no database URL"), "{err}");

    let out = env.run_raw(
        &["--tenant-migrations", "missing", "migrate"],
        Some(env.db.url()),
    );
    assert!(
        out.fails_with(1)
            .contains("error: migration folder missing does not exist")
    );
    let out = env.run_raw(&["--config", "nope.toml", "migrate"], Some(env.db.url()));
    assert!(
        out.fails_with(1)
            .contains("cannot read config file nope.toml")
    );
    env.write("tenantry.toml", "this is = = not toml");
    let out = env.run_raw(&["tenant", "list"], Some(env.db.url()));
    assert!(out.fails_with(1).contains("config file tenantry.toml"));
    std::fs::remove_file(env.dir.path().join("tenantry.toml")).unwrap();

    // Usage errors: exit 1, clap's message. DATABASE_URL is set: --database-url is not
    // listed as if it were required.
    let out = env.run(&["tenant", "create", "acme"]);
    let err = out.fails_with(1);
    assert!(
        err.contains("Usage: tenantry tenant create --domain <HOST> <NAME>"),
        "{err}"
    );
    assert!(!err.contains("--database-url"), "{err}");
    assert!(env.run(&["--help"]).ok().contains("migrate"));
    // Registry not installed yet.
    let out = env.run(&["tenant", "list"]);
    let err = out.fails_with(1);
    assert!(err.contains("tenantry_tenants"), "{err}");
    assert!(err.contains("run `tenantry migrate` first"), "{err}");
}

#[tokio::test]
async fn closed_stdout_ends_quietly() {
    let env = Env::new().await;
    env.setup(&["acme", "beta"]);
    env.write("tenant/2_more.sql", "CREATE TABLE more (id INT);");
    for args in [
        &["tenant", "list"][..],
        &["tenant", "list", "--json"],
        &["exec", "--all", "-c", "SELECT generate_series(1, 1000)"],
        &["migrate", "--plan"],
    ] {
        // `tenantry ... | head -1` where head has already gone: every write hits a closed pipe.
        let mut cmd = env.command(
            &[
                &[
                    "--shared-migrations",
                    "shared",
                    "--tenant-migrations",
                    "tenant",
                ][..],
                args,
            ]
            .concat(),
            Some(env.db.url()),
        );
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tenantry");
        drop(child.stdout.take());
        let out = Out::of(child.wait_with_output().expect("wait for tenantry"));
        // 141 (128 + SIGPIPE) like any Unix tool whose reader went away, and nothing on stderr.
        assert_eq!(out.code, 141, "{args:?}: {out:#?}");
        assert_eq!(out.stderr, "", "{args:?}: {out:#?}");
    }
    // `migrate --plan` changed nothing.
    assert_eq!(applied_versions(&env.pool().await, "acme").await, [1]);
}

#[tokio::test]
async fn unreachable_database_is_reported_at_once() {
    let env = Env::new().await;
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/app");
    let start = std::time::Instant::now();
    let err = env.run_raw(&["tenant", "list"], Some(&url)).fails_with(1);
    assert!(
        err.contains(&format!(
            "error: cannot connect to {url}: connection refused at 127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(!err.contains("timed out"), "{err}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn logs_are_not_coloured_without_a_terminal() {
    let env = Env::new().await;
    let mut cmd = env.command(&["migrate"], Some(env.db.url()));
    let out = Out::of(cmd.env("RUST_LOG", "debug").output().expect("run tenantry"));
    out.ok();
    assert!(out.stderr.contains("DEBUG"), "some logs: {out:#?}");
    assert!(!out.stderr.contains('\u{1b}'), "no escape codes: {out:#?}");
}
