//! Ports, scratch directories and running server programs as the `postgres` OS user.

#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
use std::path::{Path, PathBuf};
#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
use std::process::Command;

/// A free TCP port on 127.0.0.1 (free when asked: bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
}

/// Whether the process runs as root (PostgreSQL and PgBouncer refuse to).
#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command for `program`, run as the `postgres` OS user when we are root.
#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
pub(crate) fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A scratch directory (owned by the `postgres` OS user when we are root, so that server
/// programs can write there), removed on drop.
#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
impl ScratchDir {
    /// Creates `$TMPDIR/tenantry-<label>-<random>`.
    ///
    /// # Panics
    ///
    /// When the directory can't be created or handed to `postgres`.
    pub fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tenantry-{label}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let scratch = Self(dir);
        scratch.give_to_postgres();
        scratch
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Hands everything inside to the `postgres` OS user (when we are root).
    pub(crate) fn give_to_postgres(&self) {
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown -R postgres {}", self.0.display());
        }
    }
}

#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
