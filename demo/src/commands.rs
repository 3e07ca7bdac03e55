//! The demo's command line, hosted in its own binary like Django's `manage.py`:
//! `tenantry-demo migrate`, `tenantry-demo tenant create ...`, `tenantry-demo exec ...` and the
//! demo's own `tenantry-demo notes-stats`, all with the demo's builder ([`builder`]): its tenant
//! types and migrations, its seed hook ([`crate::DemoHooks`]) and, with
//! `TENANTRY_DEMO_TENANT_ROLES`, role mode. A tenant created here is exactly what a sign-up
//! creates.

use tenantry::cli::clap::{Arg, ArgAction};
use tenantry::cli::{AppCommand, Cli};
use tenantry::{Tenantry, TenantryBuilder};

use crate::{DemoConfig, DemoHooks, TenantData, migrations_dir, tenant_type_migrations_dirs};

/// The demo's Tenantry configuration, shared by the web app ([`crate::build`]) and the command
/// line ([`cli`]): migrations of every tenant type, the `extensions` search path, the public
/// domains, the seed hook and, when [`DemoConfig::tenant_roles`] is set, role mode. Pool settings
/// are the caller's.
pub fn builder(config: &DemoConfig) -> TenantryBuilder {
    let (shared, tenant) = migrations_dir();
    let mut builder = Tenantry::builder()
        .shared_migrations(shared)
        .tenant_migrations(tenant)
        // Created by the shared migrations; holds citext and shared enums.
        .extra_search_path(["extensions"])
        // On Citus (detected): every tenant page reads the plans, so they are a reference
        // table (a copy on each node). Ignored on plain PostgreSQL.
        .reference_tables(["plans"])
        .public_domains(config.public_domains.clone())
        .hooks(DemoHooks::new(config))
        .tenant_plans(config.tenant_plans)
        .pool_shards(config.pool_shards)
        // On Citus only (a no-op on plain PostgreSQL): TENANTRY_DEMO_NODE_AFFINE=1.
        .node_affine(config.node_affine);
    for (tenant_type, dir) in tenant_type_migrations_dirs() {
        builder = builder.tenant_type_migrations(tenant_type, dir);
    }
    if let Some(prefix) = &config.tenant_roles {
        builder = builder.tenant_roles(prefix.clone());
    }
    builder
}

/// What `tenantry-demo --help` adds about the web app.
const SERVE_HELP: &str = "\
Serving: `tenantry-demo` with no command, or `tenantry-demo serve`, runs the web app
(TENANTRY_DEMO_ADDR, TENANTRY_DEMO_* variables: see the README).";

/// The demo's command line over `config` (the database: `--database-url`, else
/// `DATABASE_URL`, else [`crate::postgres::DEFAULT_URL`]).
pub fn cli(config: &DemoConfig) -> Cli {
    Cli::new(builder(config))
        .name("tenantry-demo")
        .about("The Tenantry demo (notes SaaS): serve it, or manage its tenants.")
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(SERVE_HELP)
        .database_url(crate::postgres::DEFAULT_URL)
        // The export jobs' queue tables (schema `apalis`), as the web app sets them up.
        .shared_setup("job queue", |t| {
            Box::pin(async move {
                tenantry::jobs::setup(&t).await?;
                Ok(())
            })
        })
        .command(notes_stats())
}

/// `tenantry-demo notes-stats --tenant NAME | --all-tenants [--jobs N] [--over-limit-fails]`:
/// each tenant's note count against its plan's limit (the plan is read from the shared `plans`
/// table through the tenant's search path, as the tenant pages do).
pub fn notes_stats() -> AppCommand {
    AppCommand::new(
        "notes-stats",
        "Count each tenant's notes against its plan's note limit",
        async |ctx| {
            let plan_code = serde_json::from_value::<TenantData>(ctx.tenant.data.clone())
                .map_or_else(|_| "free".to_owned(), |d| d.plan);
            let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
                .fetch_one(&mut ctx.tx)
                .await?;
            let limit: Option<i32> =
                sqlx::query_scalar("SELECT note_limit FROM plans WHERE code = $1")
                    .bind(&plan_code)
                    .fetch_optional(&mut ctx.tx)
                    .await?;
            let limit = i64::from(limit.ok_or_else(|| format!("unknown plan {plan_code:?}"))?);
            if notes > limit && ctx.args.get_flag("over_limit_fails") {
                return Err(format!("{notes} notes, over the {plan_code} plan's {limit}").into());
            }
            ctx.say(format!("{notes} note(s) of {limit} (plan {plan_code})"));
            Ok(())
        },
    )
    .arg(
        Arg::new("over_limit_fails")
            .long("over-limit-fails")
            .action(ArgAction::SetTrue)
            .help("Count a tenant over its plan's limit as a failure"),
    )
}
