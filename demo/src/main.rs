//! `cargo run -p tenantry-demo` (or `tenantry-demo serve`): the notes SaaS on 127.0.0.1:8000
//! (`TENANTRY_DEMO_ADDR`).
//!
//! `tenantry-demo <command>` runs the demo's command line instead (`migrate`, `tenant ...`,
//! `domain ...`, `exec`, `notes-stats`; see `tenantry-demo --help` and
//! `tenantry_demo::commands`), with the same configuration as the app.
//!
//! A `TENANTRY_DEMO_*` variable the demo can't honour stops it at once (exit code 2), with a
//! message naming the variable, before any database is looked for.

use std::io::IsTerminal;
use std::process::ExitCode;

use tenantry::axum::strategy::TrustedProxies;
use tenantry_demo::{DemoConfig, build, postgres};

// jemalloc returns freed memory to the system where glibc's malloc keeps it: with 100,000 cached
// tenants the demo's resident memory is ~72 MiB instead of ~337 MiB (bench/http/RESULTS.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let serving = match std::env::args_os().nth(1) {
        None => true,
        Some(arg) => arg == "serve",
    };
    // Settings first: a bad variable stops the demo before it looks for a database.
    let config = match config_from_env() {
        Ok(config) if serving => match (json_logs(), console_on()) {
            (Ok(json), Ok(console)) => (config, json, console),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("tenantry-demo: {e}");
                return ExitCode::from(2);
            }
        },
        Ok(config) => (config, false, false),
        Err(e) => {
            eprintln!("tenantry-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut config, json_logs, console) = config;
    if !serving {
        // The database the CLI will use, by its rule: the hooks key files and cache keys by it.
        config.database_url = cli_database_url();
        return tenantry_demo::commands::cli(&config).run();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tenantry-demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_server(config, json_logs, console)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // As `main` returning the error would print it.
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// The web app: logging, the database (found or started), then serving until Ctrl-C/SIGTERM
/// (with the operator console unless `console` is false).
async fn run_server(mut config: DemoConfig, json_logs: bool, console: bool) -> anyhow::Result<()> {
    if json_logs {
        // One `request finished` line per request (Tenantry's request span, with `tenant`).
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(
                EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| EnvFilter::new("info,tenantry_axum::request=debug")),
            )
            .init();
    } else {
        // Colours only for a terminal: escape codes are noise in a file, and writing them
        // around every span field is most of what the request span costs when it is on.
        tracing_subscriber::fmt()
            .with_ansi(std::io::stdout().is_terminal())
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .init();
    }
    let (database_url, cluster) = match postgres::locate().await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    config.database_url = database_url;
    let result = serve(config, console).await;
    drop(cluster); // stops the private cluster, if the demo started one
    result
}

/// The database URL the command line uses: `--database-url URL` (or `=URL`), else
/// `DATABASE_URL`, else the default.
fn cli_database_url() -> String {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if let Some(url) = arg.strip_prefix("--database-url=") {
            return url.to_owned();
        }
        if arg == "--database-url"
            && let Some(url) = args.next()
        {
            return url;
        }
    }
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| postgres::DEFAULT_URL.to_owned())
}

/// The demo's settings from `TENANTRY_DEMO_*` variables (the database URL comes later).
/// Values the demo can't honour are refused with a message naming the variable.
fn config_from_env() -> anyhow::Result<DemoConfig> {
    let mut config = DemoConfig::new("");
    if let Ok(domains) = std::env::var("TENANTRY_DEMO_PUBLIC_DOMAINS") {
        config.public_domains = domains.split(',').map(|d| d.trim().to_owned()).collect();
    }
    if let Ok(trusted) = std::env::var("TENANTRY_DEMO_TRUSTED_PROXIES") {
        config.trusted_proxies = trusted
            .split(',')
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .collect();
        TrustedProxies::parse(&config.trusted_proxies).map_err(|e| {
            anyhow::anyhow!(
                "TENANTRY_DEMO_TRUSTED_PROXIES={trusted:?}: {e} (expected IP addresses or CIDR \
                 blocks separated by commas, e.g. 127.0.0.1,10.0.0.0/8)"
            )
        })?;
    }
    if let Some(budget) = env_number("TENANTRY_DEMO_TENANT_PLANS")? {
        config.tenant_plans = budget;
    }
    if let Some(shards) = env_number("TENANTRY_DEMO_POOL_SHARDS")? {
        anyhow::ensure!(
            shards >= 1,
            "TENANTRY_DEMO_POOL_SHARDS=0: the pool needs at least 1 shard (1 = one shared pool)"
        );
        config.pool_shards = shards;
    }
    if let Some(prefix) = std::env::var("TENANTRY_DEMO_TENANT_ROLES")
        .ok()
        .filter(|p| !p.is_empty())
    {
        config.tenant_roles = Some(prefix);
    }
    match std::env::var("TENANTRY_DEMO_RATE_LIMITS").as_deref() {
        Err(_) | Ok("1") => {}
        Ok("0") => config.rate_limits = false,
        Ok(other) => anyhow::bail!(
            "TENANTRY_DEMO_RATE_LIMITS={other:?}: expected 0 (per-plan rate limits off) or 1 (on, \
             the default)"
        ),
    }
    if let Some(dir) = std::env::var_os("TENANTRY_DEMO_FILES_DIR").filter(|d| !d.is_empty()) {
        config.files_dir = dir.into();
    }
    // Unset: the default Redis; empty: none (the in-process cache).
    config.redis_url = match std::env::var("TENANTRY_DEMO_REDIS_URL") {
        Ok(url) => Some(url).filter(|u| !u.trim().is_empty()),
        Err(_) => Some(tenantry_demo::DEFAULT_REDIS_URL.to_owned()),
    };
    if let Ok(v) = std::env::var("TENANTRY_DEMO_NODE_AFFINE") {
        config.node_affine = match v.as_str() {
            "1" | "true" | "on" => true,
            "0" | "false" | "off" | "" => false,
            _ => anyhow::bail!("TENANTRY_DEMO_NODE_AFFINE={v:?}: expected 1 or 0"),
        };
    }
    if let Ok(v) = std::env::var("TENANTRY_DEMO_METRICS") {
        config.metrics = match v.as_str() {
            "1" | "true" | "on" => true,
            "0" | "false" | "off" => false,
            _ => anyhow::bail!("TENANTRY_DEMO_METRICS={v:?}: expected 1 or 0"),
        };
    }
    Ok(config)
}

