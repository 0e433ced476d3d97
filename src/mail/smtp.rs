//! Our own long-lived SMTP connection: TCP_NODELAY (lettre's pooled transport stalls ~40 ms a
//! message without it), STARTTLS or implicit TLS, AUTH, reconnect after any error.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tracing::{debug, instrument};

use super::MailError;
use super::server_text::printable;
use crate::config::{Security, SmtpConfig};
use crate::panic_text::panic_text;

pub struct SmtpSender {
    cfg: SmtpConfig,
    hello: ClientId,
    tls: Option<TlsParameters>,
    conn: Option<Session>,
    /// The next message's transaction, refused by the server when it was opened with the
    /// message before: that message's outcome, given when it is sent.
    refused: Option<(Envelope, MailError)>,
}

/// A connection, logged in, and whether its server takes pipelined commands.
struct Session {
    conn: AsyncSmtpConnection,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
    /// The transaction opened after the last message (its MAIL, RCPT and DATA accepted):
    /// the server waits for this envelope's message.
    open: Option<Envelope>,
}

impl SmtpSender {
    pub fn new(cfg: &SmtpConfig) -> Result<Self, MailError> {
        let tls = match cfg.security {
            Security::None => None,
            Security::StartTls | Security::Tls => {
                let mut b = TlsParameters::builder(cfg.host.clone());
                if let Some(path) = &cfg.ca_file {
                    let pem = std::fs::read(path).map_err(|e| {
                        MailError::Build(format!("smtp.ca_file {}: {e}", path.display()))
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        MailError::Build(format!("smtp.ca_file {}: {e}", path.display()))
                    })?;
                    b = b.add_root_certificate(cert);
                }
                Some(
                    b.build()
                        .map_err(|e| MailError::Build(format!("TLS set-up: {e}")))?,
                )
            }
        };
        let hello = match &cfg.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        Ok(Self {
            cfg: cfg.clone(),
            hello,
            tls,
            conn: None,
            refused: None,
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }

    /// Runs one step of setting up the session: a 5xx reply or a TLS failure there is a
    /// session error (nobody can be sent to), anything else transient.
    async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, MailError> {
        self.step(what, fut)
            .await?
            .map_err(|e| match classify(&self.server(), what, &e) {
                MailError::Permanent(m) => MailError::Session(m),
                MailError::Transient(m) if e.is_tls() => MailError::Session(m),
                other => other,
            })
    }

    #[instrument(skip(self), fields(server = %self.server()))]
    async fn connect(&self) -> Result<Session, MailError> {
        let conn = if self.cfg.security == Security::Tls {
            // Implicit TLS: lettre opens this socket itself (without TCP_NODELAY).
            self.timed(
                "connect (TLS)",
                AsyncSmtpConnection::connect_tokio1(
                    (self.cfg.host.as_str(), self.cfg.port),
                    Some(self.cfg.timeout),
                    &self.hello,
                    self.tls.clone(),
                    None,
                ),
            )
            .await?
        } else {
            let tcp = tokio::time::timeout(
                self.cfg.timeout,
                TcpStream::connect((self.cfg.host.as_str(), self.cfg.port)),
            )
            .await
            .map_err(|_| MailError::Transient(format!("{}: connect timed out", self.server())))?
            .map_err(|e| MailError::Transient(format!("{}: connect: {e}", self.server())))?;
            tcp.set_nodelay(true)
                .map_err(|e| MailError::Transient(format!("{}: {e}", self.server())))?;
            self.greeted(Box::new(tcp)).await?
        };
        self.log_in(conn).await
    }

    /// The greeting over a plain connection, then STARTTLS where it is configured.
    async fn greeted(
        &self,
        stream: Box<dyn AsyncTokioStream>,
    ) -> Result<AsyncSmtpConnection, MailError> {
        let mut conn = self
            .timed(
                "greeting",
                AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
            )
            .await?;
        if let (Security::StartTls, Some(tls)) = (self.cfg.security, &self.tls) {
            if !conn.can_starttls() {
                return Err(MailError::Transient(format!(
                    "{}: the server does not offer STARTTLS (smtp.security = \"starttls\")",
                    self.server()
                )));
            }
            self.timed("STARTTLS", conn.starttls(tls.clone(), &self.hello))
                .await?;
        }
        Ok(conn)
    }

    /// EHLO (again), whether the server pipelines, and the login.
    async fn log_in(&self, mut conn: AsyncSmtpConnection) -> Result<Session, MailError> {
        // lettre keeps only the extensions it uses from the greeting: ask again, before
        // logging in (an EHLO after AUTH may undo the login on some servers).
        let ehlo = self
            .timed("EHLO", conn.command(Ehlo::new(self.hello.clone())))
            .await?;
        let pipelining = ehlo
            .message()
            .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
        if let (Some(user), Some(pass)) = (&self.cfg.username, &self.cfg.password) {
            if !conn.is_encrypted() {
                return Err(MailError::Session(format!(
                    "{}: refusing to send the SMTP password over an unencrypted connection",
                    self.server()
                )));
            }
            let creds = Credentials::new(user.clone(), pass.expose_secret().to_string());
            self.timed(
                "AUTH",
                conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds),
            )
            .await?;
        }
        debug!(pipelining, "connected");
        Ok(Session {
            conn,
            pipelining,
            open: None,
        })
    }

    /// Opens the session over `stream`, a plain connection to the server, as `connect` does
    /// once its TCP connection is up. For the fuzz target, whose server is a script in memory.
    #[doc(hidden)]
    pub async fn connect_over(
        &mut self,
        stream: Box<dyn AsyncTokioStream>,
    ) -> Result<(), MailError> {
        let conn = self.greeted(stream).await?;
        self.conn = Some(self.log_in(conn).await?);
        Ok(())
    }

    /// Connects and logs in, then says goodbye: for `paperboy check --smtp`.
    pub async fn check(&mut self) -> Result<(), MailError> {
        let mut session = self.connect().await?;
        let _ = self.timed("QUIT", session.conn.quit()).await;
        Ok(())
    }

    /// Sends one message over the kept connection (connecting first if there is none).
    /// Returns the server's reply to the message. After any error the connection is dropped.
    ///
    /// With `next` (the message to be sent after this one, ASCII), where the server pipelines,
    /// the next transaction's MAIL, RCPT and DATA follow this message in the same write (RFC
    /// 2920 lets the message content start a group): one write and one wait for the server
    /// per message instead of two. Its replies are read before this call returns; accepted,
    /// the server waits for that message, which the next call sends at once. Refused, or
    /// never sent after all, the connection is dropped without ending the data (a server
    /// discards a message whose data did not end), and the next message goes in a
    /// transaction of its own.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        bytes: Vec<u8>,
        next: Option<(&Envelope, &[u8])>,
    ) -> Result<String, MailError> {
        if let Some((refused, e)) = self.refused.take()
            && refused == *envelope
        {
            return Err(e);
        }
        let mut session = match self.conn.take() {
            Some(s) if !s.conn.has_broken() && s.open.as_ref().is_none_or(|o| o == envelope) => s,
            Some(s) => {
                drop_session(s, Duration::from_secs(2)).await;
                self.connect_for_send().await?
            }
            None => self.connect_for_send().await?,
        };
        // What DATA sends: the message dot-stuffed, and the end-of-data line. As text (it is
        // ASCII: both parts are quoted-printable), it goes out in one write, with the next
        // transaction's commands where they come along.
        let mut payload = if bytes.is_ascii() {
            String::from_utf8(bytes)
                .map(data_payload)
                .map_err(|e| e.into_bytes())
        } else {
            Err(bytes)
        };
        let next = match (&mut payload, next) {
            (Ok(text), Some((envelope, bytes))) if session.pipelining && bytes.is_ascii() => {
                text.push_str(&opening(envelope, mail_params(envelope, false)));
                Some(envelope)
            }
            _ => None,
        };
        let payload = match &payload {
            Ok(text) => Payload::Text(text),
            Err(bytes) => Payload::EightBit(bytes),
        };
        match self
            .transaction(&mut session, envelope, payload, next)
            .await
        {
            Ok((resp, opened)) => {
                match opened.zip(next) {
                    Some((Err(u), next)) => {
                        debug!(error = %u.error, "the next transaction was not opened");
                        drop_session(session, Duration::from_secs(2)).await;
                        // The server's refusal (its recipient, its sender, for now or for
                        // good) is the next message's outcome, as if it were sent on its own;
                        // without an answer, it goes in a transaction of its own.
                        if u.replied {
                            self.refused = Some((next.clone(), u.error));
                        }
                    }
                    _ => self.conn = Some(session),
                }
                Ok(printable(format!(
                    "{} {}",
                    resp.code(),
                    resp.message().collect::<Vec<_>>().join(" ")
                )))
            }
            Err(e) => {
                drop_session(session, Duration::from_secs(2)).await;
                Err(e)
            }
        }
    }

