//! A PgBouncer in front of a PostgreSQL server (feature `pgbouncer`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::os::{ScratchDir, as_postgres, free_port};

/// Where PgBouncer is, if installed (`/usr/sbin`, `/usr/bin`, `/usr/local/bin`, or
/// `TENANTRY_TEST_PGBOUNCER`).
pub fn pgbouncer_binary() -> Option<PathBuf> {
    std::env::var_os("TENANTRY_TEST_PGBOUNCER")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/sbin/pgbouncer",
                "/usr/bin/pgbouncer",
                "/usr/local/bin/pgbouncer",
            ]
            .iter()
            .map(PathBuf::from),
        )
        .find(|p| p.exists())
}

/// A PgBouncer in transaction pooling mode on a free port of 127.0.0.1, in front of
/// 127.0.0.1:5432 (every database, `trust` authentication), killed on drop. When the process
/// runs as root, PgBouncer runs as the `postgres` OS user.
///
/// ```no_run
/// # async fn example() {
/// use tenantry_testing::{PgBouncer, pgbouncer_binary, skip};
///
/// let Some(binary) = pgbouncer_binary() else {
///     skip("PgBouncer is not installed (apt-get install pgbouncer)");
///     return;
/// };
/// let bouncer = PgBouncer::start(&binary, 6, "").await;
/// let url = format!("postgres://postgres@127.0.0.1:{}/postgres", bouncer.port());
/// # let _ = url;
/// # }
/// ```
#[derive(Debug)]
pub struct PgBouncer {
    child: std::process::Child,
    _dir: ScratchDir,
    port: u16,
    version: String,
}

impl PgBouncer {
    /// Starts `binary` with `default_pool_size = pool_size` and `extra` settings appended to
    /// its `[pgbouncer]` section; returns once it accepts connections (at most 5 s).
    ///
    /// # Panics
    ///
    /// When the configuration can't be written or the program can't be started.
    pub async fn start(binary: &Path, pool_size: u32, extra: &str) -> Self {
        let dir = ScratchDir::new("pgbouncer");
        let port = free_port();
        let ini = dir.path().join("pgbouncer.ini");
        let users = dir.path().join("userlist.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").expect("write userlist.txt");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port=5432\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
                 default_pool_size = {pool_size}\nmax_client_conn = 500\nignore_startup_parameters = extra_float_digits\n\
                 logfile = {log}\n{extra}\n",
                users = users.display(),
                log = dir.path().join("pgbouncer.log").display(),
            ),
        )
        .expect("write pgbouncer.ini");
        dir.give_to_postgres();
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        let child = as_postgres(binary)
            .arg("-q")
            .arg(&ini)
            .spawn()
            .expect("start pgbouncer");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            _dir: dir,
            port,
            version,
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `pgbouncer --version`, first line.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser forwards SIGTERM to pgbouncer.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
