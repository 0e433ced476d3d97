//! Our own long-lived SMTP connection: TCP_NODELAY (lettre's pooled transport stalls ~40 ms a
//! message without it), STARTTLS or implicit TLS, AUTH, reconnect after any error.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tracing::{debug, instrument};

use super::MailError;
use crate::config::{Security, SmtpConfig};

pub struct SmtpSender {
    cfg: SmtpConfig,
    hello: ClientId,
    tls: Option<TlsParameters>,
    conn: Option<AsyncSmtpConnection>,
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
        match tokio::time::timeout(self.cfg.timeout, fut).await {
            Ok(r) => r.map_err(|e| match classify(&self.server(), what, &e) {
                MailError::Permanent(m) => MailError::Session(m),
                MailError::Transient(m) if e.is_tls() => MailError::Session(m),
                other => other,
            }),
            Err(_) => Err(MailError::Transient(format!(
                "{}: no answer to {what} within {}",
                self.server(),
                humantime::format_duration(self.cfg.timeout)
            ))),
        }
    }

    #[instrument(skip(self), fields(server = %self.server()))]
    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let mut conn = if self.cfg.security == Security::Tls {
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
            let mut conn = self
                .timed(
                    "greeting",
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello),
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
            conn
        };
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
        debug!("connected");
        Ok(conn)
    }

    /// Connects and logs in, then says goodbye: for `paperboy check --smtp`.
    pub async fn check(&mut self) -> Result<(), MailError> {
        let mut conn = self.connect().await?;
        let _ = self.timed("QUIT", conn.quit()).await;
        Ok(())
    }

    /// Sends one message over the kept connection (connecting first if there is none).
    /// Returns the server's reply to the message. After any error the connection is dropped.
    pub async fn send(&mut self, envelope: &Envelope, bytes: &[u8]) -> Result<String, MailError> {
        let mut conn = match self.conn.take() {
            Some(c) if !c.has_broken() => c,
            _ => self.connect().await.map_err(|e| match e {
                MailError::Transient(m) => MailError::Unavailable(m),
                other => other,
            })?,
        };
        match self.transaction(&mut conn, envelope, bytes).await {
            Ok(resp) => {
                self.conn = Some(conn);
                Ok(format!(
                    "{} {}",
                    resp.code(),
                    resp.message().collect::<Vec<_>>().join(" ")
                ))
            }
            Err(e) => {
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.abort()).await;
                Err(e)
            }
        }
    }

    /// MAIL, RCPT, DATA and the message, each under the time-out. A 5xx to MAIL refuses the
    /// sender (a session error); a 5xx to RCPT or to the message refuses this recipient.
    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, MailError> {
        let mut params = Vec::new();
        let non_ascii = envelope
            .to()
            .iter()
            .chain(envelope.from())
            .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            params.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Err(MailError::Session(format!(
                    "{}: the message is 8-bit but the server does not offer 8BITMIME",
                    self.server()
                )));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let step = |what: &'static str| {
            let server = self.server();
            move |e: lettre::transport::smtp::Error| classify(&server, what, &e)
        };
        self.step(
            "MAIL FROM",
            conn.command(Mail::new(envelope.from().cloned(), params)),
        )
        .await?
        .map_err(|e| match step("MAIL FROM")(e) {
            MailError::Permanent(m) => MailError::Session(m),
            other => other,
        })?;
        for to in envelope.to() {
            self.step("RCPT TO", conn.command(Rcpt::new(to.clone(), vec![])))
                .await?
                .map_err(step("RCPT TO"))?;
        }
        self.step("DATA", conn.command(Data))
            .await?
            .map_err(step("DATA"))?;
        self.step("the message", conn.message(bytes))
            .await?
            .map_err(step("the message"))
    }

    async fn step<T>(&self, what: &str, fut: impl Future<Output = T>) -> Result<T, MailError> {
        tokio::time::timeout(self.cfg.timeout, fut)
            .await
            .map_err(|_| {
                MailError::Transient(format!(
                    "{}: no answer to {what} within {}",
                    self.server(),
                    humantime::format_duration(self.cfg.timeout)
                ))
            })
    }

    pub async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.quit()).await;
        }
    }
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
    if e.is_permanent() {
        MailError::Permanent(msg)
    } else {
        MailError::Transient(msg)
    }
}
