//! Relevance: a BM25 score of a topic's words over a paper's title, AI keywords and abstract
//! (weighted 3, 2, 1), against the statistics of the day's list, plus a share for upvotes.

use super::Topic;
use super::query::Query;
use super::text::{Field, PaperText};
use crate::domain::Paper;

const K1: f64 = 1.2;
const B: f64 = 0.75;
const FIELDS: [(Field, f64); 3] = [
    (Field::Title, 3.0),
    (Field::Keyword, 2.0),
    (Field::Abstract, 1.0),
];
/// Weight of ln(1 + upvotes) beside the text score.
const UPVOTE_WEIGHT: f64 = 0.5;

/// A phrase a topic scores with: (its field if scoped, its words, whether the last is a prefix).
pub type ScoringTerm = (Option<Field>, Vec<String>, bool);

/// The phrases a topic scores with: its keywords and the positive terms of its query (words
/// under NOT only select, they do not score).
fn scoring_terms(topic: &Topic) -> Vec<ScoringTerm> {
    let mut out: Vec<ScoringTerm> = topic
        .keywords
        .iter()
        .map(|k| (None, k.words().to_vec(), false))
        .collect();
    fn walk(q: &Query, out: &mut Vec<ScoringTerm>) {
        match q {
            Query::Term {
                field,
                words,
                prefix,
            } => out.push((*field, words.clone(), *prefix)),
            Query::And(qs) | Query::Or(qs) => qs.iter().for_each(|q| walk(q, out)),
            Query::Not(_) | Query::HasRepo(_) | Query::Number { .. } => {}
        }
    }
    if let Some(q) = &topic.query {
        walk(q, &mut out);
    }
    out
}

/// Scores the papers of one day for one topic.
pub struct Scorer {
    terms: Vec<ScoringTerm>,
    /// ln((N - df + 0.5) / (df + 0.5) + 1) per term.
    idf: Vec<f64>,
    avg_len: [f64; 3],
}

impl Scorer {
    /// The phrases a topic scores with: (field, words, prefix).
    pub fn terms_of(topic: &Topic) -> Vec<ScoringTerm> {
        scoring_terms(topic)
    }

    pub fn new(topic: &Topic, texts: &[PaperText]) -> Self {
        let terms = scoring_terms(topic);
        let n = texts.len().max(1) as f64;
        let idf = terms
            .iter()
            .map(|(f, w, p)| {
                let df = texts.iter().filter(|t| t.contains_words(*f, w, *p)).count() as f64;
                ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
            })
            .collect();
        let mut avg_len = [0.0; 3];
        for (i, (f, _)) in FIELDS.iter().enumerate() {
            avg_len[i] = texts.iter().map(|t| t.len(*f) as f64).sum::<f64>() / n;
        }
        Self {
            terms,
            idf,
            avg_len,
        }
    }

    pub fn score(&self, paper: &Paper, text: &PaperText) -> f64 {
        let mut s = 0.0;
        for ((field, words, prefix), idf) in self.terms.iter().zip(&self.idf) {
            for (i, (f, weight)) in FIELDS.iter().enumerate() {
                if field.is_some_and(|want| want != *f) {
                    continue;
                }
                let tf = text.count(*f, words, *prefix) as f64;
                if tf == 0.0 {
                    continue;
                }
                let len = text.len(*f) as f64;
                let norm = 1.0 - B + B * len / self.avg_len[i].max(1.0);
                s += weight * idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
        }
        s + UPVOTE_WEIGHT * (1.0 + paper.upvotes.max(0) as f64).ln()
    }
}
