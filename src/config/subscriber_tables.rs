//! The `[[subscribers]]` tables of a TOML document, found by TOML's own lexer and read one at
//! a time, so that 100,000 subscribers are never one parsed tree in memory.

use std::ops::Range;

use super::raw::RawSubscriber;

/// Splits a TOML document into the text of its `[[subscribers]]` tables (each with the line
/// of its header, and the byte range of its body) and the rest of the document. A header is a
/// `[` that opens a line outside any value; TOML's own lexer tells strings, comments and
/// brackets apart, so a `[` inside a string or a multi-line array is not mistaken for one.
pub(super) fn split(text: &str) -> (String, Vec<(usize, Range<usize>)>) {
    use toml_parser::lexer::TokenKind;
    // (start of the header line, the header's line number, a [[subscribers]] table?)
    let mut headers: Vec<(usize, usize, bool)> = Vec::new();
    let mut line = 1;
    let mut line_start = true;
    let mut in_header = false;
    let mut depth = 0usize;
    for token in toml_parser::Source::new(text).lex() {
        let span = token.span();
        match token.kind() {
            TokenKind::Newline => {
                line += 1;
                line_start = true;
                in_header = false;
            }
            TokenKind::Whitespace | TokenKind::Comment => {}
            TokenKind::MlBasicString | TokenKind::MlLiteralString => {
                line += text[span.start()..span.end()].matches('\n').count();
                line_start = false;
            }
            _ if in_header => {}
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                in_header = true;
                let head = &text[span.start()..];
                let head = &head[..head.find('\n').unwrap_or(head.len())];
                // A header is followed on its line by nothing but white space or a comment;
                // one followed by anything else is left in the rest of the document, whose
                // parse names the line and what is wrong there.
                let subscribers = head
                    .strip_prefix("[[")
                    .and_then(|h| h.split_once("]]"))
                    .is_some_and(|(name, after)| {
                        let after = after.trim_start_matches([' ', '\t', '\r']);
                        name.trim().trim_matches(['"', '\'']) == "subscribers"
                            && (after.is_empty() || after.starts_with('#'))
                    });
                headers.push((span.start(), line, subscribers));
                line_start = false;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.saturating_sub(1);
                line_start = false;
            }
            _ => line_start = false,
        }
    }
    let mut rest = String::with_capacity(text.len().min(1 << 16));
    let mut tables = Vec::new();
    let mut from = 0;
    for (i, &(start, line, subscribers)) in headers.iter().enumerate() {
        let end = headers.get(i + 1).map_or(text.len(), |h| h.0);
        if subscribers {
            rest.push_str(&text[from..start]);
            // Blank lines in their place keep the line numbers of later errors right.
            let lines = text[start..end].matches('\n').count();
            rest.extend(std::iter::repeat_n('\n', lines));
            let body = text[start..end].find('\n').map_or(end, |n| start + n + 1);
            tables.push((line, body..end));
            from = end;
        }
    }
    rest.push_str(&text[from..]);
    (rest, tables)
}

/// Each table of `split` read into a subscriber's settings, in order, or the reason it could
/// not be: what follows the subscriber's key in the message, the field (`.max_papers`) where
/// one is to blame, then the table's line.
pub(super) fn read(
    text: &str,
    tables: Vec<(usize, Range<usize>)>,
) -> impl Iterator<Item = Result<RawSubscriber, String>> + '_ {
    tables.into_iter().map(|(line, body)| {
        let place = format!("(the [[subscribers]] table at line {line})");
        let de = toml::Deserializer::parse(&text[body])
            .map_err(|e| format!(" {place}: {}", e.message()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = match e.path().iter().next() {
                Some(_) => format!(".{}", e.path()),
                None => String::new(),
            };
            format!("{field} {place}: {}", e.inner().message())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_tables_are_split_off_by_the_toml_lexer_not_by_lines() {
        let text = "[smtp]\nfrom = \"a@example.org\"\n\
             note = \"\"\"\n[[subscribers]]\nemail = \"fake@example.org\"\n\"\"\"\n\
             [topics.ml]\nkeywords = [\n[\"x\"] ,\n]\n\
             [[subscribers]] # the first\nemail = \"one@example.org\"\ntopics = [\n  \"ml\",\n]\n\
             [[ \"subscribers\" ]]\nemail = \"two@example.org\"\n\
             [database]\nurl = \"sqlite://x.db\"\n";
        let (rest, tables) = split(text);
        let bodies: Vec<(usize, &str)> =
            tables.iter().map(|(l, r)| (*l, &text[r.clone()])).collect();
        assert_eq!(
            bodies,
            [
                (
                    11,
                    "email = \"one@example.org\"\ntopics = [\n  \"ml\",\n]\n"
                ),
                (16, "email = \"two@example.org\"\n"),
            ]
        );
        // The string that looks like a table, the nested array and the other tables stay.
        assert!(
            rest.contains("[[subscribers]]\nemail = \"fake@example.org\""),
            "{rest}"
        );
        assert!(
            rest.contains("[\"x\"] ,") && rest.contains("[database]"),
            "{rest}"
        );
        assert!(!rest.contains("one@") && !rest.contains("two@"), "{rest}");
        // The removed tables leave blank lines: what follows keeps its line number.
        assert_eq!(rest.lines().position(|l| l == "[database]"), Some(17));
    }
}
