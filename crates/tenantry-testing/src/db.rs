//! A throwaway database per test.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tenantry_sqlx::{Tenantry, TenantryBuilder};

/// The admin connection URL used to create and drop test databases:
/// `TENANTRY_TEST_ADMIN_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`.
///
/// The role needs `CREATEDB` (and `CREATEROLE` for tests that create roles).
pub fn admin_url() -> String {
    std::env::var("TENANTRY_TEST_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test. Dropping the value drops the database (`WITH (FORCE)`,
/// so open pools don't keep it alive), also when the test panics, and then the roles named
/// with [`TestDb::role_prefix`].
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Creates `tenantry_test_<random>` on the server of [`admin_url`].
    ///
    /// # Panics
    ///
    /// When the server can't be reached or refuses `CREATE DATABASE`: a test can't run
    /// without it.
    pub async fn new() -> Self {
        let name = format!("tenantry_test_{:016x}", rand::random::<u64>());
        let base = admin_url();
        let mut admin = PgConnection::connect(&base).await.unwrap_or_else(|e| {
            panic!("connect to the test PostgreSQL at {base} (is it running? set TENANTRY_TEST_ADMIN_URL): {e}")
        });
        // The name is ours (hex digits only): safe to spell into the statement.
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = database_url(&base, &name);
        Self { name, url }
    }

    /// The database's connection URL (the admin URL with this database's name).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A role-name prefix unique to this database. Roles are cluster-wide, so tests that create
    /// roles must name them with this prefix: they are dropped with the database.
    pub fn role_prefix(&self) -> String {
        format!("tt{}_", &self.name[self.name.len() - 12..])
    }

    /// Connects `builder` to this database and installs the shared migrations (the registry
    /// tables and the application's shared schema): the handle is ready to create tenants.
    ///
    /// # Panics
    ///
    /// When connecting or migrating fails (the message says which).
    pub async fn tenantry(&self, builder: TenantryBuilder) -> Tenantry {
        let tenantry = builder
            .connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("connect Tenantry to {}: {e}", self.name));
        tenantry
            .fleet()
            .migrate_shared()
            .await
            .unwrap_or_else(|e| panic!("shared migrations in {}: {e}", self.name));
        tenantry
    }
}

/// `base` with its database name replaced by `name` (query parameters kept).
fn database_url(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let authority_start = head.find("//").map_or(0, |i| i + 2);
    let head = match head[authority_start..].find('/') {
        Some(i) => &head[..authority_start + i],
        None => head,
    };
    match query {
        Some(query) => format!("{head}/{name}?{query}"),
        None => format!("{head}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let role_prefix = self.role_prefix();
        // Drop runs inside a Tokio runtime (or during a panic): use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = admin
                        .execute(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .await;
                    // Then the roles the test created (they only had objects in that database).
                    let roles: Vec<String> = sqlx::query_scalar(
                        "SELECT rolname::text FROM pg_roles WHERE left(rolname, length($1)) = $1",
                    )
                    .bind(&role_prefix)
                    .fetch_all(&mut admin)
                    .await
                    .unwrap_or_default();
                    for role in roles {
                        let _ = admin
                            .execute(AssertSqlSafe(format!(
                                "DROP ROLE IF EXISTS \"{}\"",
                                role.replace('"', "\"\"")
                            )))
                            .await;
                    }
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_name_is_replaced_and_parameters_kept() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
