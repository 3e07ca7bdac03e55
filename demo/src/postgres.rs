//! Finding a PostgreSQL for the demo.
//!
//! 1. `DATABASE_URL` given: use it (the database is created if missing).
//! 2. Otherwise try `postgres://postgres@127.0.0.1:5432/tenantry_demo`.
//! 3. Nothing answers there but PostgreSQL's server binaries are installed: start a private
//!    cluster under `target/tenantry-demo-pg` (or `TENANTRY_DEMO_PG_DIR`; as the `postgres` OS
//!    user when running as root) and stop it on exit.
//! 4. No binaries either: explain how to get a PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection};

/// The default database URL.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/tenantry_demo";

/// Port of the private cluster.
const PRIVATE_PORT: u16 = 54329;

/// A private cluster started by the demo; stopped when dropped.
#[derive(Debug)]
pub struct PrivateCluster {
    pg_ctl: PathBuf,
    data_dir: PathBuf,
    as_postgres: bool,
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        eprintln!(
            "Stopping the private PostgreSQL cluster in {}",
            self.data_dir.display()
        );
        let _ = run(
            &self.pg_ctl,
            &["-D", path_str(&self.data_dir), "-m", "fast", "-w", "stop"],
            self.as_postgres,
        );
    }
}

/// Where the demo's database is, and the cluster to stop on exit, if the demo started one.
pub async fn locate() -> anyhow::Result<(String, Option<PrivateCluster>)> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        ensure_database(&url).await?;
        return Ok((url, None));
    }
    if ensure_database(DEFAULT_URL).await.is_ok() {
        return Ok((DEFAULT_URL.to_owned(), None));
    }
    let Some(bin) = find_server_binaries() else {
        anyhow::bail!(
            "No PostgreSQL answers at 127.0.0.1:5432 and no PostgreSQL server binaries were found, so \
             the demo has no database to use. Install PostgreSQL (Debian/Ubuntu: `apt-get install \
             postgresql`, macOS: `brew install postgresql@15`, or run the official `postgres` Docker \
             image with `-p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust`), then start the demo again, \
             or point it at any PostgreSQL 13+ with DATABASE_URL=postgres://user:password@host:port/dbname \
             (the database is created if it does not exist)."
        );
    };
    let cluster = start_private_cluster(&bin)?;
    let url = format!("postgres://postgres@127.0.0.1:{PRIVATE_PORT}/tenantry_demo");
    ensure_database(&url).await?;
    Ok((url, Some(cluster)))
}

/// Creates the database named in `url` if it does not exist.
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let options: PgConnectOptions = url.parse()?;
    let db = options.get_database().unwrap_or("postgres").to_owned();
    match options.clone().connect().await {
        Ok(conn) => {
            conn.close().await?;
            return Ok(());
        }
        // 3D000: invalid_catalog_name (database does not exist)
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {}
        Err(e) => return Err(e.into()),
    }
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let quoted = format!("\"{}\"", db.replace('"', "\"\""));
    match admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .await
    {
        Ok(_) => eprintln!("Created database {db}"),
        // 42P04: created concurrently by someone else
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn find_server_binaries() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn start_private_cluster(bin: &Path) -> anyhow::Result<PrivateCluster> {
    // The workspace's target/ when built from this repository, else ./target.
    let workspace_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let target = if workspace_target.is_dir() {
        workspace_target.canonicalize()?
    } else {
        std::env::current_dir()?.join("target")
    };
    let root = match std::env::var_os("TENANTRY_DEMO_PG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target.join("tenantry-demo-pg"),
    };
    let data_dir = root.join("data");
    let as_postgres = is_root();
    std::fs::create_dir_all(&root)?;
    if as_postgres {
        run(
            Path::new("chown"),
            &["-R", "postgres:postgres", path_str(&root)],
            false,
        )?;
    }
    let pg_ctl = bin.join("pg_ctl");
    if !data_dir.join("PG_VERSION").exists() {
        eprintln!(
            "Initialising a private PostgreSQL cluster in {}",
            data_dir.display()
        );
        run(
            &bin.join("initdb"),
            &[
                "-D",
                path_str(&data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            as_postgres,
        )?;
    }
    let opts = format!(
        "-p {PRIVATE_PORT} -c listen_addresses=127.0.0.1 -k {}",
        path_str(&root)
    );
    let log = root.join("postgres.log");
    run(
        &pg_ctl,
        &[
            "-D",
            path_str(&data_dir),
            "-l",
            path_str(&log),
            "-o",
            &opts,
            "-w",
            "start",
        ],
        as_postgres,
    )?;
    eprintln!(
        "No PostgreSQL at 127.0.0.1:5432 and no DATABASE_URL: started a private cluster on 127.0.0.1:{PRIVATE_PORT} \
         (data in {}); it is stopped when the demo exits.",
        data_dir.display()
    );
    Ok(PrivateCluster {
        pg_ctl,
        data_dir,
        as_postgres,
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Runs a command, as the `postgres` OS user if asked (PostgreSQL refuses to run as root).
/// Its output is shown only if it fails.
fn run(program: &Path, args: &[&str], as_postgres: bool) -> anyhow::Result<()> {
    let output = if as_postgres {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .output()?
    } else {
        Command::new(program).args(args).output()?
    };
    if !output.status.success() {
        anyhow::bail!(
            "{} failed ({}):\n{}{}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
