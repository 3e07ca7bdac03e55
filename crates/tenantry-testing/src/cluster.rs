//! A private PostgreSQL cluster (feature `cluster`), for tests that stop and restart the server.

use std::path::{Path, PathBuf};

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

/// Server settings of a [`PrivateCluster`].
const SETTINGS: &str = "-c fsync=off -c max_connections=60";

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
        let port = start_on_free_port(&bin, &dir, SETTINGS);
        Some(Self { bin, dir, port })
    }
    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server again after [`PrivateCluster::stop`] (same port and data).
    pub fn restart(&self) {
        if let Err(e) = pg_ctl_start(&self.bin, &self.dir, self.port, SETTINGS) {
            panic!("{e}");
        }
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

/// `pg_ctl start` on the data directory `dir/data`, listening on 127.0.0.1:`port` with the
/// extra `-c` `settings`, waiting up to 60 s. The error quotes what the server logged.
pub(crate) fn pg_ctl_start(
    bin: &Path,
    dir: &ScratchDir,
    port: u16,
    settings: &str,
) -> Result<(), String> {
    let log = dir.path().join("postgres.log");
    let logged_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} {settings}",
        dir.path().display()
    );
    let status = as_postgres(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(dir.path().join("data"))
        .arg("-l")
        .arg(&log)
        .args(["-o", &opts, "-w", "-t", "60", "start"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run pg_ctl");
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read(&log).unwrap_or_default();
    let new = String::from_utf8_lossy(text.get(logged_before as usize..).unwrap_or_default());
    let tail: Vec<&str> = new.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "pg_ctl start failed (port {port}, {}); the server logged:\n{}",
        dir.path().display(),
        tail.join("\n")
    ))
}

/// Starts the server of `dir` on a free port and returns the port; when another process took
/// that port between choosing and binding, tries another one (up to 5 times).
///
/// # Panics
///
/// When the server doesn't start for any other reason, with what it logged.
pub(crate) fn start_on_free_port(bin: &Path, dir: &ScratchDir, settings: &str) -> u16 {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        match pg_ctl_start(bin, dir, port, settings) {
            Ok(()) => return port,
            Err(e) if e.contains("could not bind") || e.contains("already in use") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free port after 5 tries; last: {last}")
}
