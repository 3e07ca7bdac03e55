//! Validated names: [`SchemaName`] and [`DomainName`], built once at the edge from user text.
//!
//! Past the edge, code that takes one of these types can't be handed an unchecked string, so a
//! name that reaches SQL has passed [`validate_schema_name`] (and is still quoted there).

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::{NameError, validate_domain, validate_schema_name};

/// A PostgreSQL schema name that passed Tenantry's rules: `^[a-z_][a-z0-9_]{0,62}$`, not `pg_*`,
/// not reserved (see [`validate_schema_name`]).
///
/// It reads as a `&str` (`Deref`, `AsRef<str>`, `Display`), parses with `FromStr`, and
/// (de)serialises as a plain string, validated on the way in.
///
/// ```
/// use tenantry_core::{NameError, SchemaName};
///
/// let acme: SchemaName = "acme".parse()?;
/// assert_eq!(acme.as_str(), "acme");
/// assert!(acme.starts_with("ac")); // a `&str` through `Deref`
/// assert!(matches!("Acme".parse::<SchemaName>(), Err(NameError::SchemaSyntax(_))));
/// assert!(matches!(SchemaName::new("public"), Err(NameError::SchemaReserved(_))));
/// # Ok::<(), NameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaName(String);

impl SchemaName {
    /// Validates `name` as a tenant schema name (built-in reserved names refused).
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        Self::with_reserved(name, &[])
    }

    /// Validates `name`, also refusing the names in `extra_reserved` (the deployment's shared
    /// and extra search-path schemas, template schemas...).
    pub fn with_reserved(
        name: impl Into<String>,
        extra_reserved: &[&str],
    ) -> Result<Self, NameError> {
        let name = name.into();
        validate_schema_name(&name, extra_reserved)?;
        Ok(Self(name))
    }

    /// A schema Tenantry names itself (templates, spares) or the deployment's shared schemas:
    /// the syntax rule and the `pg_*`/`information_schema` rule, without the list of names
    /// reserved *for tenants* (which is exactly what such schemas are called).
    pub fn system(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        match validate_schema_name(&name, &[]) {
            Err(NameError::SchemaReserved(_))
                if !name.starts_with("pg_") && name != "information_schema" =>
            {
                Ok(Self(name))
            }
            Err(e) => Err(e),
            Ok(()) => Ok(Self(name)),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A tenant domain that passed [`validate_domain`]: lowercase RFC 1123 labels, at most 253
/// characters, not an IP address. Normalise user text first (`normalize_host`), then validate.
///
/// ```
/// use tenantry_core::{DomainName, NameError};
///
/// let d = DomainName::new("acme.example.com")?;
/// assert_eq!(d.to_string(), "acme.example.com");
/// assert!(matches!(DomainName::new("127.0.0.1"), Err(NameError::DomainIpAddress(_))));
/// # Ok::<(), NameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Validates `domain` (already normalised: lowercase, no port, no trailing dot).
    pub fn new(domain: impl Into<String>) -> Result<Self, NameError> {
        let domain = domain.into();
        validate_domain(&domain)?;
        Ok(Self(domain))
    }

    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The traits both names share: read as `&str`, print as themselves, parse and (de)serialise
/// through their validation.
macro_rules! name_traits {
    ($ty:ident, $what:literal) => {
        impl Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "({:?})"), self.0)
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_traits!(SchemaName, "SchemaName");
name_traits!(DomainName, "DomainName");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_follow_the_rules() {
        let name = SchemaName::new("acme_2").unwrap();
        assert_eq!(&*name, "acme_2");
        assert_eq!(name, "acme_2");
        assert_eq!(format!("{name}"), "acme_2");
        assert_eq!(format!("{name:?}"), "SchemaName(\"acme_2\")");
        for bad in [
            "",
            "Acme",
            "1a",
            "a-b",
            "a\"b",
            "pg_x",
            "public",
            "tenantry_template",
        ] {
            assert!(SchemaName::new(bad).is_err(), "{bad}");
        }
        assert!(SchemaName::with_reserved("app", &["app"]).is_err());
        // Tenantry's own and shared schemas: syntax only, never pg_*.
        for ok in ["public", "shared", "tenantry_template"] {
            assert_eq!(SchemaName::system(ok).unwrap().as_str(), ok);
        }
        for bad in ["pg_catalog", "information_schema", "Public"] {
            assert!(SchemaName::system(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_round_trip_through_serde_with_validation() {
        let name: SchemaName = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"acme\"");
        assert!(serde_json::from_str::<SchemaName>("\"a;b\"").is_err());
        let domain: DomainName = serde_json::from_str("\"acme.example\"").unwrap();
        assert_eq!(domain.as_str(), "acme.example");
        assert!(serde_json::from_str::<DomainName>("\"A.example\"").is_err());
        assert!("10.0.0.1".parse::<DomainName>().is_err());
    }
}
