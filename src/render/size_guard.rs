//! The size guard: an email's HTML kept under Gmail's clipping limit (and its text part under
//! as much), by shorter texts first, then by leaving out the lowest-ranked papers (the email
//! says how many).
//!
//! Its promise holds for any papers: every email it lets through is within both limits. The
//! source's caps (`source::limits`) keep one paper at every cap to a few KB, so real papers
//! stay in an email beside a hostile one; should one paper still not fit (an operator's
//! `max_authors` of thousands, say), it is left out too, and an email that does not fit even
//! with no paper in it (an operator's template) is an error, not a clipped email.

use super::error::RenderError;
use super::rendered::Rendered;
use super::view::Email;
use crate::domain::Subscriber;

/// The most HTML an email may hold: Gmail clips messages past 102 KB, and the part grows a
/// little in quoted-printable on the wire, so the budget keeps a margin.
pub const MAX_HTML_BYTES: usize = 90 * 1024;

/// The most the text part may hold. With the HTML's budget, a whole message is at most about
/// 3 × 180 KiB on the wire (quoted-printable at worst triples a byte) plus its headers.
pub const MAX_TEXT_BYTES: usize = 90 * 1024;

/// The texts' lengths tried, in turn, when the email is too big with `text_max_chars`.
const SHORTER_TEXTS: [usize; 2] = [300, 150];

fn fits(r: &Rendered) -> bool {
    r.html.len() <= MAX_HTML_BYTES && r.text.len() <= MAX_TEXT_BYTES
}

