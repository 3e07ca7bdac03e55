//! The CLI hosted in the demo's binary (`tenantry-demo tenant create ...`): role mode, hooks and
//! tenant types behave as in the app, because the CLI runs with the app's own builder. Each test
//! runs real `tenantry-demo` processes against a fresh database; role mode uses the test
//! database's role prefix (its roles are dropped with it).

use std::process::Command;

use sqlx::PgPool;
use tenantry_testing::TestDb;

/// What one run of `tenantry-demo` printed.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        &self.stdout
    }

    /// Asserts exit code 1 (no panic) and returns stdout + stderr.
    #[track_caller]
    fn failed(&self) -> String {
        assert_eq!(self.code, 1, "expected failure, got {self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The demo's CLI against one test database, optionally in role mode.
struct Demo {
    db: TestDb,
    roles: Option<String>,
}

impl Demo {
    async fn new(role_mode: bool) -> Self {
        let db = TestDb::new().await;
        let roles = role_mode.then(|| db.role_prefix());
        let demo = Self { db, roles };
        demo.run(&["migrate"]).ok();
        demo
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry-demo"));
        cmd.args(args)
            .env("DATABASE_URL", self.db.url())
            .env("RUST_LOG", "warn")
            .env_remove("TENANTRY_DEMO_TENANT_ROLES");
        if let Some(prefix) = &self.roles {
            cmd.env("TENANTRY_DEMO_TENANT_ROLES", prefix);
        }
        let out = cmd.output().expect("run tenantry-demo");
        Out {
            code: out.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn pool(&self) -> PgPool {
        PgPool::connect(self.db.url()).await.unwrap()
    }

    fn role(&self, schema: &str) -> String {
        format!("{}{schema}", self.roles.as_deref().expect("role mode"))
    }
}

/// The roles with the test database's prefix.
async fn roles(pool: &PgPool, prefix: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT rolname::text FROM pg_roles WHERE left(rolname, length($1)) = $1 ORDER BY 1",
    )
    .bind(prefix)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn schema_owner(pool: &PgPool, schema: &str) -> String {
    sqlx::query_scalar(
        "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = $1",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn role_mode_create_rename_delete_and_exec_through_the_app_cli() {
    let demo = Demo::new(true).await;
    let prefix = demo.roles.clone().unwrap();
    let group = format!("{prefix}all-tenants");
    let pool = demo.pool().await;

    // create: the tenant's role exists, belongs to the group and owns the schema.
    for name in ["alpha", "beta"] {
        let out = demo.run(&[
            "tenant",
            "create",
            name,
            "--domain",
            &format!("{name}.test"),
        ]);
        assert!(
            out.ok().contains(&format!("created tenant {name}")),
            "{out:?}"
        );
    }
    assert_eq!(
        roles(&pool, &prefix).await,
        [group.clone(), demo.role("alpha"), demo.role("beta")]
    );
    assert_eq!(schema_owner(&pool, "alpha").await, demo.role("alpha"));

    // exec runs as the tenant's role (SET ROLE), with the seeded note of the app's hook visible.
    let out = demo.run(&[
        "exec",
        "--schema",
        "alpha",
        "-c",
        "SELECT current_user, count(*) AS notes FROM notes",
    ]);
    let stdout = out.ok();
    assert!(
        stdout.contains(&format!("  {} | 1", demo.role("alpha"))),
        "{stdout}"
    );
    // ... so what the tenant's role may not do fails: another tenant's table, the registry.
    for sql in [
        "SELECT * FROM beta.notes",
        "SELECT * FROM public.tenantry_tenants",
    ] {
        let err = demo.run(&["exec", "--schema", "alpha", "-c", sql]).failed();
        assert!(
            err.contains("permission denied") && err.contains("42501"),
            "{sql}: {err}"
        );
    }
    // The app's own command works as the role too, shared `plans` included.
    let out = demo.run(&["notes-stats", "--tenant", "alpha"]);
    assert!(
        out.ok()
            .contains("tenant alpha: 1 note(s) of 100 (plan free)"),
        "{out:?}"
    );

    // rename: the role follows the schema, no stale role is left.
    demo.run(&["tenant", "rename", "alpha", "gamma"]).ok();
    assert_eq!(
        roles(&pool, &prefix).await,
        [group.clone(), demo.role("beta"), demo.role("gamma")]
    );
    assert_eq!(schema_owner(&pool, "gamma").await, demo.role("gamma"));
    let out = demo.run(&["exec", "--schema", "gamma", "-c", "SELECT current_user"]);
    assert!(out.ok().contains(&demo.role("gamma")), "{out:?}");

    // delete: no orphaned role.
    demo.run(&["tenant", "delete", "gamma", "--yes"]).ok();
    assert_eq!(
        roles(&pool, &prefix).await,
        [group.clone(), demo.role("beta")]
    );

    // delete --keep-schema, then adopt: the role comes back with the tenant, data kept.
    demo.run(&[
        "exec",
        "--schema",
        "beta",
        "-c",
        "INSERT INTO notes (title) VALUES ('mine')",
    ])
    .ok();
    demo.run(&["tenant", "delete", "beta", "--keep-schema", "--yes"])
        .ok();
    assert_eq!(roles(&pool, &prefix).await, std::slice::from_ref(&group));
    let out = demo.run(&[
        "tenant",
        "adopt",
        "beta",
        "--domain",
        "beta.test",
        "--name",
        "Beta again",
    ]);
    assert!(
        out.ok()
            .contains("adopted schema beta as a tenant (type default, domain beta.test)"),
        "{out:?}"
    );
    assert_eq!(roles(&pool, &prefix).await, [group, demo.role("beta")]);
    let out = demo.run(&[
        "exec",
        "--schema",
        "beta",
        "-c",
        "SELECT current_user, string_agg(title, ',' ORDER BY id) FROM notes",
    ]);
    assert!(
        out.ok().contains(&format!(
            "  {} | Welcome to beta,mine,Welcome to Beta again",
            demo.role("beta")
        )),
        "{out:?}"
    );
    pool.close().await;
}

#[tokio::test]
async fn the_apps_seed_hook_and_tenant_types_apply_to_cli_created_tenants() {
    let demo = Demo::new(false).await;
    demo.run(&[
        "tenant",
        "create",
        "acme",
        "--domain",
        "acme.test",
        "--display-name",
        "ACME Inc",
    ])
    .ok();
    demo.run(&[
        "tenant", "create", "vet", "--domain", "vet.test", "--type", "clinic",
    ])
    .ok();
    // The demo's `after_create` hook seeded the welcome note, in every type.
    let out = demo.run(&["exec", "--all", "-c", "SELECT title FROM notes"]);
    let stdout = out.ok();
    assert!(stdout.contains("  Welcome to ACME Inc"), "{stdout}");
    assert!(stdout.contains("  Welcome to vet"), "{stdout}");
    // The clinic type's own migrations ran for the CLI-made clinic.
    let out = demo.run(&[
        "exec",
        "--schema",
        "vet",
        "-c",
        "SELECT count(*) FROM patients",
    ]);
    assert!(out.ok().contains("  0"), "{out:?}");
    // A type the app does not configure is refused, naming the ones it does.
    let err = demo
        .run(&[
            "tenant", "create", "x", "--domain", "x.test", "--type", "zoo",
        ])
        .failed();
    assert!(
        err.contains("unknown tenant type \"zoo\"") && err.contains("clinic"),
        "{err}"
    );
}

#[tokio::test]
async fn notes_stats_runs_in_one_tenant_or_all_with_a_failure_summary() {
    let demo = Demo::new(false).await;
    for name in ["a1", "b2", "c3"] {
        demo.run(&[
            "tenant",
            "create",
            name,
            "--domain",
            &format!("{name}.test"),
        ])
        .ok();
    }
    demo.run(&[
        "exec",
        "--schema",
        "c3",
        "-c",
        "INSERT INTO notes (title) VALUES ('x'), ('y')",
    ])
    .ok();

    let out = demo.run(&["notes-stats", "--tenant", "c3"]);
    let stdout = out.ok();
    assert!(
        stdout.contains("tenant c3: 3 note(s) of 100 (plan free)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notes-stats: 1 of 1 tenant(s) ok, 0 failed"),
        "{stdout}"
    );
    assert!(!stdout.contains("tenant a1"), "{stdout}");

    let out = demo.run(&["notes-stats", "--all-tenants", "--jobs", "3"]);
    let stdout = out.ok();
    for line in [
        "tenant a1: 1 note(s) of 100 (plan free)",
        "tenant b2: 1 note(s) of 100 (plan free)",
        "tenant c3: 3 note(s) of 100 (plan free)",
        "notes-stats: 3 of 3 tenant(s) ok, 0 failed",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    // No progress bar when stderr is not a terminal.
    assert!(!out.stderr.contains("tenants, ETA"), "{out:?}");

    // One tenant breaks: the others still run, the summary lists the failure, exit code 1.
    demo.run(&[
        "exec",
        "--schema",
        "b2",
        "-c",
        "ALTER TABLE notes RENAME TO old_notes",
    ])
    .ok();
    let out = demo.run(&["notes-stats", "--all-tenants"]);
    let all = out.failed();
    assert!(all.contains("tenant a1: 1 note(s)"), "{all}");
    assert!(all.contains("tenant c3: 3 note(s)"), "{all}");
    assert!(
        all.contains("notes-stats: 2 of 3 tenant(s) ok, 1 failed"),
        "{all}"
    );
    assert!(
        out.stderr
            .contains("error: notes-stats failed in 1 tenant(s)")
            && out
                .stderr
                .contains("tenant b2: relation \"notes\" does not exist (SQLSTATE 42P01)"),
        "{out:?}"
    );
    // The command's own flag; and usage errors.
    let err = demo
        .run(&[
            "notes-stats",
            "--all-tenants",
            "--over-limit-fails",
            "--jobs",
            "0",
        ])
        .failed();
    assert!(err.contains("--jobs"), "{err}");
    let err = demo.run(&["notes-stats"]).failed();
    assert!(err.contains("--tenant <NAME>|--all-tenants"), "{err}");
    let err = demo.run(&["notes-stats", "--tenant", "nope"]).failed();
    assert!(err.contains("no tenant \"nope\""), "{err}");
}

#[tokio::test]
async fn migrate_sets_up_the_job_queue_like_the_web_app() {
    // `Demo::new` ran `tenantry-demo migrate` on a fresh database.
    let demo = Demo::new(false).await;
    let pool = sqlx::PgPool::connect(demo.db.url()).await.unwrap();
    let jobs: Option<String> = sqlx::query_scalar("SELECT to_regclass('apalis.jobs')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs.as_deref(), Some("apalis.jobs"));
    // Again, with nothing pending: the step runs (idempotent) and says so.
    let again = demo.run(&["migrate"]);
    let out = again.ok();
    assert!(out.contains("setup job queue: done"), "{out}");
    assert!(out.contains("nothing to do"), "{out}");
    // Not on a tenants-only run.
    let tenants_only = demo.run(&["migrate", "--tenants"]);
    let out = tenants_only.ok();
    assert!(!out.contains("setup job queue"), "{out}");
    pool.close().await;
}

#[test]
fn help_lists_the_cli_and_the_apps_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantry-demo"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "migrate",
        "tenant",
        "exec",
        "notes-stats",
        "serve",
        "--database-url",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
}

#[tokio::test]
async fn role_mode_serves_tenants_the_cli_created() {
    let demo = Demo::new(true).await;
    demo.run(&["tenant", "create", "alpha", "--domain", "alpha.test"])
        .ok();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // No command: the web app, in role mode like the CLI runs above.
    let mut server = Command::new(env!("CARGO_BIN_EXE_tenantry-demo"))
        .env("DATABASE_URL", demo.db.url())
        .env("TENANTRY_DEMO_ADDR", format!("127.0.0.1:{port}"))
        .env("TENANTRY_DEMO_TENANT_ROLES", demo.roles.as_deref().unwrap())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let notes = loop {
        assert!(
            server.try_wait().unwrap().is_none(),
            "the demo stopped in role mode"
        );
        match client
            .get(format!("http://127.0.0.1:{port}/api/notes"))
            .header("host", "alpha.test")
            .send()
            .await
        {
            Ok(r) => break r,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("the demo never answered: {e}"),
        }
    };
    let status = notes.status();
    let body = notes.text().await.unwrap();
    // The tenant page reads the shared `plans` table as the tenant's role.
    let page = client
        .get(format!("http://127.0.0.1:{port}/"))
        .header("host", "alpha.test")
        .send()
        .await
        .unwrap();
    let page_status = page.status();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Welcome to alpha"), "{body}");
    assert_eq!(page_status, 200);
}

/// Titles of a tenant's notes, in id order.
async fn note_titles(pool: &PgPool, schema: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT title FROM \"{schema}\".notes ORDER BY id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn role_mode_clone_export_import_through_the_app_cli() {
    let demo = Demo::new(true).await;
    let pool = demo.pool().await;
    demo.run(&["tenant", "create", "acme", "--domain", "acme.test"])
        .ok();
    demo.run(&[
        "exec",
        "--schema",
        "acme",
        "-c",
        "INSERT INTO notes (title) SELECT 'note ' || g FROM generate_series(1, 20) g",
    ])
    .ok();
    let source = note_titles(&pool, "acme").await;
    assert_eq!(source.len(), 21, "the welcome note and 20 more");

    // clone: the copy gets its own role, which owns its schema; the app's after_create hook runs
    // (as for `tenant create`) and adds its welcome note after the copied ones.
    let out = demo.run(&[
        "tenant",
        "clone",
        "acme",
        "acme_copy",
        "--domain",
        "copy.test",
    ]);
    assert!(
        out.ok()
            .contains("cloned tenant acme as acme_copy (domain copy.test)"),
        "{out:?}"
    );
    assert_eq!(
        schema_owner(&pool, "acme_copy").await,
        demo.role("acme_copy")
    );
    let copied = note_titles(&pool, "acme_copy").await;
    assert_eq!(copied[..21], source[..]);
    assert_eq!(copied[21..], ["Welcome to acme_copy"]);
    // The copy's role works in its schema and not in the source's.
    let out = demo.run(&[
        "exec",
        "--schema",
        "acme_copy",
        "-c",
        "INSERT INTO notes (title) VALUES ('copy only') RETURNING current_user",
    ]);
    assert!(out.ok().contains(&demo.role("acme_copy")), "{out:?}");
    let err = demo
        .run(&[
            "exec",
            "--schema",
            "acme_copy",
            "-c",
            "SELECT * FROM acme.notes",
        ])
        .failed();
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(note_titles(&pool, "acme").await, source);

    // export, then import under another name: same rows, plus the hook's welcome note.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.tar.gz");
    let file = file.to_str().unwrap();
    let out = demo.run(&["tenant", "export", "acme", "-o", file, "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(report["tenant"]["schema"], "acme");
    let out = demo.run(&[
        "tenant",
        "import",
        file,
        "--as",
        "acme_back",
        "--domain",
        "back.test",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(report["tenant"]["schema"], "acme_back");
    assert_eq!(
        schema_owner(&pool, "acme_back").await,
        demo.role("acme_back")
    );
    let back = note_titles(&pool, "acme_back").await;
    assert_eq!(back[..21], source[..]);
    assert_eq!(
        back[21..],
        ["Welcome to acme"],
        "display name from the archive"
    );
}
