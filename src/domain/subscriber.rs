//! Subscribers and their email addresses.

use std::fmt;
use std::str::FromStr;

/// A syntactically valid email address (checked by lettre's parser), kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(lettre::Address);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        lettre::Address::from_str(s)
            .map(Self)
            .map_err(|e| format!("invalid email address {s:?}: {e}"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    /// The key under which deliveries are recorded: the address with its domain lowercased
    /// (domains are case-insensitive; local parts, strictly, are not).
    pub fn key(&self) -> String {
        format!("{}@{}", self.0.user(), self.0.domain().to_ascii_lowercase())
    }

    pub fn address(&self) -> &lettre::Address {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber as configured: who, and which topics (by name, in the order given).
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub email: EmailAddress,
    pub name: Option<String>,
    pub topics: Vec<String>,
    pub send_empty: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_keyed_by_lowercased_domain() {
        let a = EmailAddress::parse(" Ada@Example.ORG ").unwrap();
        assert_eq!(a.key(), "Ada@example.org");
        assert!(EmailAddress::parse("not-an-address").is_err());
        assert!(EmailAddress::parse("a@").is_err());
    }
}
