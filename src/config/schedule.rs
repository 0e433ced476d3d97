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
}

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
    let schedule = Schedule::parse(&raw.cron, timezone, digest_day).unwrap_or_else(|e| {
        problems.push(format!("schedule.cron: {e}"));
        Schedule::parse("0 0 8 * * *", timezone, digest_day).expect("a valid literal")
    });
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
    Timing {
        timezone,
        schedule,
        policy: SchedulePolicy {
            catch_up_window: raw.catch_up_window,
            deadline: raw.deadline,
            late_retry: raw.late_retry.max(Duration::from_secs(1)),
            workdays,
        },
    }
}
