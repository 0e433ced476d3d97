//! The Renderer's state: the compiled templates (one registry for HTML, one for text and the
//! subject), how each frame shows papers, the topics' words, the cards kept, the markers.
//! Its API is in the module's root; putting an email together, in `compose`.

use std::collections::HashMap;
use std::sync::Mutex;

use handlebars::Handlebars;

use super::card_block::CardLoop;
use super::cards::CardCache;
use super::splice::Markers;
use crate::config::DigestConfig;
use crate::topics::ScoringTerm;

pub const HTML_TEMPLATE: &str = "digest.html.hbs";
pub const TEXT_TEMPLATE: &str = "digest.txt.hbs";
pub const SUBJECT_TEMPLATE: &str = "subject.hbs";
/// The names under which the card blocks of the HTML and text templates are registered.
pub(super) const HTML_CARD: &str = "digest.html.hbs, card";
pub(super) const TEXT_CARD: &str = "digest.txt.hbs, card";

/// The templates, compiled once; HTML escapes, text and subject do not.
///
/// A paper's card (`{{#> card}}…{{/card}}` in the HTML and text templates) is the same in
/// every email that shows the paper under the same topic: the Renderer renders it once and
/// keeps it, and each email is its frame (greeting, headings, footer) rendered around the
/// cards. One Renderer serves one run or delivery pass, shared by its delivery tasks; the
/// cards it keeps are bounded. The `card_block` module tells what a card may depend on and
/// how templates without a card block (an operator's own) still render whole.
pub struct Renderer {
    pub(super) html: Handlebars<'static>,
    pub(super) text: Handlebars<'static>,
    pub(super) html_frame: Frame,
    pub(super) text_frame: Frame,
    /// The text around the card in the HTML and text templates' loops over the papers that
    /// hold only the card: those loops write the group's cards joined beforehand.
    pub(super) html_loop: Option<CardLoop>,
    pub(super) text_loop: Option<CardLoop>,
    /// Whether the subject template may read papers' fields.
    pub(super) subject_reads_papers: bool,
    pub(super) opts: DigestConfig,
    /// Each topic's words, to highlight in the papers it chose.
    pub(super) terms: HashMap<String, Vec<ScoringTerm>>,
    pub(super) cards: Mutex<CardCache>,
    /// What the frames get in the places of the cards.
    pub(super) markers: Markers,
}

/// How the HTML or text template shows papers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    /// It has a card block.
    pub cards: bool,
    /// It may read papers' fields outside the card block: they are given to it.
    pub reads_papers: bool,
}
