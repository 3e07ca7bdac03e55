//! Administration: the tenant life cycle (create, delete, rename, status, data), domains,
//! registry reads and, in role mode, the tenants' roles. Every operation is one transaction.

pub(crate) mod adopt;
pub(crate) mod audit;
pub(crate) mod domains;
pub(crate) mod lock;
pub(crate) mod lookup;
pub(crate) mod overview;
pub(crate) mod register;
pub(crate) mod roles;
pub(crate) mod tenants;

pub use adopt::AdoptedTenant;
pub use overview::{
    MAX_PAGE_SIZE, MigrationState, SEARCH_HIT_CAP, TenantOverview, TenantQuery, TenantsOnDay,
};
pub use tenants::{MAX_DISPLAY_NAME_CHARS, NewTenant, SchemaOnDelete};
