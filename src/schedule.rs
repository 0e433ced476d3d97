//! When digests go out: a 6-field cron (seconds first) evaluated in an IANA time zone, and
//! how the daemon treats its ticks (catch-up, retries of a late list, workdays).
//!
//! The next send instant is computed afresh from the wall clock after every tick (croner with
//! chrono-tz), so 08:00 stays 08:00 local time across daylight-saving changes. (We do not use
//! tokio-cron-scheduler: its time-zone jobs freeze the zone's UTC offset when created, and it
//! does not replay missed ticks; see the daemon for catch-up.)

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Which day's list a tick sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestDay {
    Yesterday,
    Today,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    pattern: String,
    tz: Tz,
    digest_day: DigestDay,
}

impl Schedule {
    pub fn parse(pattern: &str, tz: Tz, digest_day: DigestDay) -> Result<Self, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(pattern.trim())
            .map_err(|e| format!("{pattern:?} is not a 6-field cron (seconds first): {e}"))?;
        Ok(Self {
            cron,
            pattern: pattern.trim().to_string(),
            tz,
            digest_day,
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The latest tick at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The digest date a tick sends: its calendar date in the zone, or the day before.
    pub fn digest_date(&self, tick: DateTime<Utc>) -> NaiveDate {
        let day = tick.with_timezone(&self.tz).date_naive();
        match self.digest_day {
            DigestDay::Today => day,
            DigestDay::Yesterday => day.pred_opt().unwrap_or(day),
        }
    }
}

/// How the daemon treats its ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulePolicy {
    /// A missed tick younger than this is run at start-up or wake-up; older ones are skipped.
    pub catch_up_window: Duration,
    /// How long after its tick a date whose list is empty or unreachable is retried.
    pub deadline: Duration,
    /// How often it is retried until then.
    pub late_retry: Duration,
    /// Days whose list is expected to hold papers: an empty one is late, not a quiet day.
    pub workdays: Vec<chrono::Weekday>,
}

impl SchedulePolicy {
    pub fn is_workday(&self, date: NaiveDate) -> bool {
        self.workdays.contains(&date.weekday())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    fn berlin(pattern: &str) -> Schedule {
        Schedule::parse(pattern, chrono_tz::Europe::Berlin, DigestDay::Yesterday).unwrap()
    }

    #[test]
    fn eight_oclock_stays_eight_oclock_local_across_both_dst_changes() {
        let s = berlin("0 0 8 * * Mon-Fri");
        // Spring forward: Sunday 2026-03-29. Fall back: Sunday 2026-10-25.
        for start in [
            Utc.with_ymd_and_hms(2026, 3, 25, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 10, 21, 12, 0, 0).unwrap(),
        ] {
            let mut t = start;
            let mut offsets = std::collections::BTreeSet::new();
            for _ in 0..6 {
                t = s.next_after(t).unwrap();
                let local = t.with_timezone(&chrono_tz::Europe::Berlin);
                assert_eq!(
                    (local.hour(), local.minute(), local.second()),
                    (8, 0, 0),
                    "{local}"
                );
                assert!(local.format("%a").to_string() != "Sat");
                offsets.insert(local.format("%z").to_string());
            }
            assert_eq!(offsets.len(), 2, "the week spans the change: {offsets:?}");
        }
        let after_spring = s
            .next_after(Utc.with_ymd_and_hms(2026, 3, 29, 12, 0, 0).unwrap())
            .unwrap();
        assert_eq!(
            after_spring,
            Utc.with_ymd_and_hms(2026, 3, 30, 6, 0, 0).unwrap()
        );
        let after_fall = s
            .next_after(Utc.with_ymd_and_hms(2026, 10, 25, 12, 0, 0).unwrap())
            .unwrap();
        assert_eq!(
            after_fall,
            Utc.with_ymd_and_hms(2026, 10, 26, 7, 0, 0).unwrap()
        );
    }

    #[test]
    fn the_latest_tick_and_its_digest_date() {
        let s = berlin("0 0 8 * * Mon-Fri");
        let monday_noon = Utc.with_ymd_and_hms(2026, 4, 13, 10, 0, 0).unwrap();
        let tick = s.latest_at_or_before(monday_noon).unwrap();
        assert_eq!(tick, Utc.with_ymd_and_hms(2026, 4, 13, 6, 0, 0).unwrap());
        assert_eq!(
            s.digest_date(tick),
            NaiveDate::from_ymd_opt(2026, 4, 12).unwrap()
        );
        assert_eq!(s.latest_at_or_before(tick), Some(tick), "inclusive");
    }

    #[test]
    fn five_fields_and_junk_are_refused() {
        assert!(Schedule::parse("0 8 * * *", chrono_tz::UTC, DigestDay::Today).is_err());
        assert!(Schedule::parse("every morning", chrono_tz::UTC, DigestDay::Today).is_err());
    }
}
