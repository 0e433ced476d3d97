//! The mail backends: SMTP, or an outbox directory of .eml files (lettre's file transport).

use std::path::PathBuf;

use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Email, MailError, SmtpSender};
use crate::config::{Config, TransportKind};

pub enum Mailer {
    Smtp(Box<SmtpSender>),
    Outbox {
        dir: PathBuf,
        files: AsyncFileTransport<Tokio1Executor>,
    },
}

impl Mailer {
    pub fn from_config(cfg: &Config) -> Result<Self, MailError> {
        match cfg.transport {
            TransportKind::Smtp => Ok(Self::Smtp(Box::new(SmtpSender::new(&cfg.smtp)?))),
            TransportKind::Outbox => Ok(Self::outbox(cfg.outbox_dir.clone())),
        }
    }

    pub fn outbox(dir: PathBuf) -> Self {
        Self::Outbox {
            files: AsyncFileTransport::new(&dir),
            dir,
        }
    }

    /// Sends `msg`; returns the server's reply (or where the file went).
    pub async fn send(&mut self, msg: &Message) -> Result<String, MailError> {
        self.send_email(Email::from(msg), None).await
    }

    /// Sends a message built as its bytes ([`super::build_email`]). `next`: the message this
    /// mailer sends next, if known (see [`SmtpSender::send`]).
    pub async fn send_email(
        &mut self,
        email: Email,
        next: Option<&Email>,
    ) -> Result<String, MailError> {
        match self {
            Self::Smtp(s) => {
                let next = next.map(|n| (&n.envelope, &n.bytes[..]));
                s.send(&email.envelope, email.bytes, next).await
            }
            Self::Outbox { dir, files } => {
                tokio::fs::create_dir_all(&*dir)
                    .await
                    .map_err(|e| MailError::Transient(format!("outbox {}: {e}", dir.display())))?;
                let id = files
                    .send_raw(&email.envelope, &email.bytes)
                    .await
                    .map_err(|e| MailError::Transient(format!("outbox {}: {e}", dir.display())))?;
                Ok(format!(
                    "written to {}",
                    dir.join(format!("{id}.eml")).display()
                ))
            }
        }
    }

    /// Whether a `next` message given to [`Mailer::send_email`] can be of use: to an SMTP
    /// server that pipelines (or not yet known not to), not to the outbox.
    pub fn takes_next(&self) -> bool {
        match self {
            Self::Smtp(s) => s.takes_next(),
            Self::Outbox { .. } => false,
        }
    }

    pub async fn close(&mut self) {
        if let Self::Smtp(s) = self {
            s.close().await;
        }
    }
}
