//! A fresh database for each test, dropped when the test ends (also when it panics).
//!
//! The server is `TENANTRY_TEST_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

#![warn(missing_docs)]

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The admin connection URL used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("TENANTRY_TEST_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test. Dropping the value drops the database (`WITH (FORCE)`).
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Creates `tenantry_test_<random>` on the test server.
    pub async fn new() -> Self {
        let name = format!("tenantry_test_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("connect to the test PostgreSQL (is it running? see README)");
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create test database");
        let base = admin_url();
        let url = match base.rfind('/') {
            Some(i) if base[..i].contains("//") && i > base.find("//").unwrap() + 1 => {
                format!("{}/{name}", &base[..i])
            }
            _ => format!("{base}/{name}"),
        };
        Self { name, url }
    }

    /// The database's connection URL.
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
                }
            });
        })
        .join();
    }
}
