//! A rendered email's parts in quoted-printable (CRLF line breaks), the bytes lettre would
//! make of them, cheap for digests: each card's whole lines are encoded once per card, kept
//! in the slot the card offers ([`CardSpan::encoded`]), and reused in every email that
//! shows it.
//!
//! A card is cut after its first and after its last line break: the lines between are encoded
//! once (quoted-printable encodes each line on its own); its first and last partial lines are
//! encoded with the email around them.

use crate::render::{CardSpan, Rendered};

use super::qp;

/// The HTML in quoted-printable, each card's lines encoded once per card.
pub fn html_quoted_printable(rendered: &Rendered) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_size_hint(&rendered.html));
    html_quoted_printable_into(rendered, &mut out);
    out
}

/// Appends [`html_quoted_printable`] to `out`.
pub fn html_quoted_printable_into(rendered: &Rendered, out: &mut Vec<u8>) {
    encode_with_cards_into(&rendered.html, rendered.html_cards(), out)
}

/// The text in quoted-printable, each card's lines encoded once per card.
pub fn text_quoted_printable(rendered: &Rendered) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_size_hint(&rendered.text));
    text_quoted_printable_into(rendered, &mut out);
    out
}

/// Appends [`text_quoted_printable`] to `out`.
pub fn text_quoted_printable_into(rendered: &Rendered, out: &mut Vec<u8>) {
    encode_with_cards_into(&rendered.text, rendered.text_cards(), out)
}

/// About the size of both parts in quoted-printable.
pub fn quoted_printable_size_hint(rendered: &Rendered) -> usize {
    encoded_size_hint(&rendered.html) + encoded_size_hint(&rendered.text)
}

/// About the size of `part` in quoted-printable (a little over for the usual HTML and text).
fn encoded_size_hint(part: &str) -> usize {
    part.len() + part.len() / 16
}

/// A card's whole lines: `text[head..end]` (from after its first line break to after its
/// last), and their encoding, made the first time an email needs it and kept in the card's
/// slot. `None` when the card has no whole line.
fn whole_lines<'a>(card: &CardSpan<'a>) -> Option<(usize, usize, &'a [u8])> {
    let bytes = card.text.as_bytes();
    let head = memchr::memchr(b'\n', bytes)? + 1;
    let end = memchr::memrchr(b'\n', bytes)? + 1;
    (end > head).then(|| {
        let lines = card
            .encoded
            .get_or_init(|| qp::encode(&card.text[head..end]));
        (head, end, lines.as_slice())
    })
}

/// Appends to `out` the encoding of `part`, in which each of `cards` (in order, not
/// overlapping) is a copy of its text: the same bytes as `qp::encode(part)`, with each
/// card's whole lines encoded once per card.
fn encode_with_cards_into<'a>(
    part: &str,
    cards: impl IntoIterator<Item = CardSpan<'a>>,
    out: &mut Vec<u8>,
) {
    let mut from = 0;
    for card in cards {
        debug_assert_eq!(
            part.get(card.at..card.at + card.text.len()),
            Some(card.text)
        );
        let Some((head, end, lines)) = whole_lines(&card) else {
            continue;
        };
        // What comes before ends with the card's first line break: its encoding ends a line.
        qp::encode_into(&part[from..card.at + head], out);
        out.extend_from_slice(lines);
        from = card.at + end;
    }
    qp::encode_into(&part[from..], out);
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::mail::qp::tests::lettre_qp;

    #[test]
    fn cards_encoded_once_give_the_bytes_of_the_whole() {
        let card_a = "--> <tr><td style=\"padding:14px 24px 0 24px;\">\n<p>Vision ü \
                      transformers</p>\n<p>x "
            .to_string()
            + &"long line ".repeat(20)
            + "</p>\n</td></tr>\n<!--";
        let card_b = "one line, no break";
        let card_c = "ends with a break \n";
        let enc = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
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
            let mut got = Vec::new();
            let cards = placed.iter().map(|&(at, text, e)| CardSpan {
                at,
                text,
                encoded: &enc[e],
            });
            encode_with_cards_into(&part, cards, &mut got);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(lettre_qp(&part)).unwrap(),
                "frame column {frame_col:?}"
            );
        }
        // The card with whole lines keeps their encoding; the others have none to keep.
        assert!(enc[0].get().is_some() && enc[1].get().is_none() && enc[2].get().is_none());
        // What is kept is what is written: a kept encoding is not made again.
        let kept = OnceLock::from(b"KEPT\r\n".to_vec());
        let mut got = Vec::new();
        let card = CardSpan {
            at: 2,
            text: "a\nb\nc",
            encoded: &kept,
        };
        encode_with_cards_into("<<a\nb\nc>>", [card], &mut got);
        assert_eq!(got, b"<<a\r\nKEPT\r\nc>>");
    }
}
