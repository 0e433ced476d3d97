//! One email put together: its cards (kept or rendered now), the frames rendered around
//! their markers, the cards spliced in, the text's lines normalised, and the subject.

use std::sync::Arc;

use super::cards::Card;
use super::error::{RenderError, fail};
use super::newlines::normalize_with_cards;
use super::paper_view::PaperView;
use super::rendered::Rendered;
use super::renderer::{
    HTML_CARD, HTML_TEMPLATE, Renderer, SUBJECT_TEMPLATE, TEXT_CARD, TEXT_TEMPLATE,
};
use super::view::Email;
use crate::domain::{Paper, Subscriber, trim_words};

impl Renderer {
    /// Renders `email` with its papers' texts cut to `chars` (0: whole).
    pub(super) fn render_email(
        &self,
        subscriber: &Subscriber,
        email: &Email<'_>,
        chars: usize,
    ) -> Result<Rendered, RenderError> {
        let cards = if self.html_frame.cards || self.text_frame.cards {
            self.cards(subscriber, email, chars)?
        } else {
            Vec::new()
        };
        let fields: Vec<Vec<PaperView>> = if self.html_frame.reads_papers
            || self.text_frame.reads_papers
            || self.subject_reads_papers
        {
            email
                .groups
                .iter()
                .map(|g| {
                    g.papers
                        .iter()
                        .map(|p| self.paper_view(p, g.topic, chars))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        // The templates get a marker in each card's place (and, for a loop over the papers
        // that holds only the card, one in the group's place), and the cards are copied in
        // after (see `splice`). The markers are the same for both frames, which read one
        // view, turned into JSON once.
        let mut starts = Vec::with_capacity(cards.len());
        let mut count = 0;
        for g in &cards {
            starts.push(count);
            count += g.len();
        }
        let markers = self.markers.cards(count);
        let marker = |gi: usize, pi: usize| {
            (pi < cards.get(gi)?.len()).then_some(())?;
            markers.get(starts[gi] + pi)
        };
        // A template sees what it saw when each had a view of its own: its fields where any
        // template reads them (one that does not read them cannot tell), group markers only
        // where its own loop is joined. Both frames alike (the built-in ones): one view.
        let frame_fields =
            (self.html_frame.reads_papers || self.text_frame.reads_papers).then_some(&fields[..]);
        let frame_view = |joined: bool| {
            let view = email.view(frame_fields, marker, |gi| {
                joined.then(|| self.markers.group(gi))
            });
            handlebars::Context::wraps(&view)
        };
        let html_view =
            frame_view(self.html_loop.is_some()).map_err(fail(subscriber, HTML_TEMPLATE))?;
        let text_view = if self.html_loop.is_some() == self.text_loop.is_some() {
            None
        } else {
            Some(frame_view(self.text_loop.is_some()).map_err(fail(subscriber, TEXT_TEMPLATE))?)
        };
        let html = self
            .html
            .render_with_context(HTML_TEMPLATE, &html_view)
            .map_err(fail(subscriber, HTML_TEMPLATE))?;
        let (html, html_cards) = self
            .markers
            .splice(&html, &cards, self.html_loop.as_ref(), |c| {
                c.html.as_deref()
            })
            .map_err(fail(subscriber, HTML_TEMPLATE))?;
        let text = self
            .text
            .render_with_context(TEXT_TEMPLATE, text_view.as_ref().unwrap_or(&html_view))
            .map_err(fail(subscriber, TEXT_TEMPLATE))?;
        let (text, text_cards) = self
            .markers
            .splice(&text, &cards, self.text_loop.as_ref(), |c| {
                c.text.as_deref()
            })
            .map_err(fail(subscriber, TEXT_TEMPLATE))?;
        let (text, text_cards) = normalize_with_cards(&text, &text_cards, |c| c.text_lines());
        // A subject that does not read the papers cannot tell the frames' view (cards' markers,
        // maybe fields) from one without them: it reuses it. One that reads them gets its own.
        let subject = if self.subject_reads_papers {
            let subject_view = email.view(Some(&fields[..]), |_, _| None, |_| None);
            self.text.render(SUBJECT_TEMPLATE, &subject_view)
        } else {
            self.text.render_with_context(SUBJECT_TEMPLATE, &html_view)
        }
        .map_err(fail(subscriber, SUBJECT_TEMPLATE))?;
        Ok(Rendered::new(
            one_line(&subject, 200),
            html,
            text,
            html_cards,
            text_cards,
        ))
    }

    /// The cards of `email`'s papers, by group and paper: those rendered before for the same
    /// topic, paper and length, and the others rendered now and kept.
    fn cards(
        &self,
        subscriber: &Subscriber,
        email: &Email<'_>,
        chars: usize,
    ) -> Result<Vec<Vec<Arc<Card>>>, RenderError> {
        let kept: Vec<Vec<Option<Arc<Card>>>> = {
            let cache = self.cards.lock().unwrap_or_else(|e| e.into_inner());
            email
                .groups
                .iter()
                .map(|g| {
                    g.papers
                        .iter()
                        .map(|p| cache.get(g.topic, p, chars))
                        .collect()
                })
                .collect()
        };
        let mut fresh = Vec::new();
        let mut out = Vec::with_capacity(kept.len());
        for (g, kept) in email.groups.iter().zip(kept) {
            let mut cards = Vec::with_capacity(kept.len());
            for (p, card) in g.papers.iter().zip(kept) {
                let card = match card {
                    Some(card) => card,
                    None => {
                        let card = Arc::new(self.render_card(subscriber, p, g.topic, chars)?);
                        fresh.push((g.topic, card.clone()));
                        card
                    }
                };
                cards.push(card);
            }
            out.push(cards);
        }
        if !fresh.is_empty() {
            let mut cache = self.cards.lock().unwrap_or_else(|e| e.into_inner());
            for (topic, card) in fresh {
                cache.insert(topic, card);
            }
        }
        Ok(out)
    }

    fn render_card(
        &self,
        subscriber: &Subscriber,
        paper: &Arc<Paper>,
        topic: &str,
        chars: usize,
    ) -> Result<Card, RenderError> {
        let view = self.paper_view(paper, topic, chars);
        let html = if self.html_frame.cards {
            let html = self.html.render(HTML_CARD, &view);
            Some(html.map_err(fail(subscriber, HTML_TEMPLATE))?)
        } else {
            None
        };
        let text = if self.text_frame.cards {
            let text = self.text.render(TEXT_CARD, &view);
            Some(text.map_err(fail(subscriber, TEXT_TEMPLATE))?)
        } else {
            None
        };
        Ok(Card::new(paper, chars, html, text))
    }

    /// How many cards this Renderer keeps.
    #[cfg(test)]
    pub(super) fn cards_kept(&self) -> usize {
        self.cards.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// `p` as templates see it under `topic`, its text cut to `chars` (0: whole).
    pub(super) fn paper_view(&self, p: &Paper, topic: &str, chars: usize) -> PaperView {
        let terms = self.terms.get(topic).map(Vec::as_slice).unwrap_or_default();
        PaperView::new(p, terms, &self.opts, chars)
    }
}

/// One line of at most `max` characters: control characters (CR, LF, tabs) become spaces.
fn one_line(s: &str, max: usize) -> String {
    let words = s.split(|c: char| c.is_whitespace() || c.is_control());
    trim_words(&crate::domain::join_words(words), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_line() {
        assert_eq!(one_line("a\r\nBcc: x@y\tz", 200), "a Bcc: x@y z");
    }
}
