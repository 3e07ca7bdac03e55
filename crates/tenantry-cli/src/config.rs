//! Settings: flags and environment (parsed by clap) merged over an optional `tenantry.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tenantry_sqlx::{Tenantry, TenantryBuilder};

use crate::cli::ConfigArgs;

/// The file name looked up in the current directory when `--config` is not given.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "tenantry.toml";

/// The `tenantry.toml` file.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    database_url: Option<String>,
    shared_schema: Option<String>,
    extra_search_path: Option<Vec<String>>,
    public_domains: Option<Vec<String>>,
    tenant_roles: Option<String>,
    reference_tables: Option<Vec<String>>,
    #[serde(default)]
    migrations: FileMigrations,
}

#[derive(Debug, Default, Deserialize)]
struct FileMigrations {
    shared: Option<PathBuf>,
    tenant: Option<PathBuf>,
    #[serde(default)]
    tenant_types: BTreeMap<String, PathBuf>,
}

const KNOWN_KEYS: &[&str] = &[
    "database_url",
    "shared_schema",
    "extra_search_path",
    "public_domains",
    "tenant_roles",
    "reference_tables",
    "migrations",
];

/// Everything the stand-alone binary needs to build the [`Tenantry`] handle.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    /// The database URL.
    pub(crate) database_url: Option<String>,
    /// The shared schema.
    pub(crate) shared_schema: Option<String>,
    /// Extra search-path schemas.
    pub(crate) extra_search_path: Vec<String>,
    /// Public domains.
    pub(crate) public_domains: Option<Vec<String>>,
    /// Role mode's prefix ([`TenantryBuilder::tenant_roles`]).
    pub(crate) tenant_roles: Option<String>,
    /// Citus: shared tables made reference tables ([`TenantryBuilder::reference_tables`]).
    pub(crate) reference_tables: Vec<String>,
    /// Shared migrations folder.
    pub(crate) shared_migrations: Option<PathBuf>,
    /// Tenant migration folders by tenant type.
    pub(crate) tenant_migrations: BTreeMap<String, PathBuf>,
    /// The config file that was read, if any.
    pub(crate) config_file: Option<PathBuf>,
}

impl Settings {
    /// Merges the flags and the environment over the config file.
    pub(crate) fn load(cli: &ConfigArgs, database_url: Option<&str>) -> Result<Self> {
        let path = cli
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        let file = if cli.config.is_some() || path.exists() {
            Some(read_file(&path)?)
        } else {
            None
        };
        let mut settings = Settings::default();
        if let Some((file, base)) = file {
            settings.config_file = Some(path);
            let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
            settings.database_url = file.database_url;
            settings.shared_schema = file.shared_schema;
            settings.extra_search_path = file.extra_search_path.unwrap_or_default();
            settings.public_domains = file.public_domains;
            settings.tenant_roles = file.tenant_roles;
            settings.reference_tables = file.reference_tables.unwrap_or_default();
            settings.shared_migrations = file.migrations.shared.map(rel);
            if let Some(dir) = file.migrations.tenant {
                settings
                    .tenant_migrations
                    .insert(tenantry_sqlx::DEFAULT_TENANT_TYPE.to_owned(), rel(dir));
            }
            for (ty, dir) in file.migrations.tenant_types {
                settings.tenant_migrations.insert(ty, rel(dir));
            }
        }
        // The environment wins over the file, flags win over both.
        if let Some(url) = database_url_from_env() {
            settings.database_url = Some(url);
        }
        if let Some(url) = database_url {
            settings.database_url = Some(url.to_owned());
        }
        if let Some(schema) = &cli.shared_schema {
            settings.shared_schema = Some(schema.clone());
        }
        if let Some(dir) = &cli.shared_migrations {
            settings.shared_migrations = Some(dir.clone());
        }
        if let Some(dir) = &cli.tenant_migrations {
            settings
                .tenant_migrations
                .insert(tenantry_sqlx::DEFAULT_TENANT_TYPE.to_owned(), dir.clone());
        }
        for (ty, dir) in &cli.tenant_type_migrations {
            settings.tenant_migrations.insert(ty.clone(), dir.clone());
        }
        Ok(settings)
    }

