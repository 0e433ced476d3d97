//! The text part reads in a terminal of 78 columns: every line of every recorded day's email,
//! for each subscriber's topics (and of a week's papers cut by the size guard), fits, but for
//! the link lines (a URL alone, or after a label such as "Code:"), whose URL is not broken.

use std::path::Path;

use chrono::NaiveDate;
use paperboy::config::Config;
use paperboy::digest::DayList;
use paperboy::domain::{Paper, Subscriber};
use paperboy::render::Renderer;
use paperboy::source::parse_daily_papers;

/// The widest a line of the text part may be (RFC 5322 asks for 78 characters at most).
const COLUMNS: usize = 78;

/// Whether `line` is a link line: a URL, maybe after a label ending in ':' ("Code:",
/// "Unsubscribe:"), with nothing after the URL.
fn is_link_line(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        [url] => url.contains("://"),
        [label, url] => label.ends_with(':') && url.contains("://"),
        _ => false,
    }
}

/// The lines of `text` too wide for [`COLUMNS`], link lines aside.
fn too_wide(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| textwrap::core::display_width(l) > COLUMNS && !is_link_line(l))
        .collect()
}

#[test]
fn link_lines_are_told_apart() {
    assert!(is_link_line("   Code:   https://github.com/a/b"));
    assert!(is_link_line(
        "https://huggingface.co/papers/date/2026-04-10"
    ));
    assert!(!is_link_line("   16 upvotes, 1 comment, https://x.test"));
    assert!(!is_link_line("... and 3 more, left out: https://x.test"));
}

#[test]
fn no_text_line_of_any_recorded_day_runs_past_78_columns() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hf-daily-papers");
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the text width test on the recorded corpus"
        );
        eprintln!("SKIPPED: {} is absent", dir.display());
        return;
    }
    // The production example's subscribers, one who gets every paper (the size guard cuts
    // the busiest days), and one whose topic matches nothing (the email of no papers).
    let cfg = Config::load_str(
        "[smtp]\nfrom = \"ML Paper Digest <digest@example.org>\"\n\
         [unsubscribe]\nbase_url = \"https://digest.example.org/unsubscribe\"\n\
         secret = \"a long enough secret for the tests\"\n\
         [digest]\ntext = \"ai_summary\"\ntext_max_chars = 500\n\
         [topics.multimodal]\nkeywords = [\"multimodal\", \"vision-language\", \"VLM\", \"MLLM\"]\n\
         max_papers = 5\n\
         [topics.efficiency]\nkeywords = [\"quantization\", \"pruning\", \"distillation\", \
         \"speculative decoding\", \"kv cache\"]\nmax_papers = 5\n\
         [topics.rl-reasoning]\nkeywords = [\"reinforcement learning\", \"RL\", \"RLHF\", \"GRPO\"]\n\
         exclude = [\"robot\"]\nmin_upvotes = 3\nmax_papers = 5\n\
         [topics.all]\nquery = \"upvotes>=0\"\nmax_papers = 500\n\
         [topics.none]\nkeywords = [\"no paper says this\"]\n\
         [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\"\n\
         topics = [\"multimodal\", \"efficiency\"]\n\
         [[subscribers]]\nemail = \"grace@example.org\"\nname = \"Grace\"\n\
         topics = [\"rl-reasoning\"]\n\
         [[subscribers]]\nemail = \"all@example.org\"\ntopics = [\"all\"]\n\
         [[subscribers]]\nemail = \"none@example.org\"\ntopics = [\"none\"]\n",
        "text width",
    )
    .unwrap();
    let mut days: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    days.sort();
    assert!(!days.is_empty(), "no .json in {}", dir.display());
    let renderer = Renderer::new(&cfg.digest, &cfg.topics).unwrap();
    // Whole abstracts of a week's papers at once, for the one who gets every paper: the
    // size guard cuts those emails, and they say what they left out.
    let mut whole = cfg.digest.clone();
    whole.text_max_chars = 0;
    let whole = Renderer::new(&whole, &cfg.topics).unwrap();
    let (mut emails, mut papers_shown, mut cut) = (0, 0, 0);
    let mut wide = Vec::new();
    let mut check = |name: &str, papers: &[Paper], renderer: &Renderer, subs: &[Subscriber]| {
        let date = NaiveDate::parse_from_str(name, "%Y-%m-%d").unwrap();
        let by_id = paperboy::domain::papers_by_id(papers);
        let list = DayList::new(papers);
        for sub in subs {
            let digest = list.select(sub, &cfg.topics, &Default::default(), &Default::default());
            let link = format!("https://digest.example.org/unsubscribe?t={}", sub.email);
            let email = renderer.render(sub, date, &digest, &by_id, &link).unwrap();
            for line in too_wide(&email.text) {
                wide.push(format!("{name}, {}: {line}", sub.email));
            }
            emails += 1;
            papers_shown += digest.paper_count();
            cut += email.text.contains("left out to keep this email short") as usize;
        }
    };
    let mut week: Vec<Paper> = Vec::new();
    for (n, day) in days.iter().enumerate() {
        let name = day.file_stem().unwrap().to_str().unwrap();
        let papers = parse_daily_papers(&std::fs::read(day).unwrap()).unwrap();
        check(name, &papers, &renderer, &cfg.subscribers);
        for p in papers {
            if !week.iter().any(|w| w.id == p.id) {
                week.push(p);
            }
        }
        if n % 5 == 4 {
            check(name, &week, &whole, &cfg.subscribers[2..3]);
            week.clear();
        }
    }
    eprintln!("{emails} emails of {papers_shown} papers checked, {cut} cut by the size guard");
    assert!(
        wide.is_empty(),
        "{} lines past {COLUMNS} columns, among them:\n{}",
        wide.len(),
        wide[..wide.len().min(12)].join("\n")
    );
    assert!(papers_shown > 1000, "only {papers_shown} papers were shown");
    assert!(cut > 10, "only {cut} emails were cut by the size guard");
}
