//! The plain-text part's line breaks: LF only, each line's trailing white space removed (but
//! for the signature separator "-- "), no blank line at the start and none doubled.
//!
//! The text is mostly cards, the same in every email that shows them: each card's lines are
//! normalised once (see [`CardLines`]) and copied into every text that holds the card. A line
//! is normalised on its own; only whether a blank line is dropped depends on what came
//! before, and a run of lines that starts with a line that is not blank is normalised the
//! same whatever came before it.

/// `s` normalised.
pub(super) fn normalize_newlines(s: &str) -> String {
    // A CR is rare: looking for one byte first is much cheaper than searching for two.
    let s = if s.contains('\r') {
        std::borrow::Cow::Owned(s.replace("\r\n", "\n"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    let mut out = String::with_capacity(s.len());
    // A blank line first counts as doubled.
    let mut blank = 1;
    normalize_into(&s, &mut blank, &mut out);
    out
}

/// Appends the lines of `s` normalised to `out`; `blank` counts the blank lines in a row so
/// far, before and after. `s` ends with a line break unless it is the end of the text.
fn normalize_into(s: &str, blank: &mut usize, out: &mut String) {
    let mut from = 0;
    // The lines as `str::lines` cuts them (memchr is faster on short lines).
    let ends = memchr::memchr_iter(b'\n', s.as_bytes()).chain(open_last_line(s).then_some(s.len()));
    for end in ends {
        let mut line = &s[from..end];
        from = end + 1;
        if end < s.len() {
            line = line.strip_suffix('\r').unwrap_or(line);
        }
        // "-- " is the signature separator (RFC 3676): its space is what makes it one.
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            *blank += 1;
            if *blank > 1 {
                continue;
            }
        } else {
            *blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
}

/// Whether `s` has a last line without a line break.
fn open_last_line(s: &str) -> bool {
    !s.is_empty() && !s.ends_with('\n')
}

/// A card's whole lines from the first that is not blank after its first line break, up to
/// its last line break, normalised: the same in every text the card is copied into.
#[derive(Debug)]
pub(super) struct CardLines {
    /// Where those lines start in the card's text, and where they end.
    start: usize,
    end: usize,
    /// Them normalised, after a line break (the one that ends the line before them: the
    /// quoted-printable encoding of the card's lines then starts at a line of its own).
    pub normalized: String,
    /// Blank lines in a row at their end.
    blank_after: usize,
}

impl CardLines {
    /// `None` when the card's text has no such lines.
    pub fn of(text: &str) -> Option<Self> {
        let mut start = text.find('\n')? + 1;
        let end = text.rfind('\n')? + 1;
        // Past the blank lines: a blank line may or may not be dropped, by what came before.
        while start < end {
            let line_end = start + text[start..].find('\n')?;
            if !text[start..line_end].trim_end().is_empty() {
                break;
            }
            start = line_end + 1;
        }
        if start >= end {
            return None;
        }
        let mut normalized = String::from("\n");
        let mut blank_after = 0;
        normalize_into(&text[start..end], &mut blank_after, &mut normalized);
        Some(Self {
            start,
            end,
            normalized,
            blank_after,
        })
    }
}

/// `text` normalised, in which each of `cards` (where it starts, in order, not overlapping)
/// is a copy of its card's text, whose [`CardLines`] `lines` gives; and where each card's
/// [`CardLines::normalized`] went.
pub(super) fn normalize_with_cards<C: Clone>(
    text: &str,
    cards: &[(usize, C)],
    lines: impl for<'c> Fn(&'c C) -> Option<&'c CardLines>,
) -> (String, Vec<(usize, C)>) {
    // A CR may join a line break across a card's edge: then everything is normalised as one.
    if cards.is_empty() || memchr::memchr(b'\r', text.as_bytes()).is_some() {
        return (normalize_newlines(text), Vec::new());
    }
    let mut out = String::with_capacity(text.len());
    let mut placed = Vec::with_capacity(cards.len());
    let mut blank = 1;
    let mut from = 0;
    for (at, card) in cards {
        let Some(lines) = lines(card) else {
            continue;
        };
        let start = at + lines.start;
        debug_assert!(from <= start && text.as_bytes()[start - 1] == b'\n');
        // What comes before ends with the line break before the card's lines.
        normalize_into(&text[from..start], &mut blank, &mut out);
        // `out` ends with that line break (where it is not empty): the card's normalised
        // lines, after their line break, start there.
        if let Some(at) = out.len().checked_sub(1) {
            placed.push((at, card.clone()));
        }
        out.push_str(&lines.normalized[1..]);
        blank = lines.blank_after;
        from = at + lines.end;
    }
    normalize_into(&text[from..], &mut blank, &mut out);
    (out, placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    #[test]
    fn the_signature_separator_keeps_its_space() {
        assert_eq!(normalize_newlines("a  \n-- \nsig\n\n\n"), "a\n-- \nsig\n\n");
    }

    /// What `normalize_newlines` did before it cut lines with memchr.
    fn normalize_newlines_by_lines(s: &str) -> String {
        let s = s.replace("\r\n", "\n");
        let mut out = String::new();
        let mut blank = 0;
        for line in s.lines() {
            let line = if line == "-- " { line } else { line.trim_end() };
            if line.is_empty() {
                blank += 1;
                if blank > 1 {
                    continue;
                }
            } else {
                blank = 0;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.trim_start_matches('\n').to_string()
    }

    const PIECES: [&str; 13] = [
        "a", "b c", " ", "\t", "\n", "\r", "\r\n", "-- ", "--", "\u{a0}", "é", "\n\n", "x ",
    ];

    fn random_text(rng: &mut Rng, pieces: usize) -> String {
        (0..rng.below(pieces))
            .map(|_| PIECES[rng.below(PIECES.len())])
            .collect()
    }

    #[test]
    fn newlines_are_normalized_as_lines_would_cut_them() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let s = random_text(&mut rng, 12);
            assert_eq!(
                normalize_newlines(&s),
                normalize_newlines_by_lines(&s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn cards_normalized_once_make_the_text_normalized_whole() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut reused = 0;
        for _ in 0..20_000 {
            // Cards without CR (a CR anywhere sends the whole text the slow way).
            let card_texts: Vec<String> = (0..3)
                .map(|_| random_text(&mut rng, 14).replace('\r', ""))
                .collect();
            // Each card's text with its lines, as a card keeps them.
            let cards: Vec<(String, Option<CardLines>)> = card_texts
                .into_iter()
                .map(|t| {
                    let lines = CardLines::of(&t);
                    (t, lines)
                })
                .collect();
            let mut text = String::new();
            let mut placed = Vec::new();
            for _ in 0..rng.below(5) {
                text.push_str(&random_text(&mut rng, 4));
                let card = &cards[rng.below(cards.len())];
                placed.push((text.len(), card));
                text.push_str(&card.0);
            }
            text.push_str(&random_text(&mut rng, 4));
            let (normalized, at) = normalize_with_cards(&text, &placed, |c| c.1.as_ref());
            assert_eq!(normalized, normalize_newlines(&text), "{text:?}");
            for (at, card) in &at {
                let lines = &card.1.as_ref().unwrap().normalized;
                assert_eq!(&normalized[*at..at + lines.len()], lines, "{text:?}");
                reused += 1;
            }
        }
        assert!(reused > 2_000, "cards' lines were copied {reused} times");
    }
}
