//! The pure core of Tenantry: what a tenant is, which names and domains are acceptable,
//! and how a `Host` header becomes a lookup key. Nothing here touches the network or a database,
//! so it is cheap to test exhaustively (see the property tests in `tests/`).

#![warn(missing_docs)]

mod host;
mod names;
mod tenant;
mod validated;

pub use host::{HostError, HostPolicy, normalize_host};
pub use names::{NameError, quote_ident, quote_literal, validate_domain, validate_schema_name};
pub use tenant::{Tenant, TenantStatus, TenantStatusParseError};
pub use validated::{DomainName, SchemaName};
