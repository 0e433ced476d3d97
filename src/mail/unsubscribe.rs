//! Unsubscribe tokens: the subscriber's key, signed with HMAC-SHA256 under the operator's
//! secret, so that a link works without a login and cannot be forged or altered.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

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

    fn mac(&self, key: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        m.update(b"paperboy-unsubscribe\0");
        m.update(key.as_bytes());
        m
    }

    /// The token for a subscriber key.
    pub fn sign(&self, key: &str) -> String {
        let tag = self.mac(key).finalize().into_bytes();
        format!("{}.{}", B64.encode(key), B64.encode(&tag[..TAG_LEN]))
    }

    /// The subscriber key a token names, if the token is genuine (compared in constant time).
    pub fn verify(&self, token: &str) -> Option<String> {
        let (who, tag) = token.trim().split_once('.')?;
        let key = String::from_utf8(B64.decode(who).ok()?).ok()?;
        let tag = B64.decode(tag).ok()?;
        if tag.len() != TAG_LEN {
            return None;
        }
        self.mac(&key).verify_truncated_left(&tag).ok()?;
        Some(key)
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
    pub fn for_subscriber(cfg: &crate::config::Config, key: &str) -> Self {
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

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = Tokens::new(SecretString::from("a long enough test secret"));
        let tok = t.sign("ada@example.org");
        assert_eq!(t.verify(&tok).as_deref(), Some("ada@example.org"));
        // Another subscriber's name with Ada's tag, a flipped tag, another secret: refused.
        let (_, tag) = tok.split_once('.').unwrap();
        assert_eq!(
            t.verify(&format!("{}.{tag}", B64.encode("eve@example.org"))),
            None
        );
        // A genuine tag of another subscriber under Ada's name: refused by the MAC itself.
        let eve = t.sign("eve@example.org");
        let (ada_who, _) = tok.split_once('.').unwrap();
        let (_, eve_tag) = eve.split_once('.').unwrap();
        assert_eq!(t.verify(&format!("{ada_who}.{eve_tag}")), None);
        let other = Tokens::new(SecretString::from("another secret, also long"));
        assert_eq!(other.verify(&tok), None);
        assert_eq!(t.verify("garbage"), None);
    }
}
