//! Mail settings: the SMTP relay (`[smtp]`), DKIM signing (`[dkim]`) and how subscribers
//! leave (`[unsubscribe]`), each checked into its typed form.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::SecretString;

use super::header_text;
use super::raw::{RawDkim, RawSmtp, RawUnsubscribe, non_empty_path};
use crate::domain::EmailAddress;

/// How the SMTP session is protected: not at all, STARTTLS, or TLS from the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    None,
    StartTls,
    Tls,
}

/// The relay the digests go through, and who they come from.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub hello_name: Option<String>,
}

/// How subscribers leave: List-Unsubscribe headers and signed links.
#[derive(Debug, Clone)]
pub struct UnsubscribeConfig {
    /// The public address of the HTTP listener's /unsubscribe (https), if any.
    pub base_url: Option<url::Url>,
    /// The key that signs the tokens in links.
    pub secret: Option<SecretString>,
    /// Where mailto: unsubscribe requests go (default: the sender).
    pub mailto: Option<EmailAddress>,
}

/// `[smtp]`: the relay, its security, login and sender.
pub(super) fn validate_smtp(s: RawSmtp, problems: &mut Vec<String>) -> SmtpConfig {
    let security = match s.security.as_str() {
        "none" => Security::None,
        "starttls" => Security::StartTls,
        "tls" => Security::Tls,
        other => {
            problems.push(format!(
                "smtp.security: {other:?} is not one of \"none\", \"starttls\", \"tls\""
            ));
            Security::StartTls
        }
    };
    let port = s.port.unwrap_or(match security {
        Security::Tls => 465,
        Security::StartTls => 587,
        Security::None => 25,
    });
    if s.host.trim().is_empty() {
        problems.push("smtp.host: must not be empty".into());
    }
    let invalid = || Mailbox::new(None, "invalid@invalid".parse().expect("a valid literal"));
    let from = if s.from.trim().is_empty() {
        problems
            .push("smtp.from: required: the sender, e.g. \"Paperboy <digest@example.org>\"".into());
        invalid()
    } else {
        header_text::mailbox("smtp.from", &s.from, "From", problems).unwrap_or_else(invalid)
    };
    let reply_to = (!s.reply_to.trim().is_empty())
        .then(|| header_text::mailbox("smtp.reply_to", &s.reply_to, "Reply-To", problems))
        .flatten();
    let hello_name = (!s.hello_name.trim().is_empty()).then(|| s.hello_name.trim().to_string());
    if let Some(name) = &hello_name {
        header_text::host_name(
            "smtp.hello_name",
            name,
            "the SMTP greeting (EHLO)",
            true,
            problems,
        );
    }
    // A password given twice or unreadable is already a problem of its own.
    let mut password_problem = false;
    let password = match (s.password, non_empty_path(&s.password_file)) {
        (Some(_), Some(_)) => {
            problems.push("smtp.password and smtp.password_file: set one, not both".into());
            password_problem = true;
            None
        }
        (Some(p), None) => Some(p),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(text) => Some(SecretString::from(
                text.trim_end_matches(['\r', '\n']).to_string(),
            )),
            Err(e) => {
                problems.push(format!(
                    "smtp.password_file: cannot read {}: {e}",
                    f.display()
                ));
                password_problem = true;
                None
            }
        },
        (None, None) => None,
    };
    let username = (!s.username.trim().is_empty()).then(|| s.username.trim().to_string());
    if username.is_some() && password.is_none() && !password_problem {
        problems
            .push("smtp.username is set but neither smtp.password nor smtp.password_file".into());
    }
    if username.is_some() && security == Security::None {
        problems.push(
            "smtp.username is set but smtp.security = \"none\": the password would cross the \
             network in clear text; use \"starttls\" or \"tls\""
                .into(),
        );
    }
    if username.is_none() && password.is_some() {
        problems.push("smtp.password is set but smtp.username is empty".into());
    }
    if s.timeout.is_zero() {
        problems.push("smtp.timeout: must be above 0 (every step would time out)".into());
    }
    SmtpConfig {
        host: s.host.trim().to_string(),
        port,
        security,
        username,
        password,
        from,
        reply_to,
        timeout: s.timeout,
        ca_file: non_empty_path(&s.ca_file),
        hello_name,
    }
}

