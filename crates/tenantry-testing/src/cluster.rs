//! A private PostgreSQL cluster (feature `cluster`), for tests that stop and restart the server.

use std::path::PathBuf;

use crate::os::{ScratchDir, as_postgres, free_port};

/// Where the PostgreSQL server binaries (`initdb`, `pg_ctl`) are, if installed: Debian's
/// `/usr/lib/postgresql/<version>/bin` (15 to 17), or `TENANTRY_TEST_PG_BIN`.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let configured = std::env::var_os("TENANTRY_TEST_PG_BIN").map(PathBuf::from);
    configured
        .into_iter()
        .chain(
            ["17", "16", "15"]
                .iter()
                .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))),
        )
        .find(|b| b.join("initdb").exists())
}

/// A private PostgreSQL cluster in a scratch directory, listening on a free port of
/// 127.0.0.1 (`trust` authentication, user `postgres`, `fsync` off), stopped and removed on
/// drop. When the process runs as root, the server runs as the `postgres` OS user.
///
/// ```no_run
/// use tenantry_testing::{PrivateCluster, skip};
///
/// let Some(cluster) = PrivateCluster::start() else {
///     skip("no PostgreSQL server binaries (initdb)");
///     return;
/// };
/// let url = cluster.url("postgres");
/// cluster.stop(); // connections are terminated
/// cluster.restart();
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct PrivateCluster {
    bin: PathBuf,
    dir: ScratchDir,
    port: u16,
}

impl PrivateCluster {
    /// `initdb` + `pg_ctl start`; `None` when the server binaries are not installed
    /// (see [`postgres_bin_dir`]).
    ///
    /// # Panics
    ///
    /// When the binaries are there but `initdb` or the start fail.
    pub fn start() -> Option<Self> {
        let bin = postgres_bin_dir()?;
        let dir = ScratchDir::new("pg");
        let data = dir.path().join("data");
        let status = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
        };
        cluster.pg_ctl_start();
        Some(cluster)
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let status = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-o", &opts, "-w", "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl start failed");
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server again after [`PrivateCluster::stop`] (same port and data).
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// Stops the server (`-m fast`: open connections are terminated). Blocking: inside a
    /// multi-threaded Tokio runtime, call it through `tokio::task::block_in_place`.
    pub fn stop(&self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
    }

    /// URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
