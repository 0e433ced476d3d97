//! Every recorded Daily Papers response (two years of schema changes) parses, and no item is
//! lost, mangled or cut on the way; every arXiv id in them and in the recorded arXiv feeds is
//! one `ArxivId` takes.

use std::path::{Path, PathBuf};

use paperboy::domain::{ArxivId, normalize_whitespace};
use paperboy::source::parse_daily_papers;
use regex::Regex;
use serde_json::Value;

mod support;

use support::skip_or_fail_in_ci;

/// The files of `../shared/data/NAME` ending in `ext`, sorted; `None` (after saying so, or
/// failing in CI) when the folder is absent.
fn data_files(name: &str, ext: &str) -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    if !dir.is_dir() {
        skip_or_fail_in_ci(
            &format!("the recorded {name} check"),
            &format!("{} is absent", dir.display()),
        );
        return None;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .{ext} in {}", dir.display());
    Some(files)
}

#[test]
fn every_recorded_day_parses_completely() {
    let Some(files) = data_files("hf-daily-papers", "json") else {
        return;
    };
    let (mut papers, mut with_summary, mut with_repo) = (0, 0, 0);
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let parsed = parse_daily_papers(&body).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let raw: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.len(), raw.len(), "{}: every item kept", f.display());
        for (p, r) in parsed.iter().zip(&raw) {
            let rp = &r["paper"];
            let id = rp["id"].as_str().unwrap();
            assert_eq!(p.id.as_str(), id);
            assert_eq!(ArxivId::parse(id).as_ref(), Ok(&p.id), "{}", f.display());
            // No field of a real paper is cut by the caps (source::limits).
            let raw = |v: &Value| normalize_whitespace(v.as_str().unwrap_or(""));
            assert_eq!(p.title, raw(&rp["title"]), "{id}: title");
            assert_eq!(p.abstract_text, raw(&rp["summary"]), "{id}: abstract");
            if let Some(s) = &p.ai_summary {
                assert_eq!(*s, raw(&rp["ai_summary"]), "{id}: ai_summary");
            }
            let names: Vec<String> = (rp["authors"].as_array().unwrap().iter())
                .filter(|a| a["hidden"] != true)
                .map(|a| normalize_whitespace(a["name"].as_str().unwrap_or("")))
                .filter(|n| !n.is_empty())
                .collect();
            assert_eq!(p.authors, names, "{id}: authors");
            let keywords: Vec<String> = (rp["ai_keywords"].as_array().into_iter().flatten())
                .map(raw)
                .filter(|k| !k.is_empty())
                .collect();
            assert_eq!(p.ai_keywords, keywords, "{id}: keywords");
            let org = [&rp["organization"], &r["organization"]]
                .into_iter()
                .find(|o| o.is_object())
                .and_then(|o| {
                    [raw(&o["fullname"]), raw(&o["name"])]
                        .into_iter()
                        .find(|n| !n.is_empty())
                });
            assert_eq!(p.organization, org, "{id}: organization");
            for (kept, raw) in [
                (&p.github_repo, &rp["githubRepo"]),
                (&p.project_page, &rp["projectPage"]),
                (&p.thumbnail, &r["thumbnail"]),
            ] {
                if let Some(raw) = raw.as_str().filter(|u| u.starts_with("http")) {
                    assert!(kept.is_some(), "{id}: {raw} is kept");
                }
            }
            assert_eq!(p.upvotes, rp["upvotes"].as_i64().unwrap(), "paper.upvotes");
            assert_eq!(p.num_comments, r["numComments"].as_i64().unwrap_or(0));
            assert!(!p.title.is_empty() && !p.title.contains('\n') && !p.title.contains("  "));
            assert_eq!(
                p.ai_summary.is_some(),
                rp.get("ai_summary").is_some_and(|s| s != "")
            );
            with_summary += p.ai_summary.is_some() as usize;
            with_repo += p.github_repo.is_some() as usize;
        }
        papers += parsed.len();
    }
    eprintln!(
        "{} days, {papers} papers, {with_summary} with an AI summary, {with_repo} with a GitHub repo",
        files.len()
    );
    assert!(
        with_summary > 0 && with_repo > 0,
        "optional fields are read"
    );
}

/// The ids of real arXiv feeds (RSS and API answers, and another paper feed that links by
/// arXiv id), and the ids cited in their text: every one is an `ArxivId`.
#[test]
fn every_id_of_the_recorded_arxiv_feeds_parses() {
    let Some(files) = data_files("arxiv", "xml") else {
        return;
    };
    // RSS guids, API entry ids, the other feed's links, and "arXiv:ID" in any text.
    let id = r"((?:[a-z-]+(?:\.[A-Za-z-]+)?/)?[0-9]{4}\.?[0-9]{3,5}(?:v[0-9]+)?)";
    let re = Regex::new(&format!(
        r"oai:arXiv\.org:{id}<|arxiv\.org/abs/{id}<|tldr\.takara\.ai/p/{id}<|arXiv:{id}\b"
    ))
    .unwrap();
    let (mut ids, mut old_style) = (0, 0);
    for f in &files {
        let xml = std::fs::read_to_string(f).unwrap();
        let found: Vec<&str> = re
            .captures_iter(&xml)
            .map(|c| c.iter().skip(1).flatten().next().unwrap().as_str())
            .collect();
        // The feeds' entries are named the way the pattern reads them.
        let entries = xml.matches("<item>").count() + xml.matches("<entry>").count();
        assert!(
            found.len() >= entries,
            "{}: {} ids",
            f.display(),
            found.len()
        );
        for raw in found {
            ArxivId::parse(raw).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            ids += 1;
            old_style += raw.contains('/') as usize;
        }
    }
    eprintln!("{} files, {ids} ids ({old_style} old-style)", files.len());
    assert!(ids > 0 && old_style > 0);
}
