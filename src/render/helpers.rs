//! The templates' own helpers: `wrap` (text filled to a width) and `plural` ("1 upvote",
//! "2 upvotes").

use handlebars::{Handlebars, handlebars_helper};

/// Registers the helpers in `h`.
pub(super) fn register(h: &mut Handlebars<'static>) {
    h.register_helper("wrap", Box::new(wrap));
    h.register_helper("plural", Box::new(plural));
}

handlebars_helper!(wrap: |s: str, {indent: str = "", width: u64 = 72}| {
    let opts = textwrap::Options::new(width as usize)
        .initial_indent(indent)
        .subsequent_indent(indent)
        .break_words(false);
    textwrap::fill(s, opts)
});

handlebars_helper!(plural: |n: i64, word: str| {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
});
