//! Paper cards: the part of an email that shows one paper, rendered once per paper and topic
//! and reused in every email that shows that paper under that topic.
//!
//! The HTML and text templates mark a paper's card with a partial block,
//! `{{#> card}}…{{/card}}`, inside `{{#each papers}}`. When the templates load, the block's
//! content becomes a template of its own (the card), rendered with the paper as its only
//! context, and the block itself becomes a slot that writes the card rendered beforehand, as
//! is: the card was escaped when it was rendered (the HTML registry escapes everything), and
//! the frame around it (greeting, headings, footer, unsubscribe link) is rendered per email.
//!
//! A card therefore depends only on the paper, the topic (its words are highlighted) and the
//! length its text is cut to (the size guard shortens texts); everything else it shows comes
//! from the Renderer's fixed settings (text choice, authors shown, thumbnails). The cache key
//! is (topic, paper id, text length), and a cached card is used only for an equal paper (the
//! same id with more upvotes on a later day is a different card).
//!
//! Templates without a card block (an operator's copy of the templates of earlier versions)
//! render whole, per email, as they always did. A frame that reads papers' fields outside the
//! card block (a table of contents, a field next to the card) gets them; one that does not
//! (the built-in templates) gets only the cards, which is what makes it cheap.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use handlebars::Path;
use handlebars::template::{
    DecoratorTemplate, HelperTemplate, Parameter, Template, TemplateElement,
};

use super::newlines::CardLines;
use crate::domain::{ArxivId, Paper};

/// The partial block that holds a paper's card in the HTML and text templates.
const CARD_BLOCK: &str = "card";
/// What takes the card block's place in the frame: the card of the paper in context,
/// rendered beforehand, written as is.
const CARD_SLOT: &str = "{{{card}}}";

/// What takes the place of a loop over a group's papers that holds nothing but the card
/// block and text: the group's cards, each between that text, joined beforehand (one
/// expression instead of a loop step per paper). The field is `GroupView::cards`.
const CARD_LOOP_SLOT: &str = "{{{__paperboy_cards}}}";

/// The text around the card in a loop `{{#each papers}}…{{/each}}` that holds only the card.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CardLoop {
    pub before: String,
    pub after: String,
}

/// What loading a template found in it.
#[derive(Debug)]
pub(super) struct Split {
    /// The content of the template's card block, if it has one.
    pub card: Option<Template>,
    /// Whether the template may read papers' fields outside the card block.
    pub reads_papers: bool,
    /// The loops over the papers that were only the card, now [`CARD_LOOP_SLOT`]s.
    pub card_loop: Option<CardLoop>,
}

/// Takes the card block out of `t`, leaving the slot in its place. A template may hold the
/// block more than once (two lists of papers), the same each time. `reads_papers` is
/// computed on the template as written.
pub(super) fn split(t: &mut Template, card_name: &str) -> Result<Split, String> {
    let reads_papers = template_reads(t, true);
    let mut card = None;
    replace_cards(&mut t.elements, &mut card)?;
    if let Some(c) = &mut card {
        if let Some(path) = reaches_out(c, false) {
            return Err(format!(
                "its {{{{#> {CARD_BLOCK}}}}} block uses `{path}`, but a card is rendered \
                 once per paper and topic with the paper alone as its context: only the \
                 paper's own fields can be used in it"
            ));
        }
        c.name = Some(card_name.to_string());
    }
    let mut card_loop = None;
    if card.is_some() {
        join_card_loops(&mut t.elements, &mut card_loop)?;
    }
    Ok(Split {
        card,
        reads_papers,
        card_loop,
    })
}

/// Replaces each `{{#each papers}}` that holds only the card slot and text with the slot of
/// the joined cards, as long as they all have the same text around the card (`found`).
fn join_card_loops(
    elements: &mut [TemplateElement],
    found: &mut Option<CardLoop>,
) -> Result<(), String> {
    for e in elements.iter_mut() {
        let joined = match e {
            TemplateElement::HelperBlock(h) => card_loop_of(h)?,
            _ => None,
        };
        match joined {
            Some(l) if found.as_ref().is_none_or(|f| *f == l) => {
                *found = Some(l);
                let mut slot = Template::compile(CARD_LOOP_SLOT).map_err(|e| e.to_string())?;
                *e = slot.elements.remove(0);
            }
            _ => in_nested(e, |t| join_card_loops(t, found))?,
        }
    }
    Ok(())
}

