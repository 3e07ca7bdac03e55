//! Resolution: which tenant a request is for, answered from memory.
//!
//! * `host.rs`: [`crate::Tenantry::resolve_host`] and the schema-name lookups of the other
//!   routing strategies;
//! * `cache.rs`: the bounded caches of known and unknown keys, with generation-checked
//!   invalidation;
//! * `lookup.rs`: the registry read behind a miss;
//! * `listener.rs`: LISTEN on the registry channel, emptying the cache on every change.

pub(crate) mod cache;
mod host;
pub(crate) mod listener;
pub(crate) mod lookup;

pub use host::{Resolution, ResolveError};
