//! Marker splicing: the frames are rendered with a marker in each card's place (and in each
//! group's, for a loop over the papers that holds only the card), and the cards are copied in
//! after: cheaper than passing them through the templates' JSON, and it tells where each is.

use std::sync::Arc;

use super::card_block::CardLoop;
use super::cards::Card;

/// Cards of an email whose markers a Renderer makes once (an email shows at most
/// `max_papers` a topic, 10 by default); those of further cards are made per email.
const CARD_MARKERS: usize = 64;

/// After the Renderer's marker: a group's cards (then the group's number), not one card.
const GROUP_MARK: &str = "g";

/// A part with its cards copied in, and where each went.
pub(super) type Spliced = (String, Vec<(usize, Arc<Card>)>);

/// A Renderer's markers: what the frames get in a card's place, its marker followed by the
/// card's number (or [`GROUP_MARK`] and the group's) and U+0001. Random, so that nothing
/// else a template writes is taken for a card.
pub(super) struct Markers {
    marker: String,
    finder: memchr::memmem::Finder<'static>,
    /// The markers of an email's first cards, made once.
    first: Vec<String>,
}

/// The markers of one email's cards, by their number in the email.
pub(super) struct CardMarkers<'m> {
    first: &'m [String],
    /// Those of the cards past the first [`CARD_MARKERS`].
    more: Vec<String>,
}

impl CardMarkers<'_> {
    /// The marker of the email's `n`th card (from 0).
    pub fn get(&self, n: usize) -> Option<&str> {
        (self.first.get(n))
            .or_else(|| self.more.get(n - self.first.len()))
            .map(String::as_str)
    }
}

impl Markers {
    pub fn new() -> Self {
        let marker = format!("\u{1}card-{}:", uuid::Uuid::new_v4().simple());
        Self {
            finder: memchr::memmem::Finder::new(marker.as_bytes()).into_owned(),
            first: (0..CARD_MARKERS).map(|n| card_marker(&marker, n)).collect(),
            marker,
        }
    }

    /// The markers of an email of `count` cards.
    pub fn cards(&self, count: usize) -> CardMarkers<'_> {
        CardMarkers {
            first: &self.first,
            more: (self.first.len()..count)
                .map(|n| card_marker(&self.marker, n))
                .collect(),
        }
    }

    /// What the frames get in the place of group `gi`'s cards joined.
    pub fn group(&self, gi: usize) -> String {
        format!("{}{GROUP_MARK}{gi}\u{1}", self.marker)
    }

    /// `out` with each card marker replaced by its card's `part` (`cards`: by group and
    /// paper, numbered in that order), each group marker by the group's cards each between
    /// the text of `card_loop`; and where each card went.
    pub fn splice(
        &self,
        out: &str,
        cards: &[Vec<Arc<Card>>],
        card_loop: Option<&CardLoop>,
        part: impl Fn(&Card) -> Option<&str>,
    ) -> Result<Spliced, String> {
        let mangled = || "a card's place holder came out mangled".to_string();
        if cards.is_empty() {
            return Ok((out.to_string(), Vec::new()));
        }
        let flat: Vec<&Arc<Card>> = cards.iter().flatten().collect();
        let mut joined = String::with_capacity(out.len() + flat.len() * 1024);
        let mut placed = Vec::with_capacity(flat.len());
        let mut rest = out;
        let mut put = |joined: &mut String, card: &Arc<Card>| {
            placed.push((joined.len(), Arc::clone(card)));
            joined.push_str(part(card).unwrap_or_default());
        };
        while let Some(at) = self.finder.find(rest.as_bytes()) {
            joined.push_str(&rest[..at]);
            let after = &rest[at + self.marker.len()..];
            // A marker is random per Renderer and written only by the card slots.
            let (n, tail) = after.split_once('\u{1}').ok_or_else(mangled)?;
            match n.strip_prefix(GROUP_MARK) {
                Some(g) => {
                    let l = card_loop.ok_or_else(mangled)?;
                    let group = g.parse::<usize>().ok().and_then(|g| cards.get(g));
                    for card in group.ok_or_else(mangled)? {
                        joined.push_str(&l.before);
                        put(&mut joined, card);
                        joined.push_str(&l.after);
                    }
                }
                None => {
                    let card = n.parse::<usize>().ok().and_then(|n| flat.get(n));
                    put(&mut joined, card.ok_or_else(mangled)?);
                }
            }
            rest = tail;
        }
        joined.push_str(rest);
        Ok((joined, placed))
    }
}

/// What the frames get in the place of an email's `n`th card (from 0), `marker` being the
/// Renderer's.
fn card_marker(marker: &str, n: usize) -> String {
    format!("{marker}{n}\u{1}")
}