    async fn connect_for_send(&self) -> Result<Session, MailError> {
        self.connect().await.map_err(|e| match e {
            MailError::Transient(m) => MailError::Unavailable(m),
            other => other,
        })
    }

    /// MAIL, RCPT, DATA and the message, each under the time-out (the three commands in one
    /// write where the server pipelines; none where the transaction is open already). A 5xx
    /// to MAIL refuses the sender (a session error); a 5xx to RCPT or to the message refuses
    /// this recipient. With `next`, whose commands end `payload`: also whether they were
    /// accepted (the server then waits for that message).
    async fn transaction(
        &self,
        session: &mut Session,
        envelope: &Envelope,
        payload: Payload<'_>,
        next: Option<&Envelope>,
    ) -> Result<(Response, Option<Result<(), Unopened>>), MailError> {
        if let Payload::EightBit(_) = payload
            && !(session.conn.server_info()).supports_feature(Extension::EightBitMime)
        {
            return Err(MailError::Session(format!(
                "{}: the message is 8-bit but the server does not offer 8BITMIME",
                self.server()
            )));
        }
        let params = || mail_params(envelope, matches!(payload, Payload::EightBit(_)));
        // `send` keeps a session only open for this envelope.
        let open = session.open.take().is_some();
        let conn = &mut session.conn;
        let step = |what: &'static str| {
            let server = self.server();
            move |e: lettre::transport::smtp::Error| classify(&server, what, &e)
        };
        if open {
            // Opened with the message before: the server waits for this one.
        } else if session.pipelining {
            // One write; then every reply, in order, before judging any (RFC 2920).
            let commands = opening(envelope, params());
            let first = self
                .step("MAIL FROM", conn.command(commands.as_str()))
                .await?;
            (self.opened(conn, envelope, first).await).map_err(|u| u.error)?;
        } else {
            let mail = Mail::new(envelope.from().cloned(), params());
            self.step("MAIL FROM", conn.command(mail))
                .await?
                .map_err(|e| sender_refused(step("MAIL FROM")(e)))?;
            for to in envelope.to() {
                self.step("RCPT TO", conn.command(Rcpt::new(to.clone(), vec![])))
                    .await?
                    .map_err(step("RCPT TO"))?;
            }
            self.step("DATA", conn.command(Data))
                .await?
                .map_err(step("DATA"))?;
        }
        // A &str: lettre copies it once, at its size.
        let sent = match payload {
            Payload::Text(p) => self.step("the message", conn.command(p)).await?,
            Payload::EightBit(bytes) => self.step("the message", conn.message(bytes)).await?,
        };
        // The next transaction's replies come after this message's, whatever that was; what
        // becomes of them does not change this message's fate.
        let opened = match next {
            Some(next) => {
                let replies = async {
                    let first = self.step("MAIL FROM", conn.read_response()).await;
                    let first = first.map_err(|error| Unopened {
                        replied: false,
                        error,
                    })?;
                    self.opened(conn, next, first).await
                };
                let opened = replies.await;
                if opened.is_ok() {
                    session.open = Some(next.clone());
                }
                Some(opened)
            }
            None => None,
        };
        Ok((sent.map_err(step("the message"))?, opened))
    }

    /// Reads the replies to RCPT and DATA of `envelope`'s transaction, pipelined after its
    /// MAIL (whose reply is `mail_reply`), and judges them all: Ok once the server waits for
    /// the message. An error says whether it is the server's answer (a 4xx or 5xx reply) or
    /// the lack of one.
    async fn opened(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        mail_reply: Result<Response, lettre::transport::smtp::Error>,
    ) -> Result<(), Unopened> {
        let step = |what: &'static str| {
            let server = self.server();
            move |e: lettre::transport::smtp::Error| Unopened {
                replied: e.is_transient() || e.is_permanent(),
                error: classify(&server, what, &e),
            }
        };
        let silent = |error| Unopened {
            replied: false,
            error,
        };
        let mut rcpt_replies = Vec::with_capacity(envelope.to().len());
        for _ in envelope.to() {
            let reply = self.step("RCPT TO", conn.read_response()).await;
            rcpt_replies.push(reply.map_err(silent)?);
        }
        let data_reply = (self.step("DATA", conn.read_response()).await).map_err(silent)?;
        let refused = mail_reply
            .err()
            .map(|e| {
                let u = step("MAIL FROM")(e);
                Unopened {
                    error: sender_refused(u.error),
                    ..u
                }
            })
            .or_else(|| {
                rcpt_replies
                    .into_iter()
                    .find_map(|r| r.err().map(step("RCPT TO")))
            });
        match (refused, data_reply) {
            (None, Ok(_)) => Ok(()),
            (None, Err(e)) => Err(step("DATA")(e)),
            // The server refused the sender or the recipient: it refuses DATA too. One that
            // accepted it would take whatever comes next as the message: send nothing more
            // (the connection is dropped).
            (Some(e), _) => Err(e),
        }
    }

    /// Runs one step of the session, within `smtp.timeout`. lettre panics on some replies
    /// that are not valid SMTP (an EHLO line of nothing but white space, in 0.11.23): such a
    /// panic is this server's error, a transient one, not the end of the worker. (The
    /// connection is dropped after any error, so nothing reads from it in its unknown state.)
    async fn step<T>(&self, what: &str, fut: impl Future<Output = T>) -> Result<T, MailError> {
        let caught = AssertUnwindSafe(fut).catch_unwind();
        match tokio::time::timeout(self.cfg.timeout, caught).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(panic)) => Err(MailError::Transient(printable(format!(
                "{}: {what}: the server's reply is not valid SMTP (lettre failed on it: \
                     {})",
                self.server(),
                panic_text(&*panic)
            )))),
            Err(_) => Err(MailError::Transient(format!(
                "{}: no answer to {what} within {}",
                self.server(),
                humantime::format_duration(self.cfg.timeout)
            ))),
        }
    }

    /// Whether `send` can open the next message's transaction with a message: its session
    /// pipelines, or there is none yet to tell.
    pub fn takes_next(&self) -> bool {
        self.conn.as_ref().is_none_or(|s| s.pipelining)
    }

    pub async fn close(&mut self) {
        if let Some(s) = self.conn.take() {
            drop_session(s, Duration::from_secs(5)).await;
        }
    }
}

