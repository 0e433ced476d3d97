//! What a mail server said, made fit to show: its replies go into records, logs and
//! `paperboy history`, one line of printable text each.

/// `text` with each control character (a bare line break inside a reply line, a terminal
/// escape sequence) written as its escape (`\n`, `\u{1b}`): a server cannot add lines to
/// what the operator reads, or colour or move their terminal.
pub(super) fn printable(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_as_their_escapes_and_the_rest_kept() {
        let said = "250 queued\nas 1\r\u{1b}[31mÉlise\t\u{85}ok";
        let shown = printable(said.to_string());
        assert!(!shown.chars().any(char::is_control), "{shown}");
        for c in said.chars().filter(|c| c.is_control()) {
            assert!(
                shown.contains(&c.escape_default().to_string()),
                "{c:?}: {shown}"
            );
        }
        let mut rest = shown.chars();
        for c in said.chars().filter(|c| !c.is_control()) {
            assert!(rest.any(|s| s == c), "{c:?} lost: {shown}");
        }
        let plain = "250 2.0.0 Ok: queued as Élise's";
        assert_eq!(printable(plain.to_string()), plain);
    }
}