    /// Fails unless a tenant migration folder is configured for `tenant_type`, saying where it
    /// looked: without one, a new tenant would get an empty schema (typically the CLI run
    /// outside the project folder, where there is no tenantry.toml).
    pub(crate) fn require_tenant_migrations(&self, tenant_type: &str) -> Result<()> {
        if self.tenant_migrations.contains_key(tenant_type) {
            return Ok(());
        }
        let (flag, key) = if tenant_type == tenantry_sqlx::DEFAULT_TENANT_TYPE {
            (
                "--tenant-migrations DIR".to_owned(),
                "[migrations] tenant".to_owned(),
            )
        } else {
            (
                format!("--tenant-type-migrations {tenant_type}=DIR"),
                format!("[migrations.tenant_types] {tenant_type}"),
            )
        };
        let file = match &self.config_file {
            Some(path) => format!("{key} in {} (not set)", path.display()),
            None => {
                let cwd = std::env::current_dir()
                    .map_or_else(|_| ".".to_owned(), |d| d.display().to_string());
                format!("{key} in ./{DEFAULT_CONFIG_FILE} (no such file in {cwd})")
            }
        };
        let what = if tenant_type == tenantry_sqlx::DEFAULT_TENANT_TYPE {
            format!("no tenant migrations configured for tenant type {tenant_type:?}")
        } else {
            format!("unknown tenant type {tenant_type:?}: no migration folder configured for it")
        };
        bail!(
            "{what}: looked for {flag}, then {file}. Run tenantry from the project folder, or \
             pass --config or {flag} (a tenant without migrations would get an empty schema)"
        )
    }

    /// The builder the file and flags describe (the database URL is not part of it).
    pub(crate) fn builder(&self) -> Result<TenantryBuilder> {
        let mut builder = Tenantry::builder().extra_search_path(self.extra_search_path.clone());
        if let Some(schema) = &self.shared_schema {
            builder = builder.shared_schema(schema.clone());
        }
        if let Some(domains) = &self.public_domains {
            builder = builder.public_domains(domains.clone());
        }
        if let Some(prefix) = &self.tenant_roles {
            builder = builder.tenant_roles(prefix.clone());
        }
        builder = builder.reference_tables(self.reference_tables.clone());
        if let Some(dir) = &self.shared_migrations {
            check_dir(dir)?;
            builder = builder.shared_migrations(dir);
        }
        for (ty, dir) in &self.tenant_migrations {
            check_dir(dir)?;
            builder = builder.tenant_type_migrations(ty, dir);
        }
        Ok(builder)
    }
}

/// `DATABASE_URL`, when set and not empty.
pub(crate) fn database_url_from_env() -> Option<String> {
    std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// Connects `builder` to `url` for a one-shot command: no LISTEN, a pool of at least
/// `connections` (the application's own pool settings are for serving, not for this), and a
/// probe first, so that an unreachable server is reported at once with its address.
pub(crate) async fn connect(
    builder: TenantryBuilder,
    url: &str,
    connections: u32,
) -> Result<Tenantry> {
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| format!("invalid database URL {}", redact(url)))?;
    probe(&options)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))?;
    builder
        .listen_for_changes(false)
        .pool_options(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(connections.max(2))
                .acquire_timeout(Duration::from_secs(10)),
        )
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))
}

/// How long the first connection may take to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens and closes one connection. The pool retries failed connections until its acquire
/// timeout and then only says "pool timed out"; this reports the first failure at once, with
/// the address tried ("connection refused at 127.0.0.1:5432").
async fn probe(options: &PgConnectOptions) -> Result<()> {
    let port = options.get_port();
    let address = match options.get_socket() {
        Some(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
        None if options.get_host().starts_with('/') => {
            format!("{}/.s.PGSQL.{port}", options.get_host())
        }
        None => format!("{}:{port}", options.get_host()),
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            // Only the answer mattered; a failed goodbye changes nothing.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            bail!("connection refused at {address} (is PostgreSQL running and listening there?)")
        }
        Ok(Err(sqlx::Error::Io(e))) => bail!("cannot reach {address}: {e}"),
        // Server answers (unknown database, authentication...) keep their SQLSTATE.
        Ok(Err(e)) => Err(e.into()),
        Err(_) => bail!(
            "no answer from {address} within {} s",
            CONNECT_TIMEOUT.as_secs()
        ),
    }
}

fn read_file(path: &Path) -> Result<(FileConfig, PathBuf)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
    for key in table.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            eprintln!("warning: {}: unknown key {key:?} ignored", path.display());
        }
    }
    let file: FileConfig = table
        .try_into()
        .with_context(|| format!("config file {}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok((file, base))
}

fn check_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("migration folder {} does not exist", dir.display());
    }
    Ok(())
}

/// The URL without its password, for error messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
