//! The rendered parts in quoted-printable, as lettre would encode them (line breaks made CRLF,
//! then the `quoted_printable` crate lettre itself uses), made cheap for digests: each card's
//! whole lines are encoded once per card and reused in every email that shows it.
//!
//! Quoted-printable encodes each line on its own (a soft break never crosses a line break, and
//! a line's trailing white space is encoded within the line), so the encoding of text that ends
//! with a line break, followed by the encoding of what comes after, is the encoding of both.
//! A card is cut after its first and after its last line break: the lines between are encoded
//! once; its first and last partial lines are encoded with the email around them.

use std::borrow::Cow;
use std::sync::OnceLock;

/// `s` with LF line breaks made CRLF (a CR already before an LF is kept), then
/// quoted-printable: what lettre's `Body::new_with_encoding(s, QuotedPrintable)` holds.
pub fn encode(s: &str) -> Vec<u8> {
    quoted_printable::encode(crlf(s).as_bytes())
}

/// Appends the encoding of `s` to `out`.
fn encode_into(s: &str, out: &mut Vec<u8>) {
    if !s.is_empty() {
        out.extend_from_slice(&encode(s));
    }
}

fn crlf(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let lone = |i: usize| i == 0 || bytes[i - 1] != b'\r';
    if !bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && lone(i))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + s.len() / 32);
    let mut from = 0;
    for (i, _) in s.match_indices('\n') {
        if lone(i) {
            out.push_str(&s[from..i]);
            out.push_str("\r\n");
            from = i + 1;
        }
    }
    out.push_str(&s[from..]);
    Cow::Owned(out)
}

/// A card's whole lines, encoded once: `lines` is the encoding of `text[head..end]`.
#[derive(Debug)]
struct Lines {
    head: usize,
    end: usize,
    lines: Vec<u8>,
}

/// A card's text with its encoded whole lines, computed the first time an email needs them.
#[derive(Debug, Default)]
pub(super) struct EncodedOnce(OnceLock<Option<Lines>>);

impl EncodedOnce {
    fn get(&self, text: &str) -> Option<&Lines> {
        self.0
            .get_or_init(|| {
                let head = text.find('\n')? + 1;
                let end = text.rfind('\n')? + 1;
                (end > head).then(|| Lines {
                    head,
                    end,
                    lines: encode(&text[head..end]),
                })
            })
            .as_ref()
    }
}

/// A card's text as placed in a rendered part: where it starts, and its text with its
/// encoding kept.
pub(super) struct Placed<'a> {
    pub at: usize,
    pub text: &'a str,
    pub encoded: &'a EncodedOnce,
}

/// The encoding of `part`, in which each of `cards` (in order, not overlapping) is a copy of
/// its text: the same bytes as [`encode`]`(part)`, with each card's whole lines encoded once
/// per card.
pub(super) fn encode_with_cards<'a>(
    part: &str,
    cards: impl IntoIterator<Item = Placed<'a>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(part.len() + part.len() / 16);
    let mut from = 0;
    for card in cards {
        debug_assert_eq!(
            part.get(card.at..card.at + card.text.len()),
            Some(card.text)
        );
        let Some(lines) = card.encoded.get(card.text) else {
            continue;
        };
        // What comes before ends with the card's first line break: its encoding ends a line.
        encode_into(&part[from..card.at + lines.head], &mut out);
        out.extend_from_slice(&lines.lines);
        from = card.at + lines.end;
    }
    encode_into(&part[from..], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding;

    fn lettre_qp(s: &str) -> Vec<u8> {
        Body::new_with_encoding(s.to_string(), ContentTransferEncoding::QuotedPrintable)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn encodes_as_lettre_does() {
        let long = "é".repeat(60) + " x=y \t\n";
        for s in [
            "",
            "plain",
            "a\nb\r\nc\n",
            "\n\nlead",
            "trailing space \nand tab\t\n",
            "end with space ",
            "lone\rcr\n",
            long.as_str(),
            &"0123456789".repeat(30),
        ] {
            assert_eq!(encode(s), lettre_qp(s), "{s:?}");
        }
    }

    #[test]
    fn cards_encoded_once_give_the_bytes_of_the_whole() {
        let card_a = "--> <tr><td style=\"padding:14px 24px 0 24px;\">\n<p>Vision ü \
                      transformers</p>\n<p>x "
            .to_string()
            + &"long line ".repeat(20)
            + "</p>\n</td></tr>\n<!--";
        let card_b = "one line, no break";
        let card_c = "ends with a break \n";
        let enc = [
            EncodedOnce::default(),
            EncodedOnce::default(),
            EncodedOnce::default(),
        ];
        for frame_col in ["", "<!--", "x ", &"y".repeat(80)] {
            let mut part = String::from("<html>\n");
            let mut placed = Vec::new();
            for (i, card) in [card_a.as_str(), card_b, card_c, card_a.as_str()]
                .into_iter()
                .enumerate()
            {
                part.push_str(frame_col);
                placed.push((part.len(), card, i % 3));
                part.push_str(card);
                part.push_str(" \t");
            }
            part.push_str("\n</html>");
            let got = encode_with_cards(
                &part,
                placed.iter().map(|&(at, text, e)| Placed {
                    at,
                    text,
                    encoded: &enc[e],
                }),
            );
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(lettre_qp(&part)).unwrap(),
                "frame column {frame_col:?}"
            );
        }
    }
}