/// `email` rendered by `render` (with the length its texts are cut to: 0, whole) within
/// [`MAX_HTML_BYTES`] and [`MAX_TEXT_BYTES`]: with texts cut to `max_chars`, then shorter,
/// then with fewer papers (left out of `email`), down to one paper, and to none if one does
/// not fit; an error if even that is too big.
pub(super) fn fit(
    subscriber: &Subscriber,
    email: &mut Email<'_>,
    max_chars: usize,
    mut render: impl FnMut(&Email<'_>, usize) -> Result<Rendered, RenderError>,
) -> Result<Rendered, RenderError> {
    let mut chars = max_chars;
    let mut rendered = render(email, chars)?;
    if fits(&rendered) {
        return Ok(rendered);
    }
    // Too big for Gmail (it clips at 102 KB): shorter texts first, then fewer papers.
    for limit in SHORTER_TEXTS {
        chars = if max_chars == 0 {
            limit
        } else {
            limit.min(max_chars)
        };
        rendered = render(email, chars)?;
        if fits(&rendered) {
            return Ok(rendered);
        }
    }
    while !fits(&rendered) && email.paper_count > 0 {
        for _ in 0..papers_to_drop(&rendered, email.paper_count) {
            drop_lowest(email);
        }
        rendered = render(email, chars)?;
    }
    if fits(&rendered) {
        Ok(rendered)
    } else {
        Err(RenderError::TooBig {
            subscriber: subscriber.email.to_string(),
            html: rendered.html.len(),
            text: rendered.text.len(),
        })
    }
}

/// A share of the `count` papers proportional to the excess of the part furthest over its
/// limit: at least one, and all but one while there are several.
fn papers_to_drop(r: &Rendered, count: usize) -> usize {
    let share = |len: usize, max: usize| match len.checked_sub(max) {
        Some(excess) if excess > 0 => excess / (len / count).max(1) + 1,
        _ => 0,
    };
    let most = if count > 1 { count - 1 } else { 1 };
    share(r.html.len(), MAX_HTML_BYTES)
        .max(share(r.text.len(), MAX_TEXT_BYTES))
        .clamp(1, most)
}

/// Leaves out the lowest-ranked paper (fewest upvotes; the last such one shown).
fn drop_lowest(email: &mut Email<'_>) {
    let mut lowest: Option<(usize, usize, i64)> = None;
    for (gi, g) in email.groups.iter().enumerate() {
        for (pi, p) in g.papers.iter().enumerate() {
            if lowest.is_none_or(|(_, _, u)| p.upvotes <= u) {
                lowest = Some((gi, pi, p.upvotes));
            }
        }
    }
    if let Some((gi, pi, _)) = lowest {
        email.leave_out(gi, pi);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::NaiveDate;

    use super::*;
    use crate::config::Config;
    use crate::digest::{Digest, DigestGroup};
    use crate::domain::{Paper, papers_by_id};
    use crate::render::Renderer;

    fn config(digest: &str) -> Config {
        Config::load_str(
            &format!(
                "[smtp]\nfrom = \"P <p@paperboy.test>\"\n[digest]\n{digest}\n\
                 [topics.agents]\nkeywords = [\"agent\"]\n\
                 [[subscribers]]\nemail = \"a@example.org\"\ntopics = [\"agents\"]\n"
            ),
            "test",
        )
        .unwrap()
    }

    /// The recorded day's papers, and first a paper whose authors alone take 400 KB.
    fn papers() -> Vec<Paper> {
        let mut papers = crate::source::recorded_papers();
        let mut crowd = papers[0].clone();
        crowd.id = crate::domain::ArxivId::parse("2612.00001").unwrap();
        crowd.authors = (0..4000).map(|i| format!("{i:0>100}")).collect();
        crowd.upvotes = i64::MAX;
        papers.insert(0, crowd);
        papers
    }

    fn render(cfg: &Config, papers: &[Paper]) -> Result<Rendered, RenderError> {
        let digest = Digest {
            groups: vec![DigestGroup {
                topic: "agents".into(),
                papers: papers.iter().map(|p| p.id.clone()).collect(),
            }],
        };
        let map: HashMap<_, _> = papers_by_id(papers);
        Renderer::new(&cfg.digest, &cfg.topics).unwrap().render(
            &cfg.subscribers[0],
            NaiveDate::from_ymd_opt(2026, 4, 10).unwrap(),
            &digest,
            &map,
            "u",
        )
    }

    #[test]
    fn a_paper_too_big_on_its_own_is_left_out_too() {
        // Every author shown: the first paper alone is over the limit.
        let cfg = config("max_authors = 100000");
        let papers = papers();
        let r = render(&cfg, &papers).unwrap();
        assert!(r.html.len() <= MAX_HTML_BYTES, "{} bytes", r.html.len());
        assert!(r.text.len() <= MAX_TEXT_BYTES, "{} bytes", r.text.len());
        let left_out = format!("and {} more papers, left out", papers.len());
        assert!(r.html.contains(&left_out), "{left_out}");
        // With the authors shortened, it is a paper like another.
        let r = render(&config(""), &papers).unwrap();
        assert!(r.html.contains("huggingface.co/papers/2612.00001"));
        assert!(!r.html.contains("left out"));
    }

    #[test]
    fn the_text_part_is_kept_under_its_limit_too() {
        // A text template that writes each text five times: the HTML alone would fit.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("digest.txt.hbs"),
            "{{#each groups}}{{#each papers}}{{#> card}}{{title}}: {{text}} {{text}} {{text}} \
             {{text}} {{text}}\n{{/card}}{{/each}}{{/each}}{{more_count}} left out\n",
        )
        .unwrap();
        let cfg = config(&format!(
            "templates_dir = {:?}",
            dir.path().display().to_string()
        ));
        let papers = crate::source::recorded_papers();
        let whole = render(&config(""), &papers).unwrap();
        assert!(whole.html.len() <= MAX_HTML_BYTES && !whole.html.contains("left out"));
        let r = render(&cfg, &papers).unwrap();
        assert!(r.text.len() <= MAX_TEXT_BYTES, "{} bytes", r.text.len());
        assert!(
            r.text.ends_with("\n0 left out\n"),
            "texts cut shorter, every paper kept"
        );
    }

    #[test]
    fn an_email_too_big_with_no_paper_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let filler = "x".repeat(MAX_HTML_BYTES);
        std::fs::write(
            dir.path().join("digest.html.hbs"),
            format!("<p>{filler}</p>{{{{#each groups}}}}{{{{topic}}}}{{{{/each}}}}"),
        )
        .unwrap();
        let cfg = config(&format!(
            "templates_dir = {:?}",
            dir.path().display().to_string()
        ));
        let err = render(&cfg, &papers()).unwrap_err();
        assert!(
            matches!(err, RenderError::TooBig { .. }) && err.to_string().contains("a@example.org"),
            "{err}"
        );
    }
}
