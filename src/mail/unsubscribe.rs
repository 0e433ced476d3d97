//! Unsubscribe tokens: the subscriber's key, signed with HMAC-SHA256 under the operator's
//! secret, so that a link works without a login and cannot be forged or altered.
//!
//! Tokens already sent carry the key as it was then, the local part in its configured case
//! ("Ada@example.org"): the signature is checked over the bytes as signed, and the key is
//! then made from them by the one rule, so such a token names the same subscriber.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::domain::{EmailAddress, SubscriberKey};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token (128 bits).
const TAG_LEN: usize = 16;

#[derive(Clone)]
pub struct Tokens {
    secret: SecretString,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(***)")
    }
}

impl Tokens {
    pub fn new(secret: SecretString) -> Self {
        Self { secret }
    }

    fn mac(&self, signed: &[u8]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        m.update(b"paperboy-unsubscribe\0");
        m.update(signed);
        m
    }

    /// The token for a subscriber.
    pub fn sign(&self, key: &SubscriberKey) -> String {
        let signed = key.as_str().as_bytes();
        let tag = self.mac(signed).finalize().into_bytes();
        format!("{}.{}", B64.encode(signed), B64.encode(&tag[..TAG_LEN]))
    }

    /// The subscriber a token names, if the token is genuine (its tag compared in constant
    /// time over the bytes as signed; those then read as an address, keyed by the rule).
    pub fn verify(&self, token: &str) -> Option<SubscriberKey> {
        let (who, tag) = token.trim().split_once('.')?;
        let signed = B64.decode(who).ok()?;
        let tag = B64.decode(tag).ok()?;
        if tag.len() != TAG_LEN {
            return None;
        }
        self.mac(&signed).verify_truncated_left(&tag).ok()?;
        let address = EmailAddress::parse(std::str::from_utf8(&signed).ok()?).ok()?;
        Some(address.key())
    }
}

/// How one subscriber leaves: the https one-click link (when the operator runs the HTTP
/// listener publicly) and a mailto: request (always).
#[derive(Debug, Clone, Default)]
pub struct UnsubscribeLinks {
    pub https: Option<String>,
    pub mailto: String,
}

impl UnsubscribeLinks {
    pub fn for_subscriber(cfg: &crate::config::Config, key: &SubscriberKey) -> Self {
        let tokens = cfg.unsubscribe.secret.clone().map(Tokens::new);
        let token = tokens.as_ref().map(|t| t.sign(key));
        let https = match (&cfg.unsubscribe.base_url, &token) {
            (Some(base), Some(t)) => {
                let mut url = base.clone();
                url.query_pairs_mut().append_pair("t", t);
                Some(url.to_string())
            }
            _ => None,
        };
        let to = cfg
            .unsubscribe
            .mailto
            .as_ref()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| cfg.smtp.from.email.to_string());
        let subject = match &token {
            Some(t) => format!("unsubscribe {t}"),
            None => format!("unsubscribe {key}"),
        };
        let mailto = format!(
            "mailto:{to}?subject={}",
            url::form_urlencoded::byte_serialize(subject.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        );
        Self { https, mailto }
    }

    /// The link to show in the email: the one-click page, else the mailto.
    pub fn visible(&self) -> &str {
        self.https.as_deref().unwrap_or(&self.mailto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(address: &str) -> SubscriberKey {
        EmailAddress::parse(address).unwrap().key()
    }

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = Tokens::new(SecretString::from("a long enough test secret"));
        let tok = t.sign(&key("ada@example.org"));
        assert_eq!(t.verify(&tok), Some(key("ada@example.org")));
        // Another subscriber's name with Ada's tag, a flipped tag, another secret: refused.
        let (_, tag) = tok.split_once('.').unwrap();
        assert_eq!(
            t.verify(&format!("{}.{tag}", B64.encode("eve@example.org"))),
            None
        );
        // A genuine tag of another subscriber under Ada's name: refused by the MAC itself.
        let eve = t.sign(&key("eve@example.org"));
        let (ada_who, _) = tok.split_once('.').unwrap();
        let (_, eve_tag) = eve.split_once('.').unwrap();
        assert_eq!(t.verify(&format!("{ada_who}.{eve_tag}")), None);
        let other = Tokens::new(SecretString::from("another secret, also long"));
        assert_eq!(other.verify(&tok), None);
        assert_eq!(t.verify("garbage"), None);
    }

    #[test]
    fn a_token_signed_over_a_mixed_case_key_names_the_folded_subscriber() {
        let t = Tokens::new(SecretString::from("a long enough test secret"));
        // As versions that kept the local part's case signed Ada's key.
        let old = b"Ada@example.org";
        let tag = t.mac(old).finalize().into_bytes();
        let token = format!("{}.{}", B64.encode(old), B64.encode(&tag[..TAG_LEN]));
        assert_eq!(t.verify(&token), Some(key("ada@example.org")));
        // The same name, folded, under the old tag: not what was signed.
        let (_, old_tag) = token.split_once('.').unwrap();
        assert_eq!(
            t.verify(&format!("{}.{old_tag}", B64.encode("ada@example.org"))),
            None
        );
        // Signed, but not an address: no subscriber.
        let tag = t.mac(b"nobody").finalize().into_bytes();
        let token = format!("{}.{}", B64.encode("nobody"), B64.encode(&tag[..TAG_LEN]));
        assert_eq!(t.verify(&token), None);
    }
}
