//! Building one digest email: multipart/alternative (text, then HTML), our own Message-ID.

use chrono::NaiveDate;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest as _, Sha256};

use super::parts::{
    html_quoted_printable, html_quoted_printable_into, quoted_printable_size_hint,
    text_quoted_printable, text_quoted_printable_into,
};
use super::{MailError, UnsubscribeLinks};
use crate::config::{Config, SmtpConfig};
use crate::domain::{Subscriber, SubscriberKey};
use crate::render::Rendered;

/// The Message-ID of `subscriber`'s digest of `date`: stable, so a resend after a crash is
/// the same message, and opaque, so it does not reveal the address.
pub fn message_id(subscriber: &SubscriberKey, date: NaiveDate, from_domain: &str) -> String {
    message_id_of(subscriber.as_str(), date, from_domain)
}

/// The Message-ID of a test send (`send --to`) of `date`'s digest to `to`: not the one of
/// `to`'s own digest, should `to` be a subscriber.
pub fn test_message_id(to: &SubscriberKey, date: NaiveDate, from_domain: &str) -> String {
    message_id_of(&format!("test:{to}"), date, from_domain)
}

fn message_id_of(seed: &str, date: NaiveDate, from_domain: &str) -> String {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update(b"\n");
    h.update(date.to_string().as_bytes());
    let hash = h.finalize();
    let hex: String = hash[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("<digest.{}.{hex}@{from_domain}>", date.format("%Y%m%d"))
}

/// Everything of a digest email but its content: who it is from and to, its Message-ID, how
/// to unsubscribe, and the DKIM key that signs it.
pub struct Head<'a> {
    pub smtp: &'a SmtpConfig,
    pub subscriber: &'a Subscriber,
    pub message_id: &'a str,
    pub links: &'a UnsubscribeLinks,
    pub dkim: Option<&'a lettre::message::dkim::DkimConfig>,
}

impl<'a> Head<'a> {
    /// The head of `subscriber`'s email under `cfg` (its sender, reply address and DKIM key).
    pub fn new(
        cfg: &'a Config,
        subscriber: &'a Subscriber,
        message_id: &'a str,
        links: &'a UnsubscribeLinks,
    ) -> Self {
        Self {
            smtp: &cfg.smtp,
            subscriber,
            message_id,
            links,
            dkim: cfg.dkim.as_deref(),
        }
    }
}

pub fn build_message(head: &Head<'_>, rendered: Rendered) -> Result<Message, MailError> {
    // Both parts quoted-printable, encoded here: each reuses its cards' encoding (see
    // `parts`); the bytes are those lettre would make of the text.
    let bodies = [
        text_quoted_printable(&rendered),
        html_quoted_printable(&rendered),
    ];
    let mut msg = message_with(head, &rendered.subject, bodies)?;
    // Last: the signature covers the headers as they are now.
    if let Some(d) = head.dkim {
        lettre::message::dkim::dkim_sign(&mut msg, d);
    }
    Ok(msg)
}

/// An email as it goes out: its envelope and its bytes (CRLF lines, not dot-stuffed).
#[derive(Debug)]
pub struct Email {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

impl From<&Message> for Email {
    fn from(msg: &Message) -> Self {
        Self {
            envelope: msg.envelope().clone(),
            bytes: msg.formatted(),
        }
    }
}

/// What [`build_message`] builds, formatted: the bytes of `Message::formatted`, made with
/// one copy of the parts. lettre formats the headers and the MIME structure around a place
/// holder per part (a few hundred bytes), and each part's quoted-printable is written once,
/// in its place; formatting the whole message would copy both parts into it again, and more
/// as its buffer grows. A DKIM signature covers the parts: then the message is built whole.
pub fn build_email(head: &Head<'_>, rendered: Rendered) -> Result<Email, MailError> {
    if head.dkim.is_some() {
        return Ok(Email::from(&build_message(head, rendered)?));
    }
    let [text_slot, html_slot] = part_slots();
    let slots = [text_slot.as_bytes().to_vec(), html_slot.as_bytes().to_vec()];
    let skeleton = message_with(head, &rendered.subject, slots)?;
    let frame = skeleton.formatted();
    // The slots are random per process, and looked for past the message's headers (where
    // the subject and names are): only the parts' bodies can hold them.
    let find = |what: &[u8], from: usize| {
        let at = memchr::memmem::find(&frame[from..], what)
            .ok_or_else(|| MailError::Build("a part's place holder was not found".to_string()))?;
        Ok::<_, MailError>(from + at)
    };
    let text_at = find(text_slot.as_bytes(), find(b"\r\n\r\n", 0)?)?;
    let after_text = text_at + text_slot.len();
    let html_at = find(html_slot.as_bytes(), after_text)?;
    let after_html = html_at + html_slot.len();
    // Room for the parts, and for what `SmtpSender::send` appends (the end of DATA and the
    // next transaction's commands) without a copy of the whole message.
    let mut bytes =
        Vec::with_capacity(frame.len() + quoted_printable_size_hint(&rendered) + SEND_HEADROOM);
    bytes.extend_from_slice(&frame[..text_at]);
    text_quoted_printable_into(&rendered, &mut bytes);
    bytes.extend_from_slice(&frame[after_text..html_at]);
    html_quoted_printable_into(&rendered, &mut bytes);
    bytes.extend_from_slice(&frame[after_html..]);
    Ok(Email {
        envelope: skeleton.envelope().clone(),
        bytes,
    })
}

/// Room left after a built message: the end-of-data line (5 bytes) and a next transaction's
/// MAIL, RCPT and DATA (two addresses of at most 254 bytes each and some 30 bytes of command).
const SEND_HEADROOM: usize = 1024;

/// The place holders of the text and HTML parts in [`build_email`]'s frame: random, made
/// once per process.
fn part_slots() -> &'static [String; 2] {
    static SLOTS: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        [format!("paperboy-text-{id}"), format!("paperboy-html-{id}")]
    })
}

