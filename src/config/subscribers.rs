//! The subscribers: each one's address, topics, delivery time and own filter checked and
//! built, every problem named by its key (`subscribers[i].FIELD`).

use std::collections::HashMap;
use std::str::FromStr;

use super::header_text;
use super::raw::RawSubscriber;
use crate::domain::{EmailAddress, Subscriber, SubscriberKey};
use crate::topics::{SubscriberFilter, Topic, build_filter};

/// The subscribers, and their own filters by subscriber key (only those that filter).
pub(super) struct Subscribers {
    pub(super) list: Vec<Subscriber>,
    pub(super) filters: HashMap<SubscriberKey, SubscriberFilter>,
}

/// What a subscriber's settings fall back to.
pub(super) struct Defaults<'a> {
    /// The topics subscribers may name.
    pub(super) topics: &'a HashMap<String, Topic>,
    /// The zone of a `deliver_at` given without its own.
    pub(super) timezone: chrono_tz::Tz,
    /// `digest.send_empty`.
    pub(super) send_empty: bool,
}

/// Checks and builds the subscribers (`count` of them, for the capacity), each parsed or
/// with the reason it could not be.
pub(super) fn validate(
    raw: impl Iterator<Item = Result<RawSubscriber, String>>,
    count: usize,
    defaults: &Defaults,
    problems: &mut Vec<String>,
) -> Subscribers {
    let mut list = Vec::with_capacity(count);
    let mut filters = HashMap::new();
    // By mailbox, which is stricter than by key: two keys for one mailbox are refused too.
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(count);
    for (i, s) in raw.enumerate() {
        let key = format!("subscribers[{i}]");
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{key}{e}"));
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
        if let Some(first) = seen.insert(email.mailbox_fold(), i) {
            problems.push(format!(
                "{key}.email: {email} is already subscribed as subscribers[{first}]"
            ));
        }
        check_topics(&key, &email, &s.topics, defaults.topics, problems);
        let deliver_at = deliver_at(&key, &s, defaults.timezone, problems);
        let filter = build_filter(&key, &s.exclude, s.min_upvotes, s.max_papers, problems);
        if filter != SubscriberFilter::default() {
            filters.insert(email.key(), filter);
        }
        let name = s.name.trim();
        header_text::one_line(&format!("{key}.name"), name, "the To header", problems);
        list.push(Subscriber {
            email,
            name: (!name.is_empty()).then(|| name.to_string()),
            topics: s.topics,
            send_empty: s.send_empty.unwrap_or(defaults.send_empty),
            deliver_at,
        });
    }
    Subscribers { list, filters }
}

/// A subscriber names at least one topic, and only defined ones.
fn check_topics(
    key: &str,
    email: &EmailAddress,
    names: &[String],
    topics: &HashMap<String, Topic>,
    problems: &mut Vec<String>,
) {
    if names.is_empty() {
        problems.push(format!("{key}.topics: {email} names no topic"));
    }
    for t in names {
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
}

/// The subscriber's own delivery time (`deliver_at`, in `timezone` or the schedule's zone).
fn deliver_at(
    key: &str,
    s: &RawSubscriber,
    schedule_zone: chrono_tz::Tz,
    problems: &mut Vec<String>,
) -> Option<(chrono::NaiveTime, chrono_tz::Tz)> {
    match (s.deliver_at.trim(), s.timezone.trim()) {
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
                Some(schedule_zone)
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
    }
}
