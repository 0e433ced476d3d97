//! Pure selection: a day's papers and a subscriber's topics become one Digest.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::domain::{ArxivId, Paper, Subscriber};
use std::sync::{Arc, Mutex};

use crate::topics::{PaperText, Scorer, Sort, SubscriberFilter, Topic};

/// The papers of one email, grouped under the subscriber's topics in their order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Digest {
    pub groups: Vec<DigestGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestGroup {
    pub topic: String,
    #[serde(deserialize_with = "stored_ids")]
    pub papers: Vec<ArxivId>,
}

/// A stored digest's ids, but those that are not arXiv ids (see [`ArxivId::from_stored`]): the
/// email goes without them.
fn stored_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ArxivId>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    Ok(raw
        .iter()
        .filter_map(|id| ArxivId::from_stored(id, "deliveries.digest"))
        .collect())
}

impl Digest {
    pub fn paper_count(&self) -> usize {
        self.groups.iter().map(|g| g.papers.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.paper_count() == 0
    }

    pub fn paper_ids(&self) -> impl Iterator<Item = &ArxivId> {
        self.groups.iter().flat_map(|g| g.papers.iter())
    }
}

/// A day's list prepared once for selecting many subscribers' digests.
pub struct DayList<'a> {
    papers: &'a [Paper],
    texts: Vec<PaperText>,
    /// Paper indexes by upvotes (highest first), ties by the list's own order.
    by_upvotes: Vec<usize>,
    /// Per topic, its matching papers in its order: computed once per day and topic, shared
    /// by every subscriber of the topic.
    ranked: Mutex<HashMap<String, Arc<Vec<usize>>>>,
}

impl<'a> DayList<'a> {
    pub fn new(papers: &'a [Paper]) -> Self {
        let texts = papers.iter().map(PaperText::new).collect();
        let mut by_upvotes: Vec<usize> = (0..papers.len()).collect();
        by_upvotes.sort_by_key(|&i| (std::cmp::Reverse(papers[i].upvotes), i));
        Self {
            papers,
            texts,
            by_upvotes,
            ranked: Mutex::new(HashMap::new()),
        }
    }

    /// The papers matching `topic`, best first: by upvotes, or by relevance (then upvotes,
    /// then the list's order).
    pub fn ranked(&self, topic: &Topic) -> Arc<Vec<usize>> {
        let mut cache = self.ranked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(&topic.name) {
            return r.clone();
        }
        let matching: Vec<usize> = self
            .by_upvotes
            .iter()
            .copied()
            .filter(|&i| topic.matches(&self.papers[i], &self.texts[i]))
            .collect();
        let order = match topic.sort {
            Sort::Upvotes => matching,
            Sort::Relevance => {
                let scorer = Scorer::new(topic, &self.texts);
                let mut scored: Vec<(f64, usize)> = matching
                    .into_iter()
                    .map(|i| (scorer.score(&self.papers[i], &self.texts[i]), i))
                    .collect();
                // Stable on the upvote order: equal scores keep it.
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                scored.into_iter().map(|(_, i)| i).collect()
            }
        };
        let order = Arc::new(order);
        cache.insert(topic.name.clone(), order.clone());
        order
    }

    /// A topic's papers with their scores, best first (for `paperboy topics test`).
    pub fn scored(&self, topic: &Topic) -> Vec<(&Paper, f64)> {
        let scorer = Scorer::new(topic, &self.texts);
        self.ranked(topic)
            .iter()
            .map(|&i| {
                (
                    &self.papers[i],
                    scorer.score(&self.papers[i], &self.texts[i]),
                )
            })
            .collect()
    }

    /// For each of the subscriber's topics in order: the matching papers, most upvoted first, at
    /// most the topic's `max_papers` (and the subscriber's in all), leaving out papers already
    /// sent to this subscriber, papers the subscriber's own filter refuses, and papers an
    /// earlier topic of the same email already holds. Topics that select nothing are omitted.
    pub fn select(
        &self,
        subscriber: &Subscriber,
        topics: &HashMap<String, Topic>,
        already_sent: &HashSet<ArxivId>,
        filter: &SubscriberFilter,
    ) -> Digest {
        let mut taken: HashSet<usize> = HashSet::new();
        let mut groups = Vec::new();
        let mut room = filter.max_papers.unwrap_or(usize::MAX);
        for name in &subscriber.topics {
            if room == 0 {
                break;
            }
            let Some(topic) = topics.get(name) else {
                continue;
            };
            let chosen: Vec<usize> = self
                .ranked(topic)
                .iter()
                .copied()
                .filter(|&i| {
                    !taken.contains(&i)
                        && !already_sent.contains(&self.papers[i].id)
                        && filter.admits(&self.papers[i], &self.texts[i])
                })
                .take(topic.max_papers.min(room))
                .collect();
            if chosen.is_empty() {
                continue;
            }
            room -= chosen.len();
            taken.extend(chosen.iter().copied());
            groups.push(DigestGroup {
                topic: topic.name.clone(),
                papers: chosen.iter().map(|&i| self.papers[i].id.clone()).collect(),
            });
        }
        Digest { groups }
    }
}
