//! The tenant record as Tenantry sees it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::{fmt, str::FromStr};

/// Whether a tenant is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Served normally.
    #[default]
    Active,
    /// Not served (403); data kept.
    Suspended,
    /// Temporarily not served (503 with `Retry-After`).
    Maintenance,
}

impl TenantStatus {
    /// The value stored in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tenant status {0:?} (expected active, suspended or maintenance)")]
pub struct TenantStatusParseError(pub String);

impl FromStr for TenantStatus {
    type Err = TenantStatusParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            "maintenance" => Ok(TenantStatus::Maintenance),
            other => Err(TenantStatusParseError(other.to_owned())),
        }
    }
}

/// A tenant: one row of the registry, with its primary domain.
///
/// Applications keep fields of their own (plan, paid-until...) in [`Tenant::data`], a JSON object,
/// and read them back typed with [`Tenant::data_as`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Registry id.
    pub id: i64,
    /// The PostgreSQL schema that holds the tenant's data (validated, unique).
    pub schema: String,
    /// Human-readable name.
    pub display_name: String,
    /// Whether the tenant is served.
    pub status: TenantStatus,
    /// The tenant's type (selects router and migration set); `"default"` unless configured.
    pub tenant_type: String,
    /// The primary domain, if the tenant has one.
    pub primary_domain: Option<String>,
    /// Application-defined fields.
    pub data: serde_json::Value,
    /// When the tenant was created.
    pub created_at: DateTime<Utc>,
    /// The OID of the tenant's schema when this record was read (`None` if it was missing, or
    /// for a record that did not come from the registry). Together with [`Tenant::id`] it is the
    /// tenant's identity: a scoped `BEGIN` refuses to run when the schema now named
    /// [`Tenant::schema`] is not this one (a rename or a delete handed the name to another
    /// tenant). Not serialised: it means nothing outside its database.
    #[serde(skip)]
    pub schema_oid: Option<u32>,
    /// The registry version this record was resolved at (set by resolutions only). While the
    /// registry is still at that version, a scoped `BEGIN` skips its registry lookups: nothing
    /// about any tenant changed since. Not serialised.
    #[serde(skip)]
    pub registry_version: Option<i64>,
    /// The tenant's node epoch when this record was resolved (Citus node-affine routing only,
    /// see `TenantryBuilder::node_affine`): every registry change of the tenant and every move
    /// bumps it on every node, so a worker can tell a stale record without the coordinator.
    /// Not serialised.
    #[serde(skip)]
    pub node_epoch: Option<i64>,
}

impl Tenant {
    /// Deserialises the application's own fields into `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }
}
