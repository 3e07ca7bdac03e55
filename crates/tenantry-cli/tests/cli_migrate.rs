//! End-to-end tests of the `tenantry` binary against a real PostgreSQL database (one fresh
//! database per test): `tenantry migrate`: shared then tenant schemas, plans, checks, scopes, and failures that name their schema and leave it untouched.

mod cli_support;

use cli_support::*;

#[tokio::test]
async fn migrate_shared_then_tenants_plan_check_and_noop() {
    let env = Env::new().await;

    // Fresh database: everything pending, nothing changed by --plan/--check.
    let plan = env.run(&["migrate", "--plan"]);
    let text = plan.ok();
    assert!(
        text.contains("would apply Tenantry registry migration(s) [1,2,3,4,5]"),
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
