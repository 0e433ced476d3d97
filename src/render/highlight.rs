//! Marking a topic's words in a paper's title and text ("why this paper").

use serde::Serialize;

use crate::topics::{Field, ScoringTerm};

/// A piece of text, marked when it is one of the topic's words.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(super) struct Part {
    pub text: String,
    pub hit: bool,
}

/// Splits `text` into pieces, marking each occurrence of the terms that may match in `field`
/// (whole words, split as the matcher splits them: letters and digits). The pieces are
/// escaped by the template.
pub(super) fn highlight(text: &str, terms: &[ScoringTerm], field: Field) -> Vec<Part> {
    // Words with their byte spans.
    let mut words: Vec<(usize, usize, String)> = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i, text[s..i].to_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    let mut marked = vec![false; words.len()];
    // The gap before word i joins it to word i - 1 inside one phrase match.
    let mut joined = vec![false; words.len()];
    for (f, phrase, prefix) in terms {
        if f.is_some_and(|f| f != field) || phrase.is_empty() || phrase.len() > words.len() {
            continue;
        }
        let n = phrase.len();
        for i in 0..=words.len() - n {
            let ok = (0..n).all(|k| {
                let w = &words[i + k].2;
                if k == n - 1 && *prefix {
                    w.starts_with(phrase[k].as_str())
                } else {
                    *w == phrase[k]
                }
            });
            if ok {
                marked[i..i + n].iter_mut().for_each(|m| *m = true);
                joined[i + 1..i + n].iter_mut().for_each(|j| *j = true);
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
    for (i, (s, e, _)) in words.iter().enumerate() {
        push(&text[at..*s], joined[i]);
        push(&text[*s..*e], marked[i]);
        at = *e;
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
}
