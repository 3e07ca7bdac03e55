//! Property tests for host normalisation and name validation (proptest).

use proptest::prelude::*;
use tenantry_core::{
    HostPolicy, NameError, normalize_host, quote_ident, validate_domain, validate_schema_name,
};

/// Characters that show up in real and hostile Host headers.
fn hostish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9.:\\-\\[\\]@_]{0,80}",
        any::<String>(),
        "[a-z0-9]{1,20}(\\.[a-z0-9\\-]{1,20}){0,4}\\.?(:[0-9]{1,6})?",
        "\\[[0-9a-f:.]{0,40}\\](:[0-9]{0,6})?",
    ]
}

fn is_ip_literal(h: &str) -> bool {
    h.starts_with('[') && h.ends_with(']') || h.parse::<std::net::Ipv4Addr>().is_ok()
}

fn domain_charset(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Never panics; output is a lowercase domain-shaped name or an IP literal.
    #[test]
    fn normalise_output_shape(raw in hostish(), strip in any::<bool>()) {
        let policy = HostPolicy { strip_www: strip };
        if let Ok(h) = normalize_host(&raw, policy) {
            prop_assert!(domain_charset(&h) || is_ip_literal(&h), "{raw:?} -> {h:?}");
            prop_assert!(!h.contains(':') || h.starts_with('['), "port left in {h:?}");
        }
    }

    /// Normalising twice changes nothing.
    #[test]
    fn normalise_idempotent(raw in hostish()) {
        let policy = HostPolicy::default();
        if let Ok(h) = normalize_host(&raw, policy) {
            prop_assert_eq!(normalize_host(&h, policy), Ok(h.clone()));
        }
    }

    /// Case, a trailing dot and a port never change which host a request is for.
    #[test]
    fn normalise_ignores_case_dot_port(
        name in "[a-z0-9]{1,15}(\\.[a-z0-9]{1,15}){0,3}",
        upper in proptest::collection::vec(any::<bool>(), 64),
        dot in any::<bool>(),
        port in proptest::option::of(0u16..),
    ) {
        let mut raw: String = name
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
            .collect();
        if dot { raw.push('.'); }
        if let Some(p) = port { raw.push_str(&format!(":{p}")); }
        prop_assert_eq!(normalize_host(&raw, HostPolicy::default()), Ok(name));
    }

    /// Anything that isn't visible ASCII is refused (raw Unicode, control characters, spaces).
    #[test]
    fn normalise_refuses_non_ascii(prefix in "[a-z]{0,10}", bad in "[^\\x21-\\x7e]", suffix in "[a-z.]{0,10}") {
        let raw = format!("{prefix}{bad}{suffix}");
        prop_assert!(normalize_host(&raw, HostPolicy::default()).is_err(), "{raw:?}");
    }

    /// A validated schema name always matches ^[a-z_][a-z0-9_]{0,62}$ and is not pg_*.
    #[test]
    fn validated_schema_names_match_the_regex(name in prop_oneof![any::<String>(), "[a-zA-Z0-9_\\-\"';. ]{0,70}", "[a-z_][a-z0-9_]{0,70}"]) {
        if validate_schema_name(&name, &[]).is_ok() {
            let b = name.as_bytes();
            prop_assert!(!b.is_empty() && b.len() <= 63);
            prop_assert!(b[0].is_ascii_lowercase() || b[0] == b'_');
            prop_assert!(b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_'));
            prop_assert!(!name.starts_with("pg_"));
        }
    }

    /// Every name of the regex (minus reserved ones) is accepted.
    #[test]
    fn regex_names_are_accepted(name in "[a-z_][a-z0-9_]{0,62}") {
        prop_assume!(!name.starts_with("pg_"));
        prop_assume!(!["public", "information_schema", "tenantry", "tenantry_template", "extensions", "shared"].contains(&name.as_str()));
        prop_assert_eq!(validate_schema_name(&name, &[]), Ok(()));
        prop_assert!(validate_schema_name(&name, &[name.as_str()]).is_err());
    }

    /// A validated domain survives normalisation unchanged.
    #[test]
    fn validated_domains_are_normal(d in prop_oneof![any::<String>(), "[a-z0-9\\-]{1,20}(\\.[a-z0-9\\-]{1,20}){0,3}"]) {
        if validate_domain(&d).is_ok() {
            prop_assert!(domain_charset(&d));
            prop_assert_eq!(normalize_host(&d, HostPolicy::default()), Ok(d.clone()));
        }
    }

    /// Every IP address, as typed or as `normalize_host` returns it, is refused as one.
    #[test]
    fn ip_addresses_are_refused_as_such(ip in any::<std::net::IpAddr>()) {
        let typed = ip.to_string();
        let normalised = match ip {
            std::net::IpAddr::V4(_) => typed.clone(),
            std::net::IpAddr::V6(_) => format!("[{typed}]"),
        };
        for d in [typed, normalised] {
            prop_assert_eq!(validate_domain(&d), Err(NameError::DomainIpAddress(d.clone())));
        }
    }

    /// quote_ident round-trips: unquoting (strip the outer quotes, "" -> ") gives the input,
    /// and the quoted form has no lone quote inside.
    #[test]
    fn quote_ident_round_trips(s in any::<String>()) {
        let q = quote_ident(&s);
        prop_assert!(q.starts_with('"') && q.ends_with('"') && q.len() >= 2);
        let inner = &q[1..q.len() - 1];
        prop_assert!(!inner.replace("\"\"", "").contains('"'), "lone quote in {q:?}");
        prop_assert_eq!(inner.replace("\"\"", "\""), s);
    }
}
