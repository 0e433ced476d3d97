//! Paper cards kept: the part of an email that shows one paper (see [`super::card_block`]),
//! rendered once per paper and topic and reused in every email that shows that paper under
//! that topic.
//!
//! A card depends only on the paper, the topic (its words are highlighted) and the length its
//! text is cut to (the size guard shortens texts); everything else it shows comes from the
//! Renderer's fixed settings (text choice, authors shown, thumbnails). The cache key is
//! (topic, paper id, text length), and a cached card is used only for an equal paper (the
//! same id with more upvotes on a later day is a different card).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::newlines::CardLines;
use crate::domain::{ArxivId, Paper};

/// A paper's card for one topic and text length: its HTML and text, for the templates that
/// have a card block.
#[derive(Debug)]
pub(super) struct Card {
    /// The paper as it was when rendered.
    paper: Arc<Paper>,
    /// The length its text was cut to (0: whole).
    chars: usize,
    pub html: Option<String>,
    pub text: Option<String>,
    /// What the encoder of the email (mail) keeps of the HTML, made once per card: see
    /// [`super::rendered::CardSpan::encoded`]. Render neither reads nor writes it.
    pub html_encoded: OnceLock<Vec<u8>>,
    /// The text's lines normalised, once first needed.
    text_lines: OnceLock<Option<CardLines>>,
    /// The same as `html_encoded`, for those lines.
    pub text_encoded: OnceLock<Vec<u8>>,
}

impl Card {
    pub fn new(
        paper: &Arc<Paper>,
        chars: usize,
        html: Option<String>,
        text: Option<String>,
    ) -> Self {
        Self {
            paper: Arc::clone(paper),
            chars,
            html,
            text,
            html_encoded: OnceLock::new(),
            text_lines: OnceLock::new(),
            text_encoded: OnceLock::new(),
        }
    }

    /// The text's lines that are normalised the same in every email (see [`CardLines`]).
    pub fn text_lines(&self) -> Option<&CardLines> {
        self.text_lines
            .get_or_init(|| CardLines::of(self.text.as_deref()?))
            .as_ref()
    }
}

/// The cards rendered so far by one Renderer, by topic and paper. Bounded: a Renderer lives
/// for one run or one delivery pass, whose papers are a few hundred at most, each under a
/// few topics; past [`CardCache::MAX`] cards of a few KB each (a Renderer kept much longer),
/// it starts afresh.
#[derive(Default)]
pub(super) struct CardCache {
    by_topic: HashMap<String, HashMap<ArxivId, Vec<Arc<Card>>>>,
    len: usize,
}

impl CardCache {
    pub const MAX: usize = 4096;

    /// The card of `paper` under `topic` cut to `chars`, if rendered from an equal paper.
    /// The same paper (one pass's papers are loaded once) is told by its address: comparing
    /// every field for every card of every email cost more than the lookup itself.
    pub fn get(&self, topic: &str, paper: &Arc<Paper>, chars: usize) -> Option<Arc<Card>> {
        self.by_topic
            .get(topic)?
            .get(&paper.id)?
            .iter()
            .find(|c| c.chars == chars && (Arc::ptr_eq(&c.paper, paper) || c.paper == *paper))
            .cloned()
    }

    /// Keeps `card`, replacing the one of an earlier version of its paper.
    pub fn insert(&mut self, topic: &str, card: Arc<Card>) {
        let old = self
            .by_topic
            .get_mut(topic)
            .and_then(|t| t.get_mut(&card.paper.id))
            .and_then(|cards| cards.iter_mut().find(|c| c.chars == card.chars));
        if let Some(old) = old {
            *old = card;
            return;
        }
        if self.len >= Self::MAX {
            self.by_topic.clear();
            self.len = 0;
        }
        self.by_topic
            .entry(topic.to_string())
            .or_default()
            .entry(card.paper.id.clone())
            .or_default()
            .push(card);
        self.len += 1;
    }

    /// How many cards it keeps.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cards_kept_are_bounded() {
        let paper = Arc::new(crate::source::recorded_papers().remove(0));
        let mut cache = CardCache::default();
        for i in 0..CardCache::MAX {
            cache.insert(&format!("t{i}"), Arc::new(Card::new(&paper, 0, None, None)));
        }
        assert_eq!(cache.len(), CardCache::MAX);
        assert!(cache.get("t0", &paper, 0).is_some());
        assert!(cache.get("t0", &paper, 300).is_none());
        // The same paper read again (another allocation) finds its card; a changed one not.
        let again = Arc::new((*paper).clone());
        assert!(cache.get("t0", &again, 0).is_some());
        let mut changed = (*paper).clone();
        changed.upvotes += 1;
        assert!(cache.get("t0", &Arc::new(changed), 0).is_none());
        cache.insert("t0", Arc::new(Card::new(&paper, 0, None, None)));
        assert_eq!(cache.len(), CardCache::MAX, "a card replaced");
        cache.insert("more", Arc::new(Card::new(&paper, 0, None, None)));
        assert_eq!(cache.len(), 1, "started afresh");
        assert!(cache.get("t0", &paper, 0).is_none());
    }
}
