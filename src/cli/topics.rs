//! `paperboy topics`: try a query on real lists, or see why a subscriber got what they got.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Subcommand;

use crate::config::Config;
use crate::digest::DayList;
use crate::source::HfSource;

use super::shared::{date_for, find_subscriber, open_store, source_for};

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// The papers a query selects, best first, with scores and the words that matched
    Test {
        query: String,
        /// One day's list [default: source.digest_day]
        #[arg(long, conflicts_with_all = ["file", "days"])]
        date: Option<NaiveDate>,
        /// A saved API response
        #[arg(long)]
        file: Option<PathBuf>,
        /// The lists of the last N days
        #[arg(long)]
        days: Option<u32>,
    },
    /// For each paper of a day: chosen for the subscriber, or why not
    Explain {
        subscriber: String,
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long)]
        source_file: Option<PathBuf>,
    },
}

pub async fn topics_command(cfg: &Config, action: TopicsAction) -> anyhow::Result<ExitCode> {
    match action {
        TopicsAction::Test {
            query,
            date,
            file,
            days,
        } => {
            let q = crate::topics::Query::parse(&query)
                .map_err(|e| anyhow::anyhow!("the query: {e}"))?;
            let topic = crate::topics::Topic {
                name: "query".into(),
                keywords: vec![],
                query: Some(q),
                authors: vec![],
                organizations: vec![],
                exclude: vec![],
                min_upvotes: 0,
                max_papers: usize::MAX,
                sort: crate::topics::Sort::Relevance,
            };
            let mut papers = Vec::new();
            if let Some(f) = &file {
                papers = HfSource::from_file(f.clone())
                    .fetch_day(NaiveDate::default())
                    .await?;
            } else {
                let source = HfSource::new(cfg.source.clone())?;
                let last = date_for(cfg, date, None)?;
                for back in 0..days.unwrap_or(1) {
                    let d = last - chrono::Days::new(back.into());
                    papers.extend(source.fetch_day(d).await?);
                }
            }
            let day = DayList::new(&papers);
            let scored = day.scored(&topic);
            let terms = crate::topics::Scorer::terms_of(&topic);
            for (p, score) in &scored {
                let text = crate::topics::PaperText::new(p);
                let matched: Vec<String> = terms
                    .iter()
                    .filter(|(f, w, pre)| text.contains_words(*f, w, *pre))
                    .map(|(_, w, pre)| format!("{}{}", w.join(" "), if *pre { "*" } else { "" }))
                    .collect();
                println!(
                    "{score:6.2}  {:>4} up  {}  {}  [{}]",
                    p.upvotes,
                    p.id,
                    p.title,
                    matched.join(", ")
                );
            }
            println!("{} of {} papers match", scored.len(), papers.len());
            Ok(ExitCode::SUCCESS)
        }
        TopicsAction::Explain {
            subscriber,
            date,
            source_file,
        } => {
            let date = date_for(cfg, date, source_file.as_deref())?;
            let sub = find_subscriber(cfg, &subscriber)?;
            let source = source_for(cfg, source_file)?;
            let papers = source.fetch_day(date).await?;
            let store = open_store(cfg).await?;
            let key = sub.email.key();
            let sent = store.sent_pairs_for(&key, date, &papers).await?;
            let opted_out = store.is_opted_out(&key).await?;
            store.close().await;
            let filter = cfg.filter_for(&key);
            let day = DayList::new(&papers);
            let digest = day.select(sub, &cfg.topics, &sent, filter);
            if opted_out {
                println!("{} has unsubscribed: nothing is sent to them", sub.email);
            }
            for p in &papers {
                let text = crate::topics::PaperText::new(p);
                let matching: Vec<&str> = sub
                    .topics
                    .iter()
                    .filter(|t| cfg.topics.get(*t).is_some_and(|t| t.matches(p, &text)))
                    .map(String::as_str)
                    .collect();
                let why = if let Some(g) = digest.groups.iter().find(|g| g.papers.contains(&p.id)) {
                    format!("CHOSEN under {}", g.topic)
                } else if sent.contains(&p.id) {
                    "not chosen: already sent on an earlier date".to_string()
                } else if !filter.admits(p, &text) {
                    "not chosen: the subscriber's own exclude or min_upvotes".to_string()
                } else if matching.is_empty() {
                    "not chosen: matches none of the subscriber's topics".to_string()
                } else {
                    format!(
                        "not chosen: matches {} but the topic's or the subscriber's max_papers was reached",
                        matching.join(", ")
                    )
                };
                println!("{}  {:>4} up  {}\n    {why}", p.id, p.upvotes, p.title);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
