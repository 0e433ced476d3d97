//! Parsing the Daily Papers JSON (a bare array of items) into domain papers: each field
//! capped, each item that cannot be a paper skipped and named.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::limits;
use super::list::DayList;
use crate::domain::{ArxivId, Paper, show_id};

#[derive(Deserialize)]
struct Item {
    paper: RawPaper,
    #[serde(rename = "numComments", default)]
    num_comments: i64,
    #[serde(default)]
    thumbnail: Option<String>,
    #[serde(default)]
    organization: Option<RawOrg>,
}

#[derive(Deserialize)]
struct RawPaper {
    id: String,
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    authors: Vec<RawAuthor>,
    #[serde(default)]
    upvotes: i64,
    #[serde(rename = "publishedAt", default)]
    published_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    ai_summary: Option<String>,
    #[serde(default)]
    ai_keywords: Option<Vec<String>>,
    #[serde(rename = "githubRepo", default)]
    github_repo: Option<String>,
    #[serde(rename = "githubStars", default)]
    github_stars: Option<i64>,
    #[serde(rename = "projectPage", default)]
    project_page: Option<String>,
    #[serde(default)]
    organization: Option<RawOrg>,
}

#[derive(Deserialize)]
struct RawAuthor {
    #[serde(default)]
    name: String,
    #[serde(default)]
    hidden: bool,
}

#[derive(Deserialize)]
struct RawOrg {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fullname: Option<String>,
}

/// Enough of an item to name it when it is skipped whole.
#[derive(Deserialize)]
struct ItemId {
    paper: PaperId,
}

#[derive(Deserialize)]
struct PaperId {
    id: String,
}

/// One response's items: the papers, each with its index in the response, and the items
/// skipped.
pub(super) struct Parsed {
    /// How many items the response holds, skipped ones included.
    pub items: usize,
    pub papers: Vec<(usize, Paper)>,
    pub skipped: Vec<Skipped>,
}

/// An item left out, and why.
#[derive(Debug)]
pub(super) struct Skipped {
    pub index: usize,
    /// Its id as a message shows it (escaped, cut short), or "?" when it has none.
    pub id: String,
    pub reason: String,
}

fn non_empty(raw: Option<String>, max: usize) -> Option<String> {
    raw.map(|s| limits::text(&s, max)).filter(|s| !s.is_empty())
}

impl Item {
    /// The paper, its fields capped (see [`limits`]); or why the item is skipped.
    fn into_paper(self) -> Result<Paper, String> {
        let p = self.paper;
        let id = ArxivId::parse(&p.id)?;
        if p.authors.len() > limits::MAX_AUTHORS {
            return Err(format!(
                "it lists {} authors, more than the {} a paper may have",
                p.authors.len(),
                limits::MAX_AUTHORS
            ));
        }
        let title = limits::text(&p.title, limits::TITLE_CHARS);
        if title.is_empty() {
            return Err("its title is empty".into());
        }
        let org = p.organization.or(self.organization).and_then(|o| {
            non_empty(o.fullname, limits::ORGANIZATION_CHARS)
                .or_else(|| non_empty(o.name, limits::ORGANIZATION_CHARS))
        });
        Ok(Paper {
            id,
            title,
            abstract_text: limits::text(&p.summary, limits::ABSTRACT_CHARS),
            authors: p
                .authors
                .into_iter()
                .filter(|a| !a.hidden)
                .map(|a| limits::text(&a.name, limits::AUTHOR_NAME_CHARS))
                .filter(|n| !n.is_empty())
                .collect(),
            upvotes: p.upvotes.max(0),
            num_comments: self.num_comments.max(0),
            ai_summary: non_empty(p.ai_summary, limits::AI_SUMMARY_CHARS),
            ai_keywords: p
                .ai_keywords
                .unwrap_or_default()
                .iter()
                .map(|k| limits::text(k, limits::KEYWORD_CHARS))
                .filter(|k| !k.is_empty())
                .take(limits::KEYWORDS)
                .collect(),
            github_repo: limits::web_url(p.github_repo),
            github_stars: p.github_stars.filter(|s| *s >= 0),
            project_page: limits::web_url(p.project_page),
            organization: org,
            thumbnail: limits::web_url(self.thumbnail),
            published_at: p.published_at,
        })
    }
}

