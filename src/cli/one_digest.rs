//! One subscriber's digest of a date as it would go out now, rendered but not recorded: what
//! `preview` shows and `send --to` sends.

use std::collections::HashSet;

use chrono::NaiveDate;

use crate::config::Config;
use crate::digest::DayList;
use crate::domain::Subscriber;
use crate::mail::UnsubscribeLinks;
use crate::render::{Rendered, Renderer};
use crate::source::HfSource;

use super::shared::open_store;

/// One subscriber's digest of `date` as it would go out now (papers already sent to them
/// left out), without recording anything.
pub async fn render_one(
    cfg: &Config,
    renderer: &Renderer,
    source: &HfSource,
    sub: &Subscriber,
    date: NaiveDate,
) -> anyhow::Result<(Rendered, usize, UnsubscribeLinks)> {
    let papers = source.fetch_day(date).await?;
    let store = open_store(cfg).await?;
    let key = sub.email.key();
    let sent: HashSet<_> = store.sent_pairs_for(&key, date, &papers).await?;
    store.close().await;
    let filter = cfg.filter_for(&key);
    let digest = DayList::new(&papers).select(sub, &cfg.topics, &sent, filter);
    let by_id = crate::domain::papers_by_id(&papers);
    let links = UnsubscribeLinks::for_subscriber(cfg, &key);
    let rendered = renderer.render(sub, date, &digest, &by_id, links.visible())?;
    Ok((rendered, digest.paper_count(), links))
}
