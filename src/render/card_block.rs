//! The card block in the HTML and text templates: `{{#> card}}…{{/card}}` taken out of a
//! template as it loads, to render once per paper and topic, and a slot left in its place.
//!
//! The HTML and text templates mark a paper's card with a partial block,
//! `{{#> card}}…{{/card}}`, inside `{{#each papers}}`. When the templates load, the block's
//! content becomes a template of its own (the card), rendered with the paper as its only
//! context, and the block itself becomes a slot that writes the card rendered beforehand, as
//! is: the card was escaped when it was rendered (the HTML registry escapes everything), and
//! the frame around it (greeting, headings, footer, unsubscribe link) is rendered per email.
//! A card therefore depends only on its paper's view (see [`super::cards`] for what that
//! holds, and how cards are kept).
//!
//! Templates without a card block (an operator's copy of the templates of earlier versions)
//! render whole, per email, as they always did. A frame that reads papers' fields outside the
//! card block (a table of contents, a field next to the card) gets them; one that does not
//! (the built-in templates) gets only the cards, which is what makes it cheap (whether it
//! reads them is [`super::card_reads`]' job).

use handlebars::Path;
use handlebars::template::{
    DecoratorTemplate, HelperTemplate, Parameter, Template, TemplateElement,
};

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
    /// The loops over the papers that were only the card, now [`CARD_LOOP_SLOT`]s.
    pub card_loop: Option<CardLoop>,
}

/// Takes the card block out of `t`, leaving the slot in its place. A template may hold the
/// block more than once (two lists of papers), the same each time.
pub(super) fn split(t: &mut Template, card_name: &str) -> Result<Split, String> {
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
    Ok(Split { card, card_loop })
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

pub(super) fn is_card(d: &DecoratorTemplate) -> bool {
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

/// A parameter's name or path as written.
pub(super) fn raw(p: &Parameter) -> Option<&str> {
    match p {
        Parameter::Name(n) => Some(n),
        Parameter::Path(Path::Relative((_, raw)) | Path::Local((_, _, raw))) => Some(raw),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(s: &str) -> Template {
        Template::compile(s).unwrap()
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
