//! Subscribers and their email addresses.

use std::fmt;
use std::str::FromStr;

/// A syntactically valid email address (checked by lettre's parser), kept as written (to
/// write to); who it names is its `key()` (in subscriber_key.rs, beside the rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(lettre::Address);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        lettre::Address::from_str(s)
            .map(Self)
            .map_err(|e| format!("invalid email address {s:?}: {e}"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    pub fn address(&self) -> &lettre::Address {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber as configured: who, and which topics (by name, in the order given).
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub email: EmailAddress,
    pub name: Option<String>,
    pub topics: Vec<String>,
    pub send_empty: bool,
    /// Deliver no earlier than this local time of day in this zone (the run plans everyone;
    /// this subscriber's email waits until then).
    pub deliver_at: Option<(chrono::NaiveTime, chrono_tz::Tz)>,
}

impl Subscriber {
    /// The first instant at or after `now` at which this subscriber's clock shows
    /// `deliver_at`; `None` when the subscriber takes the digest at once.
    pub fn not_before(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::TimeZone;
        let (at, tz) = self.deliver_at?;
        let local_now = now.with_timezone(&tz);
        let mut day = local_now.date_naive();
        for _ in 0..3 {
            // A time skipped by a DST change is taken an hour later; a repeated one, the first.
            let candidate = tz
                .from_local_datetime(&day.and_time(at))
                .earliest()
                .or_else(|| {
                    tz.from_local_datetime(&(day.and_time(at) + chrono::Duration::hours(1)))
                        .earliest()
                });
            if let Some(c) = candidate
                && c >= local_now
            {
                return Some(c.with_timezone(&chrono::Utc));
            }
            day = day.succ_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_before_is_the_next_local_delivery_time() {
        use chrono::TimeZone;
        let mut s = Subscriber {
            email: EmailAddress::parse("a@example.org").unwrap(),
            name: None,
            topics: vec![],
            send_empty: false,
            deliver_at: None,
        };
        let now = chrono::Utc.with_ymd_and_hms(2026, 4, 13, 6, 0, 0).unwrap();
        assert_eq!(s.not_before(now), None);
        s.deliver_at = Some((
            chrono::NaiveTime::from_hms_opt(7, 30, 0).unwrap(),
            chrono_tz::Asia::Tokyo,
        ));
        // 06:00 UTC is 15:00 in Tokyo: the next 07:30 there is tomorrow, 22:30 UTC today.
        assert_eq!(
            s.not_before(now),
            Some(
                chrono::Utc
                    .with_ymd_and_hms(2026, 4, 13, 22, 30, 0)
                    .unwrap()
            )
        );
        s.deliver_at = Some((
            chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            chrono_tz::UTC,
        ));
        assert_eq!(
            s.not_before(now),
            Some(chrono::Utc.with_ymd_and_hms(2026, 4, 13, 9, 0, 0).unwrap())
        );
    }

    #[test]
    fn addresses_are_checked_and_kept_as_written() {
        let a = EmailAddress::parse(" Ada@Example.ORG ").unwrap();
        assert_eq!(a.as_str(), "Ada@Example.ORG");
        assert!(EmailAddress::parse("not-an-address").is_err());
        assert!(EmailAddress::parse("a@").is_err());
    }
}
