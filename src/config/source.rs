//! `[source]`: where the daily lists come from and which day a tick sends.

use super::raw::RawSource;
use crate::schedule::DigestDay;
use crate::source::SourceOptions;

/// The `[source]` settings, checked.
pub(super) struct Source {
    pub(super) options: SourceOptions,
    pub(super) digest_day: DigestDay,
    pub(super) lookback_days: u32,
}

pub(super) fn validate(raw: RawSource, problems: &mut Vec<String>) -> Source {
    let digest_day = match raw.digest_day.as_str() {
        "yesterday" => DigestDay::Yesterday,
        "today" => DigestDay::Today,
        other => {
            problems.push(format!(
                "source.digest_day: {other:?} is neither \"yesterday\" nor \"today\""
            ));
            DigestDay::Yesterday
        }
    };
    let base_url = raw.base_url.trim().to_string();
    if !(base_url.starts_with("http://")
        || base_url.starts_with("https://")
        || base_url.starts_with("file://"))
    {
        problems.push(format!(
            "source.base_url: {base_url:?} must start with https://, http:// or file://"
        ));
    }
    if raw.timeout.is_zero() {
        problems.push("source.timeout: must be above 0 (every request would time out)".into());
    }
    if raw.retry_base.is_zero() && raw.retries > 0 {
        problems.push(
            "source.retry_base: must be above 0 (for no retries, set source.retries = 0)".into(),
        );
    }
    if raw.max_retry_wait.is_zero() && raw.max_rate_limit_retries > 0 {
        problems.push(
            "source.max_retry_wait: must be above 0 (not to wait out a 429 at all, set \
             source.max_rate_limit_retries = 0)"
                .into(),
        );
    }
    Source {
        options: SourceOptions {
            base_url,
            timeout: raw.timeout,
            max_rate_limit_retries: raw.max_rate_limit_retries,
            max_retry_wait: raw.max_retry_wait,
            retries: raw.retries,
            retry_base: raw.retry_base,
        },
        digest_day,
        lookback_days: raw.lookback_days,
    }
}
