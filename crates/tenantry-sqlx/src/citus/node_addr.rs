//! A Citus node's address (host and port, as registered in `pg_dist_node`).

use serde::Serialize;

/// A node's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NodeAddr {
    /// Host name as registered in Citus.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}
