//! Validation of user-supplied identifiers: schema names and domains.
//!
//! Both end up in SQL (schema names as identifiers, domains as bound values), so they are checked
//! before anything is executed. Identifiers are additionally always quoted with [`quote_ident`].

use thiserror::Error;

/// Why a schema name or a domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The schema name is empty.
    #[error("schema name is empty")]
    EmptySchema,
    /// The schema name is longer than PostgreSQL's 63-byte identifier limit.
    #[error("schema name {0:?} is longer than 63 bytes")]
    SchemaTooLong(String),
    /// The schema name has characters outside `[a-z0-9_]` or starts with a digit.
    #[error(
        "schema name {0:?} must match ^[a-z_][a-z0-9_]{{0,62}}$ (lowercase ASCII letters, digits, underscore; not starting with a digit)"
    )]
    SchemaSyntax(String),
    /// The schema name is reserved by PostgreSQL or by Tenantry.
    #[error("schema name {0:?} is reserved")]
    SchemaReserved(String),
    /// The domain is empty.
    #[error("domain is empty")]
    EmptyDomain,
    /// The domain is longer than 253 characters.
    #[error("domain {0:?} is longer than 253 characters")]
    DomainTooLong(String),
    /// A label of the domain is not a valid RFC 1123 label.
    #[error(
        "domain {domain:?} has an invalid label {label:?}: labels are 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    DomainLabel {
        /// The whole domain.
        domain: String,
        /// The offending label.
        label: String,
    },
    /// The domain is an IP address (`127.0.0.1`, `[::1]`, or a numeric shorthand like `127.1`).
    #[error(
        "domain {0:?} is an IP address: IP addresses can't be tenant domains (use a host name, such as acme.example.com)"
    )]
    DomainIpAddress(String),
    /// The last label is all digits (`acme.123`): browsers read such a host as an IPv4 address.
    #[error(
        "domain {domain:?} ends in the all-digit label {label:?}: browsers read such a name as an IP address, and IP addresses can't be tenant domains"
    )]
    DomainNumericLabel {
        /// The whole domain.
        domain: String,
        /// The last label.
        label: String,
    },
}

/// Names that can never be a tenant schema: PostgreSQL's own schemas and Tenantry's.
const RESERVED_SCHEMAS: &[&str] = &[
    "public",
    "information_schema",
    "tenantry",
    "tenantry_template",
    "extensions",
    "shared",
];

/// Checks a tenant schema name: `^[a-z_][a-z0-9_]{0,62}$`, not `pg_*`, not reserved.
///
/// `extra_reserved` holds names the deployment reserves on top of the built-in list (the shared
/// schema, extra search-path schemas...).
pub fn validate_schema_name(name: &str, extra_reserved: &[&str]) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::EmptySchema);
    }
    if name.len() > 63 {
        return Err(NameError::SchemaTooLong(name.to_owned()));
    }
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(NameError::SchemaSyntax(name.to_owned()));
    }
    if name.starts_with("pg_") || RESERVED_SCHEMAS.contains(&name) || extra_reserved.contains(&name)
    {
        return Err(NameError::SchemaReserved(name.to_owned()));
    }
    Ok(())
}

/// Checks a domain (already lowercase): RFC 1123 labels, at most 253 characters, no trailing dot.
///
/// Single-label names such as `localhost` are accepted; IP literals are not domains.
pub fn validate_domain(domain: &str) -> Result<(), NameError> {
    if domain.is_empty() {
        return Err(NameError::EmptyDomain);
    }
    if domain.len() > 253 {
        return Err(NameError::DomainTooLong(domain.to_owned()));
    }
    if is_ip_address(domain) {
        return Err(NameError::DomainIpAddress(domain.to_owned()));
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(NameError::DomainLabel {
                domain: domain.to_owned(),
                label: label.to_owned(),
            });
        }
    }
    // An all-numeric last label would make the name look like an IPv4 address.
    if let Some(last) = domain.rsplit('.').next()
        && last.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(NameError::DomainNumericLabel {
            domain: domain.to_owned(),
            label: last.to_owned(),
        });
    }
    Ok(())
}

/// An IPv4 or IPv6 address, bracketed or not, or a dotted-number shorthand that resolvers and
/// browsers read as IPv4 (`127.1`, `2130706433`).
fn is_ip_address(host: &str) -> bool {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    unbracketed.parse::<std::net::IpAddr>().is_ok()
        || host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
}

/// Quotes an identifier for SQL: wraps it in double quotes and doubles any embedded quote.
///
/// Tenantry validates schema names before use; quoting is the second line of defence.
pub fn quote_ident(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    out.push('"');
    for c in ident.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal for SQL: `E'...'` with quotes and backslashes doubled, so the result
/// means the same whatever `standard_conforming_strings` says.
///
/// Tenantry binds values wherever the protocol allows; literals are only written into the few
/// simple-protocol statements that travel with a `BEGIN` (one round trip).
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    out.push_str("E'");
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["acme", "_x", "a1_b2", &"a".repeat(63)] {
            assert_eq!(validate_schema_name(ok, &[]), Ok(()), "{ok}");
        }
        assert_eq!(validate_schema_name("", &[]), Err(NameError::EmptySchema));
        assert!(matches!(
            validate_schema_name(&"a".repeat(64), &[]),
            Err(NameError::SchemaTooLong(_))
        ));
        for bad in ["Acme", "1abc", "a-b", "a;b", "a\"b", "ümlaut", "a b", "a'b"] {
            assert!(
                matches!(
                    validate_schema_name(bad, &[]),
                    Err(NameError::SchemaSyntax(_))
                ),
                "{bad}"
            );
        }
        for reserved in ["pg_catalog", "pg_x", "public", "information_schema"] {
            assert!(
                matches!(
                    validate_schema_name(reserved, &[]),
                    Err(NameError::SchemaReserved(_))
                ),
                "{reserved}"
            );
        }
        assert!(validate_schema_name("app_shared", &["app_shared"]).is_err());
    }

    #[test]
    fn domains() {
        for ok in [
            "localhost",
            "acme.localhost",
            "a-b.example.com",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(validate_domain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "-a.com", "a-.com", "a..b", "a.b.", "A.com", "a_b.com", "1.2.3.4", "a b",
        ] {
            assert!(validate_domain(bad).is_err(), "{bad}");
        }
        assert!(validate_domain(&format!("{}.com", "a".repeat(64))).is_err());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(long.len() > 253);
        assert!(matches!(
            validate_domain(&long),
            Err(NameError::DomainTooLong(_))
        ));
    }

    #[test]
    fn ip_addresses_are_named_as_such() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "127.1",
            "2130706433",
            "[::1]",
            "::1",
            "fe80::1",
        ] {
            let err = validate_domain(ip).unwrap_err();
            assert_eq!(err, NameError::DomainIpAddress(ip.to_owned()), "{ip}");
            assert!(
                err.to_string()
                    .contains("IP addresses can't be tenant domains"),
                "{err}"
            );
        }
        assert!(matches!(
            validate_domain("acme.123"),
            Err(NameError::DomainNumericLabel { label, .. }) if label == "123"
        ));
        // Digits elsewhere are fine.
        assert_eq!(validate_domain("1.acme.example"), Ok(()));
        assert_eq!(validate_domain("web1.example"), Ok(()));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("acme"), "\"acme\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn literals_are_quoted_whatever_the_string_settings() {
        assert_eq!(super::quote_literal("acme"), "E'acme'");
        assert_eq!(super::quote_literal(r"a'b\c"), r"E'a''b\\c'");
    }
}
