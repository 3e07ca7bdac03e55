//! The node-affine state of a handle (see `affine.rs` for the routing itself): a lazily
//! connecting pool per Citus node, nodes skipped for a moment after refusing a connection, and
//! the placement cache (schema -> node and colocation id).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::node_addr::NodeAddr;

/// How long a node that refused a connection is skipped (its tenants go through the
/// coordinator, which answers for them as it would without node-affine routing).
const DOWN_FOR: Duration = Duration::from_secs(2);

/// Node-affine state of a handle (`None` in [`crate::handle::Inner`] when the option is off).
pub(crate) struct Affinity {
    connect: PgConnectOptions,
    pool_options: PgPoolOptions,
    /// The epochs table's shard (the same qualified name on every node), once set up.
    pub(crate) shard: OnceLock<String>,
    nodes: Mutex<HashMap<NodeAddr, NodePool>>,
    pub(crate) placements: RwLock<HashMap<String, Placed>>,
}

struct NodePool {
    pool: PgPool,
    /// Skipped until then (a refused connection).
    down_until: Option<Instant>,
}

#[derive(Clone)]
pub(crate) struct Placed {
    /// The resolution cache's generation when it was read: older entries are misses.
    pub(crate) generation: u64,
    /// The node and the schema's colocation id; `None`: the coordinator.
    pub(crate) at: Option<(NodeAddr, i32)>,
}

impl Affinity {
    pub(crate) fn new(connect: PgConnectOptions, pool_options: PgPoolOptions) -> Self {
        Self {
            connect,
            pool_options: pool_options.min_connections(0),
            shard: OnceLock::new(),
            nodes: Mutex::new(HashMap::new()),
            placements: RwLock::new(HashMap::new()),
        }
    }

    /// The pool of `node` (made on first use), or `None` while the node is skipped.
    pub(crate) fn pool(&self, node: &NodeAddr) -> Option<PgPool> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let entry = nodes.entry(node.clone()).or_insert_with(|| NodePool {
            pool: self
                .pool_options
                .clone()
                .connect_lazy_with(self.connect.clone().host(&node.host).port(node.port)),
            down_until: None,
        });
        match entry.down_until {
            Some(until) if until > Instant::now() => None,
            _ => Some(entry.pool.clone()),
        }
    }

    pub(crate) fn mark_down(&self, node: &NodeAddr) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = nodes.get_mut(node) {
            entry.down_until = Some(Instant::now() + DOWN_FOR);
        }
    }

    pub(crate) fn forget(&self, schema: &str) {
        let mut placements = self.placements.write().unwrap_or_else(|e| e.into_inner());
        placements.remove(schema);
    }

    /// Closes every node pool.
    pub(crate) async fn close(&self) {
        let pools: Vec<PgPool> = {
            let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
            nodes.values().map(|n| n.pool.clone()).collect()
        };
        for pool in pools {
            pool.close().await;
        }
    }
}
