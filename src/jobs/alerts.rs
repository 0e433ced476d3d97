//! Telling the operator: an error-level log line always, and a short email to `alerts.email`,
//! at most one per kind and day.

use chrono::Utc;
use lettre::Message;
use lettre::message::{Mailbox, header::ContentType};
use tracing::{error, warn};

use crate::config::Config;
use crate::mail::Mailer;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A run ended with an error.
    RunFailed,
    /// The source's answer no longer parses (its format changed).
    SourceUnparseable,
    /// More than `alerts.failure_ratio` of a run's deliveries failed.
    FailureRatio,
    /// A weekday's list was still empty when the run gave up waiting.
    EmptyList,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunFailed => "run_failed",
            Self::SourceUnparseable => "source_unparseable",
            Self::FailureRatio => "failure_ratio",
            Self::EmptyList => "empty_list",
        }
    }
}

/// Logs the alert and, when configured and not yet done today for this kind, emails it.
/// Failing to send the alert is logged, never raised: it must not hide the original problem.
pub async fn alert(cfg: &Config, store: &Store, kind: AlertKind, summary: &str, details: &str) {
    error!(alert = kind.as_str(), details, "{summary}");
    let Some(to) = &cfg.alerts.email else {
        return;
    };
    let day = Utc::now().with_timezone(&cfg.timezone).date_naive();
    let subject = format!("[paperboy] {summary}");
    match store.claim_alert(kind.as_str(), day, &subject).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            warn!(error = %e, "cannot record the alert; not sending it");
            return;
        }
    }
    let body = format!(
        "{summary}\n\n{details}\n\nConfiguration: {}\nThis alert is sent at most once a day per kind ({}).\n",
        cfg.origin,
        kind.as_str()
    );
    let msg = Message::builder()
        .from(cfg.smtp.from.clone())
        .to(Mailbox::new(None, to.address().clone()))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body);
    let sent = match msg {
        Ok(msg) => match Mailer::from_config(cfg) {
            Ok(mut m) => {
                let r = m.send(&msg).await.map_err(|e| e.to_string());
                m.close().await;
                r
            }
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        warn!(error = %e, alert = kind.as_str(), "the alert email could not be sent");
        let _ = store.unclaim_alert(kind.as_str(), day).await;
    }
}