/// `serde_path_to_error`'s error as "at PATH: message", the path after `prefix`.
fn at_path(prefix: &str, e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    match (prefix, path.as_str()) {
        ("", "" | ".") => inner.to_string(),
        (_, "" | ".") => format!("at {prefix}: {inner}"),
        _ => format!(
            "at {prefix}{}{path}: {inner}",
            if prefix.is_empty() { "" } else { "." }
        ),
    }
}

/// Parses one response body. A body that is not a list of items, or an item that does not
/// have the API's shape, is an error naming the JSON path and position of the first problem;
/// an item that has the shape but cannot be a paper (not an arXiv id, no title, absurdly
/// big) is skipped, and said so in [`Parsed::skipped`].
pub(super) fn parse_items(body: &[u8]) -> Result<Parsed, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let raw: Vec<&RawValue> =
        serde_path_to_error::deserialize(&mut *de).map_err(|e| at_path("", e))?;
    // The list is the whole body: anything but white space after it is not a response.
    de.end().map_err(|e| format!("after the list: {e}"))?;
    let mut parsed = Parsed {
        items: raw.len(),
        papers: Vec::with_capacity(raw.len()),
        skipped: Vec::new(),
    };
    for (index, item) in raw.into_iter().enumerate() {
        let json = item.get();
        let skip = |reason: String| {
            let id = serde_json::from_str::<ItemId>(json)
                .map_or_else(|_| "?".to_string(), |i| show_id(i.paper.id.trim()));
            Skipped { index, id, reason }
        };
        if json.len() > limits::ITEM_BYTES {
            parsed.skipped.push(skip(format!(
                "its JSON is {} bytes, more than the {} an item may have",
                json.len(),
                limits::ITEM_BYTES
            )));
            continue;
        }
        let de = &mut serde_json::Deserializer::from_str(json);
        let item: Item =
            serde_path_to_error::deserialize(de).map_err(|e| at_path(&format!("[{index}]"), e))?;
        match item.into_paper() {
            Ok(paper) => parsed.papers.push((index, paper)),
            Err(reason) => parsed.skipped.push(skip(reason)),
        }
    }
    Ok(parsed)
}

