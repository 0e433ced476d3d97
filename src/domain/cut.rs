//! Cutting text to a length: at a word boundary when one is near the end, else between two
//! graphemes (never inside one: a letter and its accents, an emoji and its modifiers stay
//! whole), with an ellipsis.

use unicode_segmentation::UnicodeSegmentation;

/// `s` cut to at most `max` characters (Unicode scalar values) and an ellipsis; `s` itself
/// when it is no longer, or when `max` is 0. The cut is at the last white space of the
/// second half of those characters when there is one, else after the last whole grapheme
/// that fits; the trailing white space, commas and semicolons before the ellipsis go.
pub fn trim_words(s: &str, max: usize) -> String {
    let Some((end, _)) = s.char_indices().nth(max).filter(|_| max > 0) else {
        return s.to_string();
    };
    let cut = &s[..end];
    let half = cut.char_indices().nth(max / 2).map_or(0, |(i, _)| i);
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > half => &cut[..i],
        _ => {
            // The grapheme that straddles `end` goes whole.
            let last = s
                .grapheme_indices(true)
                .take_while(|(i, _)| *i < end)
                .last();
            match last {
                Some((i, g)) if i + g.len() > end => &cut[..i],
                _ => cut,
            }
        }
    };
    format!(
        "{}…",
        cut.trim_end_matches(|c: char| c.is_whitespace() || c == ',' || c == ';')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_on_words() {
        assert_eq!(trim_words("one two three four", 9), "one two…");
        assert_eq!(trim_words("short", 9), "short");
        assert_eq!(trim_words("short", 0), "short");
        assert_eq!(trim_words("exactly", 7), "exactly");
        assert_eq!(trim_words("one, two three", 6), "one…");
    }

    #[test]
    fn a_cut_without_a_space_keeps_graphemes_whole() {
        assert_eq!(trim_words("abcdefghij", 4), "abcd…");
        // "e" and a combining acute accent: one grapheme, two characters.
        let accented = "e\u{301}".repeat(5);
        assert_eq!(trim_words(&accented, 3), "e\u{301}…");
        // A family emoji: five characters joined into one grapheme.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let s = format!("ab{family}{family}");
        assert_eq!(trim_words(&s, 4), "ab…");
        assert_eq!(trim_words(&s, 7), format!("ab{family}…"));
        // CJK: one character a grapheme, cut at the limit.
        assert_eq!(trim_words("漢字漢字漢字", 3), "漢字漢…");
    }

    #[test]
    fn the_result_is_never_longer_than_the_limit_and_its_ellipsis() {
        for s in [
            "a b c d e f g",
            "aaaaaaaaaaaaaaa",
            "x\u{301}\u{301}\u{301}y",
            "é é é é é",
        ] {
            for max in 1..12 {
                let cut = trim_words(s, max);
                assert!(cut.chars().count() <= max + 1, "{s:?} {max}: {cut:?}");
            }
        }
    }
}
