//! Settings: layered loading (built-in defaults, the file, then `PAPERBOY__SECTION__KEY` env
//! vars) and validation into typed values, one section at a time. Every problem names its key
//! and the file it came from, and all of them are reported together.

mod alerts;
mod database;
mod delivery;
mod digest;
mod header_text;
mod http;
mod mail;
mod numbers;
mod raw;
mod schedule;
mod source;
mod subscriber_tables;
mod subscribers;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use self::alerts::AlertsConfig;
pub use self::delivery::TransportKind;
pub use self::digest::{DigestConfig, TextChoice};
pub use self::http::HttpLimits;
pub use self::mail::{Security, SmtpConfig, UnsubscribeConfig};
pub use crate::schedule::DigestDay;

use self::raw::{RawSettings, RawSubscriber};
use crate::delivery_policy::DeliveryPolicy;
use crate::domain::{Subscriber, SubscriberKey};
use crate::schedule::{Schedule, SchedulePolicy};
use crate::source::SourceOptions;
use crate::store::DatabaseUrl;
use crate::topics::{SubscriberFilter, Topic, build_topics};

/// The example configuration shipped in `config/default.toml`, embedded so that the binary runs
/// with no file at all.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/default.toml");

/// Where the operator's file is looked for when `--config` is not given.
pub const SYSTEM_PATH: &str = "/etc/paperboy/config.toml";
pub const LOCAL_PATH: &str = "config/default.toml";

/// Every problem of a configuration, and where it came from.
#[derive(Debug)]
pub struct ConfigError {
    pub origin: String,
    pub problems: Vec<String>,
}

/// A line for the file, then one for each problem. A problem's own trailing line breaks (a
/// TOML parser's message ends with one) are left out: the message ends where its text does.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({}):", self.origin)?;
        for problem in &self.problems {
            write!(f, "\n  - {}", problem.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Clone)]
pub struct Config {
    /// Where the settings came from (a path, or "embedded defaults").
    pub origin: String,
    pub source: SourceOptions,
    pub digest_day: DigestDay,
    pub timezone: chrono_tz::Tz,
    /// Earlier lists re-read by each plan for papers that arrived late.
    pub lookback_days: u32,
    pub schedule: Schedule,
    pub schedule_policy: SchedulePolicy,
    pub grace_period: Duration,
    /// Where the optional HTTP listener (health, metrics) listens.
    pub http_listen: Option<std::net::SocketAddr>,
    /// The listener's connection limit and time-outs (read when it starts).
    pub http_limits: HttpLimits,
    pub unsubscribe: UnsubscribeConfig,
    /// DKIM signing of every message, when configured.
    pub dkim: Option<Arc<lettre::message::dkim::DkimConfig>>,
    pub smtp: SmtpConfig,
    pub transport: TransportKind,
    pub outbox_dir: PathBuf,
    pub delivery: DeliveryPolicy,
    pub alerts: AlertsConfig,
    /// Shown without its password; `expose_secret` for connecting.
    pub database_url: DatabaseUrl,
    pub digest: DigestConfig,
    pub topics: HashMap<String, Topic>,
    pub subscribers: Vec<Subscriber>,
    /// Subscribers' own limits (exclude, min_upvotes, max_papers), by subscriber key.
    pub filters: HashMap<SubscriberKey, SubscriberFilter>,
    /// What is valid but probably not meant (a cron that never fires), each naming its key:
    /// shown by `check`, logged by `run`.
    pub warnings: Vec<String>,
}

/// Every setting, the secrets shown redacted (by their own types) and the DKIM key only as
/// there (the RSA key's own `Debug` prints its private numbers). Every field is named here,
/// so that a new one is shown, or left out, on purpose.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            origin,
            source,
            digest_day,
            timezone,
            lookback_days,
            schedule,
            schedule_policy,
            grace_period,
            http_listen,
            http_limits,
            unsubscribe,
            dkim,
            smtp,
            transport,
            outbox_dir,
            delivery,
            alerts,
            database_url,
            digest,
            topics,
            subscribers,
            filters,
            warnings,
        } = self;
        f.debug_struct("Config")
            .field("origin", origin)
            .field("source", source)
            .field("digest_day", digest_day)
            .field("timezone", timezone)
            .field("lookback_days", lookback_days)
            .field("schedule", schedule)
            .field("schedule_policy", schedule_policy)
            .field("grace_period", grace_period)
            .field("http_listen", http_listen)
            .field("http_limits", http_limits)
            .field("unsubscribe", unsubscribe)
            .field("dkim", &dkim.as_ref().map(|_| "[a signing key]"))
            .field("smtp", smtp)
            .field("transport", transport)
            .field("outbox_dir", outbox_dir)
            .field("delivery", delivery)
            .field("alerts", alerts)
            .field("database_url", database_url)
            .field("digest", digest)
            .field("topics", topics)
            .field("subscribers", subscribers)
            .field("filters", filters)
            .field("warnings", warnings)
            .finish()
    }
}

impl Config {
    /// The configured subscriber that `key` names, in whatever case either was written.
    pub fn subscriber(&self, key: &SubscriberKey) -> Option<&Subscriber> {
        self.subscribers.iter().find(|s| s.email.key() == *key)
    }

