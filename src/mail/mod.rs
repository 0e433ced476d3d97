//! Email: building the message (headers, MIME, quoted-printable) and sending it (SMTP or an
//! outbox directory).

mod message;
mod parts;
mod qp;
mod server_text;
mod smtp;
mod transport;
mod unsubscribe;

pub use message::{Email, Head, build_email, message_id, test_message_id};
pub use parts::{html_quoted_printable, text_quoted_printable};
pub use smtp::SmtpSender;
pub use transport::Mailer;
pub use unsubscribe::{Tokens, UnsubscribeLinks};

/// A send that did not go through. Transient ones may succeed later (4xx, I/O, time-out);
/// permanent ones will not for this recipient (a 5xx reply to RCPT or to the message);
/// session ones will not for anyone until the operator acts (login refused, sender refused,
/// no STARTTLS, a certificate that does not verify).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
    #[error("{0}")]
    Session(String),
    /// The server could not be reached or would not start a session for now (refused, timed
    /// out, 4xx greeting): nobody can be sent to, but it may pass.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("building the message: {0}")]
    Build(String),
}