/// The text around the card if `h` is `{{#each papers}}` (no block parameters, no `else`)
/// around only the card slot, text and comments.
fn card_loop_of(h: &HelperTemplate) -> Result<Option<CardLoop>, String> {
    let compiled = |src: &str| Template::compile(src).map_err(|e| e.to_string());
    let reference = compiled(&format!("{{{{#each papers}}}}{CARD_SLOT}{{{{/each}}}}"))?;
    let slot = compiled(CARD_SLOT)?.elements.remove(0);
    let Some(TemplateElement::HelperBlock(r)) = reference.elements.first() else {
        return Err("the reference card loop did not compile to a loop".to_string());
    };
    let same_loop = h.name == r.name
        && h.params == r.params
        && h.hash.is_empty()
        && h.block_param.is_none()
        && h.inverse.is_none()
        && h.block == r.block
        && h.chain == r.chain;
    let Some(body) = h.template.as_ref().filter(|_| same_loop) else {
        return Ok(None);
    };
    let (mut before, mut after, mut seen) = (String::new(), String::new(), false);
    for e in &body.elements {
        match e {
            TemplateElement::RawString(s) if seen => after.push_str(s),
            TemplateElement::RawString(s) => before.push_str(s),
            TemplateElement::Comment(_) => {}
            e if !seen && *e == slot => seen = true,
            _ => return Ok(None),
        }
    }
    Ok(seen.then_some(CardLoop { before, after }))
}

/// Whether `t`, a template without card blocks (the subject), may read papers' fields.
pub(super) fn reads_papers(t: &Template) -> bool {
    template_reads(t, false)
}

fn is_card(d: &DecoratorTemplate) -> bool {
    d.name.as_name() == Some(CARD_BLOCK)
}

fn replace_cards(
    elements: &mut [TemplateElement],
    card: &mut Option<Template>,
) -> Result<(), String> {
    for e in elements.iter_mut() {
        match e {
            TemplateElement::PartialBlock(d) if is_card(d) => {
                if !d.params.is_empty() || !d.hash.is_empty() {
                    return Err(format!(
                        "its card block takes no parameters: write {{{{#> {CARD_BLOCK}}}}}"
                    ));
                }
                let body = d.template.take().unwrap_or_default();
                match card {
                    Some(c) if c.elements != body.elements => {
                        return Err(format!(
                            "it has two different {{{{#> {CARD_BLOCK}}}}} blocks: a paper has \
                             one card"
                        ));
                    }
                    Some(_) => {}
                    None => *card = Some(body),
                }
                let mut slot = Template::compile(CARD_SLOT).map_err(|e| e.to_string())?;
                *e = slot.elements.remove(0);
            }
            e => in_nested(e, |t| replace_cards(t, card))?,
        }
    }
    Ok(())
}

/// Runs `f` on the elements of each template nested in `e` (a block's body and its `else`).
fn in_nested(
    e: &mut TemplateElement,
    mut f: impl FnMut(&mut [TemplateElement]) -> Result<(), String>,
) -> Result<(), String> {
    let nested: Vec<&mut Template> = match e {
        TemplateElement::HelperBlock(h) => [&mut h.template, &mut h.inverse]
            .into_iter()
            .flatten()
            .collect(),
        TemplateElement::DecoratorBlock(d) | TemplateElement::PartialBlock(d) => {
            d.template.iter_mut().collect()
        }
        _ => Vec::new(),
    };
    nested.into_iter().try_for_each(|t| f(&mut t.elements))
}

/// How a template uses a value.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    /// Tests it (`if`, `unless`) or counts it (`len`).
    Test,
    /// Iterates it with `each`; `cards_only` when the loop holds only text and card blocks.
    Iterate { cards_only: bool },
    /// Anything else: writes it, passes it to a helper, enters it with `with`.
    Other,
}

fn raw(p: &Parameter) -> Option<&str> {
    match p {
        Parameter::Name(n) => Some(n),
        Parameter::Path(Path::Relative((_, raw)) | Path::Local((_, _, raw))) => Some(raw),
        _ => None,
    }
}