    /// Logs each of the configuration's warnings.
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!(origin = self.origin, "{w}");
        }
    }

    /// The subscriber's own limits (none by default).
    pub fn filter_for(&self, key: &SubscriberKey) -> &SubscriberFilter {
        static NONE: std::sync::OnceLock<SubscriberFilter> = std::sync::OnceLock::new();
        self.filters
            .get(key)
            .unwrap_or_else(|| NONE.get_or_init(SubscriberFilter::default))
    }
}

impl Config {
    /// Loads `path` (or, without one, the system file, the local example, or the embedded
    /// example, the first that exists), then applies `PAPERBOY__…` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let found = [SYSTEM_PATH, LOCAL_PATH]
                    .into_iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file());
                match found {
                    Some(p) => p,
                    None => return Self::load_str(EMBEDDED_DEFAULT, "embedded defaults"),
                }
            }
        };
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            origin: origin.clone(),
            problems: vec![format!("cannot read the configuration file: {e}")],
        })?;
        Self::load_str(&text, &origin)
    }

    /// Loads settings from TOML text (plus env overrides); `origin` names it in errors.
    ///
    /// The `[[subscribers]]` tables (there may be 100,000 of them) are read one at a time,
    /// straight into their settings: a TOML parser holds a whole document as a tree of about
    /// 3 KB per subscriber, which at that size would be most of the process's memory. The
    /// rest of the file goes through `config`, with the environment overrides.
    pub fn load_str(toml: &str, origin: &str) -> Result<Self, ConfigError> {
        let fail = |msg: String| ConfigError {
            origin: origin.to_string(),
            problems: vec![msg],
        };
        let (rest, tables) = subscriber_tables::split(toml);
        let mut raw: RawSettings = config::Config::builder()
            .add_source(config::File::from_str(&rest, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("PAPERBOY")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .map_err(|e| {
                // A number too large for the reader is reported without its key: named here.
                let named = numbers::out_of_range(&rest);
                match named.is_empty() {
                    true => fail(e.to_string()),
                    false => ConfigError {
                        origin: origin.to_string(),
                        problems: named,
                    },
                }
            })?
            .try_deserialize()
            .map_err(|e| fail(e.to_string()))?;
        drop(rest);
        // Each table is parsed and validated in turn: no list of raw tables is built.
        let inline = std::mem::take(&mut raw.subscribers);
        if !inline.is_empty() && !tables.is_empty() {
            return Err(fail(
                "subscribers: given both as [[subscribers]] tables and as an inline list \
                 (subscribers = [...]); TOML allows one or the other"
                    .to_string(),
            ));
        }
        let count = inline.len() + tables.len();
        let from_tables = subscriber_tables::read(toml, tables);
        validate(
            raw,
            origin.to_string(),
            count,
            inline.into_iter().map(Ok).chain(from_tables),
        )
    }
}

/// Validates the settings, section by section, collecting every problem; the subscribers
/// (`count` of them) come separately, each parsed or with the reason it could not be.
fn validate(
    raw: RawSettings,
    origin: String,
    count: usize,
    raw_subscribers: impl Iterator<Item = Result<RawSubscriber, String>>,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let source = source::validate(raw.source, &mut problems);
    let timing = schedule::validate(raw.schedule, source.digest_day, &mut problems);
    let smtp = mail::validate_smtp(raw.smtp, &mut problems);
    let unsubscribe = mail::validate_unsubscribe(raw.unsubscribe, &mut problems);
    match &unsubscribe.mailto {
        Some(m) => header_text::mailto_address("unsubscribe.mailto", m.as_str(), &mut problems),
        // Without one, requests go to the sender.
        None => header_text::mailto_address(
            "smtp.from (unsubscribe requests go to it: unsubscribe.mailto is unset)",
            smtp.from.email.as_ref(),
            &mut problems,
        ),
    }
    let dkim = mail::validate_dkim(raw.dkim, &mut problems);
    let (http_listen, http_limits) = http::validate(raw.http, &mut problems);
    let delivery = delivery::validate(raw.delivery, &mut problems);
    let alerts = alerts::validate(raw.alerts, &mut problems);
    let database_url = database::validate(raw.database, &mut problems);
    let digest = digest::validate(raw.digest, &mut problems);
    for name in raw.topics.keys() {
        header_text::one_line(
            &format!("topics.{name:?}"),
            name,
            "the subject (a topic's name)",
            &mut problems,
        );
    }
    let topics = build_topics(raw.topics, &mut problems);
    let subscribers = subscribers::validate(
        raw_subscribers,
        count,
        &subscribers::Defaults {
            topics: &topics,
            timezone: timing.timezone,
            send_empty: digest.send_empty,
        },
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(ConfigError { origin, problems });
    }
    Ok(Config {
        origin,
        source: source.options,
        digest_day: source.digest_day,
        timezone: timing.timezone,
        lookback_days: source.lookback_days,
        schedule: timing.schedule,
        schedule_policy: timing.policy,
        grace_period: raw.daemon.grace_period,
        http_listen,
        http_limits,
        unsubscribe,
        dkim,
        smtp,
        transport: delivery.transport,
        outbox_dir: delivery.outbox_dir,
        delivery: delivery.policy,
        alerts,
        database_url,
        digest,
        topics,
        subscribers: subscribers.list,
        filters: subscribers.filters,
        warnings: timing.warning.into_iter().collect(),
    })
}
