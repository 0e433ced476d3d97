//! Cards rendered once and reused: an email rendered by a Renderer that has rendered others
//! before is the email a fresh Renderer renders, whatever the topics, papers, texts' lengths
//! and templates; and templates without a card block (an operator's copy of the templates of
//! earlier versions, in tests/fixtures/templates-without-cards) render as the built-in ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use paperboy::config::Config;
use paperboy::digest::{Digest, DigestGroup};
use paperboy::domain::{ArxivId, Paper, Subscriber};
use paperboy::mail::{html_quoted_printable, text_quoted_printable};
use paperboy::render::{MAX_HTML_BYTES, RenderError, Renderer};
use paperboy::source::parse_daily_papers;

/// Its title holds "Agent" and "Reasoning".
const SHARED: &str = "2604.07966";

fn config(digest: &str) -> Config {
    Config::load_str(
        &format!(
            "[smtp]\nfrom = \"Paperboy <digest@paperboy.test>\"\n\
             [digest]\n{digest}\n\
             [topics.agents]\nkeywords = [\"agent\", \"agents\"]\n\
             [topics.reasoning]\nkeywords = [\"reasoning\"]\n\
             [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\"\ntopics = [\"agents\"]\n\
             [[subscribers]]\nemail = \"bob@example.org\"\ntopics = [\"reasoning\"]\n"
        ),
        "render_cards",
    )
    .unwrap()
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn day(name: &str) -> Vec<Paper> {
    parse_daily_papers(&std::fs::read(fixture_dir().join("hf").join(name)).unwrap()).unwrap()
}

/// Papers by id, as the delivery pass keeps them.
type Papers = HashMap<ArxivId, Arc<Paper>>;

fn by_id(papers: &[Paper]) -> Papers {
    (papers.iter())
        .map(|p| (p.id.clone(), Arc::new(p.clone())))
        .collect()
}

fn digest(groups: &[(&str, Vec<&str>)]) -> Digest {
    Digest {
        groups: groups
            .iter()
            .map(|(topic, ids)| DigestGroup {
                topic: topic.to_string(),
                papers: ids.iter().map(|id| ArxivId::parse(id).unwrap()).collect(),
            })
            .collect(),
    }
}

fn ids(papers: &[Paper]) -> Vec<&str> {
    papers.iter().map(|p| p.id.as_str()).collect()
}

type Email = (String, String, String);

fn render(
    r: &Renderer,
    sub: &Subscriber,
    d: &Digest,
    papers: &Papers,
) -> Result<Email, RenderError> {
    let date = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
    let link = format!("https://digest.paperboy.test/u/{}", sub.email);
    r.render(sub, date, d, papers, &link)
        .map(|e| (e.subject, e.html, e.text))
}

/// The words marked in an HTML email.
fn marks(html: &str) -> Vec<String> {
    html.split("</mark>")
        .filter_map(|s| s.rsplit_once('>'))
        .map(|(_, word)| word.to_lowercase())
        .collect()
}

#[test]
fn a_card_is_reused_only_for_its_topic_and_paper() {
    let cfg = config("");
    let (ada, bob) = (&cfg.subscribers[0], &cfg.subscribers[1]);
    let papers = day("2026-04-10.json");
    let map = by_id(&papers);
    let all = ids(&papers);
    // The same paper in both emails, among others in Ada's.
    let for_ada = digest(&[("agents", vec![all[0], SHARED, all[1]])]);
    let for_bob = digest(&[("reasoning", vec![SHARED])]);
    let fresh = || Renderer::new(&cfg.digest, &cfg.topics).unwrap();
    let shared = fresh();
    let ada_first = render(&shared, ada, &for_ada, &map).unwrap();
    let bob_email = render(&shared, bob, &for_bob, &map).unwrap();
    let ada_again = render(&shared, ada, &for_ada, &map).unwrap();
    assert_eq!(bob_email, render(&fresh(), bob, &for_bob, &map).unwrap());
    assert_eq!(ada_first, render(&fresh(), ada, &for_ada, &map).unwrap());
    assert_eq!(ada_again, ada_first);
    // The shared paper, highlighted for each one's topic.
    let (ada_marks, bob_marks) = (marks(&ada_first.1), marks(&bob_email.1));
    assert!(ada_marks.iter().any(|m| m == "agent"), "{ada_marks:?}");
    assert!(!ada_marks.iter().any(|m| m == "reasoning"), "{ada_marks:?}");
    assert!(bob_marks.iter().any(|m| m == "reasoning"), "{bob_marks:?}");
    assert!(
        !bob_marks.iter().any(|m| m.contains("agent")),
        "{bob_marks:?}"
    );
    // Under the same topic, Bob's card is Ada's.
    let bob_on_agents = digest(&[("agents", vec![SHARED])]);
    let card = render(&shared, bob, &bob_on_agents, &map).unwrap();
    assert_eq!(card, render(&fresh(), bob, &bob_on_agents, &map).unwrap());
}

#[test]
fn a_paper_that_changed_is_rendered_again() {
    let cfg = config("");
    let ada = &cfg.subscribers[0];
    let papers = day("2026-04-10.json");
    let d = digest(&[("agents", vec![SHARED])]);
    let r = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
    let before = render(&r, ada, &d, &by_id(&papers)).unwrap();
    // The same paper a day later: more upvotes, a corrected title.
    let mut later = by_id(&papers);
    let p = Arc::make_mut(later.get_mut(&ArxivId::parse(SHARED).unwrap()).unwrap());
    p.upvotes += 1000;
    p.title = format!("{} (v2)", p.title);
    let after = render(&r, ada, &d, &later).unwrap();
    let fresh = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
    assert_eq!(after, render(&fresh, ada, &d, &later).unwrap());
    assert_ne!(after, before);
    assert!(after.1.contains("(v2)") && after.2.contains("(v2)"));
}

/// Emails of three sizes: from an empty one to one cut by the size guard, twice over.
fn cases(cfg: &Config) -> (Papers, Vec<(&Subscriber, Digest)>) {
    let (ada, bob) = (&cfg.subscribers[0], &cfg.subscribers[1]);
    let mut papers = day("2026-04-10.json");
    papers.extend(day("2026-04-16.json"));
    // Twice as many, for an email too big even with short texts.
    let copies: Vec<Paper> = (papers.iter().enumerate())
        .map(|(i, p)| Paper {
            id: ArxivId::parse(&format!("2612.{i:05}")).unwrap(),
            ..p.clone()
        })
        .collect();
    papers.extend(copies);
    let all = ids(&papers);
    let (half, rest) = all.split_at(all.len() / 2);
    let big = digest(&[("agents", half.to_vec()), ("reasoning", rest.to_vec())]);
    let small = digest(&[
        ("reasoning", vec![SHARED, all[5]]),
        ("agents", vec![all[7]]),
    ]);
    let none = digest(&[]);
    let cases = vec![
        (ada, small.clone()),
        (bob, big.clone()),
        (ada, none),
        (ada, small),
        (bob, big),
    ];
    (by_id(&papers), cases)
}

/// The emails of `cases`, rendered one after the other by one Renderer.
fn emails(cfg: &Config, r: &Renderer) -> Vec<Email> {
    let (map, cases) = cases(cfg);
    cases
        .iter()
        .map(|(sub, d)| render(r, sub, d, &map).unwrap())
        .collect()
}

#[test]
fn the_size_guard_gives_what_a_fresh_renderer_gives() {
    // Whole abstracts: the big email is cut first to 300 characters each, then 150, then
    // loses papers; with 600 characters, to 300 and 150.
    for digest in ["text_max_chars = 0", "text_max_chars = 600", ""] {
        let cfg = config(digest);
        let shared = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
        let in_turn = emails(&cfg, &shared);
        let big = &in_turn[1];
        assert!(big.1.len() <= MAX_HTML_BYTES, "{digest}");
        assert!(big.1.contains("more papers, left out"), "{digest}");
        assert_eq!(in_turn[4], *big);
        assert_eq!(in_turn[3], in_turn[0]);
        let (map, cases) = cases(&cfg);
        let each_fresh: Vec<Email> = cases
            .iter()
            .map(|(sub, d)| {
                let fresh = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
                render(&fresh, sub, d, &map).unwrap()
            })
            .collect();
        assert_eq!(in_turn, each_fresh, "{digest}");
        // And what the templates of earlier versions, rendered whole, give.
        let mut old = cfg.digest.clone();
        old.templates_dir = Some(fixture_dir().join("templates-without-cards"));
        let whole = emails(&cfg, &Renderer::new(&old, &cfg.topics).unwrap());
        assert_eq!(in_turn, whole, "{digest}");
    }
}

#[test]
fn templates_without_a_card_block_render_as_before() {
    let cfg = config("text = \"ai_summary\"\nthumbnails = true\nmax_authors = 2");
    let mut old = cfg.digest.clone();
    old.templates_dir = Some(fixture_dir().join("templates-without-cards"));
    let with_cards = emails(&cfg, &Renderer::new(&cfg.digest, &cfg.topics).unwrap());
    let whole = emails(&cfg, &Renderer::new(&old, &cfg.topics).unwrap());
    assert_eq!(with_cards, whole);
}

#[test]
fn templates_may_read_papers_beside_their_cards() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("digest.txt.hbs"),
        "{{#each groups}}{{#each papers}}{{id}}{{#if github_repo}} (code){{/if}}: \
         {{#> card}}{{title}}{{/card}}\n{{/each}}{{/each}}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("subject.hbs"),
        "{{#each groups}}{{#each papers}}{{#if @first}}{{title}}{{/if}}{{/each}}{{/each}}",
    )
    .unwrap();
    let mut cfg = config("");
    cfg.digest.templates_dir = Some(dir.path().to_path_buf());
    let papers = day("2026-04-10.json");
    let map = by_id(&papers);
    let d = digest(&[("agents", ids(&papers)[..4].to_vec())]);
    let r = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
    for _ in 0..2 {
        let (subject, _, text) = render(&r, &cfg.subscribers[0], &d, &map).unwrap();
        assert_eq!(subject, papers[0].title);
        let want: String = papers[..4]
            .iter()
            .map(|p| {
                let code = if p.github_repo.is_some() {
                    " (code)"
                } else {
                    ""
                };
                format!("{}{code}: {}\n", p.id, p.title)
            })
            .collect();
        assert_eq!(text, want);
    }
}

