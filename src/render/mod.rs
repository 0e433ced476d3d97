//! Rendering a Digest into subject, HTML and plain text with handlebars: built-in templates,
//! overridable from a directory; strict mode; everything from the feed escaped in HTML.
//! Each paper's card is rendered once per Renderer and topic, and reused (see [`cards`]).
//!
//! This file loads the templates into the registries and holds the Renderer's API (its state
//! is in [`renderer`]); the jobs on the way have files of their own: the card block
//! ([`card_block`], [`card_reads`]), the cards kept ([`cards`]), one email put together
//! ([`compose`], [`splice`], [`newlines`]), what the templates see ([`view`],
//! [`paper_view`], [`highlight`]) and their [`helpers`], the [`size_guard`], CSS inlining
//! ([`css`]). Files import only files below them, never this one.

mod card_block;
mod card_reads;
mod cards;
mod compose;
mod css;
mod error;
mod helpers;
mod highlight;
mod newlines;
mod paper_view;
mod rendered;
mod renderer;
mod size_guard;
mod splice;
mod view;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use handlebars::Handlebars;
use handlebars::template::Template;

use cards::CardCache;
use renderer::{Frame, HTML_CARD, TEXT_CARD};
use splice::Markers;
use view::Email;

pub use crate::domain::trim_words;
pub use error::RenderError;
pub use paper_view::shorten_authors;
pub use rendered::{CardSpan, Rendered};
pub use renderer::{HTML_TEMPLATE, Renderer, SUBJECT_TEMPLATE, TEXT_TEMPLATE};
pub use size_guard::{MAX_HTML_BYTES, MAX_TEXT_BYTES};

use crate::config::DigestConfig;
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper, Subscriber};
use crate::topics::{Scorer, Topic};

const BUILTIN: [(&str, &str); 3] = [
    (
        HTML_TEMPLATE,
        include_str!("../../templates/digest.html.hbs"),
    ),
    (
        TEXT_TEMPLATE,
        include_str!("../../templates/digest.txt.hbs"),
    ),
    (
        SUBJECT_TEMPLATE,
        include_str!("../../templates/subject.hbs"),
    ),
];

impl Renderer {
    /// Compiles the built-in templates, replaced by any of the same name in
    /// `opts.templates_dir`. Errors name the file and position.
    pub fn new(opts: &DigestConfig, topics: &HashMap<String, Topic>) -> Result<Self, RenderError> {
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        for h in [&mut html, &mut text] {
            h.set_strict_mode(true);
            helpers::register(h);
        }
        text.register_escape_fn(handlebars::no_escape);
        let mut html_frame = Frame {
            cards: false,
            reads_papers: true,
        };
        let mut text_frame = html_frame;
        let (mut html_loop, mut text_loop) = (None, None);
        let mut subject_reads_papers = true;
        for (name, builtin) in BUILTIN {
            let (source, origin) = match &opts.templates_dir {
                Some(dir) => load_override(dir, name)?
                    .unwrap_or_else(|| (builtin.to_string(), "built-in".to_string())),
                None => (builtin.to_string(), "built-in".to_string()),
            };
            let fail = |message: String| RenderError::Template {
                name,
                origin: origin.clone(),
                message,
            };
            let source = if name == HTML_TEMPLATE {
                css::inline_css(&source).map_err(fail)?
            } else {
                source
            };
            let registry = if name == HTML_TEMPLATE {
                &mut html
            } else {
                &mut text
            };
            let mut template = Template::compile_with_name(&source, name.to_string())
                .map_err(|e| fail(e.to_string()))?;
            let (frame, card_loop, card_name) = match name {
                HTML_TEMPLATE => (&mut html_frame, &mut html_loop, HTML_CARD),
                TEXT_TEMPLATE => (&mut text_frame, &mut text_loop, TEXT_CARD),
                _ => {
                    subject_reads_papers = card_reads::reads_papers(&template, false);
                    registry.register_template(name, template);
                    continue;
                }
            };
            // Read on the template as written, before its card block is taken out.
            frame.reads_papers = card_reads::reads_papers(&template, true);
            let split = card_block::split(&mut template, card_name).map_err(fail)?;
            *card_loop = split.card_loop;
            if let Some(card) = split.card {
                frame.cards = true;
                registry.register_template(card_name, card);
            }
            registry.register_template(name, template);
        }
        Ok(Self {
            html,
            text,
            html_frame,
            text_frame,
            html_loop,
            text_loop,
            subject_reads_papers,
            opts: opts.clone(),
            terms: topics
                .iter()
                .map(|(name, t)| (name.clone(), Scorer::terms_of(t)))
                .collect(),
            cards: Mutex::new(CardCache::default()),
            markers: Markers::new(),
        })
    }

    /// Renders the email of `subscriber` for `date` holding `digest`'s papers (looked up in
    /// `papers`; a paper missing there is left out), kept under Gmail's clipping limit by
    /// the size guard.
    pub fn render(
        &self,
        subscriber: &Subscriber,
        date: NaiveDate,
        digest: &Digest,
        papers: &HashMap<ArxivId, Arc<Paper>>,
        unsubscribe_url: &str,
    ) -> Result<Rendered, RenderError> {
        let mut email = Email::new(subscriber, date, digest, papers, unsubscribe_url);
        size_guard::fit(
            subscriber,
            &mut email,
            self.opts.text_max_chars,
            |email, chars| self.render_email(subscriber, email, chars),
        )
    }
}

fn load_override(dir: &Path, name: &'static str) -> Result<Option<(String, String)>, RenderError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some((s, path.display().to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RenderError::Template {
            name,
            origin: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_are_put_together_from_cards() {
        let cfg = crate::config::Config::load_str(
            "[smtp]\nfrom = \"P <p@paperboy.test>\"\n\
             [topics.agents]\nkeywords = [\"agent\"]\n\
             [topics.video]\nkeywords = [\"video\"]\n\
             [[subscribers]]\nemail = \"a@example.org\"\ntopics = [\"agents\"]\n\
             [[subscribers]]\nemail = \"b@example.org\"\ntopics = [\"agents\", \"video\"]\n",
            "test",
        )
        .unwrap();
        let r = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
        for frame in [r.html_frame, r.text_frame] {
            assert!(frame.cards && !frame.reads_papers, "{frame:?}");
        }
        // Their loops over the papers hold only the card: each group's cards come joined.
        assert!(r.html_loop.is_some() && r.text_loop.is_some());
        assert!(!r.subject_reads_papers);
        let papers = crate::source::recorded_papers();
        let map = crate::domain::papers_by_id(&papers);
        let group = |topic: &str, from: usize| crate::digest::DigestGroup {
            topic: topic.to_string(),
            papers: papers[from..from + 3]
                .iter()
                .map(|p| p.id.clone())
                .collect(),
        };
        let date = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
        let (a, b) = (&cfg.subscribers[0], &cfg.subscribers[1]);
        let for_a = Digest {
            groups: vec![group("agents", 0)],
        };
        r.render(a, date, &for_a, &map, "u").unwrap();
        assert_eq!(r.cards_kept(), 3);
        r.render(b, date, &for_a, &map, "u").unwrap();
        assert_eq!(r.cards_kept(), 3, "the same cards");
        let for_b = Digest {
            groups: vec![group("agents", 1), group("video", 0)],
        };
        r.render(b, date, &for_b, &map, "u").unwrap();
        assert_eq!(
            r.cards_kept(),
            3 + 1 + 3,
            "one more under agents, three under video"
        );
    }
}
