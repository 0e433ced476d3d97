//! From a planned row to its email: the one function that renders and builds a row's email (a
//! delivery's and a dry run's), and the preparing of a claimed row: skipped or given up on, or
//! its digest's papers read (see paper_cache) and its email made.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use chrono::NaiveDate;
use tokio::sync::mpsc;
use tracing::warn;

use super::paper_cache::load_papers;
use super::pass::{Job, Ready, Shared, age, record, release};
use crate::config::Config;
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper, Subscriber, SubscriberKey};
use crate::mail::{Email, Head, MailError, UnsubscribeLinks, build_email};
use crate::panic_text::panic_text;
use crate::render::{RenderError, Renderer};
use crate::store::{Delivery, DeliveryStatus};

/// A queued row, taken without waiting, prepared: the first that is to be sent (the others
/// taken on the way are recorded). None when nothing is queued or the queue is in use.
pub(super) async fn prepare_queued(
    sh: &Shared,
    jobs: &tokio::sync::Mutex<mpsc::Receiver<Job>>,
) -> Option<Ready> {
    loop {
        let job = jobs.try_lock().ok()?.try_recv().ok()?;
        match prepare(sh, job).await {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(e) => {
                sh.fail(e);
                return None;
            }
        }
    }
}

/// What of a planned row its email is made from.
pub(crate) struct Row<'a> {
    /// The subscriber's key.
    pub subscriber: &'a SubscriberKey,
    pub date: NaiveDate,
    pub digest: &'a Digest,
    pub message_id: &'a str,
}

impl<'a> From<&'a Delivery> for Row<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            subscriber: &d.subscriber,
            date: d.digest_date,
            digest: &d.digest,
            message_id: &d.message_id,
        }
    }
}

/// Why a row's email could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unmade {
    /// The templates failed: a fault of the config, not of the row.
    #[error(transparent)]
    Render(RenderError),
    /// The message could not be built: a fault of this row alone.
    #[error(transparent)]
    Build(MailError),
}

/// The email of a planned row, the one way for a delivery and a dry run alike: its digest
/// rendered for `sub` (the papers looked up in `papers`, read-locked only while rendering)
/// with the subscriber's unsubscribe links, then the head and the MIME message built. What
/// cannot go in a header (a line break in the subscriber's name or the subject) is refused
/// before the message is built; a panic while the email is made (in the templates' helpers,
/// lettre or the DKIM signing) is caught: either way this row's email cannot be made
/// (`Unmade::Build`), and the others are not held up by it.
pub(crate) fn email_for(
    cfg: &Config,
    renderer: &Renderer,
    sub: &Subscriber,
    row: Row<'_>,
    papers: &RwLock<HashMap<ArxivId, Arc<Paper>>>,
) -> Result<Email, Unmade> {
    unless_it_panics(|| make_email(cfg, renderer, sub, row, papers))
}

/// What `make` returns, or, if it panics, the panic's message as an email that cannot be
/// made. (The renderer's caches are behind locks whose poisoning is ignored: a panic leaves
/// them usable.)
fn unless_it_panics(make: impl FnOnce() -> Result<Email, Unmade>) -> Result<Email, Unmade> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)).unwrap_or_else(|panic| {
        Err(Unmade::Build(MailError::Build(format!(
            "making the email panicked: {}",
            panic_text(&*panic)
        ))))
    })
}

fn make_email(
    cfg: &Config,
    renderer: &Renderer,
    sub: &Subscriber,
    row: Row<'_>,
    papers: &RwLock<HashMap<ArxivId, Arc<Paper>>>,
) -> Result<Email, Unmade> {
    if let Some(name) = &sub.name {
        fits_a_header("the subscriber's name (the To header)", name)?;
    }
    let links = UnsubscribeLinks::for_subscriber(cfg, row.subscriber);
    let rendered = {
        let papers = papers.read().unwrap_or_else(|e| e.into_inner());
        renderer.render(sub, row.date, row.digest, &papers, links.visible())
    }
    .map_err(Unmade::Render)?;
    fits_a_header("the subject", &rendered.subject)?;
    let head = Head::new(cfg, sub, row.message_id, &links);
    build_email(&head, rendered).map_err(Unmade::Build)
}

/// Refuses a value for a header that holds a line break: it would end the header (and begin
/// another), and lettre cannot encode it (it panics).
fn fits_a_header(what: &str, value: &str) -> Result<(), Unmade> {
    match value.chars().find(|c| matches!(c, '\r' | '\n')) {
        Some(c) => Err(Unmade::Build(MailError::Build(format!(
            "{what} holds a line break ({}), which cannot go in a header",
            c.escape_default()
        )))),
        None => Ok(()),
    }
}

/// Renders and builds one claimed delivery; or records why it is not sent (None).
pub(super) async fn prepare(sh: &Shared, job: Job) -> anyhow::Result<Option<Ready>> {
    use DeliveryStatus::{Failed, Skipped};
    let p = &sh.cfg.delivery;
    let d = job.d;
    let Some(&subscriber) = sh.subscribers.get(&d.subscriber) else {
        let why = "no longer a subscriber in the config";
        record(sh, &d, Skipped, None, Some(why), None, None).await?;
        return Ok(None);
    };
    let sub = &sh.cfg.subscribers[subscriber];
    if d.opted_out {
        record(sh, &d, Skipped, None, Some("unsubscribed"), None, None).await?;
        return Ok(None);
    }
    if age(&d) >= p.give_up_after {
        let mut why = format!(
            "gave up: not sent within delivery.give_up_after ({}) of being planned, after {} attempts",
            humantime::format_duration(p.give_up_after),
            d.attempts - 1
        );
        if let Some(last) = &d.last_error {
            why.push_str("; last error: ");
            why.push_str(last);
        }
        record(sh, &d, Failed, None, Some(&why), None, None).await?;
        return Ok(None);
    }
    if let Err(e) = load_papers(sh, &[&d.digest]).await {
        release(sh, &d, None, None).await?;
        return Err(e);
    }
    match email_for(&sh.cfg, &sh.renderer, sub, Row::from(&d), &sh.papers) {
        Ok(email) => Ok(Some(Ready {
            d,
            subscriber,
            email,
            claimed: job.claimed,
        })),
        Err(Unmade::Render(e)) => {
            release(sh, &d, Some(&e.to_string()), None).await?;
            Err(e).context("rendering a digest; the delivery stays pending")
        }
        Err(Unmade::Build(e)) => {
            record(sh, &d, Failed, None, Some(&e.to_string()), None, None).await?;
            warn!(delivery = d.id, error = %e, "message could not be built");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_an_email_is_made_is_that_emails_failure() {
        let made = unless_it_panics(|| panic!("a Display implementation returned an error"));
        match made {
            Err(Unmade::Build(e)) => assert_eq!(
                e.to_string(),
                "building the message: making the email panicked: a Display implementation \
                 returned an error"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_line_break_cannot_go_in_a_header() {
        assert!(fits_a_header("the subject", "3 new papers on agents - Apr 10").is_ok());
        for bad in ["Ada\r\nBcc: x@example.net", "Ada\nLovelace", "Ada\r"] {
            let e = fits_a_header("the subscriber's name (the To header)", bad).unwrap_err();
            assert!(e.to_string().contains("holds a line break"), "{e}");
        }
    }
}
