//! The templates' own helpers: `wrap` (text filled to a width, as an expression or around a
//! block) and `plural` ("1 upvote", "2 upvotes").

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderErrorReason,
    Renderable, StringOutput, handlebars_helper,
};

/// Registers the helpers in `h`.
pub(super) fn register(h: &mut Handlebars<'static>) {
    h.register_helper("wrap", Box::new(Wrap));
    h.register_helper("plural", Box::new(plural));
}

/// The width `wrap` fills to, its indent included, unless told another (the default of
/// `wrap_value`'s `width`, which must be written there as a literal).
const WIDTH: u64 = 72;

/// `s` filled to `width` columns, each line starting with `indent`, breaking where Unicode
/// allows a line break (a space, after a hyphen or a '/'); a word longer than a line is not
/// broken.
fn fill(s: &str, indent: &str, width: u64) -> String {
    let opts = textwrap::Options::new(width as usize)
        .initial_indent(indent)
        .subsequent_indent(indent)
        .break_words(false);
    textwrap::fill(s, opts)
}

handlebars_helper!(wrap_value: |s: str, {indent: str = "", width: u64 = 72}| {
    fill(s, indent, width)
});

handlebars_helper!(plural: |n: i64, word: str| {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
});

/// `{{wrap text indent="   " width=72}}` fills a value; `{{#wrap indent="   "}}…{{/wrap}}`
/// fills what its block renders (text put together from several fields).
struct Wrap;

impl HelperDef for Wrap {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let Some(block) = h.template() else {
            return wrap_value.call(h, r, ctx, rc, out);
        };
        let hash = |name: &'static str, kind: &str| {
            RenderErrorReason::HashTypeMismatchForName("wrap", name.to_string(), kind.to_string())
        };
        let indent = match h.hash_get("indent") {
            Some(v) => v.value().as_str().ok_or_else(|| hash("indent", "str"))?,
            None => "",
        };
        let width = match h.hash_get("width") {
            Some(v) => v.value().as_u64().ok_or_else(|| hash("width", "u64"))?,
            None => WIDTH,
        };
        let mut inner = StringOutput::new();
        block.render(r, ctx, rc, &mut inner)?;
        let inner = inner
            .into_string()
            .map_err(|e| RenderErrorReason::Other(format!("wrap: {e}")))?;
        // The block was escaped as it rendered: filling adds only line breaks and indents.
        out.write(&fill(&inner, indent, width))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, data: serde_json::Value) -> String {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        h.register_escape_fn(handlebars::no_escape);
        register(&mut h);
        h.render_template(template, &data).unwrap()
    }

    #[test]
    fn a_block_is_filled_as_a_value_is() {
        let data = serde_json::json!({
            "a": "16 upvotes,",
            "b": "National Yang Ming Chiao Tung University",
        });
        let filled = "  16 upvotes, National\n  Yang Ming Chiao Tung\n  University";
        let block = "{{#wrap indent=\"  \" width=22}}{{a}} {{b}}{{/wrap}}";
        assert_eq!(render(block, data.clone()), filled);
        let value = "{{wrap c indent=\"  \" width=22}}";
        let data = serde_json::json!({"c": "16 upvotes, National Yang Ming Chiao Tung University"});
        assert_eq!(render(value, data), filled);
        // A word longer than a line is not broken; the default width is 72.
        let long = "x".repeat(80);
        let data = serde_json::json!({"a": "Long:", "b": long});
        assert_eq!(
            render("{{#wrap}}{{a}} {{b}}{{/wrap}}", data.clone()),
            format!("Long:\n{long}")
        );
        // A hash of the wrong type is an error, as it is for a value.
        let mut h = Handlebars::new();
        register(&mut h);
        let wrong = h.render_template("{{#wrap width=\"x\"}}a{{/wrap}}", &data);
        assert!(wrong.is_err());
    }
}