#[test]
fn a_card_that_reaches_past_its_paper_is_refused_when_the_templates_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("digest.txt.hbs"),
        "{{#each groups}}{{#each papers}}{{#> card}}{{../topic}}: {{title}}{{/card}}\
         {{/each}}{{/each}}",
    )
    .unwrap();
    let mut cfg = config("");
    cfg.digest.templates_dir = Some(dir.path().to_path_buf());
    let e = Renderer::new(&cfg.digest, &cfg.topics)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("digest.txt.hbs") && e.contains("../topic"),
        "{e}"
    );
}

/// The built-in HTML joins its loop over the papers; an operator's text template that
/// does not still sees each group as it always did (no place holder of the other's cards).
#[test]
fn a_template_without_a_joined_loop_sees_its_groups_as_before() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("digest.txt.hbs"),
        "{{#each groups}}[{{#each this}}{{@key}};{{/each}}]\n\
         {{#each papers}}{{@index}}. {{#> card}}{{title}}{{/card}}\n{{/each}}{{/each}}",
    )
    .unwrap();
    let mut cfg = config("");
    cfg.digest.templates_dir = Some(dir.path().to_path_buf());
    let r = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
    let papers = day("2026-04-10.json");
    let d = digest(&[("agents", ids(&papers)[..2].to_vec())]);
    let (_, _, text) = render(&r, &cfg.subscribers[0], &d, &by_id(&papers)).unwrap();
    let keys = text.lines().next().unwrap();
    assert!(
        keys.contains("topic;") && keys.contains("papers;") && !keys.contains("__paperboy"),
        "{text}"
    );
    assert!(text.contains(&format!("0. {}", papers[0].title)), "{text}");
}

