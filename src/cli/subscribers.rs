//! `paperboy subscribers`: who is configured, who unsubscribed, and the operator's opt-outs
//! and resumes, each reported under the address as configured (or said to be unknown).

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::config::Config;
use crate::domain::{EmailAddress, SubscriberKey};
use crate::mail::Tokens;
use crate::store::Store;

use super::shared::open_store;

#[derive(Debug, Subcommand)]
pub enum SubscribersAction {
    /// The configured subscribers, and who unsubscribed
    List,
    /// Clear a subscriber's opt-out: they receive digests again
    Resume { email: String },
    /// Record an opt-out: for a request that came by email (give the address, or the token
    /// from the request's subject)
    Unsubscribe { email_or_token: String },
}

pub async fn subscribers_command(
    cfg: &Config,
    action: SubscribersAction,
) -> anyhow::Result<ExitCode> {
    let store = open_store(cfg).await?;
    let result = act(cfg, &store, action).await;
    store.close().await;
    result
}

async fn act(cfg: &Config, store: &Store, action: SubscribersAction) -> anyhow::Result<ExitCode> {
    match action {
        SubscribersAction::List => {
            let mut out: HashMap<SubscriberKey, (DateTime<Utc>, String)> = store
                .optouts()
                .await?
                .into_iter()
                .map(|(k, at, via)| (k, (at, via)))
                .collect();
            let unsubscribed = |(at, via): &(DateTime<Utc>, String)| {
                format!("unsubscribed {} ({via})", at.format("%Y-%m-%d %H:%M UTC"))
            };
            for s in &cfg.subscribers {
                let state = match out.remove(&s.email.key()) {
                    Some(o) => unsubscribed(&o),
                    None => "subscribed".to_string(),
                };
                println!("{}  {}  topics={}", s.email, state, s.topics.join(","));
            }
            // Opt-outs recorded for addresses the config does not list (yet).
            let mut others: Vec<_> = out.into_iter().collect();
            others.sort();
            for (key, o) in &others {
                println!("{key}  {}  not a configured subscriber", unsubscribed(o));
            }
        }
        SubscribersAction::Unsubscribe { email_or_token } => {
            let key = match EmailAddress::parse(&email_or_token) {
                Ok(e) => e.key(),
                Err(_) => cfg
                    .unsubscribe
                    .secret
                    .clone()
                    .and_then(|s| Tokens::new(s).verify(&email_or_token))
                    .context("neither an address nor a valid unsubscribe token")?,
            };
            let first = store.opt_out(&key, "operator").await?;
            match (cfg.subscriber(&key), first) {
                (Some(s), true) => println!("{}: unsubscribed; no more digests", s.email),
                (Some(s), false) => println!("{}: had already unsubscribed", s.email),
                (None, true) => println!(
                    "{key} is not a configured subscriber; recorded an opt-out for it anyway, \
                     so it will not be mailed if added later"
                ),
                (None, false) => println!(
                    "{key} is not a configured subscriber; it had already opted out, so it \
                     will not be mailed if added later"
                ),
            }
        }
        SubscribersAction::Resume { email } => {
            let key = EmailAddress::parse(&email)
                .map_err(anyhow::Error::msg)?
                .key();
            let cleared = store.resume(&key).await?;
            match (cfg.subscriber(&key), cleared) {
                (Some(s), true) => {
                    println!(
                        "{}: opt-out cleared; digests resume with the next run",
                        s.email
                    )
                }
                (Some(s), false) => println!("{}: had not unsubscribed", s.email),
                (None, true) => println!(
                    "{key} is not a configured subscriber; cleared its opt-out, but it gets no \
                     digest unless it is added to [[subscribers]]"
                ),
                (None, false) => println!(
                    "{key} is not a configured subscriber and had not unsubscribed: nothing \
                     to clear"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
