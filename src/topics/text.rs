//! Tokenising text into lowercase words, and finding phrases as runs of whole words.

use crate::domain::Paper;

/// Splits text into lowercase words: maximal runs of Unicode letters and digits. Everything else
/// (spaces, hyphens, punctuation) separates words, in keywords and in papers alike, so
/// "text-to-image" and "text to image" are the same phrase.
pub fn tokenize(text: &str) -> Vec<String> {
    words(text).map(|(_, w)| w.to_lowercase()).collect()
}

/// The words [`tokenize`] makes of `text`, as written (not lowercased), each with the byte
/// offset where it starts: for showing where a phrase matched.
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        // A piece of `text`: its offset is how far its first byte is from `text`'s.
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

/// A keyword or phrase as its words. Built only from non-empty input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase(Vec<String>);

impl Phrase {
    /// `None` when the text holds no word at all (e.g. "--").
    pub fn parse(text: &str) -> Option<Self> {
        let words = tokenize(text);
        (!words.is_empty()).then_some(Self(words))
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }
}

/// A part of a paper that a query can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Abstract,
    Keyword,
    Author,
    Org,
}

/// The searchable words of a paper, field by field, with a boundary (an empty word) between
/// values so that no phrase matches across two of them (two AI keywords, two authors).
#[derive(Debug, Clone)]
pub struct PaperText {
    title: Vec<String>,
    abstract_words: Vec<String>,
    keywords: Vec<String>,
    authors: Vec<String>,
    org: Vec<String>,
}

fn joined<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut words = Vec::new();
    for v in values {
        if !words.is_empty() {
            words.push(String::new());
        }
        words.extend(tokenize(v));
    }
    words
}

/// Whether `words` holds `phrase` as consecutive whole words; with `prefix`, its last word
/// only has to begin a word ("quantiz*").
fn holds(words: &[String], phrase: &[String], prefix: bool) -> bool {
    let n = phrase.len();
    if n == 0 || words.len() < n {
        return false;
    }
    words.windows(n).any(|w| is_phrase(w, phrase, prefix))
}

/// Whether `words` (lowercase, as [`tokenize`] makes them), as many as `phrase` has, are
/// `phrase`; with `prefix`, the last of `words` only has to begin with its last word. The
/// one rule by which a phrase matches, for finding it and for showing where it is.
pub fn is_phrase(words: &[String], phrase: &[String], prefix: bool) -> bool {
    let n = phrase.len();
    n > 0
        && words.len() == n
        && words[..n - 1] == phrase[..n - 1]
        && if prefix {
            !words[n - 1].is_empty() && words[n - 1].starts_with(phrase[n - 1].as_str())
        } else {
            words[n - 1] == phrase[n - 1]
        }
}

impl PaperText {
    pub fn new(paper: &Paper) -> Self {
        Self {
            title: tokenize(&paper.title),
            abstract_words: tokenize(&paper.abstract_text),
            keywords: joined(paper.ai_keywords.iter()),
            authors: joined(paper.authors.iter()),
            org: joined(paper.organization.iter()),
        }
    }

    fn field(&self, f: Field) -> &[String] {
        match f {
            Field::Title => &self.title,
            Field::Abstract => &self.abstract_words,
            Field::Keyword => &self.keywords,
            Field::Author => &self.authors,
            Field::Org => &self.org,
        }
    }

    /// How many words a field holds.
    pub fn len(&self, f: Field) -> usize {
        self.field(f).iter().filter(|w| !w.is_empty()).count()
    }

    /// How often a phrase occurs in a field.
    pub fn count(&self, f: Field, words: &[String], prefix: bool) -> usize {
        let w = self.field(f);
        let n = words.len();
        if n == 0 || w.len() < n {
            return 0;
        }
        w.windows(n).filter(|w| is_phrase(w, words, prefix)).count()
    }

    /// In the title, the abstract or the AI keywords.
    pub fn contains(&self, phrase: &Phrase) -> bool {
        self.contains_words(None, phrase.words(), false)
    }

    /// In one field, or (None) in the title, the abstract or the AI keywords.
    pub fn contains_words(&self, field: Option<Field>, words: &[String], prefix: bool) -> bool {
        match field {
            Some(f) => holds(self.field(f), words, prefix),
            None => [Field::Title, Field::Abstract, Field::Keyword]
                .into_iter()
                .any(|f| holds(self.field(f), words, prefix)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ArxivId;

    fn paper(title: &str, abs: &str, kw: &[&str]) -> Paper {
        Paper {
            id: ArxivId::parse("2401.00001").unwrap(),
            title: title.into(),
            abstract_text: abs.into(),
            authors: vec![],
            upvotes: 0,
            num_comments: 0,
            ai_summary: None,
            ai_keywords: kw.iter().map(|s| s.to_string()).collect(),
            github_repo: None,
            github_stars: None,
            project_page: None,
            organization: None,
            thumbnail: None,
            published_at: None,
        }
    }

    fn has(p: &Paper, k: &str) -> bool {
        PaperText::new(p).contains(&Phrase::parse(k).unwrap())
    }

    #[test]
    fn whole_words_only_and_case_insensitive() {
        let p = paper("Scaling LLMs for the world", "We study RLHF.", &[]);
        assert!(!has(&p, "LLM"), "LLM must not match LLMs");
        assert!(has(&p, "llms"));
        assert!(!has(&p, "RL"), "RL must not match world or RLHF");
        assert!(has(&p, "rlhf"));
    }

    #[test]
    fn phrases_match_across_hyphens_but_not_across_fields() {
        let p = paper("Text-to-Image diffusion", "large", &["language model"]);
        assert!(has(&p, "text to image"));
        assert!(has(&p, "text-to-image"));
        assert!(!has(&p, "large language"), "no phrase spans two fields");
        assert!(has(&p, "language model"));
    }

    #[test]
    fn words_are_found_where_they_stand() {
        let text = "Text-to-Image, ÉVAL 2: ok";
        let words: Vec<(usize, &str)> = words(text).collect();
        assert_eq!(
            words,
            [
                (0, "Text"),
                (5, "to"),
                (8, "Image"),
                (15, "ÉVAL"),
                (21, "2"),
                (24, "ok")
            ]
        );
        for (at, w) in &words {
            assert_eq!(&text[*at..at + w.len()], *w);
        }
        assert_eq!(tokenize(text), ["text", "to", "image", "éval", "2", "ok"]);
    }

    #[test]
    fn unicode_words_are_lowercased() {
        let p = paper("Évaluation des modèles", "", &[]);
        assert!(has(&p, "ÉVALUATION"));
        assert!(Phrase::parse(" -- ").is_none());
    }
}
