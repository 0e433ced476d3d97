//! The settings as written: the serde tree that the file and the `PAPERBOY__` variables are
//! read into, with the built-in defaults of every key. Validation turns it into `Config`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::delivery_policy::DeliveryPolicy;
use crate::source::SourceOptions;
use crate::topics::TopicSettings;

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSettings {
    pub(super) source: RawSource,
    pub(super) schedule: RawSchedule,
    pub(super) daemon: RawDaemon,
    pub(super) http: RawHttp,
    pub(super) unsubscribe: RawUnsubscribe,
    pub(super) dkim: RawDkim,
    pub(super) smtp: RawSmtp,
    pub(super) delivery: RawDelivery,
    pub(super) database: RawDatabase,
    pub(super) digest: RawDigest,
    pub(super) alerts: RawAlerts,
    pub(super) topics: BTreeMap<String, TopicSettings>,
    pub(super) subscribers: Vec<RawSubscriber>,
}

/// `[source]`: where the daily lists come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSource {
    pub(super) base_url: String,
    #[serde(with = "humantime_serde")]
    pub(super) timeout: Duration,
    pub(super) digest_day: String,
    pub(super) max_rate_limit_retries: u32,
    #[serde(with = "humantime_serde")]
    pub(super) max_retry_wait: Duration,
    pub(super) retries: u32,
    #[serde(with = "humantime_serde")]
    pub(super) retry_base: Duration,
    pub(super) lookback_days: u32,
}

impl Default for RawSource {
    fn default() -> Self {
        let d = SourceOptions::default();
        Self {
            base_url: d.base_url,
            timeout: d.timeout,
            digest_day: "yesterday".into(),
            max_rate_limit_retries: d.max_rate_limit_retries,
            max_retry_wait: d.max_retry_wait,
            retries: d.retries,
            retry_base: d.retry_base,
            lookback_days: 2,
        }
    }
}

/// `[schedule]`: when digests go out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSchedule {
    pub(super) cron: String,
    pub(super) timezone: String,
    #[serde(with = "humantime_serde")]
    pub(super) catch_up_window: Duration,
    #[serde(with = "humantime_serde")]
    pub(super) deadline: Duration,
    #[serde(with = "humantime_serde")]
    pub(super) late_retry: Duration,
    pub(super) workdays: Vec<String>,
}

impl Default for RawSchedule {
    fn default() -> Self {
        Self {
            workdays: ["Mon", "Tue", "Wed", "Thu", "Fri"]
                .map(String::from)
                .to_vec(),
            cron: "0 0 8 * * Mon-Fri".into(),
            timezone: "UTC".into(),
            catch_up_window: Duration::from_secs(12 * 3600),
            deadline: Duration::from_secs(6 * 3600),
            late_retry: Duration::from_secs(15 * 60),
        }
    }
}

/// `[daemon]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDaemon {
    #[serde(with = "humantime_serde")]
    pub(super) grace_period: Duration,
}

impl Default for RawDaemon {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(30),
        }
    }
}

/// `[http]`: the optional listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHttp {
    pub(super) listen: String,
    pub(super) max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub(super) header_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub(super) idle_timeout: Duration,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: String::new(),
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// `[dkim]`: signing.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDkim {
    pub(super) selector: String,
    pub(super) domain: String,
    pub(super) private_key_file: String,
    pub(super) algorithm: String,
}

/// `[unsubscribe]`: headers and signed links.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawUnsubscribe {
    pub(super) base_url: String,
    pub(super) secret: Option<SecretString>,
    pub(super) secret_file: String,
    pub(super) mailto: String,
}

/// `[smtp]`: the relay.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSmtp {
    pub(super) host: String,
    pub(super) port: Option<u16>,
    pub(super) security: String,
    pub(super) username: String,
    pub(super) password: Option<SecretString>,
    pub(super) password_file: String,
    pub(super) from: String,
    pub(super) reply_to: String,
    #[serde(with = "humantime_serde")]
    pub(super) timeout: Duration,
    pub(super) ca_file: String,
    pub(super) hello_name: String,
}

impl Default for RawSmtp {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: None,
            security: "starttls".into(),
            username: String::new(),
            password: None,
            password_file: String::new(),
            from: String::new(),
            reply_to: String::new(),
            timeout: Duration::from_secs(30),
            ca_file: String::new(),
            hello_name: String::new(),
        }
    }
}

/// `[delivery]`: transport, pace and retries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDelivery {
    pub(super) transport: String,
    pub(super) outbox_dir: String,
    pub(super) concurrency: usize,
    pub(super) threads: usize,
    pub(super) max_per_second: u32,
    pub(super) max_per_hour: u32,
    pub(super) max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub(super) retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub(super) retry_max: Duration,
    #[serde(with = "humantime_serde")]
    pub(super) give_up_after: Duration,
    #[serde(with = "humantime_serde")]
    pub(super) lease: Duration,
}

impl Default for RawDelivery {
    fn default() -> Self {
        let p = DeliveryPolicy::default();
        Self {
            transport: "smtp".into(),
            outbox_dir: "outbox".into(),
            concurrency: p.concurrency,
            threads: p.threads,
            max_per_second: p.max_per_second,
            max_per_hour: p.max_per_hour,
            max_attempts: p.max_attempts,
            retry_base: p.retry_base,
            retry_max: p.retry_max,
            give_up_after: p.give_up_after,
            lease: p.lease,
        }
    }
}

/// `[alerts]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAlerts {
    pub(super) email: String,
    pub(super) failure_ratio: f64,
}

impl Default for RawAlerts {
    fn default() -> Self {
        Self {
            email: String::new(),
            failure_ratio: 0.2,
        }
    }
}

/// `[database]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDatabase {
    pub(super) url: String,
}

/// The URL without its password.
impl std::fmt::Debug for RawDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawDatabase")
            .field("url", &crate::store::DatabaseUrl::new(self.url.as_str()))
            .finish()
    }
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: "sqlite://paperboy.db".into(),
        }
    }
}

/// `[digest]`: what an email shows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDigest {
    pub(super) text: String,
    pub(super) text_max_chars: usize,
    pub(super) max_authors: usize,
    pub(super) send_empty: bool,
    pub(super) templates_dir: String,
    pub(super) thumbnails: bool,
}

impl Default for RawDigest {
    fn default() -> Self {
        Self {
            text: "abstract".into(),
            text_max_chars: 600,
            max_authors: 4,
            send_empty: false,
            templates_dir: String::new(),
            thumbnails: false,
        }
    }
}

/// One subscriber, inline or a `[[subscribers]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscriber {
    #[serde(default)]
    pub(super) email: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) topics: Vec<String>,
    #[serde(default)]
    pub(super) send_empty: Option<bool>,
    #[serde(default)]
    pub(super) deliver_at: String,
    #[serde(default)]
    pub(super) timezone: String,
    #[serde(default)]
    pub(super) exclude: String,
    #[serde(default)]
    pub(super) min_upvotes: i64,
    #[serde(default)]
    pub(super) max_papers: Option<usize>,
}

/// A path setting: `None` when empty.
pub(super) fn non_empty_path(s: &str) -> Option<PathBuf> {
    let s = s.trim();
    (!s.is_empty()).then(|| PathBuf::from(s))
}
