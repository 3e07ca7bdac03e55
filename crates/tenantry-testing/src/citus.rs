//! A private Citus cluster (feature `citus`): a coordinator and workers, each a PostgreSQL of
//! the test's own with the Citus extension, on free ports, stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::cluster::{pg_ctl_start, postgres_bin_dir, start_on_free_port};
use crate::os::{ScratchDir, as_postgres};

/// The database every node of a [`CitusCluster`] holds (with `CREATE EXTENSION citus`).
pub const CITUS_DATABASE: &str = "tenantry";

/// Server settings of every node: Citus preloaded, `wal_level = logical` to move schemas.
const NODE_SETTINGS: &str = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
     -c max_connections=200 -c shared_preload_libraries=citus -c wal_level=logical \
     -c max_wal_senders=20 -c max_replication_slots=20 -c max_worker_processes=32 \
     -c citus.max_background_task_executors_per_node=2";

/// How to install Citus, for skip messages.
pub const CITUS_INSTALL_HINT: &str = "Citus is not installed (no citus.so in PostgreSQL's lib \
     directory): run `scripts/citus.sh install ../shared/citus` as root, or install Citus's packages";

/// Whether the Citus extension is installed for the PostgreSQL whose binaries
/// [`postgres_bin_dir`] finds (its `citus.so` is in the matching `lib` directory).
pub fn citus_installed() -> bool {
    postgres_bin_dir().is_some_and(|bin| citus_lib(&bin).exists())
}

fn citus_lib(bin: &Path) -> PathBuf {
    bin.parent().unwrap_or(bin).join("lib").join("citus.so")
}

/// One node: its data directory and port.
#[derive(Debug)]
struct Node {
    dir: ScratchDir,
    port: u16,
}

/// A coordinator and `workers` workers on 127.0.0.1, each a private PostgreSQL cluster with
/// `shared_preload_libraries = 'citus'` and `wal_level = logical` (needed to move schemas),
/// the database [`CITUS_DATABASE`] with the extension on every node, the coordinator
/// registered (`citus_set_coordinator_host`) and the workers added.
///
/// ```no_run
/// # async fn demo() {
/// use tenantry_testing::{CITUS_INSTALL_HINT, CitusCluster, skip};
///
/// let Some(citus) = CitusCluster::start(2).await else {
///     skip(CITUS_INSTALL_HINT);
///     return;
/// };
/// let url = citus.url(); // the coordinator
/// # let _ = url;
/// # }
/// ```
#[derive(Debug)]
pub struct CitusCluster {
    bin: PathBuf,
    coordinator: Node,
    workers: Vec<Node>,
}

impl CitusCluster {
    /// Starts the nodes and joins them; `None` when PostgreSQL's server binaries or Citus are
    /// not installed ([`citus_installed`]).
    ///
    /// # Panics
    ///
    /// When Citus is there but a node fails to start or join.
    pub async fn start(workers: usize) -> Option<Self> {
        let bin = postgres_bin_dir()?;
        if !citus_lib(&bin).exists() {
            return None;
        }
        let coordinator = start_node(&bin, "citus-coord").await;
        let mut nodes = Vec::with_capacity(workers);
        for i in 0..workers {
            nodes.push(start_node(&bin, &format!("citus-w{i}")).await);
        }
        let cluster = Self {
            bin,
            coordinator,
            workers: nodes,
        };
        let mut c = PgConnection::connect(&cluster.url())
            .await
            .expect("connect to the coordinator");
        sqlx::query("SELECT citus_set_coordinator_host('127.0.0.1', $1)")
            .bind(i32::from(cluster.coordinator.port))
            .execute(&mut c)
            .await
            .expect("citus_set_coordinator_host");
        for w in &cluster.workers {
            sqlx::query("SELECT citus_add_node('127.0.0.1', $1)")
                .bind(i32::from(w.port))
                .execute(&mut c)
                .await
                .expect("citus_add_node");
        }
        let _ = c.close().await;
        Some(cluster)
    }

    fn pg_ctl_start(&self, node: &Node) {
        if let Err(e) = pg_ctl_start(&self.bin, &node.dir, node.port, NODE_SETTINGS) {
            panic!("{e}");
        }
    }

    fn pg_ctl_stop(&self, node: &Node) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(node.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
    }

    /// URL of [`CITUS_DATABASE`] on the coordinator.
    pub fn url(&self) -> String {
        node_url(self.coordinator.port)
    }

    /// The coordinator's port on 127.0.0.1.
    pub fn coordinator_port(&self) -> u16 {
        self.coordinator.port
    }

    /// The workers' ports on 127.0.0.1, in the order they were added.
    pub fn worker_ports(&self) -> Vec<u16> {
        self.workers.iter().map(|w| w.port).collect()
    }

    /// URL of [`CITUS_DATABASE`] on worker `i`.
    pub fn worker_url(&self, i: usize) -> String {
        node_url(self.workers[i].port)
    }

    /// Stops worker `i` at once (`-m immediate`: as if its machine failed). Blocking: inside a
    /// multi-threaded Tokio runtime, call it through `tokio::task::block_in_place`.
    pub fn stop_worker(&self, i: usize) {
        self.pg_ctl_stop(&self.workers[i]);
    }

    /// Starts worker `i` again after [`CitusCluster::stop_worker`].
    pub fn start_worker(&self, i: usize) {
        self.pg_ctl_start(&self.workers[i]);
    }
}

impl Drop for CitusCluster {
    fn drop(&mut self) {
        for node in self
            .workers
            .iter()
            .chain(std::iter::once(&self.coordinator))
        {
            self.pg_ctl_stop(node);
        }
    }
}

fn node_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{CITUS_DATABASE}")
}

/// `initdb`, start on a free port, and the database with the extension.
async fn start_node(bin: &Path, label: &str) -> Node {
    let dir = ScratchDir::new(label);
    let status = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(dir.path().join("data"))
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run initdb");
    assert!(status.success(), "initdb failed ({label})");
    let port = start_on_free_port(bin, &dir, NODE_SETTINGS);
    prepare_database(port).await;
    Node { dir, port }
}

async fn prepare_database(port: u16) {
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let mut admin = None;
    for _ in 0..50 {
        match PgConnection::connect(&admin_url).await {
            Ok(c) => {
                admin = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let mut admin = admin.unwrap_or_else(|| panic!("connect to the Citus node on port {port}"));
    // A constant name: nothing untrusted is spelled into the statement.
    admin
        .execute(AssertSqlSafe(format!(
            "CREATE DATABASE \"{CITUS_DATABASE}\""
        )))
        .await
        .expect("create the Citus test database");
    let _ = admin.close().await;
    let mut db = PgConnection::connect(&node_url(port))
        .await
        .expect("connect to the Citus test database");
    db.execute("CREATE EXTENSION citus")
        .await
        .expect("CREATE EXTENSION citus");
    let _ = db.close().await;
}
