//! Building one digest email: multipart/alternative (text, then HTML), our own Message-ID.

use chrono::NaiveDate;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest as _, Sha256};

use super::{MailError, UnsubscribeLinks};
use crate::config::SmtpConfig;
use crate::domain::Subscriber;
use crate::render::Rendered;

/// The Message-ID of `subscriber_key`'s digest of `date`: stable, so a resend after a crash is
/// the same message, and opaque, so it does not reveal the address.
pub fn message_id(subscriber_key: &str, date: NaiveDate, from_domain: &str) -> String {
    let mut h = Sha256::new();
    h.update(subscriber_key.as_bytes());
    h.update(b"\n");
    h.update(date.to_string().as_bytes());
    let hash = h.finalize();
    let hex: String = hash[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("<digest.{}.{hex}@{from_domain}>", date.format("%Y%m%d"))
}

pub fn build_message(
    smtp: &SmtpConfig,
    subscriber: &Subscriber,
    message_id: &str,
    rendered: Rendered,
    links: &UnsubscribeLinks,
    dkim: Option<&lettre::message::dkim::DkimConfig>,
) -> Result<Message, MailError> {
    let to = Mailbox::new(subscriber.name.clone(), subscriber.email.address().clone());
    // The envelope the headers give (From to To: no Sender, Cc or Bcc), set here: otherwise
    // lettre formats both addresses into headers and parses them back for every message.
    let envelope = Envelope::new(Some(smtp.from.email.clone()), vec![to.email.clone()])
        .map_err(|e| MailError::Build(e.to_string()))?;
    let mut b = Message::builder()
        .envelope(envelope)
        .from(smtp.from.clone())
        .to(to)
        .subject(rendered.subject.as_str())
        .date_now()
        .message_id(Some(message_id.to_string()));
    if let Some(r) = &smtp.reply_to {
        b = b.reply_to(r.clone());
    }
    // Both parts quoted-printable, encoded here: the HTML reuses each card's encoding (see
    // `Rendered::html_quoted_printable`); the bytes are those lettre would make of the text.
    let qp = ContentTransferEncoding::QuotedPrintable;
    let body = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(
            Body::dangerous_pre_encoded(rendered.text_quoted_printable(), qp),
        ))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(
            Body::dangerous_pre_encoded(rendered.html_quoted_printable(), qp),
        ));
    let mut msg = b
        .multipart(body)
        .map_err(|e| MailError::Build(e.to_string()))?;
    let mut raw = |name: &'static str, value: String| {
        msg.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value,
        ));
    };
    raw("Auto-Submitted", "auto-generated".to_string());
    raw(
        "List-Id",
        format!("paperboy digest <digest.{}>", smtp.from.email.domain()),
    );
    // RFC 2369 and RFC 8058: one-click where an https endpoint exists, mailto always.
    let unsubscribe = match &links.https {
        Some(https) => format!("<{https}>, <{}>", links.mailto),
        None => format!("<{}>", links.mailto),
    };
    raw("List-Unsubscribe", unsubscribe);
    if links.https.is_some() {
        raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        );
    }
    // Last: the signature covers the headers as they are now.
    if let Some(d) = dkim {
        lettre::message::dkim::dkim_sign(&mut msg, d);
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_per_subscriber_and_date() {
        let d = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
        let a = message_id("a@example.org", d, "example.org");
        assert_eq!(a, message_id("a@example.org", d, "example.org"));
        assert_ne!(a, message_id("b@example.org", d, "example.org"));
        assert_ne!(
            a,
            message_id("a@example.org", d.succ_opt().unwrap(), "example.org")
        );
        assert!(a.starts_with("<digest.20260410.") && a.ends_with("@example.org>"));
        assert!(!a.contains("a@example"));
    }
}
