//! End-to-end tests of the `tenantry` binary against a real PostgreSQL database (one fresh
//! database per test, see `tenantry-testing`), with migration folders written to a temp dir.

use std::process::Command;

use serde_json::Value;
use sqlx::PgPool;
use tempfile::TempDir;
use tenantry_testing::TestDb;

/// What one run of the binary printed.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn of(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        &self.stdout
    }

    /// Asserts exit code `code` and returns stdout + stderr.
    #[track_caller]
    fn fails_with(&self, code: i32) -> String {
        assert_eq!(self.code, code, "expected exit code {code}, got {self:#?}");
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "a panic is not an error message: {self:#?}"
        );
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A test database plus a working directory with `shared/` and `tenant/` migration folders.
struct Env {
    db: TestDb,
    dir: TempDir,
}

impl Env {
    async fn new() -> Self {
        let env = Self {
            db: TestDb::new().await,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        env.write(
            "shared/1_plans.sql",
            "CREATE TABLE plans (id INT PRIMARY KEY, name TEXT NOT NULL);",
        );
        env.write(
            "tenant/1_items.sql",
            "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL);",
        );
        env
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Runs `tenantry` in the temp dir with DATABASE_URL set and the two folders as flags.
    fn run(&self, args: &[&str]) -> Out {
        self.run_raw(
            &[
                &[
                    "--shared-migrations",
                    "shared",
                    "--tenant-migrations",
                    "tenant",
                ],
                args,
            ]
            .concat(),
            Some(self.db.url()),
        )
    }

    /// Runs `tenantry` in the temp dir with exactly `args`.
    fn run_raw(&self, args: &[&str], database_url: Option<&str>) -> Out {
        Out::of(
            self.command(args, database_url)
                .output()
                .expect("run tenantry"),
        )
    }

    /// The `tenantry` command `run_raw` runs, for tests that change its environment or pipes.
    fn command(&self, args: &[&str], database_url: Option<&str>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
        cmd.current_dir(self.dir.path())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("DATABASE_URL");
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        cmd
    }

    async fn pool(&self) -> PgPool {
        PgPool::connect(self.db.url()).await.expect("connect")
    }

    /// `migrate` then create each tenant at `<name>.localhost`.
    fn setup(&self, tenants: &[&str]) {
        self.run(&["migrate"]).ok();
        for t in tenants {
            self.run(&["tenant", "create", t, "--domain", &format!("{t}.localhost")])
                .ok();
        }
    }
}

async fn schema_exists(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn registry_has(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM public.tenantry_tenants WHERE schema_name = $1)",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn applied_versions(pool: &PgPool, schema: &str) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\"._sqlx_migrations ORDER BY version"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn table_exists(pool: &PgPool, qualified: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(qualified)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn tenants_json(env: &Env) -> Vec<Value> {
    let out = env.run(&["tenant", "list", "--json"]);
    serde_json::from_str::<Value>(out.ok())
        .expect("list --json prints JSON")
        .as_array()
        .expect("a JSON array")
        .clone()
}

#[tokio::test]
async fn migrate_shared_then_tenants_plan_check_and_noop() {
    let env = Env::new().await;

    // Fresh database: everything pending, nothing changed by --plan/--check.
    let plan = env.run(&["migrate", "--plan"]);
    let text = plan.ok();
    assert!(
        text.contains("would apply Tenantry registry migration(s) [1,2,3]"),
        "{text}"
    );
    assert!(text.contains("would apply migration(s) [1]"), "{text}");
    env.run(&["migrate", "--check"]).fails_with(2);
    let pool = env.pool().await;
    assert!(!table_exists(&pool, "public.tenantry_tenants").await);

    let out = env.run(&["migrate"]);
    let text = out.ok();
    assert!(text.contains("applied 1 shared migration(s) [1]"), "{text}");
    assert!(table_exists(&pool, "public.plans").await);
    assert!(table_exists(&pool, "public.tenantry_tenants").await);

    for t in ["acme", "beta"] {
        env.run(&["tenant", "create", t, "--domain", &format!("{t}.localhost")])
            .ok();
    }
    // Up to date: answered from the ledger.
    let out = env.run(&["migrate"]);
    assert!(
        out.ok().contains(
            "nothing to do: shared schema public up to date, 2 tenant schema(s) up to date"
        ),
        "{out:#?}"
    );
    env.run(&["migrate", "--check"]).ok();

    // A new tenant migration: pending in both schemas.
    env.write(
        "tenant/2_qty.sql",
        "ALTER TABLE items ADD COLUMN qty INT NOT NULL DEFAULT 0;",
    );
    let check = env.run(&["migrate", "--check"]);
    assert!(check.fails_with(2).contains("2 tenant schema(s)"));
    let plan = env.run(&["migrate", "--plan"]);
    let text = plan.ok();
    assert!(
        text.contains("schema acme (type default): would apply migration(s) [2]"),
        "{text}"
    );
    assert!(text.contains("schema beta (type default): would apply migration(s) [2]"));
    assert!(text.contains("plan: 2 of 2 tenant schema(s) pending"));
    assert_eq!(
        applied_versions(&pool, "acme").await,
        [1],
        "--plan changed nothing"
    );

    let out = env.run(&["migrate", "--jobs", "2"]);
    let text = out.ok();
    assert!(
        text.contains("schema acme: applied 1 migration(s) [2] in"),
        "{text}"
    );
    assert!(
        text.contains("schema beta: applied 1 migration(s) [2] in"),
        "{text}"
    );
    assert!(
        text.contains("tenants: 2 migrated, 0 up to date, 0 failed"),
        "{text}"
    );
    for t in ["acme", "beta"] {
        assert_eq!(applied_versions(&pool, t).await, [1, 2]);
    }
    env.run(&["migrate", "--check"]).ok();
    assert!(env.run(&["migrate"]).ok().contains("nothing to do"));
}

#[tokio::test]
async fn migrate_scopes_shared_tenants_and_one_schema() {
    let env = Env::new().await;
    // Tenants only, before the registry exists: a clear error.
    let err = env.run(&["migrate", "--tenants"]).fails_with(1);
    assert!(err.contains("run `tenantry migrate --shared`"), "{err}");

    let out = env.run(&["migrate", "--shared"]);
    assert!(out.ok().contains("applied 1 shared migration(s)"));
    env.run(&["tenant", "create", "acme", "--domain", "acme.localhost"])
        .ok();
    env.run(&["tenant", "create", "beta", "--domain", "beta.localhost"])
        .ok();
    env.write("tenant/2_notes.sql", "CREATE TABLE notes (body TEXT);");

    let out = env.run(&["migrate", "--schema", "acme"]);
    let text = out.ok();
    assert!(
        text.contains("schema acme: applied 1 migration(s) [2]"),
        "{text}"
    );
    assert!(!text.contains("schema beta"), "{text}");
    let pool = env.pool().await;
    assert_eq!(applied_versions(&pool, "acme").await, [1, 2]);
    assert_eq!(applied_versions(&pool, "beta").await, [1]);

    let err = env.run(&["migrate", "--schema", "nope"]).fails_with(1);
    assert!(err.contains("error: no tenant \"nope\""), "{err}");

    let out = env.run(&["migrate", "--tenants"]);
    assert!(out.ok().contains("schema beta: applied 1 migration(s) [2]"));
    assert_eq!(applied_versions(&pool, "beta").await, [1, 2]);
    // --ignore-ledger opens every schema anyway.
    let out = env.run(&["migrate", "--tenants", "--ignore-ledger"]);
    let text = out.ok();
    assert!(text.contains("schema acme: up to date in"), "{text}");
    assert!(
        text.contains("0 migrated, 2 up to date, 0 failed"),
        "{text}"
    );
    // Mutually exclusive scopes are a usage error (exit 1, not 2).
    env.run(&["migrate", "--shared", "--tenants"]).fails_with(1);
}

#[tokio::test]
async fn broken_migration_names_schema_and_leaves_it_untouched() {
    let env = Env::new().await;
    env.setup(&["acme", "beta"]);
    env.write("tenant/2_good.sql", "CREATE TABLE good (id INT);");
    env.write(
        "tenant/3_broken.sql",
        "ALTER TABLE no_such_table ADD COLUMN x INT;",
    );

    let out = env.run(&["migrate"]);
    let text = out.fails_with(1);
    assert!(
        text.contains(
            "schema acme: FAILED migration 3 (broken): relation \"no_such_table\" does not exist"
        ),
        "{text}"
    );
    assert!(
        out.stderr
            .contains("error: migrations failed in 2 schema(s):"),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains(
            "schema beta: migration 3 (broken): relation \"no_such_table\" does not exist"
        ),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains(
            "0 migrated, 0 up to date, 2 failed, 0 skipped, of 2 schema(s); 2 still pending"
        ),
        "{out:#?}"
    );
    // Fully migrated or untouched: migration 2 was rolled back with 3.
    let pool = env.pool().await;
    for t in ["acme", "beta"] {
        assert_eq!(applied_versions(&pool, t).await, [1]);
        assert!(!table_exists(&pool, &format!("{t}.good")).await);
    }
    // Still pending for deploy pipelines.
    env.run(&["migrate", "--check"]).fails_with(2);

    // --fail-fast with one job: the second schema is not attempted.
    let out = env.run(&["migrate", "--fail-fast", "--jobs", "1"]);
    let text = out.fails_with(1);
    assert!(
        text.contains("1 schema(s) not attempted (--fail-fast): beta"),
        "{text}"
    );

    // Fixed: the next run applies both migrations.
    env.write("tenant/3_broken.sql", "ALTER TABLE good ADD COLUMN x INT;");
    env.run(&["migrate"]).ok();
    for t in ["acme", "beta"] {
        assert_eq!(applied_versions(&pool, t).await, [1, 2, 3]);
    }
}

#[tokio::test]
async fn broken_shared_migration_stops_before_tenants() {
    let env = Env::new().await;
    env.setup(&["acme"]);
    env.write("shared/2_bad.sql", "SELECT 1/0;");
    env.write("tenant/2_notes.sql", "CREATE TABLE notes (body TEXT);");
    let out = env.run(&["migrate"]);
    let text = out.fails_with(1);
    assert!(text.contains("schema public: migration 2 (bad)"), "{text}");
    assert!(text.contains("division by zero"), "{text}");
    assert_eq!(applied_versions(&env.pool().await, "acme").await, [1]);
}

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
async fn migrate_summary_counts_what_the_ledger_skipped() {
    let env = Env::new().await;
    env.setup(&["acme", "beta"]);
    env.write("tenant/2_more.sql", "CREATE TABLE more (id INT);");
    // Created with both migrations: up to date by the ledger, not opened by the next run.
    env.run(&["tenant", "create", "gamma", "--domain", "gamma.localhost"])
        .ok();
    let out = env.run(&["migrate"]);
    let text = out.ok();
    assert!(
        text.contains("tenants: 2 migrated, 1 up to date, 0 failed, 0 skipped, of 3 schema(s), in"),
        "{text}"
    );
    assert!(!text.contains("pending"), "{text}");
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