/// Whether a path used this way may read a paper's fields. Papers are reached through a
/// group's `papers`; a path that could name a group or a paper without saying so (`this`,
/// `@root`, an index) counts as reading them unless it is only tested.
fn path_reads(raw: &str, how: Use) -> bool {
    let segs: Vec<&str> = raw
        .split('/')
        .flat_map(|s| s.split('.'))
        .map(|s| s.trim_start_matches('[').trim_end_matches(']'))
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(i) = segs.iter().position(|s| *s == "papers") {
        return match &segs[i + 1..] {
            [] => !matches!(how, Use::Test | Use::Iterate { cards_only: true }),
            ["length"] => false,
            _ => true,
        };
    }
    let vague = segs
        .last()
        .is_none_or(|l| *l == "this" || *l == "@root" || l.parse::<usize>().is_ok());
    vague && how != Use::Test
}

fn param_reads(p: &Parameter, how: Use, cards_exempt: bool) -> bool {
    match p {
        Parameter::Literal(_) => false,
        Parameter::Subexpression(s) => element_reads(&s.element, cards_exempt),
        p => raw(p).is_none_or(|r| path_reads(r, how)),
    }
}

fn template_reads(t: &Template, cards_exempt: bool) -> bool {
    t.elements.iter().any(|e| element_reads(e, cards_exempt))
}

fn element_reads(e: &TemplateElement, cards_exempt: bool) -> bool {
    match e {
        TemplateElement::RawString(_) | TemplateElement::Comment(_) => false,
        TemplateElement::PartialBlock(d) if cards_exempt && is_card(d) => false,
        TemplateElement::Expression(h)
        | TemplateElement::HtmlExpression(h)
        | TemplateElement::HelperBlock(h) => helper_reads(h, cards_exempt),
        TemplateElement::DecoratorExpression(d)
        | TemplateElement::DecoratorBlock(d)
        | TemplateElement::PartialExpression(d)
        | TemplateElement::PartialBlock(d) => {
            d.params
                .iter()
                .chain(d.hash.values())
                .any(|p| param_reads(p, Use::Other, cards_exempt))
                || d.template
                    .as_ref()
                    .is_some_and(|t| template_reads(t, cards_exempt))
        }
        _ => true,
    }
}

fn helper_reads(h: &HelperTemplate, cards_exempt: bool) -> bool {
    let name = raw(&h.name);
    if param_reads(&h.name, Use::Other, cards_exempt) {
        return true;
    }
    let how = match name {
        Some("lookup") => return true,
        Some("if" | "unless" | "len") => Use::Test,
        Some("each") => Use::Iterate {
            cards_only: h.template.as_ref().is_none_or(|t| {
                t.elements.iter().all(|e| match e {
                    TemplateElement::RawString(_) | TemplateElement::Comment(_) => true,
                    TemplateElement::PartialBlock(d) => cards_exempt && is_card(d),
                    _ => false,
                })
            }),
        },
        _ => Use::Other,
    };
    h.params.iter().any(|p| param_reads(p, how, cards_exempt))
        || h.hash
            .values()
            .any(|p| param_reads(p, Use::Other, cards_exempt))
        || [&h.template, &h.inverse]
            .into_iter()
            .flatten()
            .any(|t| template_reads(t, cards_exempt))
}

/// The first path in a card that reaches past its paper: to an enclosing context (`../`,
/// `@root`) or to the loop over the papers (`@index`, `@first`, …, outside a loop of the
/// card's own).
fn reaches_out(t: &Template, in_each: bool) -> Option<String> {
    t.elements.iter().find_map(|e| match e {
        TemplateElement::Expression(h)
        | TemplateElement::HtmlExpression(h)
        | TemplateElement::HelperBlock(h) => {
            let each = in_each || raw(&h.name) == Some("each");
            std::iter::once(&h.name)
                .chain(&h.params)
                .chain(h.hash.values())
                .find_map(|p| param_reaches_out(p, in_each))
                .or_else(|| h.template.as_ref().and_then(|t| reaches_out(t, each)))
                .or_else(|| h.inverse.as_ref().and_then(|t| reaches_out(t, in_each)))
        }
        TemplateElement::DecoratorExpression(d)
        | TemplateElement::DecoratorBlock(d)
        | TemplateElement::PartialExpression(d)
        | TemplateElement::PartialBlock(d) => d
            .params
            .iter()
            .chain(d.hash.values())
            .find_map(|p| param_reaches_out(p, in_each))
            .or_else(|| d.template.as_ref().and_then(|t| reaches_out(t, in_each))),
        _ => None,
    })
}

