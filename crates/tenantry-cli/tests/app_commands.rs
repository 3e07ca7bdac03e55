//! `AppCommand`s run in-process through `Cli::run_async_from` with the application's builder:
//! each tenant's transaction commits only when the command succeeded there; an error or a panic
//! in one tenant rolls that tenant back, leaves the others committed and fails the run.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tenantry_cli::clap::Arg;
use tenantry_cli::{AppCommand, Cli};
use tenantry_sqlx::{MigrationSet, NewTenant, Tenantry, TenantryBuilder};
use tenantry_testing::TestDb;

const NOTES: &str =
    "CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title TEXT NOT NULL)";

fn builder() -> TenantryBuilder {
    Tenantry::builder()
        .tenant_migration_set("default", MigrationSet::from_sql(&[(1, "notes", NOTES)]))
}

/// A database with tenants `a`, `b`, `c`.
async fn setup(db: &TestDb) -> Tenantry {
    let t = builder()
        .pool_options(
            PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10)),
        )
        .listen_for_changes(false)
        .connect(db.url())
        .await
        .unwrap();
    t.fleet().migrate_shared().await.unwrap();
    for name in ["a", "b", "c"] {
        t.admin()
            .create_tenant(NewTenant::new(name, format!("{name}.test")))
            .await
            .unwrap();
    }
    t
}

/// Inserts a note titled `--title` in each tenant, then fails in tenant `b` (error) and panics
/// in tenant `c` when asked to.
fn stamp() -> AppCommand {
    AppCommand::new("stamp", "Add a note to each tenant", async |ctx| {
        let title: &String = ctx.args.get_one("title").expect("required");
        sqlx::query("INSERT INTO notes (title) VALUES ($1)")
            .bind(title)
            .execute(&mut ctx.tx)
            .await?;
        let fail_in: Option<&String> = ctx.args.get_one("fail_in");
        if fail_in == Some(&ctx.tenant.schema) {
            return Err(format!("refusing {}", ctx.tenant.schema).into());
        }
        if ctx.args.get_one::<String>("panic_in") == Some(&ctx.tenant.schema) {
            panic!("boom in {}", ctx.tenant.schema);
        }
        ctx.say("stamped");
        Ok(())
    })
    .arg(Arg::new("title").long("title").required(true))
    .arg(Arg::new("fail_in").long("fail-in"))
    .arg(Arg::new("panic_in").long("panic-in"))
}

async fn notes(t: &Tenantry, schema: &str) -> Vec<String> {
    let tenant = Arc::new(t.admin().tenant(schema).await.unwrap());
    let mut tx = t.begin(&tenant).await.unwrap();
    let titles = sqlx::query_scalar("SELECT title FROM notes ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    titles
}

async fn run(db: &TestDb, args: &[&str]) -> ExitCode {
    let mut argv = vec!["app", "--database-url", db.url()];
    argv.extend_from_slice(args);
    Cli::new(builder())
        .name("app")
        .command(stamp())
        .run_async_from(argv)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_commits_only_if_its_run_succeeded() {
    let db = TestDb::new().await;
    let t = setup(&db).await;

    // One tenant.
    assert_eq!(
        run(&db, &["stamp", "--tenant", "a", "--title", "one"]).await,
        ExitCode::SUCCESS
    );
    assert_eq!(notes(&t, "a").await, ["one"]);
    assert!(notes(&t, "b").await.is_empty());

    // All tenants, in parallel: every one committed.
    assert_eq!(
        run(
            &db,
            &["stamp", "--all-tenants", "--jobs", "3", "--title", "two"]
        )
        .await,
        ExitCode::SUCCESS
    );
    for schema in ["a", "b", "c"] {
        assert!(
            notes(&t, schema).await.contains(&"two".to_owned()),
            "{schema}"
        );
    }

    // An error in b and a panic in c: both rolled back, a committed, the run fails.
    assert_eq!(
        run(
            &db,
            &[
                "stamp",
                "--all-tenants",
                "--title",
                "three",
                "--fail-in",
                "b",
                "--panic-in",
                "c"
            ]
        )
        .await,
        ExitCode::FAILURE
    );
    assert_eq!(notes(&t, "a").await, ["one", "two", "three"]);
    assert_eq!(notes(&t, "b").await, ["two"]);
    assert_eq!(notes(&t, "c").await, ["two"]);

    // Usage errors: no target, both targets, an unknown tenant.
    assert_eq!(
        run(&db, &["stamp", "--title", "x"]).await,
        ExitCode::FAILURE
    );
    assert_eq!(
        run(
            &db,
            &["stamp", "--tenant", "a", "--all-tenants", "--title", "x"]
        )
        .await,
        ExitCode::FAILURE
    );
    assert_eq!(
        run(&db, &["stamp", "--tenant", "zz", "--title", "x"]).await,
        ExitCode::FAILURE
    );
    assert_eq!(notes(&t, "a").await, ["one", "two", "three"]);
    t.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_apps_builder_serves_the_builtin_commands() {
    let db = TestDb::new().await;
    let t = setup(&db).await;
    // `tenant create` uses the app's migration set (given in code, no folder anywhere).
    assert_eq!(
        run(&db, &["tenant", "create", "d", "--domain", "d.test"]).await,
        ExitCode::SUCCESS
    );
    assert!(
        notes(&t, "d").await.is_empty(),
        "notes table created by the app's set"
    );
    // The app's preset URL is used when neither --database-url nor DATABASE_URL gives one
    // (DATABASE_URL, when the environment sets it, wins over the preset).
    if std::env::var_os("DATABASE_URL").is_none() {
        let code = Cli::new(builder())
            .database_url(db.url())
            .run_async_from(["app", "tenant", "show", "d"])
            .await;
        assert_eq!(code, ExitCode::SUCCESS);
        let code = Cli::new(builder())
            .run_async_from(["app", "tenant", "show", "d"])
            .await;
        assert_eq!(code, ExitCode::FAILURE, "no URL at all");
    }
    t.close().await;
}

#[test]
#[should_panic(expected = "app command \"exec\" would hide the built-in command")]
fn an_app_command_cannot_hide_a_builtin_one() {
    let _ = Cli::new(builder()).command(AppCommand::new("exec", "mine", async |_ctx| Ok(())));
}
