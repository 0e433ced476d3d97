//! One rendered email: subject, HTML and text, and where in each part a card was copied (for
//! encoding each card's lines once).

use std::sync::Arc;

use super::cards::Card;
use super::qp;

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

impl Rendered {
    /// The HTML in quoted-printable (CRLF line breaks), each card's lines encoded once per
    /// card: the bytes lettre would make of `html` with that transfer encoding.
    pub fn html_quoted_printable(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(qp::encoded_size_hint(&self.html));
        self.html_quoted_printable_into(&mut out);
        out
    }

    /// Appends [`Rendered::html_quoted_printable`] to `out`.
    pub fn html_quoted_printable_into(&self, out: &mut Vec<u8>) {
        qp::encode_with_cards_into(
            &self.html,
            self.html_cards.iter().filter_map(|(at, card)| {
                Some(qp::Placed {
                    at: *at,
                    text: card.html.as_deref()?,
                    encoded: &card.html_qp,
                })
            }),
            out,
        )
    }

    /// The text in quoted-printable (CRLF line breaks), each card's lines encoded once per
    /// card.
    pub fn text_quoted_printable(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(qp::encoded_size_hint(&self.text));
        self.text_quoted_printable_into(&mut out);
        out
    }

    /// Appends [`Rendered::text_quoted_printable`] to `out`.
    pub fn text_quoted_printable_into(&self, out: &mut Vec<u8>) {
        qp::encode_with_cards_into(
            &self.text,
            self.text_cards.iter().filter_map(|(at, card)| {
                Some(qp::Placed {
                    at: *at,
                    text: &card.text_lines()?.normalized,
                    encoded: &card.text_qp,
                })
            }),
            out,
        )
    }

    /// About the size of both parts in quoted-printable.
    pub fn quoted_printable_size_hint(&self) -> usize {
        qp::encoded_size_hint(&self.html) + qp::encoded_size_hint(&self.text)
    }
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
}
