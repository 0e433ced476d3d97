//! Topics and subscribers' own filters built from their settings as written, every problem
//! named by its key (`topics.NAME.FIELD`, `subscribers[i].exclude`).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{Phrase, Query, Sort, SubscriberFilter, Topic};

/// One `[topics.NAME]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub organizations: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub min_upvotes: i64,
    #[serde(default = "default_max_papers")]
    pub max_papers: usize,
    #[serde(default)]
    pub sort: String,
}

fn default_max_papers() -> usize {
    10
}

/// The topics of the `[topics]` tables, by name. Each problem found is pushed to `problems`;
/// a topic with problems is still in the map (with what could be read), so that subscribers
/// naming it are not also told it is unknown.
pub fn build_topics(
    settings: BTreeMap<String, TopicSettings>,
    problems: &mut Vec<String>,
) -> HashMap<String, Topic> {
    settings
        .into_iter()
        .map(|(name, t)| (name.clone(), build_topic(name, t, problems)))
        .collect()
}

fn build_topic(name: String, t: TopicSettings, problems: &mut Vec<String>) -> Topic {
    let key = format!("topics.{name}");
    // Parsed as written, so that the column counts in the operator's own text.
    let query = match t.query.trim() {
        "" => None,
        _ => match Query::parse(&t.query) {
            Ok(q) => Some(q),
            Err(e) => {
                problems.push(format!("{key}.query: {e}, in: {}", t.query));
                None
            }
        },
    };
    if t.keywords.is_empty()
        && t.query.trim().is_empty()
        && t.authors.is_empty()
        && t.organizations.is_empty()
    {
        problems.push(format!(
            "{key}.keywords: must list at least one keyword (or give a query, authors or \
             organizations)"
        ));
    }
    let mut phrases = |list: &[String], field: &str| -> Vec<Phrase> {
        list.iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let p = Phrase::parse(k);
                if p.is_none() {
                    problems.push(format!("{key}.{field}[{i}]: {k:?} holds no word to match"));
                }
                p
            })
            .collect()
    };
    let keywords = phrases(&t.keywords, "keywords");
    let exclude = phrases(&t.exclude, "exclude");
    let authors = phrases(&t.authors, "authors");
    let organizations = phrases(&t.organizations, "organizations");
    if t.max_papers == 0 {
        problems.push(format!("{key}.max_papers: must be at least 1"));
    }
    let sort = match t.sort.trim() {
        "" | "upvotes" => Sort::Upvotes,
        "relevance" => Sort::Relevance,
        other => {
            problems.push(format!(
                "{key}.sort: {other:?} is neither \"upvotes\" nor \"relevance\""
            ));
            Sort::Upvotes
        }
    };
    Topic {
        name,
        keywords,
        query,
        authors,
        organizations,
        exclude,
        min_upvotes: t.min_upvotes,
        max_papers: t.max_papers,
        sort,
    }
}

/// A subscriber's own filter from its settings (`exclude` a query, empty for none); `key`
/// names the subscriber in problems (`subscribers[i]`).
pub fn build_filter(
    key: &str,
    exclude: &str,
    min_upvotes: i64,
    max_papers: Option<usize>,
    problems: &mut Vec<String>,
) -> SubscriberFilter {
    SubscriberFilter {
        exclude: match exclude.trim() {
            "" => None,
            _ => Query::parse(exclude)
                .map_err(|e| problems.push(format!("{key}.exclude: {e}, in: {exclude}")))
                .ok(),
        },
        min_upvotes,
        max_papers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(toml: &str) -> (HashMap<String, Topic>, Vec<String>) {
        let settings: BTreeMap<String, TopicSettings> = toml::from_str(toml).unwrap();
        let mut problems = Vec::new();
        (build_topics(settings, &mut problems), problems)
    }

    #[test]
    fn a_topic_is_built_from_its_table_and_its_problems_are_named_by_key() {
        let (topics, problems) =
            topic("[ml]\nkeywords = [\"deep learning\"]\nsort = \"relevance\"\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(topics["ml"].keywords.len(), 1);
        assert_eq!(topics["ml"].sort, Sort::Relevance);
        assert_eq!(topics["ml"].max_papers, 10);

        let (topics, problems) =
            topic("[ml]\nkeywords = [\"ok\", \"--\"]\nmax_papers = 0\nsort = \"new\"\n");
        assert_eq!(
            problems,
            [
                "topics.ml.keywords[1]: \"--\" holds no word to match",
                "topics.ml.max_papers: must be at least 1",
                "topics.ml.sort: \"new\" is neither \"upvotes\" nor \"relevance\"",
            ]
        );
        assert!(
            topics.contains_key("ml"),
            "kept, so that subscribers may name it"
        );
    }

    #[test]
    fn a_filter_names_its_subscriber_in_problems() {
        let mut problems = Vec::new();
        let f = build_filter("subscribers[3]", "", 5, Some(2), &mut problems);
        assert_eq!(f.min_upvotes, 5);
        assert!(f.exclude.is_none() && problems.is_empty());
        build_filter("subscribers[3]", "a AND", 0, None, &mut problems);
        assert!(
            problems[0].starts_with("subscribers[3].exclude: ")
                && problems[0].ends_with(", in: a AND"),
            "{problems:?}"
        );
    }
}
