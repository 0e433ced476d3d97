//! The one identity of a subscriber: the key under which deliveries, opt-outs and signed
//! links are recorded and compared.

use std::fmt;

use super::EmailAddress;

/// Who a subscriber is, for everything that is recorded or compared: the whole address with
/// its ASCII letters folded to lower case (`A`-`Z` to `a`-`z`), every other character kept
/// as written. So `ADA@Example.org`, `Ada@example.ORG` and `ada@example.org` are one
/// subscriber, as mail providers treat local parts without regard to case. `Élise@…` and
/// `élise@…` are two keys, but one mailbox (see [`EmailAddress::mailbox_fold`]): the config
/// refuses two subscribers whose addresses are one mailbox, so no two keys ever name one.
///
/// ASCII-only folding is what both databases reproduce exactly, which the migration that
/// folded the keys already stored relied on: SQLite's `lower()` folds only ASCII, and in
/// PostgreSQL `translate(k, 'A…Z', 'a…z')` does the same whatever the database's locale.
/// Keys are stored folded and compared exactly, so their indexes serve every look-up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberKey(String);

impl SubscriberKey {
    /// The key of an address: the rule above, in one place.
    pub fn of(email: &EmailAddress) -> Self {
        Self::folded(email.as_str().to_string())
    }

    /// A key as the database holds it (written by [`SubscriberKey::as_str`]). Folded again,
    /// which costs nothing on a folded key, so that a row written by an older version of
    /// paperboy still names the same subscriber.
    pub fn from_stored(key: String) -> Self {
        Self::folded(key)
    }

    fn folded(mut key: String) -> Self {
        key.make_ascii_lowercase();
        Self(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EmailAddress {
    /// The subscriber this address names (defined here, beside the rule, so that addresses
    /// need not know of keys).
    pub fn key(&self) -> SubscriberKey {
        SubscriberKey::of(self)
    }

    /// The address in full Unicode lower case: two addresses with equal folds are one mailbox
    /// to a mail provider (`Élise@example.org`, `élise@example.org`), and the config refuses
    /// two subscribers whose addresses are, which would send that mailbox every digest twice.
    /// Stricter than the key (whose ASCII-only rule the databases reproduce), and a check
    /// only: equal keys have equal folds, but nothing is recorded or looked up by this.
    pub fn mailbox_fold(&self) -> String {
        self.as_str().to_lowercase()
    }
}

impl fmt::Display for SubscriberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(address: &str) -> SubscriberKey {
        SubscriberKey::of(&EmailAddress::parse(address).unwrap())
    }

    #[test]
    fn an_address_in_any_case_is_one_key() {
        assert_eq!(key("ADA@Example.org").as_str(), "ada@example.org");
        assert_eq!(key("ada@example.org"), key("Ada@EXAMPLE.ORG"));
        assert_ne!(key("ada@example.org"), key("ada2@example.org"));
    }

    #[test]
    fn only_ascii_letters_are_folded_as_the_databases_fold_them() {
        // Not É: SQLite's lower() would keep it, so the key does too.
        assert_eq!(key("ÉLISE@Example.org").as_str(), "Élise@example.org");
        assert_eq!(
            SubscriberKey::from_stored("Ada@example.org".into()),
            key("ada@example.org")
        );
    }

    #[test]
    fn addresses_that_differ_in_any_case_are_one_mailbox_but_keep_their_keys() {
        let fold = |a: &str| EmailAddress::parse(a).unwrap().mailbox_fold();
        assert_eq!(fold("Élise@Example.org"), fold("élise@example.org"));
        assert_ne!(key("Élise@example.org"), key("élise@example.org"));
        assert_eq!(fold("ADA@Example.org"), fold("ada@example.org"));
        assert_ne!(fold("élise@example.org"), fold("elise@example.org"));
    }
}
