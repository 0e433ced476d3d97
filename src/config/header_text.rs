//! Settings that end up in an email's headers or in the SMTP dialogue (names, addresses, the
//! DKIM selector and domain, the EHLO name, topic names in the subject): refused at load when
//! they hold what would break a header or smuggle in another one (a line break, any control
//! character), each problem named by its key.

use lettre::message::Mailbox;

/// A character that has no place in a one-line header value: any control character (C0,
/// DEL, C1: CR, LF, tab, NUL...) and the Unicode line and paragraph separators.
fn breaks_a_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// How a refused character is named in a message.
fn describe(c: char) -> String {
    let what = match c {
        '\r' => " (a carriage return, CR)",
        '\n' => " (a line feed, LF)",
        '\t' => " (a tab)",
        '\0' => " (NUL)",
        '\u{2028}' => " (a line separator)",
        '\u{2029}' => " (a paragraph separator)",
        _ => "",
    };
    format!("U+{:04X}{what}", c as u32)
}

/// `value` (of `key`, going into `place`) is one line of printable text; else a problem.
pub(super) fn one_line(key: &str, value: &str, place: &str, problems: &mut Vec<String>) -> bool {
    match value.chars().find(|&c| breaks_a_line(c)) {
        Some(c) => {
            problems.push(format!(
                "{key}: {value:?} holds a control character, {}; it goes into {place}, which \
                 must be one line of printable text",
                describe(c)
            ));
            false
        }
        None => true,
    }
}

/// A mailbox setting (`Name <address>`): one line, then parsed. `None` (and a problem) when
/// it is not a mailbox.
pub(super) fn mailbox(
    key: &str,
    value: &str,
    header: &str,
    problems: &mut Vec<String>,
) -> Option<Mailbox> {
    let value = value.trim();
    if !one_line(key, value, &format!("the {header} header"), problems) {
        return None;
    }
    value
        .parse::<Mailbox>()
        .map_err(|e| problems.push(format!("{key}: invalid mailbox {value:?}: {e}")))
        .ok()
}

/// A host name (letters, digits, `-`, `.`, `_`) or, where `literal` allows it, an address
/// literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`): what `place` takes. Else a problem.
pub(super) fn host_name(
    key: &str,
    value: &str,
    place: &str,
    literal: bool,
    problems: &mut Vec<String>,
) {
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    let address_literal = |s: &str| {
        s.strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .map(|inner| inner.strip_prefix("IPv6:").unwrap_or(inner))
            .is_some_and(|a| {
                !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'))
            })
    };
    if !(plain(value) || (literal && address_literal(value))) {
        problems.push(format!(
            "{key}: {value:?} is not a host name (letters, digits, '-', '.' and '_'{}); it \
             goes into {place}",
            if literal {
                ", or an address literal like \"[192.0.2.1]\""
            } else {
                ""
            }
        ));
    }
}

/// The address that unsubscribe requests go to, written as it is into the List-Unsubscribe
/// header's `<mailto:ADDRESS?subject=…>`: nothing there may end the URI or the header.
pub(super) fn mailto_address(key: &str, address: &str, problems: &mut Vec<String>) {
    if let Some(c) = address
        .chars()
        .find(|&c| breaks_a_line(c) || c.is_whitespace() || "<>\"?#%\\".contains(c))
    {
        problems.push(format!(
            "{key}: the address {address:?} holds {}, which cannot be written into the \
             List-Unsubscribe header's mailto: link; use a plain address like \
             \"unsubscribe@example.org\"",
            if breaks_a_line(c) {
                format!("a control character, {}", describe(c))
            } else {
                format!("{c:?}")
            }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(f: impl FnOnce(&mut Vec<String>)) -> Vec<String> {
        let mut p = Vec::new();
        f(&mut p);
        p
    }

    #[test]
    fn line_breaks_and_other_control_characters_are_refused_by_name() {
        for (value, named) in [
            (
                "Ada\r\nBcc: x@example.net",
                "U+000D (a carriage return, CR)",
            ),
            ("Ada\nLovelace", "U+000A (a line feed, LF)"),
            ("Ada\tLovelace", "U+0009 (a tab)"),
            ("Ada\u{0}", "U+0000 (NUL)"),
            ("Ada\u{85}", "U+0085"),
            ("Ada\u{7f}", "U+007F"),
            ("Ada\u{2028}Lovelace", "U+2028 (a line separator)"),
        ] {
            let p = problems_of(|p| assert!(!one_line("k.name", value, "the To header", p)));
            assert_eq!(p.len(), 1, "{value:?}");
            assert!(
                p[0].starts_with("k.name: ") && p[0].contains(named),
                "{value:?}: {p:?}"
            );
        }
        for fine in ["Ada Lovelace", "Zoë \"Z\" O'Brien, PhD", "李小龍 😀", ""] {
            assert!(problems_of(|p| assert!(one_line("k", fine, "x", p))).is_empty());
        }
    }

    #[test]
    fn mailboxes_are_one_line_then_parsed() {
        let ok = problems_of(|p| {
            let m = mailbox("smtp.from", " Paperboy <a@example.org> ", "From", p).unwrap();
            assert_eq!(m.name.as_deref(), Some("Paperboy"));
        });
        assert!(ok.is_empty(), "{ok:?}");
        // The parser would make a tab a space: refused before it is.
        let p = problems_of(|p| {
            assert!(mailbox("smtp.from", "Paper\tboy <a@example.org>", "From", p).is_none())
        });
        assert!(p[0].contains("smtp.from") && p[0].contains("tab"), "{p:?}");
        let p = problems_of(|p| assert!(mailbox("smtp.reply_to", "nope", "Reply-To", p).is_none()));
        assert!(p[0].starts_with("smtp.reply_to: invalid mailbox"), "{p:?}");
    }

    #[test]
    fn host_names_and_address_literals() {
        for ok in [
            "paperboy.test",
            "mail-1.example.org",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
        ] {
            assert!(
                problems_of(|p| host_name("smtp.hello_name", ok, "EHLO", true, p)).is_empty(),
                "{ok}"
            );
        }
        for bad in ["", "a b", "x\r\nRSET", "[nope]", "a/b"] {
            let p = problems_of(|p| host_name("smtp.hello_name", bad, "EHLO", true, p));
            assert!(p[0].starts_with("smtp.hello_name: "), "{bad:?}: {p:?}");
        }
        let p = problems_of(|p| host_name("dkim.selector", "[192.0.2.1]", "x", false, p));
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn a_mailto_address_holds_nothing_that_ends_the_link() {
        assert!(problems_of(|p| mailto_address("k", "unsub+x@example.org", p)).is_empty());
        for bad in ["\"a b\"@example.org", "a>b@example.org", "a?b@example.org"] {
            let p = problems_of(|p| mailto_address("unsubscribe.mailto", bad, p));
            assert!(p[0].starts_with("unsubscribe.mailto: "), "{bad}: {p:?}");
        }
    }
}
