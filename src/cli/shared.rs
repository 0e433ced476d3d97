//! What several commands share: the store, the papers' source, the digest date a command
//! works on, and the configured subscriber an argument names.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use crate::config::Config;
use crate::domain::{EmailAddress, Subscriber};
use crate::jobs::{check_not_future, default_digest_date};
use crate::source::HfSource;
use crate::store::Store;

pub fn source_for(cfg: &Config, file: Option<PathBuf>) -> anyhow::Result<HfSource> {
    Ok(match file {
        Some(f) => HfSource::from_file(f),
        None => HfSource::new(cfg.source.clone())?,
    })
}

/// The digest date: `--date`; else, with `--source-file YYYY-MM-DD.json`, the file's date
/// (a saved list belongs to its own day); else the configured default.
pub fn date_for(
    cfg: &Config,
    date: Option<NaiveDate>,
    source_file: Option<&Path>,
) -> anyhow::Result<NaiveDate> {
    let now = Utc::now();
    let file_date = source_file.and_then(|f| {
        f.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    });
    let date = match (date, file_date, source_file) {
        (Some(d), Some(f), _) if d != f => anyhow::bail!(
            "--date {d} does not match the saved list {} (of {f}); a list is stored under its own date",
            source_file
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        (Some(d), _, _) => d,
        (None, Some(f), _) => f,
        (None, None, Some(p)) => anyhow::bail!(
            "which date does {} hold? Name it with --date YYYY-MM-DD",
            p.display()
        ),
        (None, None, None) => default_digest_date(cfg, now),
    };
    check_not_future(date, now)?;
    Ok(date)
}

pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    open_store_warm(cfg, 0).await
}

/// The store, with `extra` connections opened ahead (see `Store::connect_warm`). Its errors
/// name the database themselves.
pub async fn open_store_warm(cfg: &Config, extra: u32) -> anyhow::Result<Store> {
    Ok(Store::connect_warm(&cfg.database_url, extra).await?)
}

/// The subscriber named by `who` (any case), or an error naming the config.
pub fn find_subscriber<'a>(cfg: &'a Config, who: &str) -> anyhow::Result<&'a Subscriber> {
    let email = EmailAddress::parse(who).map_err(anyhow::Error::msg)?;
    cfg.subscriber(&email.key())
        .with_context(|| format!("{who} is not a subscriber in {}", cfg.origin))
}
