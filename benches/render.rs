//! Rendering one subscriber's email (subject, HTML, text) of 30 papers from a recorded day
//! (tests/fixtures/hf/2026-04-10.json), under three topics that highlight words:
//! - with a fresh Renderer, nothing rendered yet (its cost of loading the templates left out);
//! - with a Renderer that has already rendered the same papers under the same topics for
//!   someone else, as every email of a run but the first few does;
//! - that email's HTML and text put in quoted-printable, its cards' lines already encoded.
//!
//! Run: `cargo bench --bench render` (figures in BENCHMARKS.md).

use std::path::Path;

use chrono::NaiveDate;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use paperboy::config::Config;
use paperboy::digest::DayList;
use paperboy::mail::{UnsubscribeLinks, html_quoted_printable, text_quoted_printable};
use paperboy::render::Renderer;
use paperboy::source::parse_daily_papers;

const PAPERS: usize = 30;

fn bench(c: &mut Criterion) {
    let cfg = Config::load_str(
        "[smtp]\nfrom = \"Paperboy <digest@paperboy.test>\"\n\
         [unsubscribe]\nbase_url = \"https://digest.paperboy.test/unsubscribe\"\n\
         secret = \"bench secret, sixteen chars+\"\n\
         [topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 10\n\
         [topics.reasoning]\nkeywords = [\"reasoning\", \"language model\", \"language models\"]\nmax_papers = 10\n\
         [topics.models]\nkeywords = [\"model\", \"models\", \"training\"]\nmax_papers = 30\n\
         [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\"\n\
         topics = [\"agents\", \"reasoning\", \"models\"]\n",
        "bench",
    )
    .unwrap();
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/2026-04-10.json"),
    )
    .unwrap();
    let papers = parse_daily_papers(&body).unwrap();
    let sub = &cfg.subscribers[0];
    let mut digest =
        DayList::new(&papers).select(sub, &cfg.topics, &Default::default(), &Default::default());
    // Exactly PAPERS papers: the last groups give up their last papers.
    while digest.paper_count() > PAPERS {
        let last = digest.groups.last_mut().unwrap();
        last.papers.pop();
        if last.papers.is_empty() {
            digest.groups.pop();
        }
    }
    assert_eq!(digest.paper_count(), PAPERS, "the recorded day has too few");
    let by_id = paperboy::domain::papers_by_id(&papers);
    let links = UnsubscribeLinks::for_subscriber(&cfg, &sub.email.key());
    let date = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
    let fresh = || Renderer::new(&cfg.digest, &cfg.topics).unwrap();

    let mut g = c.benchmark_group("render");
    g.bench_function("one email of 30 papers, fresh Renderer", |b| {
        b.iter_batched(
            fresh,
            |r| {
                let out = r.render(sub, date, &digest, &by_id, links.visible());
                (r, out)
            },
            BatchSize::SmallInput,
        )
    });
    let warm = fresh();
    warm.render(sub, date, &digest, &by_id, links.visible())
        .unwrap();
    g.bench_function("one email of 30 papers, cards already rendered", |b| {
        b.iter(|| warm.render(sub, date, &digest, &by_id, links.visible()))
    });
    let email = warm
        .render(sub, date, &digest, &by_id, links.visible())
        .unwrap();
    g.bench_function("its HTML and text in quoted-printable", |b| {
        b.iter(|| (html_quoted_printable(&email), text_quoted_printable(&email)))
    });
    g.bench_function("loading the templates (Renderer::new)", |b| b.iter(fresh));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
