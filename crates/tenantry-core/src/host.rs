//! `Host` header -> lookup key.
//!
//! The key is what the domains table stores: lowercase, no port, no trailing dot, optionally no
//! leading `www.`. Anything that is not a syntactically valid host is an error (the HTTP layer turns
//! it into a 400) so that garbage never reaches the cache or the database.

use thiserror::Error;

/// Why a `Host` value could not be normalised. The HTTP layer answers these with 400.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HostError {
    /// No host at all (missing header, or an empty value).
    #[error("missing or empty Host")]
    Empty,
    /// Longer than any valid host with a port.
    #[error("Host is too long")]
    TooLong,
    /// Characters or structure that no valid host has.
    #[error("malformed Host")]
    Malformed,
}

/// Options for host normalisation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostPolicy {
    /// Treat `www.acme.example.com` as `acme.example.com`. Off by default: with it on, a tenant
    /// can never own a domain that starts with `www.`.
    pub strip_www: bool,
}

/// Normalises a raw `Host` value (`Acme.Example.COM.:8080` -> `acme.example.com`).
///
/// IPv4 and bracketed IPv6 literals are accepted and returned without their port
/// (`[::1]:8000` -> `[::1]`), so that a deployment can list them as public hosts; they never
/// match a tenant domain because domains may not be IP literals.
pub fn normalize_host(raw: &str, policy: HostPolicy) -> Result<String, HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    // 253 for the name, 1 for a trailing dot, 6 for ":65535".
    if raw.len() > 260 {
        return Err(HostError::TooLong);
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HostError::Malformed);
    }
    let lower = raw.to_ascii_lowercase();

    // Split off the port, keeping IPv6 literals whole.
    let (host, port) = if let Some(rest) = lower.strip_prefix('[') {
        let end = rest.find(']').ok_or(HostError::Malformed)?;
        let (inside, after) = (&rest[..end], &rest[end + 1..]);
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(HostError::Malformed);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(HostError::Malformed)?),
        };
        (&lower[..end + 2], port)
    } else {
        match lower.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (lower.as_str(), None),
        }
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| p <= 65535);
        if !valid {
            return Err(HostError::Malformed);
        }
    }
    if host.starts_with('[') {
        return Ok(host.to_owned());
    }

    let mut host = host.strip_suffix('.').unwrap_or(host);
    if policy.strip_www
        && let Some(rest) = host.strip_prefix("www.")
    {
        host = rest;
    }
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    if host.len() > 253 {
        return Err(HostError::TooLong);
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !labels_ok {
        return Err(HostError::Malformed);
    }
    Ok(host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str) -> Result<String, HostError> {
        normalize_host(raw, HostPolicy::default())
    }

    #[test]
    fn normalises() {
        assert_eq!(n("Acme.Example.COM").unwrap(), "acme.example.com");
        assert_eq!(n("acme.localhost:8000").unwrap(), "acme.localhost");
        assert_eq!(n("acme.localhost.").unwrap(), "acme.localhost");
        assert_eq!(n("acme.localhost.:80").unwrap(), "acme.localhost");
        assert_eq!(n("127.0.0.1:8000").unwrap(), "127.0.0.1");
        assert_eq!(n("[::1]:8000").unwrap(), "[::1]");
        assert_eq!(n("[::1]").unwrap(), "[::1]");
        assert_eq!(n("www.acme.com").unwrap(), "www.acme.com");
        let www = HostPolicy { strip_www: true };
        assert_eq!(normalize_host("WWW.acme.com", www).unwrap(), "acme.com");
    }

    #[test]
    fn rejects() {
        assert_eq!(n(""), Err(HostError::Empty));
        assert_eq!(n("."), Err(HostError::Empty));
        for bad in [
            "a b",
            "a\tb",
            "a\0b",
            "user@host",
            "host:",
            "host:abc",
            "host:99999",
            "a:1:2",
            "[::1",
            "[zz]",
            "[::1]x",
            "a..b",
            "-a.com",
            "a_b.com",
            "ü.com",
            "a/b",
            "a;drop",
            "'or'1",
        ] {
            assert!(n(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(n(&"a".repeat(300)), Err(HostError::TooLong));
    }
}