fn param_reaches_out(p: &Parameter, in_each: bool) -> Option<String> {
    match p {
        Parameter::Path(Path::Local((level, _, raw))) => {
            (*level > 0 || !in_each).then(|| raw.clone())
        }
        Parameter::Path(Path::Relative((_, raw))) => {
            (raw.starts_with("@root") || raw.split('/').any(|s| s == "..")).then(|| raw.clone())
        }
        Parameter::Subexpression(s) => {
            let mut t = Template::new();
            t.elements.push((*s.element).clone());
            reaches_out(&t, in_each)
        }
        _ => None,
    }
}

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
    /// The HTML's whole lines in quoted-printable, once they are first needed.
    pub html_qp: super::qp::EncodedOnce,
    /// The text's lines normalised, and those in quoted-printable, once first needed.
    text_lines: OnceLock<Option<CardLines>>,
    pub text_qp: super::qp::EncodedOnce,
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
            html_qp: Default::default(),
            text_lines: OnceLock::new(),
            text_qp: Default::default(),
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

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(s: &str) -> Template {
        Template::compile(s).unwrap()
    }

    fn reads(s: &str) -> bool {
        split(&mut compile(s), "card").unwrap().reads_papers
    }

    #[test]
    fn a_frame_that_shows_only_cards_reads_no_paper() {
        assert!(!reads(
            "{{#each groups}}{{topic}} {{#if papers}}{{papers.length}}{{/if}}\
             {{#each papers}}<!--{{#> card}}{{title}}{{/card}}-->{{/each}}{{/each}}\
             {{#if more_count}}{{more_count}}{{/if}} {{../date}}"
        ));
        assert!(!reads(
            "{{#each groups as |g|}}{{#each g.papers}}{{#> card}}{{title}}{{/card}}{{/each}}{{/each}}"
        ));
    }

    #[test]
    fn any_other_way_to_a_paper_reads_papers() {
        for s in [
            "{{#each groups}}{{#each papers}}{{#> card}}x{{/card}}{{id}}{{/each}}{{/each}}",
            "{{#each groups}}{{#each papers}}{{#if thumbnail}}{{#> card}}x{{/card}}{{/if}}{{/each}}{{/each}}",
            "{{#each groups}}{{#each papers}}{{title}}{{/each}}{{/each}}",
            "{{groups.[0].papers.[0].title}}",
            "{{#with groups.[0]}}{{#each this}}{{x}}{{/each}}{{/with}}",
            "{{#each groups}}{{#with papers}}{{x}}{{/with}}{{/each}}",
            "{{#each groups}}{{#each this}}{{x}}{{/each}}{{/each}}",
            "{{lookup groups 0}}",
            "{{#each groups}}{{#each papers}}{{> other}}{{/each}}{{/each}}",
            "{{#each groups}}{{#if (eq papers.0.upvotes 1)}}x{{/if}}{{/each}}",
        ] {
            assert!(reads(s), "{s}");
        }
        // Without its exemption, a card block reads the paper (the subject's case).
        assert!(reads_papers(&compile(
            "{{#each groups}}{{#each papers}}{{#> card}}x{{/card}}{{/each}}{{/each}}"
        )));
    }

    #[test]
    fn the_card_block_becomes_a_slot() {
        let mut t = compile("{{#each papers}}[{{#> card}}{{title}}{{/card}}]{{/each}}");
        let s = split(&mut t, "the card").unwrap();
        // The loop holds only the card: it becomes the group's cards, joined beforehand.
        let l = s.card_loop.unwrap();
        assert_eq!((l.before.as_str(), l.after.as_str()), ("[", "]"));
        let card = s.card.unwrap();
        assert_eq!(card.name.as_deref(), Some("the card"));
        let mut h = handlebars::Handlebars::new();
        h.register_template("card", card);
        h.register_template("frame", t);
        let data = serde_json::json!({"title": "<b>"});
        assert_eq!(h.render("card", &data).unwrap(), "&lt;b&gt;");
        let data = serde_json::json!({"__paperboy_cards": "[<i>1</i>][2]"});
        assert_eq!(h.render("frame", &data).unwrap(), "[<i>1</i>][2]");
    }

    /// `source` rendered whole, and from its card rendered per paper then its frame; and
    /// whether its loop over the papers became the joined cards.
    fn whole_and_from_cards(source: &str) -> (String, String, bool) {
        let papers = [("A", "x\ny"), ("B", "z")];
        let mut whole = handlebars::Handlebars::new();
        whole.register_escape_fn(handlebars::no_escape);
        whole.register_template_string("t", source).unwrap();
        let fields: Vec<_> = papers
            .iter()
            .map(|(title, text)| serde_json::json!({"title": title, "text": text}))
            .collect();
        let whole = whole
            .render("t", &serde_json::json!({"papers": fields}))
            .unwrap();
        let mut t = compile(source);
        let split = split(&mut t, "card").unwrap();
        let mut h = handlebars::Handlebars::new();
        h.register_escape_fn(handlebars::no_escape);
        h.register_template("card", split.card.unwrap());
        h.register_template("frame", t);
        let cards: Vec<String> = fields
            .iter()
            .map(|f| h.render("card", f).unwrap())
            .collect();
        let joined = split.card_loop.as_ref().map(|l| {
            cards
                .iter()
                .map(|c| format!("{}{c}{}", l.before, l.after))
                .collect::<String>()
        });
        let entries: Vec<_> = cards
            .iter()
            .map(|c| serde_json::json!({"card": c}))
            .collect();
        let data = serde_json::json!({"papers": entries, "__paperboy_cards": joined});
        let from_cards = h.render("frame", &data).unwrap();
        (whole, from_cards, joined.is_some())
    }

    #[test]
    fn cards_put_together_are_the_template_rendered_whole() {
        for (source, joins) in [
            (
                "{{#each papers}}\n{{#> card}}\n{{title}}\n{{text}}\n{{/card}}\n{{/each}}\nend\n",
                true,
            ),
            (
                "<ul>{{#each papers}}<li>{{#> card}}{{title}}{{/card}}</li>{{/each}}</ul>",
                true,
            ),
            // Indented: the card's lines are indented.
            (
                "{{#each papers}}\n  {{#> card}}\n{{title}}\n{{text}}\n  {{/card}}\n{{/each}}\n",
                true,
            ),
            // Loops that are more than the card stay loops.
            (
                "{{#each papers}}{{@index}}: {{#> card}}{{title}}{{/card}}\n{{/each}}",
                false,
            ),
            (
                "{{#each papers}}{{#> card}}{{title}}{{/card}}{{else}}none{{/each}}",
                false,
            ),
            (
                "{{#each papers as |p|}}{{#> card}}{{title}}{{/card}}{{/each}}",
                false,
            ),
        ] {
            let (whole, from_cards, joined) = whole_and_from_cards(source);
            assert_eq!(from_cards, whole, "{source:?}");
            assert_eq!(joined, joins, "{source:?}");
        }
    }

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

    #[test]
    fn a_card_may_use_only_its_paper() {
        for s in [
            "{{#each papers}}{{#> card}}{{../topic}}{{/card}}{{/each}}",
            "{{#each papers}}{{#> card}}{{@index}}{{/card}}{{/each}}",
            "{{#each papers}}{{#> card}}{{#if @first}}x{{/if}}{{/card}}{{/each}}",
            "{{#each papers}}{{#> card}}{{@root.date}}{{/card}}{{/each}}",
            "{{#each papers}}{{#> card}}{{#each a}}{{@../index}}{{/each}}{{/card}}{{/each}}",
        ] {
            assert!(split(&mut compile(s), "card").is_err(), "{s}");
        }
        let ok = "{{#each papers}}{{#> card}}{{#each title_parts}}{{@index}}{{text}}{{/each}}{{/card}}{{/each}}";
        assert!(split(&mut compile(ok), "card").unwrap().card.is_some());
        let two = "{{#> card}}a{{/card}}{{#> card}}b{{/card}}";
        assert!(split(&mut compile(two), "card").is_err());
        let params = "{{#> card this}}a{{/card}}";
        assert!(split(&mut compile(params), "card").is_err());
    }
}
