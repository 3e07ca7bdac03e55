//! Reading the host of a request.

use http::request::Parts;
use http::{HeaderMap, Uri, header::HOST};

/// Why no host could be read (the caller answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostReadError {
    /// Neither a `Host` header nor an authority in the request target.
    Missing,
    /// More than one `Host` header.
    Duplicate,
    /// The header is not visible ASCII, or the authority carries `user@`.
    Malformed,
}

/// The raw host of a request: the authority of an absolute-form (or HTTP/2) target wins over
/// the `Host` header, as RFC 9112 requires; several `Host` headers are refused.
pub fn raw_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Result<&'a str, HostReadError> {
    let mut values = headers.get_all(HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(HostReadError::Duplicate);
    }
    if let Some(authority) = uri.authority() {
        if authority.as_str().contains('@') {
            return Err(HostReadError::Malformed);
        }
        return Ok(authority.as_str());
    }
    match header {
        None => Err(HostReadError::Missing),
        Some(v) => v.to_str().map_err(|_| HostReadError::Malformed),
    }
}

/// [`raw_host`] for request parts.
pub fn raw_host_of(parts: &Parts) -> Result<&str, HostReadError> {
    raw_host(&parts.uri, &parts.headers)
}
