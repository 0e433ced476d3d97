//! One rendered email: subject, HTML and text, and where in each part a card's recurring
//! text was copied, with a slot per card for the part's encoder to keep its work in.

use std::sync::{Arc, OnceLock};

use super::cards::Card;

/// One rendered email.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The cards copied into `html`, by where they start.
    html_cards: Vec<(usize, Arc<Card>)>,
    /// The cards whose normalised lines were copied into `text`, by where those start.
    text_cards: Vec<(usize, Arc<Card>)>,
}

/// A card's text as it stands in a part of a [`Rendered`]: the same text in every email that
/// shows the card, so whatever is made of it once (its encoding for the wire) can be kept.
#[derive(Debug, Clone, Copy)]
pub struct CardSpan<'a> {
    /// Where it starts in the part.
    pub at: usize,
    /// The text, `part[at..at + text.len()]`.
    pub text: &'a str,
    /// A slot that lives as long as the card (it is kept across the emails of a Renderer),
    /// for the one who encodes the part to keep what it made of `text`, or of a fixed piece
    /// of it. Render never reads it: what it holds is the encoder's to define.
    pub encoded: &'a OnceLock<Vec<u8>>,
}

impl Rendered {
    pub(super) fn new(
        subject: String,
        html: String,
        text: String,
        html_cards: Vec<(usize, Arc<Card>)>,
        text_cards: Vec<(usize, Arc<Card>)>,
    ) -> Self {
        Self {
            subject,
            html,
            text,
            html_cards,
            text_cards,
        }
    }

    /// The cards' HTML in `html`, in order, not overlapping.
    pub fn html_cards(&self) -> impl Iterator<Item = CardSpan<'_>> {
        self.html_cards.iter().filter_map(|(at, card)| {
            Some(CardSpan {
                at: *at,
                text: card.html.as_deref()?,
                encoded: &card.html_encoded,
            })
        })
    }

    /// The cards' normalised lines in `text`, in order, not overlapping.
    pub fn text_cards(&self) -> impl Iterator<Item = CardSpan<'_>> {
        self.text_cards.iter().filter_map(|(at, card)| {
            Some(CardSpan {
                at: *at,
                text: &card.text_lines()?.normalized,
                encoded: &card.text_encoded,
            })
        })
    }
}
