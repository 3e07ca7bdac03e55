//! Settings: flags and environment (parsed by clap) merged over an optional `tenantry.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use tenantry::Tenantry;

use crate::cli::Cli;

/// The file name looked up in the current directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "tenantry.toml";

/// The `tenantry.toml` file.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    database_url: Option<String>,
    shared_schema: Option<String>,
    extra_search_path: Option<Vec<String>>,
    public_domains: Option<Vec<String>>,
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
    "migrations",
];

/// Everything needed to build the [`Tenantry`] handle.
#[derive(Debug, Default)]
pub struct Settings {
    /// The database URL.
    pub database_url: Option<String>,
    /// The shared schema.
    pub shared_schema: Option<String>,
    /// Extra search-path schemas.
    pub extra_search_path: Vec<String>,
    /// Public domains.
    pub public_domains: Option<Vec<String>>,
    /// Shared migrations folder.
    pub shared_migrations: Option<PathBuf>,
    /// Tenant migration folders by tenant type.
    pub tenant_migrations: BTreeMap<String, PathBuf>,
}

impl Settings {
    /// Merges the flags over the config file.
    pub fn load(cli: &Cli) -> Result<Self> {
        let file = match &cli.config {
            Some(path) => Some(read_file(path)?),
            None => {
                let path = Path::new(DEFAULT_CONFIG_FILE);
                if path.exists() {
                    Some(read_file(path)?)
                } else {
                    None
                }
            }
        };
        let mut settings = Settings::default();
        if let Some((file, base)) = file {
            let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
            settings.database_url = file.database_url;
            settings.shared_schema = file.shared_schema;
            settings.extra_search_path = file.extra_search_path.unwrap_or_default();
            settings.public_domains = file.public_domains;
            settings.shared_migrations = file.migrations.shared.map(rel);
            if let Some(dir) = file.migrations.tenant {
                settings
                    .tenant_migrations
                    .insert(tenantry::DEFAULT_TENANT_TYPE.to_owned(), rel(dir));
            }
            for (ty, dir) in file.migrations.tenant_types {
                settings.tenant_migrations.insert(ty, rel(dir));
            }
        }
        // Flags (and DATABASE_URL, through clap) win over the file.
        if let Some(url) = &cli.database_url {
            settings.database_url = Some(url.clone());
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
                .insert(tenantry::DEFAULT_TENANT_TYPE.to_owned(), dir.clone());
        }
        for (ty, dir) in &cli.tenant_type_migrations {
            settings.tenant_migrations.insert(ty.clone(), dir.clone());
        }
        Ok(settings)
    }

    /// Connects (no LISTEN: a one-shot tool) with a pool of at least `connections`.
    pub async fn connect(&self, connections: u32) -> Result<Tenantry> {
        let url = self.database_url.as_deref().context(
            "no database URL: pass --database-url, set DATABASE_URL, or set database_url in tenantry.toml",
        )?;
        let mut builder = Tenantry::builder()
            .listen_for_changes(false)
            .pool_options(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(connections.max(2))
                    .acquire_timeout(std::time::Duration::from_secs(10)),
            )
            .extra_search_path(self.extra_search_path.clone());
        if let Some(schema) = &self.shared_schema {
            builder = builder.shared_schema(schema.clone());
        }
        if let Some(domains) = &self.public_domains {
            builder = builder.public_domains(domains.clone());
        }
        if let Some(dir) = &self.shared_migrations {
            check_dir(dir)?;
            builder = builder.shared_migrations(dir);
        }
        for (ty, dir) in &self.tenant_migrations {
            check_dir(dir)?;
            builder = builder.tenant_type_migrations(ty, dir);
        }
        builder
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to {}", redact(url)))
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
pub fn redact(url: &str) -> String {
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
