//! Topic matching and selection at scale:
//! - 1,000 distinct topic queries matched against every recorded paper (548 days, ~9,400
//!   papers; the 2 fixture days where the corpus is absent);
//! - selecting one day's digest for 100,000 subscribers, each with 1 to 5 of those topics.
//!
//! Run: `cargo bench --bench topics` (figures in BENCHMARKS.md).

use std::collections::HashMap;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use paperboy::digest::DayList;
use paperboy::domain::{EmailAddress, Paper, Subscriber};
use paperboy::source::parse_daily_papers;
use paperboy::topics::{PaperText, Query, Sort, SubscriberFilter, Topic};

fn corpus() -> Vec<Vec<Paper>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("../shared/data/hf-daily-papers");
    let dir = if dir.is_dir() {
        dir
    } else {
        root.join("tests/fixtures/hf")
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| parse_daily_papers(&std::fs::read(f).unwrap()).unwrap())
        .collect()
}

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// 1,000 distinct queries built from the corpus's own AI keywords and title words.
fn queries(days: &[Vec<Paper>]) -> Vec<String> {
    let mut words: Vec<String> = days
        .iter()
        .flatten()
        .flat_map(|p| p.ai_keywords.iter().cloned())
        .filter(|k| {
            k.len() > 3
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        })
        .collect();
    words.sort();
    words.dedup();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let pick = |s: &mut u64| words[(next(s) % words.len() as u64) as usize].clone();
    let mut out = std::collections::BTreeSet::new();
    while out.len() < 1000 {
        let q = match next(&mut seed) % 5 {
            0 => format!("\"{}\"", pick(&mut seed)),
            1 => format!("\"{}\" OR \"{}\"", pick(&mut seed), pick(&mut seed)),
            2 => format!(
                "title:{}* upvotes>=5",
                pick(&mut seed).split(' ').next().unwrap()
            ),
            3 => format!(
                "(\"{}\" OR \"{}\") -repo:no",
                pick(&mut seed),
                pick(&mut seed)
            ),
            _ => format!("\"{}\" NOT \"{}\"", pick(&mut seed), pick(&mut seed)),
        };
        out.insert(q);
    }
    out.into_iter().collect()
}

fn topic(name: String, q: &str, sort: Sort) -> Topic {
    Topic {
        name,
        keywords: vec![],
        query: Some(Query::parse(q).unwrap()),
        authors: vec![],
        organizations: vec![],
        exclude: vec![],
        min_upvotes: 0,
        max_papers: 5,
        sort,
    }
}

fn bench(c: &mut Criterion) {
    let days = corpus();
    let papers: Vec<&Paper> = days.iter().flatten().collect();
    let texts: Vec<PaperText> = papers.iter().map(|p| PaperText::new(p)).collect();
    let qs = queries(&days);
    let compiled: Vec<Query> = qs.iter().map(|q| Query::parse(q).unwrap()).collect();
    eprintln!("{} papers, {} queries", papers.len(), compiled.len());

    let mut g = c.benchmark_group("topics");
    g.sample_size(10);
    g.bench_function("1000 queries x every recorded paper", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for q in &compiled {
                for (p, t) in papers.iter().zip(&texts) {
                    hits += q.matches(p, t) as usize;
                }
            }
            hits
        })
    });

    // The busiest recorded day, 100,000 subscribers with 1-5 of the 1,000 topics.
    let day = days.iter().max_by_key(|d| d.len()).unwrap();
    let topics: HashMap<String, Topic> = qs
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let sort = if i % 2 == 0 {
                Sort::Upvotes
            } else {
                Sort::Relevance
            };
            (format!("t{i}"), topic(format!("t{i}"), q, sort))
        })
        .collect();
    let mut seed = 7u64;
    let subs: Vec<Subscriber> = (0..100_000)
        .map(|i| Subscriber {
            email: EmailAddress::parse(&format!("s{i}@example.org")).unwrap(),
            name: None,
            topics: (0..1 + next(&mut seed) % 5)
                .map(|_| format!("t{}", next(&mut seed) % 1000))
                .collect(),
            send_empty: false,
            deliver_at: None,
        })
        .collect();
    let none = Default::default();
    let filter = SubscriberFilter::default();
    g.bench_function("select for 100,000 subscribers on one day", |b| {
        b.iter(|| {
            let list = DayList::new(day);
            subs.iter()
                .map(|s| list.select(s, &topics, &none, &filter).paper_count())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
