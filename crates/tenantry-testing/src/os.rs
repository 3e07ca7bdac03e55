//! Ports, scratch directories and running server programs as the `postgres` OS user.

#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
use std::path::{Path, PathBuf};
#[cfg(any(feature = "cluster", feature = "pgbouncer"))]
use std::process::Command;

/// A free TCP port on 127.0.0.1 (free when asked: bind it soon).
///
/// Picked at random *below* the kernel's ephemeral range (`ip_local_port_range`), so the
/// outgoing connections of a busy test can't take it between now and the server's bind, and
/// never the same port twice in one process.
pub fn free_port() -> u16 {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

    let (low, high) = ports_outside_ephemeral_range();
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = rand::random_range(low..high);
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    // Crowded: let the kernel choose one.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
}

/// The ports tests pick from: 15,000 up to the start of the ephemeral range (32,768 unless
/// configured otherwise).
fn ports_outside_ephemeral_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > 16_000 {
        (15_000, ephemeral_low)
    } else {
        // An unusual setup: the range starts low, so pick above it up to 65,000 instead.
        (ephemeral_low.max(1_024), 65_000)
    }
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