/// The digest email with `bodies` (text, then HTML) as its parts' quoted-printable.
fn message_with(
    head: &Head<'_>,
    subject: &str,
    [text, html]: [Vec<u8>; 2],
) -> Result<Message, MailError> {
    let Head {
        smtp,
        subscriber,
        message_id,
        links,
        ..
    } = *head;
    let to = Mailbox::new(subscriber.name.clone(), subscriber.email.address().clone());
    // The envelope the headers give (From to To: no Sender, Cc or Bcc), set here: otherwise
    // lettre formats both addresses into headers and parses them back for every message.
    let envelope = Envelope::new(Some(smtp.from.email.clone()), vec![to.email.clone()])
        .map_err(|e| MailError::Build(e.to_string()))?;
    let mut b = Message::builder()
        .envelope(envelope)
        .from(smtp.from.clone())
        .to(to)
        .subject(subject)
        .date_now()
        .message_id(Some(message_id.to_string()));
    if let Some(r) = &smtp.reply_to {
        b = b.reply_to(r.clone());
    }
    let qp = ContentTransferEncoding::QuotedPrintable;
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(Body::dangerous_pre_encoded(text, qp)),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(Body::dangerous_pre_encoded(html, qp)),
        );
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
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` with its Date header and its MIME boundary (both made anew for each message)
    /// replaced by fixed ones.
    fn fixed(bytes: &[u8]) -> String {
        let s = String::from_utf8(bytes.to_vec()).unwrap();
        let boundary = s
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let date = s.lines().find(|l| l.starts_with("Date: ")).unwrap();
        s.replace(boundary, "BOUNDARY").replace(date, "Date: DATE")
    }

    #[test]
    fn emails_are_the_bytes_lettre_formats_of_the_message() {
        let cfg = crate::config::Config::load_str(
            "[smtp]\nfrom = \"Paperboy Zoë <p@paperboy.test>\"\n\
             reply_to = \"desk@paperboy.test\"\n\
             [unsubscribe]\nbase_url = \"https://digest.example.org/unsubscribe\"\n\
             secret = \"a long enough secret for the tests\"\n\
             [topics.agents]\nkeywords = [\"agent\"]\n\
             [topics.video]\nkeywords = [\"video\"]\n\
             [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada Lovelace-Ürgüp\"\n\
             topics = [\"agents\", \"video\"]\n\
             [[subscribers]]\nemail = \"bob@example.org\"\ntopics = [\"agents\"]\n",
            "test",
        )
        .unwrap();
        let renderer = crate::render::Renderer::new(&cfg.digest, &cfg.topics).unwrap();
        let papers = crate::source::recorded_papers();
        let map = crate::domain::papers_by_id(&papers);
        let date = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
        let ids = |from: usize, n: usize| papers[from..from + n].iter().map(|p| p.id.clone());
        let digests = [
            vec![("agents", ids(0, 12).collect::<Vec<_>>())],
            vec![
                ("agents", ids(3, 2).collect()),
                ("video", ids(20, 9).collect()),
            ],
            vec![],
        ];
        for sub in &cfg.subscribers {
            for groups in &digests {
                let digest = crate::digest::Digest {
                    groups: (groups.iter())
                        .map(|(topic, papers)| crate::digest::DigestGroup {
                            topic: topic.to_string(),
                            papers: papers.clone(),
                        })
                        .collect(),
                };
                let links = UnsubscribeLinks::for_subscriber(&cfg, &sub.email.key());
                let rendered = renderer
                    .render(sub, date, &digest, &map, links.visible())
                    .unwrap();
                let id = message_id(&sub.email.key(), date, "paperboy.test");
                let head = Head {
                    smtp: &cfg.smtp,
                    subscriber: sub,
                    message_id: &id,
                    links: &links,
                    dkim: None,
                };
                let msg = build_message(&head, rendered.clone()).unwrap();
                let email = build_email(&head, rendered).unwrap();
                assert_eq!(&email.envelope, msg.envelope());
                assert_eq!(fixed(&email.bytes), fixed(&msg.formatted()));
                // And nothing of the place holders is left.
                assert!(!fixed(&email.bytes).contains("paperboy-text-"));
                // Built in the buffer sized for it (never grown, which would copy it and
                // double its size), with room for what sending appends.
                let spare = email.bytes.capacity() - email.bytes.len();
                assert!(
                    (SEND_HEADROOM..SEND_HEADROOM + email.bytes.len() / 8).contains(&spare),
                    "{spare} bytes spare after {}",
                    email.bytes.len()
                );
            }
        }
    }

    #[test]
    fn message_ids_are_stable_per_subscriber_and_date() {
        let d = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
        let key = |a: &str| crate::domain::EmailAddress::parse(a).unwrap().key();
        let a = message_id(&key("a@example.org"), d, "example.org");
        assert_eq!(a, message_id(&key("A@Example.org"), d, "example.org"));
        assert_ne!(a, message_id(&key("b@example.org"), d, "example.org"));
        assert_ne!(
            a,
            message_id(&key("a@example.org"), d.succ_opt().unwrap(), "example.org")
        );
        assert_ne!(a, test_message_id(&key("a@example.org"), d, "example.org"));
        assert!(a.starts_with("<digest.20260410.") && a.ends_with("@example.org>"));
        assert!(!a.contains("a@example"));
    }
}