/// Each card's lines are put in quoted-printable once and reused: every part comes out as
/// the bytes lettre makes of it, for emails that share cards, cut texts, dropped papers,
/// both recorded days and the templates without cards.
#[test]
fn parts_in_quoted_printable_are_lettres_encoding_whatever_cards_they_reuse() {
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding::QuotedPrintable;
    let lettre = |s: &str| {
        Body::new_with_encoding(s.to_string(), QuotedPrintable)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let date = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
    for digest in [
        "text_max_chars = 0",
        "text = \"ai_summary\"\nthumbnails = true",
        "",
    ] {
        let cfg = config(digest);
        let mut old = cfg.digest.clone();
        old.templates_dir = Some(fixture_dir().join("templates-without-cards"));
        for opts in [&cfg.digest, &old] {
            let r = Renderer::new(opts, &cfg.topics).unwrap();
            let (map, cases) = cases(&cfg);
            // Twice over: the second time, every card's encoding is the one kept.
            for (sub, d) in cases.iter().chain(&cases) {
                let e = r.render(sub, date, d, &map, "https://u.test/x").unwrap();
                assert_eq!(html_quoted_printable(&e), lettre(&e.html), "{digest}");
                assert_eq!(text_quoted_printable(&e), lettre(&e.text), "{digest}");
            }
        }
    }
}
