//! Tokenising text into lowercase words, and finding phrases as runs of whole words.

use crate::domain::Paper;

/// Splits text into lowercase words: maximal runs of Unicode letters and digits. Everything else
/// (spaces, hyphens, punctuation) separates words, in keywords and in papers alike, so
/// "text-to-image" and "text to image" are the same phrase.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
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

/// The searchable words of a paper: title, abstract and each AI keyword, with a boundary
/// between fields so that no phrase matches across two of them.
#[derive(Debug, Clone)]
pub struct PaperText {
    words: Vec<String>,
}

impl PaperText {
    pub fn new(paper: &Paper) -> Self {
        let mut words = tokenize(&paper.title);
        words.push(String::new());
        words.extend(tokenize(&paper.abstract_text));
        for k in &paper.ai_keywords {
            words.push(String::new());
            words.extend(tokenize(k));
        }
        Self { words }
    }

    pub fn contains(&self, phrase: &Phrase) -> bool {
        let p = phrase.words();
        self.words.windows(p.len()).any(|w| w == p)
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
    fn unicode_words_are_lowercased() {
        let p = paper("Évaluation des modèles", "", &[]);
        assert!(has(&p, "ÉVALUATION"));
        assert!(Phrase::parse(" -- ").is_none());
    }
}
