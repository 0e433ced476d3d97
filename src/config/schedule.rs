//! `[schedule]`: the time zone, the cron of the ticks and how the daemon treats them.

use std::str::FromStr;
use std::time::Duration;

use super::raw::RawSchedule;
use crate::schedule::{DigestDay, Schedule, SchedulePolicy};

/// The `[schedule]` settings, checked.
pub(super) struct Timing {
    pub(super) timezone: chrono_tz::Tz,
    pub(super) schedule: Schedule,
    pub(super) policy: SchedulePolicy,
    /// Said of a cron that is valid but does not fire for years (`0 0 8 31 2 *`).
    pub(super) warning: Option<String>,
}

/// A cron that fires for the first time further away than this is worth a warning.
const NEVER_YEARS: i64 = 5;

pub(super) fn validate(
    raw: RawSchedule,
    digest_day: DigestDay,
    problems: &mut Vec<String>,
) -> Timing {
    let timezone = chrono_tz::Tz::from_str(raw.timezone.trim()).unwrap_or_else(|_| {
        problems.push(format!(
            "schedule.timezone: {:?} is not an IANA time zone name (e.g. \"Europe/Berlin\")",
            raw.timezone
        ));
        chrono_tz::UTC
    });
    let mut warning = None;
    let schedule = match Schedule::parse(&raw.cron, timezone, digest_day) {
        Ok(s) => {
            let now = chrono::Utc::now();
            let horizon = now + chrono::Duration::days(NEVER_YEARS * 366);
            if s.next_after(now).is_none_or(|next| next > horizon) {
                warning = Some(format!(
                    "schedule.cron: {:?} does not fire in the next {NEVER_YEARS} years: no \
                     digest will go out on schedule",
                    s.pattern()
                ));
            }
            s
        }
        Err(e) => {
            problems.push(format!("schedule.cron: {e}"));
            Schedule::parse("0 0 8 * * *", timezone, digest_day).expect("a valid literal")
        }
    };
    let workdays: Vec<chrono::Weekday> = raw
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
    if raw.late_retry.is_zero() && !raw.deadline.is_zero() {
        problems.push(
            "schedule.late_retry: must be above 0 (not to retry a late list, set \
             schedule.deadline = \"0s\")"
                .into(),
        );
    }
    Timing {
        timezone,
        schedule,
        policy: SchedulePolicy {
            catch_up_window: raw.catch_up_window,
            deadline: raw.deadline,
            late_retry: raw.late_retry.max(Duration::from_secs(1)),
            workdays,
        },
        warning,
    }
}