/// The console's password: `TENANTRY_DEMO_ADMIN_PASSWORD`, or one made up here (and printed at
/// start-up). Only the serving process calls this.
fn admin_password() -> (String, bool) {
    match std::env::var("TENANTRY_DEMO_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => {
            let bytes: [u8; 12] = rand::random();
            (bytes.iter().map(|b| format!("{b:02x}")).collect(), true)
        }
    }
}

/// `TENANTRY_DEMO_CONSOLE`: `0` serves no operator console (to measure what mounting it costs
/// tenant routes, `bench/http/console_cost.sh`); `1` or unset: the console at `/admin/`.
fn console_on() -> anyhow::Result<bool> {
    match std::env::var("TENANTRY_DEMO_CONSOLE").as_deref() {
        Err(_) | Ok("1") => Ok(true),
        Ok("0") => Ok(false),
        Ok(other) => anyhow::bail!(
            "TENANTRY_DEMO_CONSOLE={other:?}: expected 0 (no operator console) or 1 (the console \
             at /admin/, the default)"
        ),
    }
}

/// `TENANTRY_DEMO_LOG`: `json` for JSON log lines, `text` or unset for the usual ones.
fn json_logs() -> anyhow::Result<bool> {
    match std::env::var("TENANTRY_DEMO_LOG") {
        Err(_) => Ok(false),
        Ok(v) => match v.as_str() {
            "json" => Ok(true),
            "" | "text" => Ok(false),
            _ => anyhow::bail!("TENANTRY_DEMO_LOG={v:?}: expected json or text"),
        },
    }
}

async fn serve(mut config: DemoConfig, console: bool) -> anyhow::Result<()> {
    let addr = std::env::var("TENANTRY_DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    config.url_port = Some(listener.local_addr()?.port());
    let password = console.then(admin_password);
    if let Some((password, _)) = &password {
        config.admin_password_hash = Some(tenantry::console::hash_password(password)?);
    }
    let (tenantry, app) = build(&config).await?;
    let url = format!("http://localhost:{}/admin/", listener.local_addr()?.port());
    match password {
        // Printed (on stderr: stdout may carry JSON logs), not logged: it is the only way to
        // learn it (TENANTRY_DEMO_ADMIN_PASSWORD sets one).
        Some((password, true)) => eprintln!("Operator console: {url} (password: {password})"),
        Some((_, false)) => {
            eprintln!("Operator console: {url} (password from TENANTRY_DEMO_ADMIN_PASSWORD)");
        }
        None => eprintln!("Operator console: off (TENANTRY_DEMO_CONSOLE=0)"),
    }
    let tenants = tenantry.admin().tenants().await?.len();
    tracing::info!(
        "Tenantry demo on http://{addr} (public site: http://localhost:{port}/, {tenants} tenant(s); \
         sign up, then visit http://<subdomain>.localhost:{port}/)",
        port = listener.local_addr()?.port()
    );
    // With peer addresses: the trusted-header strategy checks them.
    let app = tenantry_demo::observe::with_request_id(app.into_router());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

/// A number from the environment, if the variable is set.
fn env_number(name: &str) -> anyhow::Result<Option<usize>> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
        Err(_) => Ok(None),
    }
}

/// Ctrl-C or SIGTERM: stop serving, then `main` stops the private cluster if there is one.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
