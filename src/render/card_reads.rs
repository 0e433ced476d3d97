//! Whether a template may read papers' fields (outside its card block): a frame that does
//! not is given only the cards, a subject that does not reuses the frames' view.

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};

use super::card_block::{is_card, raw};

/// Whether `t` may read papers' fields; with `cards_exempt`, not counting what its card
/// blocks read (a frame's, taken as written, before its card block is taken out).
pub(super) fn reads_papers(t: &Template, cards_exempt: bool) -> bool {
    template_reads(t, cards_exempt)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(s: &str) -> Template {
        Template::compile(s).unwrap()
    }

    fn reads(s: &str) -> bool {
        reads_papers(&compile(s), true)
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
        assert!(reads_papers(
            &compile("{{#each groups}}{{#each papers}}{{#> card}}x{{/card}}{{/each}}{{/each}}"),
            false
        ));
    }
}
