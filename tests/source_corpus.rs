//! Every recorded Daily Papers response (two years of schema changes) parses, and no item is
//! lost or mangled on the way.

use std::path::Path;

use paperboy::source::parse_daily_papers;
use serde_json::Value;

mod support;

use support::skip_or_fail_in_ci;

#[test]
fn every_recorded_day_parses_completely() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hf-daily-papers");
    if !dir.is_dir() {
        skip_or_fail_in_ci(
            "the recorded corpus check",
            &format!("{} is absent", dir.display()),
        );
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .json in {}", dir.display());
    let (mut papers, mut with_summary, mut with_repo) = (0, 0, 0);
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let parsed = parse_daily_papers(&body).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let raw: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.len(), raw.len(), "{}: every item kept", f.display());
        for (p, r) in parsed.iter().zip(&raw) {
            let rp = &r["paper"];
            assert_eq!(p.id.as_str(), rp["id"].as_str().unwrap());
            assert_eq!(p.upvotes, rp["upvotes"].as_i64().unwrap(), "paper.upvotes");
            assert_eq!(p.num_comments, r["numComments"].as_i64().unwrap_or(0));
            assert!(!p.title.is_empty() && !p.title.contains('\n') && !p.title.contains("  "));
            assert_eq!(
                p.ai_summary.is_some(),
                rp.get("ai_summary").is_some_and(|s| s != "")
            );
            let visible = rp["authors"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| {
                    a["hidden"] != true && a["name"].as_str().is_some_and(|n| !n.trim().is_empty())
                })
                .count();
            assert_eq!(p.authors.len(), visible, "{} {}", f.display(), p.id);
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
