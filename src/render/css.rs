//! CSS inlining: the HTML template's <style> rules moved into style attributes, once, when the
//! templates load; a template whose handlebars tags the inliner would move is refused.

/// Moves the template's <style> rules into style attributes, once, when templates load
/// (remote stylesheets are never fetched). The <style> stays for the rules that cannot be
/// inlined (dark mode's media query).
pub(super) fn inline_css(source: &str) -> Result<String, String> {
    let inlined = css_inline::CSSInliner::options()
        .keep_style_tags(true)
        .load_remote_stylesheets(false)
        .build()
        .inline(source)
        .map_err(|e| format!("inlining its CSS: {e}"))?;
    // The inliner parses HTML: a block helper between table rows, or one inside a tag, would
    // be moved or mangled. Refuse the template rather than render it wrong.
    let tags = |s: &str| {
        let mut t: Vec<String> = s
            .match_indices("{{")
            .map(|(i, _)| s[i..].split("}}").next().unwrap_or("").to_string())
            .collect();
        t.sort();
        t
    };
    if tags(source) != tags(&inlined) {
        return Err(
            "its handlebars tags do not survive CSS inlining in place: put block \
                    helpers that sit between table rows inside HTML comments \
                    (<!--{{#each papers}}-->), and none inside a tag"
                .into(),
        );
    }
    let order = |s: &str| -> Vec<usize> {
        s.match_indices("{{")
            .map(|(i, _)| s[..i].matches("<tr").count())
            .collect()
    };
    if order(source) != order(&inlined) {
        return Err(
            "its handlebars block helpers move when the CSS is inlined: put those \
                    between table rows inside HTML comments (<!--{{#each papers}}-->)"
                .into(),
        );
    }
    Ok(inlined)
}
