//! Where tenants live on a Citus cluster: the nodes with their tenant counts and bytes, the
//! node of one tenant, moving a tenant online (`citus_schema_move`) and rebalancing the fleet
//! (Citus's rebalancer plans, Tenantry moves), with progress callbacks for tools.

use std::time::{Duration, Instant};

use serde::Serialize;

pub use super::node_addr::NodeAddr;
use crate::error::{Error, Result};
use crate::handle::Tenantry;
use crate::request::begin::begin_shielded;

/// How often progress is read while a move or a rebalance runs.
const POLL: Duration = Duration::from_millis(300);

/// Placement of tenants on a Citus cluster. Borrowed from a handle with
/// [`Tenantry::placement`]; every method needs Citus mode ([`Tenantry::is_citus`]) and
/// answers [`Error::CitusUnsupported`] without it.
///
/// ```no_run
/// # async fn demo(tenantry: tenantry_sqlx::Tenantry) -> tenantry_sqlx::Result<()> {
/// let placement = tenantry.placement();
/// for node in placement.nodes().await? {
///     println!("{}:{} {} tenants, {} bytes", node.host, node.port, node.tenants, node.bytes);
/// }
/// let from = placement.tenant_node("acme").await?;
/// let report = placement
///     .move_tenant("acme", "10.0.0.7", 5432, |p| println!("{}/{}", p.copied_bytes, p.total_bytes))
///     .await?;
/// println!("acme moved from {from:?} in {:?}", report.elapsed);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub(crate) tenantry: &'a Tenantry,
}

/// A node of the cluster, with the tenants it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Host name as registered in Citus.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `"coordinator"` or `"worker"`.
    pub role: &'static str,
    /// Whether Citus considers it active.
    pub active: bool,
    /// Distributed (tenant) schemas placed on it.
    pub tenants: i64,
    /// Bytes of those schemas' tables on it.
    pub bytes: i64,
}

/// Progress of a move, as Citus reports it (`get_rebalance_progress()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MoveProgress {
    /// Bytes of the tenant's tables already on the target.
    pub copied_bytes: i64,
    /// Bytes of the tenant's tables on the source.
    pub total_bytes: i64,
}

/// What [`Placement::move_tenant`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MoveReport {
    /// The tenant schema.
    pub schema: String,
    /// Where it was.
    pub from: NodeAddr,
    /// Where it is now.
    pub to: NodeAddr,
    /// False when it was already there (nothing was done).
    pub moved: bool,
    /// Wall time.
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

/// Progress of a rebalance: tenant moves done, of how many planned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RebalanceProgress {
    /// Moves finished.
    pub done: i64,
    /// Moves planned.
    pub total: i64,
}

/// What [`Placement::rebalance`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RebalanceReport {
    /// The moves, in the order they were made (empty: the cluster was balanced).
    pub moves: Vec<MoveReport>,
    /// Wall time.
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Tenantry {
    /// Placement of tenants on a Citus cluster: nodes, moves, rebalancing. See [`Placement`].
    pub fn placement(&self) -> Placement<'_> {
        Placement { tenantry: self }
    }
}

