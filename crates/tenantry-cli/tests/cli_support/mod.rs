//! Shared by the end-to-end tests of the `tenantry` binary: a fresh database per test plus a
//! working directory with `shared/` and `tenant/` migration folders, and a runner for the binary.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::process::Command;

use serde_json::Value;
use sqlx::PgPool;
use tempfile::TempDir;
use tenantry_testing::TestDb;

/// What one run of the binary printed.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn of(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        &self.stdout
    }

    /// Asserts exit code `code` and returns stdout + stderr.
    #[track_caller]
    pub(crate) fn fails_with(&self, code: i32) -> String {
        assert_eq!(self.code, code, "expected exit code {code}, got {self:#?}");
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "a panic is not an error message: {self:#?}"
        );
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A test database plus a working directory with `shared/` and `tenant/` migration folders.
pub(crate) struct Env {
    pub(crate) db: TestDb,
    pub(crate) dir: TempDir,
}

impl Env {
    pub(crate) async fn new() -> Self {
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

    pub(crate) fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Runs `tenantry` in the temp dir with DATABASE_URL set and the two folders as flags.
    pub(crate) fn run(&self, args: &[&str]) -> Out {
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
    pub(crate) fn run_raw(&self, args: &[&str], database_url: Option<&str>) -> Out {
        Out::of(
            self.command(args, database_url)
                .output()
                .expect("run tenantry"),
        )
    }

    /// The `tenantry` command `run_raw` runs, for tests that change its environment or pipes.
    pub(crate) fn command(&self, args: &[&str], database_url: Option<&str>) -> Command {
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

    pub(crate) async fn pool(&self) -> PgPool {
        PgPool::connect(self.db.url()).await.expect("connect")
    }

    /// `migrate` then create each tenant at `<name>.localhost`.
    pub(crate) fn setup(&self, tenants: &[&str]) {
        self.run(&["migrate"]).ok();
        for t in tenants {
            self.run(&["tenant", "create", t, "--domain", &format!("{t}.localhost")])
                .ok();
        }
    }
}

pub(crate) async fn schema_exists(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub(crate) async fn registry_has(pool: &PgPool, schema: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM public.tenantry_tenants WHERE schema_name = $1)",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .unwrap()
}

pub(crate) async fn applied_versions(pool: &PgPool, schema: &str) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\"._sqlx_migrations ORDER BY version"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

pub(crate) async fn table_exists(pool: &PgPool, qualified: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(qualified)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub(crate) fn tenants_json(env: &Env) -> Vec<Value> {
    let out = env.run(&["tenant", "list", "--json"]);
    serde_json::from_str::<Value>(out.ok())
        .expect("list --json prints JSON")
        .as_array()
        .expect("a JSON array")
        .clone()
}
