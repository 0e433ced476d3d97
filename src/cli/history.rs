//! `paperboy history`: list deliveries: when, to whom, which papers, and what the server said.

use std::process::ExitCode;

use chrono::NaiveDate;

use crate::config::Config;
use crate::domain::EmailAddress;
use crate::store::{DeliveryStatus, HistoryFilter};

use super::shared::open_store;

pub async fn history_command(
    cfg: &Config,
    date: Option<NaiveDate>,
    subscriber: Option<String>,
    status: Option<DeliveryStatus>,
    limit: i64,
) -> anyhow::Result<ExitCode> {
    let store = open_store(cfg).await?;
    let subscriber = match subscriber {
        Some(s) => Some(EmailAddress::parse(&s).map_err(anyhow::Error::msg)?.key()),
        None => None,
    };
    let rows = store
        .history(&HistoryFilter {
            date,
            subscriber,
            status,
            limit,
        })
        .await?;
    store.close().await;
    for r in &rows {
        let when = r.sent_at.unwrap_or(r.updated_at);
        println!(
            "{}  {:<7}  {}  {}  attempts={}  papers={}  {}",
            r.digest_date,
            r.status,
            r.subscriber,
            when.format("%Y-%m-%d %H:%M:%S UTC"),
            r.attempts,
            if r.papers.is_empty() {
                "-".to_string()
            } else {
                r.papers.join(",")
            },
            r.message_id
        );
        if let Some(reply) = &r.smtp_reply {
            println!("    server: {reply}");
        }
        if let Some(err) = &r.error {
            println!("    error: {err}");
        }
    }
    if rows.is_empty() {
        println!("no deliveries match");
    }
    Ok(ExitCode::SUCCESS)
}