/// A 5xx to MAIL refuses the sender, for every recipient: a session error.
fn sender_refused(e: MailError) -> MailError {
    match e {
        MailError::Permanent(m) => MailError::Session(m),
        other => other,
    }
}

/// Why a transaction was not opened.
struct Unopened {
    /// The server answered with a refusal (4xx or 5xx), rather than not at all.
    replied: bool,
    error: MailError,
}

/// Closes a session that may be in any state, waiting at most `wait`: one waiting for a
/// message's data is closed without a word (a QUIT would be taken for the message), any other
/// says QUIT first.
async fn drop_session(mut s: Session, wait: Duration) {
    if s.open.is_none() {
        let _ = tokio::time::timeout(wait, s.conn.abort()).await;
    }
}

/// MAIL's parameters for `envelope`: SMTPUTF8 for an address that is not ASCII, 8BITMIME for
/// a message that is not.
fn mail_params(envelope: &Envelope, eight_bit: bool) -> Vec<MailParameter> {
    let mut params = Vec::new();
    let non_ascii = (envelope.to().iter())
        .chain(envelope.from())
        .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        params.push(MailParameter::SmtpUtfEight);
    }
    if eight_bit {
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    params
}

/// MAIL, RCPT and DATA of `envelope`'s transaction, as one pipelined group.
fn opening(envelope: &Envelope, params: Vec<MailParameter>) -> String {
    let mut commands = Mail::new(envelope.from().cloned(), params).to_string();
    for to in envelope.to() {
        commands.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
    }
    commands.push_str(&Data.to_string());
    commands
}

