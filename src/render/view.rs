//! The view model: one email's content (its groups of papers, counts, dates, preheader) and
//! what the templates see of it, each paper as its fields and its card's place.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use super::paper_view::PaperView;
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper, Subscriber};

/// One email's content, before it is shown to the templates.
pub(super) struct Email<'a> {
    /// The hidden first line that inboxes show beside the subject.
    preheader: String,
    /// Papers left out by the size guard.
    more_count: usize,
    subscriber_name: Option<&'a str>,
    date: String,
    date_long: String,
    date_short: String,
    day_url: String,
    pub paper_count: usize,
    topic_names: String,
    pub groups: Vec<Group<'a>>,
    unsubscribe_url: &'a str,
}

pub(super) struct Group<'a> {
    pub topic: &'a str,
    pub papers: Vec<&'a Arc<Paper>>,
}

impl<'a> Email<'a> {
    pub fn new(
        subscriber: &'a Subscriber,
        date: NaiveDate,
        digest: &'a Digest,
        papers: &'a HashMap<ArxivId, Arc<Paper>>,
        unsubscribe_url: &'a str,
    ) -> Self {
        let groups: Vec<Group> = digest
            .groups
            .iter()
            .map(|g| Group {
                topic: g.topic.as_str(),
                papers: g.papers.iter().filter_map(|id| papers.get(id)).collect(),
            })
            .filter(|g| !g.papers.is_empty())
            .collect();
        Email {
            preheader: preheader_of(&groups),
            more_count: 0,
            subscriber_name: subscriber.name.as_deref(),
            date: date.to_string(),
            date_long: date.format("%A, %-d %B %Y").to_string(),
            date_short: date.format("%b %-d").to_string(),
            day_url: format!("https://huggingface.co/papers/date/{date}"),
            paper_count: groups.iter().map(|g| g.papers.len()).sum(),
            topic_names: topic_names(&groups),
            groups,
            unsubscribe_url,
        }
    }

    /// Leaves out paper `pi` of group `gi` (a group left empty goes), counting it among
    /// those the email says it left out.
    pub fn leave_out(&mut self, gi: usize, pi: usize) {
        self.groups[gi].papers.remove(pi);
        self.groups.retain(|g| !g.papers.is_empty());
        self.paper_count -= 1;
        self.more_count += 1;
        self.topic_names = topic_names(&self.groups);
        self.preheader = preheader_of(&self.groups);
    }

    /// What the templates see: each paper as its fields (`fields`, by group and paper) and
    /// its card's marker (`card` of group and paper); each group's `group_marker`, the place
    /// of its cards joined, for a loop over the papers that holds only the card.
    pub fn view<'v>(
        &'v self,
        fields: Option<&'v [Vec<PaperView>]>,
        card: impl Fn(usize, usize) -> Option<&'v str>,
        group_marker: impl Fn(usize) -> Option<String>,
    ) -> DigestView<'v> {
        DigestView {
            preheader: &self.preheader,
            more_count: self.more_count,
            subscriber_name: self.subscriber_name,
            date: &self.date,
            date_long: &self.date_long,
            date_short: &self.date_short,
            day_url: &self.day_url,
            paper_count: self.paper_count,
            topic_names: &self.topic_names,
            groups: self
                .groups
                .iter()
                .enumerate()
                .map(|(gi, g)| GroupView {
                    topic: g.topic,
                    cards: group_marker(gi),
                    papers: (0..g.papers.len())
                        .map(|pi| PaperEntry {
                            fields: fields.map(|f| &f[gi][pi]),
                            card: card(gi, pi),
                        })
                        .collect(),
                })
                .collect(),
            unsubscribe_url: self.unsubscribe_url,
        }
    }
}

/// The inbox preview: the top three titles, or a line saying there is nothing new.
fn preheader_of(groups: &[Group<'_>]) -> String {
    let titles: Vec<&str> = groups
        .iter()
        .flat_map(|g| &g.papers)
        .take(3)
        .map(|p| p.title.as_str())
        .collect();
    if titles.is_empty() {
        "No new papers on your topics today.".to_string()
    } else {
        titles.join(" · ")
    }
}

fn topic_names(groups: &[Group<'_>]) -> String {
    groups
        .iter()
        .map(|g| g.topic)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Serialize)]
pub(super) struct DigestView<'a> {
    preheader: &'a str,
    more_count: usize,
    subscriber_name: Option<&'a str>,
    date: &'a str,
    date_long: &'a str,
    date_short: &'a str,
    day_url: &'a str,
    paper_count: usize,
    topic_names: &'a str,
    groups: Vec<GroupView<'a>>,
    unsubscribe_url: &'a str,
}

#[derive(Serialize)]
struct GroupView<'a> {
    topic: &'a str,
    /// The place of the group's cards joined, for a loop over the papers that holds only
    /// the card (see `card_block::CARD_LOOP_SLOT`).
    #[serde(rename = "__paperboy_cards", skip_serializing_if = "Option::is_none")]
    cards: Option<String>,
    papers: Vec<PaperEntry<'a>>,
}

/// A paper in a template's view: its fields for a template that reads them, its card
/// (rendered beforehand) for a template with a card block.
#[derive(Serialize)]
struct PaperEntry<'a> {
    #[serde(flatten)]
    fields: Option<&'a PaperView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<&'a str>,
}