/// Parses one response body into its papers, each once: the items skipped and the ids listed
/// twice are logged (see `DayList`). Errors as `parse_items`' are.
pub fn parse_daily_papers(body: &[u8]) -> Result<Vec<Paper>, String> {
    let mut list = DayList::default();
    list.add(parse_items(body)?, 0);
    Ok(list.into_papers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_item_parses_and_optional_fields_stay_empty() {
        let body = br#"[{"paper":{"id":"2401.00001","title":" A\n  title ","summary":"S",
            "authors":[{"name":"Ada","hidden":false},{"name":"Hidden","hidden":true}],
            "upvotes":3,"unknown":1},"numComments":2}]"#;
        let papers = parse_daily_papers(body).unwrap();
        assert_eq!(papers.len(), 1);
        let p = &papers[0];
        assert_eq!(p.title, "A title");
        assert_eq!(p.authors, vec!["Ada"]);
        assert_eq!((p.upvotes, p.num_comments), (3, 2));
        assert!(p.ai_summary.is_none() && p.github_repo.is_none());
    }

    #[test]
    fn errors_name_the_item_and_field() {
        let body = br#"[{"paper":{"id":"1","title":"t","upvotes":1}},{"paper":{"id":"2","title":"t","upvotes":"many"}}]"#;
        let err = parse_daily_papers(body).unwrap_err();
        assert!(err.contains("[1].paper.upvotes"), "{err}");
        let err = parse_daily_papers(b"[{\"paper\":{\"id\":\"1\"").unwrap_err();
        assert!(err.contains("EOF"), "{err}");
        assert!(parse_daily_papers(b"<html>").is_err());
    }

    fn item(id: &str, title: &str) -> serde_json::Value {
        serde_json::json!({"paper": {"id": id, "title": title, "summary": "S", "upvotes": 1}})
    }

    #[test]
    fn anything_but_white_space_after_the_list_is_refused() {
        let err = parse_daily_papers(b"[]\"githubRepo\"").unwrap_err();
        assert!(err.contains("after the list: trailing characters"), "{err}");
        assert!(parse_daily_papers(b"[]{}").is_err());
        assert!(parse_daily_papers(b" [] \r\n").unwrap().is_empty());
    }

    #[test]
    fn items_that_cannot_be_papers_are_skipped_and_named() {
        let mut crowd = item("2401.00004", "Crowd");
        crowd["paper"]["authors"] = (0..=limits::MAX_AUTHORS)
            .map(|i| serde_json::json!({"name": format!("A{i}")}))
            .collect();
        let mut huge = item("2401.00005", "Huge");
        huge["paper"]["summary"] = "x".repeat(limits::ITEM_BYTES).into();
        let body = serde_json::to_vec(&[
            item("2401.00001", "Kept"),
            item("../../../etc/passwd", "Traversal"),
            item("2401.00003", " \n "),
            crowd,
            huge,
            item("2401.00006", "Kept too"),
        ])
        .unwrap();
        let parsed = parse_items(&body).unwrap();
        assert_eq!(parsed.items, 6);
        let kept: Vec<(usize, &str)> = parsed
            .papers
            .iter()
            .map(|(i, p)| (*i, p.id.as_str()))
            .collect();
        assert_eq!(kept, [(0, "2401.00001"), (5, "2401.00006")]);
        let skipped: Vec<(usize, &str)> = parsed
            .skipped
            .iter()
            .map(|s| (s.index, s.id.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                (1, "\"../../../etc/passwd\""),
                (2, "\"2401.00003\""),
                (3, "\"2401.00004\""),
                (4, "\"2401.00005\"")
            ]
        );
        let reasons: Vec<&str> = parsed.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(reasons[0].contains("not an arXiv id"), "{reasons:?}");
        assert!(reasons[1].contains("title is empty"), "{reasons:?}");
        assert!(reasons[2].contains("10001 authors"), "{reasons:?}");
        assert!(
            reasons[3].contains("bytes, more than the 1048576"),
            "{reasons:?}"
        );
    }

    #[test]
    fn every_field_is_capped() {
        let long = |word: &str, n: usize| word.repeat(n);
        let mut it = item("2401.00001", &long("title ", 100_000));
        let p = &mut it["paper"];
        p["summary"] = long("abstract ", 10_000).into();
        p["ai_summary"] = long("summary ", 10_000).into();
        p["authors"] = (0..3)
            .map(|_| serde_json::json!({"name": long("N", 1000)}))
            .collect();
        p["ai_keywords"] = (0..200).map(|_| long("k", 200)).collect();
        p["organization"] = serde_json::json!({"fullname": long("Org ", 1000)});
        p["githubRepo"] = format!("https://github.com/{}", long("a", 5000)).into();
        p["projectPage"] = "https://example.org/p".into();
        it["thumbnail"] = format!("https://example.org/{}.png", long("t", 5000)).into();
        let body = serde_json::to_vec(&[it]).unwrap();
        let papers = parse_daily_papers(&body).unwrap();
        let p = &papers[0];
        let chars = |s: &str| s.chars().count();
        assert!(chars(&p.title) <= limits::TITLE_CHARS + 1 && p.title.ends_with('…'));
        assert!(chars(&p.abstract_text) <= limits::ABSTRACT_CHARS + 1);
        assert!(chars(p.ai_summary.as_deref().unwrap()) <= limits::AI_SUMMARY_CHARS + 1);
        assert_eq!(p.authors.len(), 3, "every author is kept");
        assert!(
            p.authors
                .iter()
                .all(|a| chars(a) == limits::AUTHOR_NAME_CHARS + 1)
        );
        assert_eq!(p.ai_keywords.len(), limits::KEYWORDS);
        assert!(
            p.ai_keywords
                .iter()
                .all(|k| chars(k) == limits::KEYWORD_CHARS + 1)
        );
        assert!(chars(p.organization.as_deref().unwrap()) <= limits::ORGANIZATION_CHARS + 1);
        assert_eq!(p.github_repo, None, "a URL too long is dropped");
        assert_eq!(p.thumbnail, None);
        assert_eq!(p.project_page.as_deref(), Some("https://example.org/p"));
    }
}