/// A message as DATA sends it.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// ASCII, dot-stuffed and ended (`data_payload`): sent as it is, in one write.
    Text(&'a str),
    /// With 8-bit bytes (a server with 8BITMIME): lettre stuffs and ends it.
    EightBit(&'a [u8]),
}

/// `message` (CRLF line breaks) as the DATA phase sends it: a line that starts with "." gets
/// one more (RFC 5321, 4.5.2), then the end-of-data line. The same bytes as lettre's
/// `message`, written at once instead of byte by byte.
fn data_payload(message: String) -> String {
    let stuff =
        message.starts_with('.') || memchr::memmem::find(message.as_bytes(), b"\r\n.").is_some();
    if !stuff {
        // The usual case (quoted-printable rarely starts a line with a dot): no copy.
        let mut out = message;
        out.push_str("\r\n.\r\n");
        return out;
    }
    let mut out = String::with_capacity(message.len() + 64);
    if message.starts_with('.') {
        out.push('.');
    }
    let mut from = 0;
    for i in memchr::memmem::find_iter(message.as_bytes(), b"\r\n.") {
        out.push_str(&message[from..i + 2]);
        out.push('.');
        from = i + 2;
    }
    out.push_str(&message[from..]);
    out.push_str("\r\n.\r\n");
    out
}

/// 5xx: permanent; 4xx, I/O, TLS, time-outs and anything else: transient.
fn classify(server: &str, what: &str, e: &lettre::transport::smtp::Error) -> MailError {
    let mut msg = format!("{server}: {what}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    let msg = printable(msg);
    if e.is_permanent() {
        MailError::Permanent(msg)
    } else {
        MailError::Transient(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5321, 4.5.2, line by line: the reference for `data_payload`.
    fn stuffed(message: &str) -> String {
        let lines: Vec<String> = message
            .split("\r\n")
            .map(|l| match l.strip_prefix('.') {
                Some(_) => format!(".{l}"),
                None => l.to_string(),
            })
            .collect();
        lines.join("\r\n") + "\r\n.\r\n"
    }

    #[test]
    fn data_doubles_each_leading_dot_and_ends_with_the_end_of_data_line() {
        for m in [
            "",
            ".",
            "..",
            ".start\r\nmiddle\r\n.\r\n..two\r\n",
            "a.b\r\n .c\r\n\r\n.d",
            "no line break",
            "bare\n.lf is not a line start\r\n.but this is",
            "\r\n.\r\n.\r\n",
        ] {
            assert_eq!(data_payload(m.to_string()), stuffed(m), "{m:?}");
        }
        assert_eq!(data_payload(".a\r\n.b".into()), "..a\r\n..b\r\n.\r\n");
    }
}