/// `[dkim]`: a signing key and the headers it covers; `None` when the table is empty.
pub(super) fn validate_dkim(
    d: RawDkim,
    problems: &mut Vec<String>,
) -> Option<Arc<lettre::message::dkim::DkimConfig>> {
    use lettre::message::dkim::{
        DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
        DkimSigningKey,
    };
    use lettre::message::header::HeaderName;
    if d.selector.trim().is_empty() && d.domain.trim().is_empty() && d.private_key_file.is_empty() {
        return None;
    }
    let mut missing = |key: &str, v: &str| {
        if v.trim().is_empty() {
            problems.push(format!("dkim.{key}: required when [dkim] is configured"));
        }
    };
    missing("selector", &d.selector);
    missing("domain", &d.domain);
    missing("private_key_file", &d.private_key_file);
    for (key, value) in [("selector", &d.selector), ("domain", &d.domain)] {
        if !value.trim().is_empty() {
            header_text::host_name(
                &format!("dkim.{key}"),
                value.trim(),
                "the DKIM-Signature header",
                false,
                problems,
            );
        }
    }
    let algorithm = match d.algorithm.trim() {
        "" | "rsa" => DkimSigningAlgorithm::Rsa,
        "ed25519" => DkimSigningAlgorithm::Ed25519,
        other => {
            problems.push(format!(
                "dkim.algorithm: {other:?} is neither \"rsa\" nor \"ed25519\""
            ));
            return None;
        }
    };
    let pem = match std::fs::read_to_string(d.private_key_file.trim()) {
        Ok(p) => p,
        Err(e) => {
            if !d.private_key_file.trim().is_empty() {
                problems.push(format!(
                    "dkim.private_key_file: cannot read {}: {e}",
                    d.private_key_file
                ));
            }
            return None;
        }
    };
    let key = match DkimSigningKey::new(pem.trim(), algorithm) {
        Ok(k) => k,
        Err(e) => {
            problems.push(format!(
                "dkim.private_key_file: {} is not a usable key (RSA keys in PKCS#1 PEM, \
                 \"BEGIN RSA PRIVATE KEY\"; ed25519 as base64): {e}",
                d.private_key_file
            ));
            return None;
        }
    };
    // RFC 8058: the List-Unsubscribe headers must be covered by the signature. Not
    // Content-Type: lettre 0.11 signs it in another form than it writes it (folded), and
    // verifiers then reject the signature (found with dkimpy).
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "MIME-Version",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    Some(Arc::new(DkimConfig::new(
        d.selector.trim().to_string(),
        d.domain.trim().to_string(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )))
}

/// `[unsubscribe]`: the link base, its signing secret and the mailto address.
pub(super) fn validate_unsubscribe(
    u: RawUnsubscribe,
    problems: &mut Vec<String>,
) -> UnsubscribeConfig {
    let secret = match (u.secret, non_empty_path(&u.secret_file)) {
        (Some(_), Some(_)) => {
            problems
                .push("unsubscribe.secret and unsubscribe.secret_file: set one, not both".into());
            None
        }
        (Some(s), None) => Some(s),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(t) => Some(SecretString::from(t.trim().to_string())),
            Err(e) => {
                problems.push(format!(
                    "unsubscribe.secret_file: cannot read {}: {e}",
                    f.display()
                ));
                None
            }
        },
        (None, None) => None,
    };
    if let Some(s) = &secret
        && secrecy::ExposeSecret::expose_secret(s).len() < 16
    {
        problems.push("unsubscribe.secret: must be at least 16 characters".into());
    }
    let base_url = match u.base_url.trim() {
        "" => None,
        b => match url::Url::parse(b) {
            // RFC 8058 one-click needs https; plain http only on this machine (tests, a local
            // proxy in front).
            Ok(url)
                if url.scheme() == "https"
                    || (url.scheme() == "http"
                        && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))) =>
            {
                Some(url)
            }
            _ => {
                problems.push(format!(
                    "unsubscribe.base_url: {b:?} is not an https URL like \"https://digest.example.org/unsubscribe\""
                ));
                None
            }
        },
    };
    if base_url.is_some() && secret.is_none() {
        problems.push(
            "unsubscribe.base_url needs unsubscribe.secret (or secret_file) to sign its links"
                .into(),
        );
    }
    let mailto = match u.mailto.trim() {
        "" => None,
        m => EmailAddress::parse(m)
            .map_err(|e| problems.push(format!("unsubscribe.mailto: {e}")))
            .ok(),
    };
    UnsubscribeConfig {
        base_url,
        secret,
        mailto,
    }
}
