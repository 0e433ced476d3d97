//! Settings: layered loading (file, then `PAPERBOY__SECTION__KEY` env vars) and validation into
//! typed values. Every problem names its key and the file it came from.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::SecretString;
use serde::Deserialize;

use crate::delivery_policy::DeliveryPolicy;
use crate::domain::{EmailAddress, Subscriber};
use crate::schedule::{Schedule, SchedulePolicy};
use crate::source::SourceOptions;
use crate::store::DatabaseUrl;
use crate::topics::{SubscriberFilter, Topic, TopicSettings, build_filter, build_topics};

/// The example configuration shipped in `config/default.toml`, embedded so that the binary runs
/// with no file at all.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

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
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration ({}):", self.origin)?;
        for problem in &self.problems {
            write!(f, "\n  - {}", problem.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------- raw, as written

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    source: RawSource,
    schedule: RawSchedule,
    daemon: RawDaemon,
    http: RawHttp,
    unsubscribe: RawUnsubscribe,
    dkim: RawDkim,
    smtp: RawSmtp,
    delivery: RawDelivery,
    database: RawDatabase,
    digest: RawDigest,
    alerts: RawAlerts,
    topics: BTreeMap<String, TopicSettings>,
    subscribers: Vec<RawSubscriber>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSource {
    base_url: String,
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    digest_day: String,
    max_rate_limit_retries: u32,
    #[serde(with = "humantime_serde")]
    max_retry_wait: Duration,
    retries: u32,
    #[serde(with = "humantime_serde")]
    retry_base: Duration,
    lookback_days: u32,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSchedule {
    cron: String,
    timezone: String,
    #[serde(with = "humantime_serde")]
    catch_up_window: Duration,
    #[serde(with = "humantime_serde")]
    deadline: Duration,
    #[serde(with = "humantime_serde")]
    late_retry: Duration,
    workdays: Vec<String>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDaemon {
    #[serde(with = "humantime_serde")]
    grace_period: Duration,
}

impl Default for RawDaemon {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawDkim {
    selector: String,
    domain: String,
    private_key_file: String,
    algorithm: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawUnsubscribe {
    base_url: String,
    secret: Option<SecretString>,
    secret_file: String,
    mailto: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    security: String,
    username: String,
    password: Option<SecretString>,
    password_file: String,
    from: String,
    reply_to: String,
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    ca_file: String,
    hello_name: String,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDelivery {
    transport: String,
    outbox_dir: String,
    concurrency: usize,
    threads: usize,
    max_per_second: u32,
    max_per_hour: u32,
    max_attempts: u32,
    #[serde(with = "humantime_serde")]
    retry_base: Duration,
    #[serde(with = "humantime_serde")]
    retry_max: Duration,
    #[serde(with = "humantime_serde")]
    give_up_after: Duration,
    #[serde(with = "humantime_serde")]
    lease: Duration,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAlerts {
    email: String,
    failure_ratio: f64,
}

impl Default for RawAlerts {
    fn default() -> Self {
        Self {
            email: String::new(),
            failure_ratio: 0.2,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: String,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: "sqlite://paperboy.db".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDigest {
    text: String,
    text_max_chars: usize,
    max_authors: usize,
    send_empty: bool,
    templates_dir: String,
    thumbnails: bool,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriber {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    send_empty: Option<bool>,
    #[serde(default)]
    deliver_at: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    exclude: String,
    #[serde(default)]
    min_upvotes: i64,
    #[serde(default)]
    max_papers: Option<usize>,
}

// ---------------------------------------------------------------- typed, validated

pub use crate::schedule::DigestDay;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportKind {
    Smtp,
    Outbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextChoice {
    Abstract,
    AiSummary,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub hello_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub text: TextChoice,
    pub text_max_chars: usize,
    pub max_authors: usize,
    pub send_empty: bool,
    pub templates_dir: Option<PathBuf>,
    /// Show each paper's thumbnail (an external image); off by default.
    pub thumbnails: bool,
}

/// How subscribers leave: List-Unsubscribe headers and signed links.
#[derive(Debug, Clone)]
pub struct UnsubscribeConfig {
    /// The public address of the HTTP listener's /unsubscribe (https), if any.
    pub base_url: Option<url::Url>,
    /// The key that signs the tokens in links.
    pub secret: Option<SecretString>,
    /// Where mailto: unsubscribe requests go (default: the sender).
    pub mailto: Option<EmailAddress>,
}

/// Where and when the operator is told that something went wrong.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub email: Option<EmailAddress>,
    pub failure_ratio: f64,
}

#[derive(Debug, Clone)]
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
    pub filters: HashMap<String, SubscriberFilter>,
}

impl Config {
    /// The subscriber's own limits (none by default).
    pub fn filter_for(&self, key: &str) -> &SubscriberFilter {
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
        let (rest, tables) = split_subscriber_tables(toml);
        let mut raw: RawSettings = config::Config::builder()
            .add_source(config::File::from_str(&rest, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("PAPERBOY")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .map_err(|e| fail(e.to_string()))?
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
        let from_tables = tables.into_iter().map(|(line, body)| {
            toml::from_str::<RawSubscriber>(&toml[body]).map_err(|e| {
                format!(
                    "(the [[subscribers]] table at line {line}): {}",
                    e.message()
                )
            })
        });
        validate(
            raw,
            origin.to_string(),
            count,
            inline.into_iter().map(Ok).chain(from_tables),
        )
    }
}

/// Splits a TOML document into the text of its `[[subscribers]]` tables (each with the line
/// of its header, and the byte range of its body) and the rest of the document. A header is a
/// `[` that opens a line outside any value; TOML's own lexer tells strings, comments and
/// brackets apart, so a `[` inside a string or a multi-line array is not mistaken for one.
fn split_subscriber_tables(text: &str) -> (String, Vec<(usize, std::ops::Range<usize>)>) {
    use toml_parser::lexer::TokenKind;
    // (start of the header line, the header's line number, a [[subscribers]] table?)
    let mut headers: Vec<(usize, usize, bool)> = Vec::new();
    let mut line = 1;
    let mut line_start = true;
    let mut in_header = false;
    let mut depth = 0usize;
    for token in toml_parser::Source::new(text).lex() {
        let span = token.span();
        match token.kind() {
            TokenKind::Newline => {
                line += 1;
                line_start = true;
                in_header = false;
            }
            TokenKind::Whitespace | TokenKind::Comment => {}
            TokenKind::MlBasicString | TokenKind::MlLiteralString => {
                line += text[span.start()..span.end()].matches('\n').count();
                line_start = false;
            }
            _ if in_header => {}
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                in_header = true;
                let head = &text[span.start()..];
                let head = &head[..head.find('\n').unwrap_or(head.len())];
                let subscribers = head
                    .strip_prefix("[[")
                    .and_then(|h| h.split_once("]]"))
                    .is_some_and(|(name, _)| {
                        name.trim().trim_matches(['"', '\'']) == "subscribers"
                    });
                headers.push((span.start(), line, subscribers));
                line_start = false;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.saturating_sub(1);
                line_start = false;
            }
            _ => line_start = false,
        }
    }
    let mut rest = String::with_capacity(text.len().min(1 << 16));
    let mut tables = Vec::new();
    let mut from = 0;
    for (i, &(start, line, subscribers)) in headers.iter().enumerate() {
        let end = headers.get(i + 1).map_or(text.len(), |h| h.0);
        if subscribers {
            rest.push_str(&text[from..start]);
            // Blank lines in their place keep the line numbers of later errors right.
            let lines = text[start..end].matches('\n').count();
            rest.extend(std::iter::repeat_n('\n', lines));
            let body = text[start..end].find('\n').map_or(end, |n| start + n + 1);
            tables.push((line, body..end));
            from = end;
        }
    }
    rest.push_str(&text[from..]);
    (rest, tables)
}

/// Validates the settings; the subscribers (`count` of them) come separately, each parsed or
/// with the reason it could not be.
fn validate(
    raw: RawSettings,
    origin: String,
    count: usize,
    raw_subscribers: impl Iterator<Item = Result<RawSubscriber, String>>,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();

    let digest_day = match raw.source.digest_day.as_str() {
        "yesterday" => DigestDay::Yesterday,
        "today" => DigestDay::Today,
        other => {
            problems.push(format!(
                "source.digest_day: {other:?} is neither \"yesterday\" nor \"today\""
            ));
            DigestDay::Yesterday
        }
    };
    let base_url = raw.source.base_url.trim().to_string();
    if !(base_url.starts_with("http://")
        || base_url.starts_with("https://")
        || base_url.starts_with("file://"))
    {
        problems.push(format!(
            "source.base_url: {base_url:?} must start with https://, http:// or file://"
        ));
    }
    let timezone = chrono_tz::Tz::from_str(raw.schedule.timezone.trim()).unwrap_or_else(|_| {
        problems.push(format!(
            "schedule.timezone: {:?} is not an IANA time zone name (e.g. \"Europe/Berlin\")",
            raw.schedule.timezone
        ));
        chrono_tz::UTC
    });

    let smtp = validate_smtp(raw.smtp, &mut problems);
    let schedule = Schedule::parse(&raw.schedule.cron, timezone, digest_day).unwrap_or_else(|e| {
        problems.push(format!("schedule.cron: {e}"));
        Schedule::parse("0 0 8 * * *", timezone, digest_day).expect("a valid literal")
    });
    let unsubscribe = validate_unsubscribe(raw.unsubscribe, &mut problems);
    let dkim = validate_dkim(raw.dkim, &mut problems);
    let workdays: Vec<chrono::Weekday> = raw
        .schedule
        .workdays
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.parse()
                .map_err(|_| {
                    problems.push(format!(
                        "schedule.workdays[{i}]: {d:?} is not a weekday like \"Mon\""
                    ))
                })
                .ok()
        })
        .collect();
    let http_listen = match raw.http.listen.trim() {
        "" => None,
        l => l
            .parse()
            .map_err(|e| {
                problems.push(format!(
                    "http.listen: {l:?} is not an address:port like \"127.0.0.1:9310\": {e}"
                ))
            })
            .ok(),
    };

    let transport = match raw.delivery.transport.as_str() {
        "smtp" => TransportKind::Smtp,
        "outbox" => TransportKind::Outbox,
        other => {
            problems.push(format!(
                "delivery.transport: {other:?} is neither \"smtp\" nor \"outbox\""
            ));
            TransportKind::Outbox
        }
    };
    if raw.delivery.outbox_dir.trim().is_empty() {
        problems.push("delivery.outbox_dir: must not be empty".into());
    }
    let d = &raw.delivery;
    if d.concurrency == 0 || d.concurrency > 256 {
        problems.push(format!(
            "delivery.concurrency: {} is not between 1 and 256",
            d.concurrency
        ));
    }
    if d.threads > 1024 {
        problems.push(format!(
            "delivery.threads: {} is more than 1024 (0: one fewer than the CPUs)",
            d.threads
        ));
    }
    if d.max_attempts == 0 {
        problems.push("delivery.max_attempts: must be at least 1".into());
    }
    if d.retry_base.is_zero() || d.retry_max < d.retry_base {
        problems.push("delivery.retry_base must be above 0 and at most delivery.retry_max".into());
    }
    if d.lease < Duration::from_secs(1) {
        problems.push("delivery.lease: must be at least 1s".into());
    }
    let delivery = DeliveryPolicy {
        concurrency: d.concurrency.clamp(1, 256),
        threads: d.threads.min(1024),
        max_per_second: d.max_per_second,
        max_per_hour: d.max_per_hour,
        max_attempts: d.max_attempts.max(1),
        retry_base: d.retry_base,
        retry_max: d.retry_max,
        give_up_after: d.give_up_after,
        lease: d.lease,
    };
    let alerts = AlertsConfig {
        email: match raw.alerts.email.trim() {
            "" => None,
            e => EmailAddress::parse(e)
                .map_err(|e| problems.push(format!("alerts.email: {e}")))
                .ok(),
        },
        failure_ratio: raw.alerts.failure_ratio,
    };
    if !(0.0..=1.0).contains(&alerts.failure_ratio) {
        problems.push(format!(
            "alerts.failure_ratio: {} is not between 0 and 1",
            alerts.failure_ratio
        ));
    }

    let database_url = DatabaseUrl::new(raw.database.url.trim());
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| database_url.expose_secret().starts_with(scheme))
    {
        problems.push(format!(
            "database.url: {database_url:?}: not a sqlite://PATH or postgres://USER@HOST/DB URL"
        ));
    }

    let text = match raw.digest.text.as_str() {
        "abstract" => TextChoice::Abstract,
        "ai_summary" => TextChoice::AiSummary,
        other => {
            problems.push(format!(
                "digest.text: {other:?} is neither \"abstract\" nor \"ai_summary\""
            ));
            TextChoice::Abstract
        }
    };
    let digest = DigestConfig {
        text,
        text_max_chars: raw.digest.text_max_chars,
        max_authors: raw.digest.max_authors.max(1),
        send_empty: raw.digest.send_empty,
        templates_dir: non_empty_path(&raw.digest.templates_dir),
        thumbnails: raw.digest.thumbnails,
    };

    let topics = build_topics(raw.topics, &mut problems);

    let mut subscribers = Vec::with_capacity(count);
    let mut filters = HashMap::new();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(count);
    for (i, s) in raw_subscribers.enumerate() {
        let key = format!("subscribers[{i}]");
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{key} {e}"));
                continue;
            }
        };
        let email = match EmailAddress::parse(&s.email) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("{key}.email: {e}"));
                continue;
            }
        };
        if let Some(first) = seen.insert(email.key().to_lowercase(), i) {
            problems.push(format!(
                "{key}.email: {email} is already subscribed as subscribers[{first}]"
            ));
        }
        if s.topics.is_empty() {
            problems.push(format!("{key}.topics: {email} names no topic"));
        }
        for t in &s.topics {
            if !topics.contains_key(t) {
                let mut known: Vec<&str> = topics.keys().map(String::as_str).collect();
                known.sort();
                problems.push(format!(
                    "{key}.topics: unknown topic {t:?} for {email} (defined: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        let deliver_at = match (s.deliver_at.trim(), s.timezone.trim()) {
            ("", "") => None,
            ("", _) => {
                problems.push(format!("{key}.timezone: set only together with deliver_at"));
                None
            }
            (at, zone) => {
                let time = chrono::NaiveTime::parse_from_str(at, "%H:%M")
                    .or_else(|_| chrono::NaiveTime::parse_from_str(at, "%H:%M:%S"))
                    .map_err(|_| {
                        problems.push(format!(
                            "{key}.deliver_at: {at:?} is not a time like \"07:30\""
                        ))
                    })
                    .ok();
                let zone = if zone.is_empty() {
                    Some(timezone)
                } else {
                    chrono_tz::Tz::from_str(zone)
                        .map_err(|_| {
                            problems.push(format!(
                                "{key}.timezone: {zone:?} is not an IANA time zone name"
                            ))
                        })
                        .ok()
                };
                time.zip(zone)
            }
        };
        let filter = build_filter(&key, &s.exclude, s.min_upvotes, s.max_papers, &mut problems);
        if filter != SubscriberFilter::default() {
            filters.insert(email.key(), filter);
        }
        let name = s.name.trim();
        subscribers.push(Subscriber {
            email,
            name: (!name.is_empty()).then(|| name.to_string()),
            topics: s.topics,
            send_empty: s.send_empty.unwrap_or(digest.send_empty),
            deliver_at,
        });
    }

    if !problems.is_empty() {
        return Err(ConfigError { origin, problems });
    }
    Ok(Config {
        origin,
        source: SourceOptions {
            base_url,
            timeout: raw.source.timeout,
            max_rate_limit_retries: raw.source.max_rate_limit_retries,
            max_retry_wait: raw.source.max_retry_wait,
            retries: raw.source.retries,
            retry_base: raw.source.retry_base,
        },
        digest_day,
        timezone,
        lookback_days: raw.source.lookback_days,
        schedule,
        schedule_policy: SchedulePolicy {
            catch_up_window: raw.schedule.catch_up_window,
            deadline: raw.schedule.deadline,
            late_retry: raw.schedule.late_retry.max(Duration::from_secs(1)),
            workdays,
        },
        grace_period: raw.daemon.grace_period,
        http_listen,
        unsubscribe,
        dkim,
        smtp,
        transport,
        outbox_dir: PathBuf::from(raw.delivery.outbox_dir.trim()),
        delivery,
        alerts,
        database_url,
        digest,
        topics,
        subscribers,
        filters,
    })
}

fn validate_smtp(s: RawSmtp, problems: &mut Vec<String>) -> SmtpConfig {
    let security = match s.security.as_str() {
        "none" => Security::None,
        "starttls" => Security::StartTls,
        "tls" => Security::Tls,
        other => {
            problems.push(format!(
                "smtp.security: {other:?} is not one of \"none\", \"starttls\", \"tls\""
            ));
            Security::StartTls
        }
    };
    let port = s.port.unwrap_or(match security {
        Security::Tls => 465,
        Security::StartTls => 587,
        Security::None => 25,
    });
    if s.host.trim().is_empty() {
        problems.push("smtp.host: must not be empty".into());
    }
    let from = if s.from.trim().is_empty() {
        problems
            .push("smtp.from: required: the sender, e.g. \"Paperboy <digest@example.org>\"".into());
        Mailbox::new(None, "invalid@invalid".parse().expect("a valid literal"))
    } else {
        Mailbox::from_str(s.from.trim()).unwrap_or_else(|e| {
            problems.push(format!("smtp.from: invalid mailbox {:?}: {e}", s.from));
            Mailbox::new(None, "invalid@invalid".parse().expect("a valid literal"))
        })
    };
    let reply_to = (!s.reply_to.trim().is_empty())
        .then(|| {
            Mailbox::from_str(s.reply_to.trim())
                .map_err(|e| {
                    problems.push(format!(
                        "smtp.reply_to: invalid mailbox {:?}: {e}",
                        s.reply_to
                    ))
                })
                .ok()
        })
        .flatten();
    let password_file = non_empty_path(&s.password_file);
    let password = match (s.password, password_file) {
        (Some(_), Some(_)) => {
            problems.push("smtp.password and smtp.password_file: set one, not both".into());
            None
        }
        (Some(p), None) => Some(p),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(text) => Some(SecretString::from(
                text.trim_end_matches(['\r', '\n']).to_string(),
            )),
            Err(e) => {
                problems.push(format!(
                    "smtp.password_file: cannot read {}: {e}",
                    f.display()
                ));
                None
            }
        },
        (None, None) => None,
    };
    let username = (!s.username.trim().is_empty()).then(|| s.username.trim().to_string());
    if username.is_some() && password.is_none() && problems.iter().all(|p| !p.contains("password"))
    {
        problems
            .push("smtp.username is set but neither smtp.password nor smtp.password_file".into());
    }
    if username.is_some() && security == Security::None {
        problems.push(
            "smtp.username is set but smtp.security = \"none\": the password would cross the \
             network in clear text; use \"starttls\" or \"tls\""
                .into(),
        );
    }
    if username.is_none() && password.is_some() {
        problems.push("smtp.password is set but smtp.username is empty".into());
    }
    SmtpConfig {
        host: s.host.trim().to_string(),
        port,
        security,
        username,
        password,
        from,
        reply_to,
        timeout: s.timeout,
        ca_file: non_empty_path(&s.ca_file),
        hello_name: (!s.hello_name.trim().is_empty()).then(|| s.hello_name.trim().to_string()),
    }
}

fn validate_dkim(
    d: RawDkim,
    problems: &mut Vec<String>,
) -> Option<Arc<lettre::message::dkim::DkimConfig>> {
    use lettre::message::dkim::{
        DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
        DkimSigningKey,
    };
    use lettre::message::header::HeaderName;
    if d.selector.trim().is_empty() && d.domain.trim().is_empty() && d.private_key_file.is_empty() {
        return None;
    }
    let mut missing = |key: &str, v: &str| {
        if v.trim().is_empty() {
            problems.push(format!("dkim.{key}: required when [dkim] is configured"));
        }
    };
    missing("selector", &d.selector);
    missing("domain", &d.domain);
    missing("private_key_file", &d.private_key_file);
    let algorithm = match d.algorithm.trim() {
        "" | "rsa" => DkimSigningAlgorithm::Rsa,
        "ed25519" => DkimSigningAlgorithm::Ed25519,
        other => {
            problems.push(format!(
                "dkim.algorithm: {other:?} is neither \"rsa\" nor \"ed25519\""
            ));
            return None;
        }
    };
    let pem = match std::fs::read_to_string(d.private_key_file.trim()) {
        Ok(p) => p,
        Err(e) => {
            if !d.private_key_file.trim().is_empty() {
                problems.push(format!(
                    "dkim.private_key_file: cannot read {}: {e}",
                    d.private_key_file
                ));
            }
            return None;
        }
    };
    let key = match DkimSigningKey::new(pem.trim(), algorithm) {
        Ok(k) => k,
        Err(e) => {
            problems.push(format!(
                "dkim.private_key_file: {} is not a usable key (RSA keys in PKCS#1 PEM, \
                 \"BEGIN RSA PRIVATE KEY\"; ed25519 as base64): {e}",
                d.private_key_file
            ));
            return None;
        }
    };
    // RFC 8058: the List-Unsubscribe headers must be covered by the signature. Not
    // Content-Type: lettre 0.11 signs it in another form than it writes it (folded), and
    // verifiers then reject the signature (found with dkimpy).
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "MIME-Version",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    Some(Arc::new(DkimConfig::new(
        d.selector.trim().to_string(),
        d.domain.trim().to_string(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )))
}

fn validate_unsubscribe(u: RawUnsubscribe, problems: &mut Vec<String>) -> UnsubscribeConfig {
    let secret = match (u.secret, non_empty_path(&u.secret_file)) {
        (Some(_), Some(_)) => {
            problems
                .push("unsubscribe.secret and unsubscribe.secret_file: set one, not both".into());
            None
        }
        (Some(s), None) => Some(s),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(t) => Some(SecretString::from(t.trim().to_string())),
            Err(e) => {
                problems.push(format!(
                    "unsubscribe.secret_file: cannot read {}: {e}",
                    f.display()
                ));
                None
            }
        },
        (None, None) => None,
    };
    if let Some(s) = &secret
        && secrecy::ExposeSecret::expose_secret(s).len() < 16
    {
        problems.push("unsubscribe.secret: must be at least 16 characters".into());
    }
    let base_url = match u.base_url.trim() {
        "" => None,
        b => match url::Url::parse(b) {
            // RFC 8058 one-click needs https; plain http only on this machine (tests, a local
            // proxy in front).
            Ok(url)
                if url.scheme() == "https"
                    || (url.scheme() == "http"
                        && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))) =>
            {
                Some(url)
            }
            _ => {
                problems.push(format!(
                    "unsubscribe.base_url: {b:?} is not an https URL like \"https://digest.example.org/unsubscribe\""
                ));
                None
            }
        },
    };
    if base_url.is_some() && secret.is_none() {
        problems.push(
            "unsubscribe.base_url needs unsubscribe.secret (or secret_file) to sign its links"
                .into(),
        );
    }
    let mailto = match u.mailto.trim() {
        "" => None,
        m => EmailAddress::parse(m)
            .map_err(|e| problems.push(format!("unsubscribe.mailto: {e}")))
            .ok(),
    };
    UnsubscribeConfig {
        base_url,
        secret,
        mailto,
    }
}

fn non_empty_path(s: &str) -> Option<PathBuf> {
    let s = s.trim();
    (!s.is_empty()).then(|| PathBuf::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_tables_are_split_off_by_the_toml_lexer_not_by_lines() {
        let text = "[smtp]\nfrom = \"a@example.org\"\n\
             note = \"\"\"\n[[subscribers]]\nemail = \"fake@example.org\"\n\"\"\"\n\
             [topics.ml]\nkeywords = [\n[\"x\"] ,\n]\n\
             [[subscribers]] # the first\nemail = \"one@example.org\"\ntopics = [\n  \"ml\",\n]\n\
             [[ \"subscribers\" ]]\nemail = \"two@example.org\"\n\
             [database]\nurl = \"sqlite://x.db\"\n";
        let (rest, tables) = split_subscriber_tables(text);
        let bodies: Vec<(usize, &str)> =
            tables.iter().map(|(l, r)| (*l, &text[r.clone()])).collect();
        assert_eq!(
            bodies,
            [
                (
                    11,
                    "email = \"one@example.org\"\ntopics = [\n  \"ml\",\n]\n"
                ),
                (16, "email = \"two@example.org\"\n"),
            ]
        );
        // The string that looks like a table, the nested array and the other tables stay.
        assert!(
            rest.contains("[[subscribers]]\nemail = \"fake@example.org\""),
            "{rest}"
        );
        assert!(
            rest.contains("[\"x\"] ,") && rest.contains("[database]"),
            "{rest}"
        );
        assert!(!rest.contains("one@") && !rest.contains("two@"), "{rest}");
        // The removed tables leave blank lines: what follows keeps its line number.
        assert_eq!(rest.lines().position(|l| l == "[database]"), Some(17));
    }

    #[test]
    fn a_bad_subscriber_table_is_named_with_its_line_and_inline_ones_still_count() {
        let base = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";
        let e = Config::load_str(
            &format!("{base}[[subscribers]]\nemail = \"a@example.org\"\ntopcs = [\"ml\"]\n"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("subscribers[0] (the [[subscribers]] table at line 5)")
                && e.contains("unknown field `topcs`"),
            "{e}"
        );
        // The inline form of the list goes through the config crate as before.
        let c = Config::load_str(
            &format!("subscribers = [{{ email = \"x@example.org\", topics = [\"ml\"] }}]\n{base}"),
            "t",
        )
        .unwrap();
        assert_eq!(c.subscribers[0].email.key(), "x@example.org");
    }

    #[test]
    fn worker_threads_leave_a_core_unless_set() {
        let base = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";
        let auto = Config::load_str(base, "t").unwrap().delivery;
        assert_eq!(auto.threads, 0);
        assert_eq!(
            [1, 2, 4, 16].map(|cpus| auto.worker_threads(cpus)),
            [1, 1, 3, 15]
        );
        let set = Config::load_str(&format!("{base}[delivery]\nthreads = 2\n"), "t").unwrap();
        assert_eq!(set.delivery.worker_threads(1), 2);
        assert_eq!(set.delivery.worker_threads(16), 2);
        let e = Config::load_str(&format!("{base}[delivery]\nthreads = 5000\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("delivery.threads: 5000"), "{e}");
    }

    #[test]
    fn the_embedded_example_is_valid() {
        let c = Config::load_str(EMBEDDED_DEFAULT, "embedded").unwrap();
        assert_eq!(c.transport, TransportKind::Outbox);
        assert_eq!(c.topics.len(), 2);
        assert_eq!(c.subscribers.len(), 1);
    }

    #[test]
    fn the_production_example_is_valid_once_its_password_file_exists() {
        let pw = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pw.path(), "hunter2\n").unwrap();
        let text = include_str!("../deploy/config.toml")
            .replace("/etc/paperboy/smtp-password", pw.path().to_str().unwrap());
        let c = Config::load_str(&text, "deploy/config.toml").unwrap();
        assert_eq!(c.transport, TransportKind::Smtp);
        let pass = c
            .smtp
            .password
            .as_ref()
            .map(|p| secrecy::ExposeSecret::expose_secret(p).to_string());
        assert_eq!(pass.as_deref(), Some("hunter2"), "trailing newline dropped");
    }

    fn problems(toml: &str) -> String {
        Config::load_str(toml, "t.toml").unwrap_err().to_string()
    }

    const BASE: &str = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";

    #[test]
    fn every_problem_is_named_by_its_key() {
        let e = problems(&format!(
            "{BASE}[[subscribers]]\nemail = \"x@\"\ntopics = [\"ml\"]\n\
             [[subscribers]]\nemail = \"b@example.org\"\ntopics = [\"nope\"]\n\
             [[subscribers]]\nemail = \"B@EXAMPLE.org\"\ntopics = [\"ml\"]\n"
        ));
        assert!(
            e.contains("subscribers[0].email: invalid email address \"x@\""),
            "{e}"
        );
        assert!(
            e.contains("subscribers[1].topics: unknown topic \"nope\""),
            "{e}"
        );
        assert!(e.contains("subscribers[2].email"), "{e}");
        assert!(e.contains("already subscribed as subscribers[1]"), "{e}");
    }

    #[test]
    fn empty_keywords_missing_from_and_bad_zone_are_refused() {
        let e = problems("[topics.ml]\nkeywords = []\n[schedule]\ntimezone = \"Mars/Olympus\"\n");
        assert!(
            e.contains("topics.ml.keywords: must list at least one keyword"),
            "{e}"
        );
        assert!(e.contains("smtp.from: required"), "{e}");
        assert!(e.contains("schedule.timezone"), "{e}");
    }

    #[test]
    fn a_login_over_plain_text_is_refused() {
        let e = problems(&BASE.replace(
            "[smtp]\n",
            "[smtp]\nsecurity = \"none\"\nusername = \"u\"\npassword = \"pw-42\"\n",
        ));
        assert!(e.contains("clear text"), "{e}");
        assert!(!e.contains("pw-42"), "the password is not echoed: {e}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = problems(&format!("{BASE}[smtp2]\nx = 1\n"));
        assert!(e.contains("smtp2"), "{e}");
    }

    #[test]
    fn a_problem_ends_where_its_text_does() {
        // The TOML parser's message ends with a line break of its own.
        let e = problems(&format!("{BASE}garbage [[\n"));
        assert!(e.contains("TOML parse error"), "{e}");
        assert_eq!(e.trim_end(), e, "{e:?}");
    }
}
