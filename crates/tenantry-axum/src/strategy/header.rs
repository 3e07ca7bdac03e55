//! [`HeaderStrategy`]: `X-Tenant: <name>`, from trusted proxies only.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderName;
use ipnet::IpNet;

use super::{Identification, Identified, RequestInfo, TenantKey, TenantStrategy};
use crate::HttpError;

/// Addresses allowed to name the tenant in a header: your gateway or reverse proxy.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses and CIDR blocks (`10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`).
    pub fn parse<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        entries
            .into_iter()
            .map(|e| {
                let e = e.as_ref().trim();
                IpNet::from_str(e)
                    .or_else(|_| IpAddr::from_str(e).map(IpNet::from))
                    .map_err(|_| format!("not an IP address or CIDR block: {e:?}"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `ip` is trusted (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Identifies by a request header naming the tenant (default `X-Tenant`), for APIs behind a
/// gateway that has already authenticated the caller.
///
/// **Off by default** (not in the default chain), and honoured only when the directly connected
/// peer (from `ConnectInfo`, so serve with
/// [`crate::TenantRouter::into_make_service_with_connect_info`]) is in the
/// [`TrustedProxies`] list: anyone else could otherwise pick any tenant by sending the header.
/// From an untrusted peer, or without peer information, the header is ignored and the next
/// strategy runs. The peer address is the TCP peer, never `X-Forwarded-For`.
#[derive(Debug, Clone)]
pub struct HeaderStrategy {
    header: HeaderName,
    trusted: TrustedProxies,
    by_domain: bool,
}

impl HeaderStrategy {
    /// Reads `X-Tenant` (a tenant name) from the `trusted` peers only.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self {
            header: HeaderName::from_static("x-tenant"),
            trusted,
            by_domain: false,
        }
    }

    /// Reads another header.
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// The header carries a domain (looked up in the registry's domains) instead of a name.
    pub fn by_domain(mut self) -> Self {
        self.by_domain = true;
        self
    }
}

#[async_trait::async_trait]
impl TenantStrategy for HeaderStrategy {
    async fn identify(&self, req: &RequestInfo<'_>) -> Result<Identification, HttpError> {
        let Some(value) = req.headers.get(&self.header) else {
            return Ok(Identification::NotIdentified);
        };
        match req.peer {
            Some(peer) if self.trusted.contains(peer.ip()) => {}
            Some(peer) => {
                tracing::debug!(%peer, header = %self.header, "tenant header from an untrusted peer ignored");
                return Ok(Identification::NotIdentified);
            }
            None => {
                tracing::warn!(
                    header = %self.header,
                    "tenant header ignored: no peer address (serve with into_make_service_with_connect_info)"
                );
                return Ok(Identification::NotIdentified);
            }
        }
        let Ok(value) = value.to_str() else {
            return Ok(Identification::NotIdentified);
        };
        let value = value.trim().to_owned();
        let key = if self.by_domain {
            TenantKey::Domain(value)
        } else {
            TenantKey::Name(value)
        };
        Ok(Identification::Tenant(Identified::new(key)))
    }
}
