//! What a job carries about its tenant: the tenant's identity, stored in the job's metadata.

use apalis::prelude::{Metadata, MetadataStore};
use tenantry_core::Tenant;

/// Metadata key: the tenant's registry id (never reused).
pub const TENANT_ID_KEY: &str = "tenantry.tenant_id";
/// Metadata key: the tenant's schema name when the job was enqueued.
pub const SCHEMA_KEY: &str = "tenantry.schema";
/// Metadata key: the OID of the tenant's schema when the job was enqueued (absent if unknown).
pub const SCHEMA_OID_KEY: &str = "tenantry.schema_oid";

/// The tenant a job belongs to, as enqueued: its identity (registry id and schema OID), not
/// just its name.
///
/// A schema *name* is not a tenant's identity: a rename or a delete hands the name to another
/// tenant while the job waits in the queue. The worker ([`crate::TenantJobLayer`]) finds the
/// tenant by [`JobTenantRef::id`], so a job follows its tenant through a rename and never runs
/// in a schema that now bears the old name for someone else; the schema name is kept for logs
/// and as the cached lookup's first guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTenantRef {
    /// The tenant's registry id.
    pub id: i64,
    /// The tenant's schema name when the job was enqueued.
    pub schema: String,
    /// The OID of that schema, if the record had it: a tenant whose schema was replaced (the
    /// same id over another schema) does not get the job.
    pub schema_oid: Option<u32>,
}

impl JobTenantRef {
    /// The reference to `tenant`.
    pub fn of(tenant: &Tenant) -> Self {
        Self {
            id: tenant.id,
            schema: tenant.schema.clone(),
            schema_oid: tenant.schema_oid,
        }
    }
}

/// Why a job's metadata holds no usable tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantMetadataError {
    /// The job was enqueued without a tenant (not through [`crate::TenantQueue`]).
    #[error("the job carries no tenant (metadata key {TENANT_ID_KEY:?} is missing)")]
    Missing,
    /// A key is there but its value is not what Tenantry writes.
    #[error("the job's tenant metadata {key:?} is malformed: {value:?}")]
    Malformed {
        /// The metadata key.
        key: &'static str,
        /// Its value.
        value: String,
    },
}

impl Metadata for JobTenantRef {
    type Error = TenantMetadataError;

    fn inject(&self, metadata: &mut MetadataStore) -> Result<(), Self::Error> {
        // The keys are Tenantry's own: whatever was there (set by application code shaping
        // the task) is replaced, never kept.
        for key in [TENANT_ID_KEY, SCHEMA_KEY, SCHEMA_OID_KEY] {
            metadata.remove(key);
        }
        let _ = metadata.insert(TENANT_ID_KEY, self.id.to_string());
        let _ = metadata.insert(SCHEMA_KEY, self.schema.clone());
        if let Some(oid) = self.schema_oid {
            let _ = metadata.insert(SCHEMA_OID_KEY, oid.to_string());
        }
        Ok(())
    }

    fn extract(metadata: &MetadataStore) -> Result<Self, Self::Error> {
        let id = metadata
            .get(TENANT_ID_KEY)
            .ok_or(TenantMetadataError::Missing)?;
        let id = id.parse().map_err(|_| TenantMetadataError::Malformed {
            key: TENANT_ID_KEY,
            value: id.to_owned(),
        })?;
        let schema = metadata
            .get(SCHEMA_KEY)
            .ok_or(TenantMetadataError::Malformed {
                key: SCHEMA_KEY,
                value: String::new(),
            })?
            .to_owned();
        let schema_oid = match metadata.get(SCHEMA_OID_KEY) {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| TenantMetadataError::Malformed {
                key: SCHEMA_OID_KEY,
                value: v.to_owned(),
            })?),
        };
        Ok(Self {
            id,
            schema,
            schema_oid,
        })
    }
}
