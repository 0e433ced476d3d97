//! Marking a topic's words in a paper's title and text ("why this paper"), found by the
//! topics' own rule: their words ([`topics::words`]) and phrase match ([`topics::is_phrase`]).

use serde::Serialize;

use crate::topics::{self, Field, ScoringTerm};

/// A piece of text, marked when it is one of the topic's words.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(super) struct Part {
    pub text: String,
    pub hit: bool,
}

/// Splits `text` into pieces, marking each occurrence of the terms that may match in `field`
/// (whole words, as the topics match them). The pieces are escaped by the template.
pub(super) fn highlight(text: &str, terms: &[ScoringTerm], field: Field) -> Vec<Part> {
    // Words with where they start, and lowercased as the topics compare them.
    let spans: Vec<(usize, &str)> = topics::words(text).collect();
    let words: Vec<String> = spans.iter().map(|(_, w)| w.to_lowercase()).collect();
    let mut marked = vec![false; words.len()];
    // The gap before word i joins it to word i - 1 inside one phrase match.
    let mut joined = vec![false; words.len()];
    for (f, phrase, prefix) in terms {
        let n = phrase.len();
        if f.is_some_and(|f| f != field) || n == 0 || n > words.len() {
            continue;
        }
        for (i, window) in words.windows(n).enumerate() {
            if topics::is_phrase(window, phrase, *prefix) {
                marked[i..i + n].fill(true);
                joined[i + 1..i + n].fill(true);
            }
        }
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut push = |t: &str, hit: bool| {
        if t.is_empty() {
            return;
        }
        match parts.last_mut() {
            Some(last) if last.hit == hit => last.text.push_str(t),
            _ => parts.push(Part {
                text: t.to_string(),
                hit,
            }),
        }
    };
    let mut at = 0;
    for (i, (start, word)) in spans.iter().enumerate() {
        let end = start + word.len();
        push(&text[at..*start], joined[i]);
        push(&text[*start..end], marked[i]);
        at = end;
    }
    push(&text[at..], false);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_words_are_marked_whole_and_only_in_their_field() {
        let terms = vec![
            (
                None,
                vec!["video".to_string(), "diffusion".to_string()],
                false,
            ),
            (None, vec!["agent".to_string()], true),
            (Some(Field::Abstract), vec!["model".to_string()], false),
        ];
        let parts = highlight(
            "Video-Diffusion <b>for</b> Agentic world models",
            &terms,
            Field::Title,
        );
        let hits: Vec<&str> = parts
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, ["Video-Diffusion", "Agentic"]);
        let all: String = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            all, "Video-Diffusion <b>for</b> Agentic world models",
            "nothing lost"
        );
        // Two terms side by side stay two marks; a phrase is one.
        let parts = highlight("video, diffusion", &terms[1..], Field::Title);
        assert!(parts.iter().all(|p| !p.hit));
        let two = vec![
            (None, vec!["video".to_string()], false),
            (None, vec!["diffusion".to_string()], false),
        ];
        let parts = highlight("video, diffusion", &two, Field::Title);
        let hits: Vec<&str> = parts
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, ["video", "diffusion"]);
        let parts = highlight("a model, not models", &terms, Field::Abstract);
        let hits: Vec<&str> = parts
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, ["model"]);
    }

    /// What the topics match is what is marked: a paper's title holds a topic's phrase just
    /// when highlighting marks it there.
    #[test]
    fn what_is_marked_is_what_the_topics_match() {
        let titles = [
            "Text-to-Image Diffusion, ÉVALUATION des modèles",
            "Quantized LLMs: quantization-aware training",
            "RLHF for the world; RL agents",
        ];
        let phrases = [
            ("text to image", false),
            ("évaluation", false),
            ("quantiz", true),
            ("llm", false),
            ("rl", false),
            ("the world", false),
        ];
        for title in titles {
            let paper = crate::domain::Paper {
                title: title.to_string(),
                ..crate::source::recorded_papers().remove(0)
            };
            let text = topics::PaperText::new(&paper);
            for (phrase, prefix) in phrases {
                let words = topics::tokenize(phrase);
                let term = (Some(Field::Title), words.clone(), prefix);
                let marked = highlight(title, &[term], Field::Title)
                    .iter()
                    .any(|p| p.hit);
                let matched = text.contains_words(Some(Field::Title), &words, prefix);
                assert_eq!(marked, matched, "{phrase:?} in {title:?}");
            }
        }
    }
}