impl Placement<'_> {
    fn check(&self) -> Result<()> {
        if self.tenantry.is_citus() {
            Ok(())
        } else {
            Err(Error::CitusUnsupported {
                what: "placement",
                why: "the database is not a Citus coordinator (no citus extension, or Citus mode off)",
            })
        }
    }

    /// The primary nodes (coordinator first), each with the tenant schemas it holds and their
    /// size. Sizes are read from every node: a node that is down makes this fail.
    pub async fn nodes(self) -> Result<Vec<NodeInfo>> {
        self.check()?;
        let rows: Vec<(String, i32, bool, bool, i64, i64)> = sqlx::query_as(
            "SELECT n.nodename, n.nodeport, n.groupid = 0, n.isactive, \
                    count(DISTINCT s.colocation_id), coalesce(sum(s.shard_size), 0)::bigint \
             FROM pg_dist_node n \
             LEFT JOIN citus_shards s ON s.nodename = n.nodename AND s.nodeport = n.nodeport \
                  AND s.colocation_id IN (SELECT colocationid FROM pg_dist_schema) \
             WHERE n.noderole = 'primary' \
             GROUP BY n.groupid, n.nodename, n.nodeport, n.isactive ORDER BY n.groupid",
        )
        .fetch_all(self.tenantry.raw_pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(host, port, coordinator, active, tenants, bytes)| NodeInfo {
                    host,
                    port: port as u16,
                    role: if coordinator { "coordinator" } else { "worker" },
                    active,
                    tenants,
                    bytes,
                },
            )
            .collect())
    }

    /// The node holding a tenant's schema; `None` when the schema is not distributed (it lives
    /// on the coordinator). [`Error::TenantNotFound`] when no such tenant is registered.
    pub async fn tenant_node(self, schema: &str) -> Result<Option<NodeAddr>> {
        self.check()?;
        self.tenantry.admin().tenant(schema).await?;
        Ok(node_of(self.tenantry, schema).await?)
    }

    /// Moves a tenant's schema to the node `host:port` (`citus_schema_move`, copying with the
    /// schema's writes blocked: `block_writes`), while holding the tenant's lock exclusively,
    /// like a rename: the tenant's transactions in flight finish first (up to
    /// [`crate::Config::lifecycle_wait`], then [`Error::TenantBusy`] and nothing moved), and
    /// its new ones wait until the move is over (then run on the new node); other tenants are
    /// not affected. Without the lock, writes committed at the switch-over were lost on this
    /// Citus version (see `docs/citus.md`). Since the lock already makes the tenant's requests
    /// wait for the whole move, Citus's online mode (logical replication) would buy them nothing
    /// and costs a second or more of set-up: `block_writes` moved a 100,000-row tenant in about
    /// 0.5 s where logical replication took 1.7 to 6.7 s (`bench/citus/move_stall.sh`), and
    /// it needs no primary key. `progress` is called about three times a second while data is
    /// copied.
    ///
    /// Refused with [`Error::NodeNotFound`] for a node not in the cluster, and
    /// [`Error::TenantNotDistributed`] for a schema Citus does not manage.
    pub async fn move_tenant(
        self,
        schema: &str,
        host: &str,
        port: u16,
        progress: impl Fn(MoveProgress) + Send,
    ) -> Result<MoveReport> {
        self.check()?;
        let start = Instant::now();
        self.tenantry.admin().tenant(schema).await?;
        let pool = self.tenantry.raw_pool();
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2 \
             AND noderole = 'primary' AND shouldhaveshards)",
        )
        .bind(host)
        .bind(i32::from(port))
        .fetch_one(pool)
        .await?;
        if !known {
            return Err(Error::NodeNotFound {
                node: format!("{host}:{port}"),
            });
        }
        let from =
            node_of(self.tenantry, schema)
                .await?
                .ok_or_else(|| Error::TenantNotDistributed {
                    schema: schema.to_owned(),
                })?;
        let to = NodeAddr {
            host: host.to_owned(),
            port,
        };
        // The tenant's lock, exclusively, on a connection of its own, held until the move is
        // over (committed below, or rolled back when this future is dropped).
        let mut guard = begin_shielded(pool, "BEGIN".to_owned()).await?;
        self.tenantry.lock_tenant(&mut guard, schema).await?;
        if from == to {
            return Ok(MoveReport {
                schema: schema.to_owned(),
                from,
                to,
                moved: false,
                elapsed: start.elapsed(),
            });
        }
        // The schema as a quoted identifier, cast by the server: a value, never SQL text.
        let moving = sqlx::query(
            "SELECT citus_schema_move($1::regnamespace, $2, $3, \
             shard_transfer_mode => 'block_writes')",
        )
        .bind(crate::sql::ident(schema))
        .bind(host)
        .bind(i32::from(port))
        .execute(pool);
        let mut moving = Box::pin(moving);
        loop {
            match tokio::time::timeout(POLL, &mut moving).await {
                Ok(done) => {
                    done?;
                    break;
                }
                Err(_) => {
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "SELECT coalesce(sum(target_shard_size), 0)::bigint, \
                                coalesce(sum(source_shard_size), 0)::bigint \
                         FROM get_rebalance_progress()",
                    )
                    .fetch_optional(pool)
                    .await
                    .ok()
                    .flatten();
                    if let Some((copied_bytes, total_bytes)) = row {
                        progress(MoveProgress {
                            copied_bytes,
                            total_bytes,
                        });
                    }
                }
            }
        }
        // Every instance forgets its placements (and resolutions, whose node epoch the move
        // bumped) once the move commits: the registry channel's listeners empty their caches.
        sqlx::query("SELECT pg_notify($1, 'placement')")
            .bind(crate::registry::NOTIFY_CHANNEL)
            .execute(&mut *guard)
            .await?;
        guard.commit().await?;
        self.tenantry.invalidate_cache();
        Ok(MoveReport {
            schema: schema.to_owned(),
            from,
            to,
            moved: true,
            elapsed: start.elapsed(),
        })
    }

    /// Spreads the tenant schemas evenly over the workers: Citus's rebalancer plans the moves
    /// (`get_rebalance_table_shards_plan()`, by shard count), and Tenantry makes them one by
    /// one with [`Placement::move_tenant`] (each under its tenant's lock, see there), calling
    /// `progress` after each. A failed move stops the rebalance with its error; the moves done
    /// before it stay done.
    pub async fn rebalance(
        self,
        progress: impl Fn(RebalanceProgress) + Send,
    ) -> Result<RebalanceReport> {
        self.check()?;
        let start = Instant::now();
        // One row per colocation group to move; its schema is the tenant.
        let plan: Vec<(String, String, i32)> = sqlx::query_as(
            "SELECT n.nspname::text, p.targetname, p.targetport \
             FROM get_rebalance_table_shards_plan() p \
             JOIN pg_class c ON c.oid = p.table_name \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE EXISTS (SELECT 1 FROM pg_dist_schema ds WHERE ds.schemaid = n.oid)",
        )
        .fetch_all(self.tenantry.raw_pool())
        .await?;
        let mut planned: Vec<(String, String, u16)> = Vec::new();
        for (schema, host, port) in plan {
            if !planned.iter().any(|(s, _, _)| *s == schema) {
                planned.push((schema, host, port as u16));
            }
        }
        let total = planned.len() as i64;
        progress(RebalanceProgress { done: 0, total });
        let mut moves = Vec::new();
        for (schema, host, port) in planned {
            moves.push(self.move_tenant(&schema, &host, port, |_| {}).await?);
            progress(RebalanceProgress {
                done: moves.len() as i64,
                total,
            });
        }
        Ok(RebalanceReport {
            moves,
            elapsed: start.elapsed(),
        })
    }
}

/// The node of a distributed schema, from Citus's metadata (no node is contacted).
async fn node_of(t: &Tenantry, schema: &str) -> std::result::Result<Option<NodeAddr>, sqlx::Error> {
    let row: Option<(String, i32)> = sqlx::query_as(
        "SELECT n.nodename, n.nodeport FROM pg_dist_schema ds \
         JOIN pg_dist_partition p ON p.colocationid = ds.colocationid \
         JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid \
         JOIN pg_dist_placement pl ON pl.shardid = s.shardid \
         JOIN pg_dist_node n ON n.groupid = pl.groupid AND n.noderole = 'primary' \
         WHERE ds.schemaid = (SELECT oid FROM pg_namespace WHERE nspname = $1) LIMIT 1",
    )
    .bind(schema)
    .fetch_optional(t.raw_pool())
    .await?;
    Ok(row.map(|(host, port)| NodeAddr {
        host,
        port: port as u16,
    }))
}
