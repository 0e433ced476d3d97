//! The Hugging Face Daily Papers client: paging, 429 handling, time-outs, a response's size,
//! and saved files.

use std::path::PathBuf;
use std::time::Duration;

use backon::Retryable;
use chrono::NaiveDate;
use reqwest::StatusCode;
use tracing::{debug, info, instrument, warn};

use super::FetchError;
use super::limits::RESPONSE_BYTES;
use super::list::DayList;
use super::parse::parse_items;
use crate::domain::Paper;

/// The API's largest page.
const PAGE_LIMIT: u32 = 100;
/// A day never has this many pages; a server that keeps answering full pages is broken.
const MAX_PAGES: u32 = 50;

#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// `https://huggingface.co`, or `file:///dir` holding `YYYY-MM-DD.json` files.
    pub base_url: String,
    pub timeout: Duration,
    /// How many times a 429 is waited out before giving up.
    pub max_rate_limit_retries: u32,
    /// The longest Retry-After honoured; longer ones are capped to this.
    pub max_retry_wait: Duration,
    /// Retries of a failed fetch (5xx, time-out, connection or truncated body), with
    /// exponential backoff from `retry_base`.
    pub retries: u32,
    pub retry_base: Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            base_url: "https://huggingface.co".into(),
            timeout: Duration::from_secs(30),
            max_rate_limit_retries: 5,
            max_retry_wait: Duration::from_secs(120),
            retries: 3,
            retry_base: Duration::from_secs(5),
        }
    }
}

enum Origin {
    Http {
        client: reqwest::Client,
        base: String,
    },
    Dir(PathBuf),
    File(PathBuf),
}

pub struct HfSource {
    origin: Origin,
    opts: SourceOptions,
}

impl HfSource {
    pub fn new(opts: SourceOptions) -> Result<Self, FetchError> {
        let origin = if let Some(rest) = opts.base_url.strip_prefix("file://") {
            Origin::Dir(PathBuf::from(rest))
        } else {
            let client = reqwest::Client::builder()
                .timeout(opts.timeout)
                .connect_timeout(opts.timeout)
                .user_agent(concat!(
                    "paperboy/",
                    env!("CARGO_PKG_VERSION"),
                    " (daily paper digest)"
                ))
                .gzip(true)
                .build()
                .map_err(|e| FetchError::File {
                    path: opts.base_url.clone(),
                    message: format!("cannot build the HTTP client: {e}"),
                })?;
            Origin::Http {
                client,
                base: opts.base_url.trim_end_matches('/').to_string(),
            }
        };
        Ok(Self { origin, opts })
    }

    /// A source that answers every date with one saved response (`--source-file`).
    pub fn from_file(path: PathBuf) -> Self {
        Self {
            origin: Origin::File(path),
            opts: SourceOptions::default(),
        }
    }

    /// Whether each date has its own list (not one saved file answering every date).
    pub fn has_dated_lists(&self) -> bool {
        !matches!(self.origin, Origin::File(_))
    }

    /// The whole list of `date`, in the API's order, each paper once.
    #[instrument(skip(self), fields(digest_date = %date))]
    pub async fn fetch_day(&self, date: NaiveDate) -> Result<Vec<Paper>, FetchError> {
        let result = self.fetch_day_inner(date).await;
        if result.is_err() {
            crate::metrics::metrics().source_fetch_errors.inc();
        }
        result
    }

    async fn fetch_day_inner(&self, date: NaiveDate) -> Result<Vec<Paper>, FetchError> {
        match &self.origin {
            Origin::Http { client, base } => {
                let policy = backon::ExponentialBuilder::default()
                    .with_min_delay(self.opts.retry_base)
                    .with_max_delay(self.opts.retry_base * 16)
                    .with_jitter()
                    .with_max_times(self.opts.retries as usize);
                (|| self.fetch_http(client, base, date))
                    .retry(policy)
                    .when(FetchError::is_transient)
                    .notify(|e, wait| {
                        warn!(error = %e, retry_in = %humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)), "fetching the list failed; retrying");
                    })
                    .await
            }
            Origin::Dir(dir) => read_file(&dir.join(format!("{date}.json")), date).await,
            Origin::File(path) => read_file(path, date).await,
        }
    }

    async fn fetch_http(
        &self,
        client: &reqwest::Client,
        base: &str,
        date: NaiveDate,
    ) -> Result<Vec<Paper>, FetchError> {
        let mut list = DayList::default();
        for page in 0..MAX_PAGES {
            let url = format!("{base}/api/daily_papers?date={date}&limit={PAGE_LIMIT}&p={page}");
            let body = self.get_with_rate_limit(client, &url, date).await?;
            let batch = parse_items(&body).map_err(|message| FetchError::Parse {
                date,
                origin: url.clone(),
                message,
            })?;
            let len = batch.items;
            // Upvotes move papers between pages while we read; keep each one once.
            let new = list.add(batch, (page * PAGE_LIMIT) as usize);
            debug!(page, items = len, new, "page fetched");
            if len < PAGE_LIMIT as usize {
                info!(papers = list.len(), pages = page + 1, "daily list fetched");
                return Ok(list.into_papers());
            }
            if new == 0 {
                warn!(
                    page,
                    "a full page brought no new paper; the server ignores paging"
                );
                return Ok(list.into_papers());
            }
        }
        Err(FetchError::TooManyPages {
            date,
            max_pages: MAX_PAGES,
            limit: PAGE_LIMIT,
        })
    }

    async fn get_with_rate_limit(
        &self,
        client: &reqwest::Client,
        url: &str,
        date: NaiveDate,
    ) -> Result<Vec<u8>, FetchError> {
        let http_err = |e: reqwest::Error| FetchError::Http {
            date,
            url: url.to_string(),
            message: describe_reqwest(&e, self.opts.timeout),
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let resp = client.get(url).send().await.map_err(http_err)?;
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                if attempts > self.opts.max_rate_limit_retries {
                    return Err(FetchError::RateLimited {
                        date,
                        url: url.to_string(),
                        attempts,
                    });
                }
                let wait = retry_after(resp.headers())
                    .unwrap_or(Duration::from_secs(2u64.pow(attempts.min(6))))
                    .min(self.opts.max_retry_wait);
                warn!(wait = %humantime::format_duration(wait), attempt = attempts, "429 from the source; waiting as it asks");
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                // Within the same limit: only its start is shown.
                let body = read_body(resp).await.unwrap_or_default();
                let body = String::from_utf8_lossy(&body);
                let body = body.trim();
                let body = if body.is_empty() {
                    String::new()
                } else {
                    let short: String = body.chars().take(200).collect();
                    format!(": {short}")
                };
                return Err(FetchError::Status {
                    date,
                    url: url.to_string(),
                    status: status.as_u16(),
                    body,
                });
            }
            return read_body(resp).await.map_err(|e| match e {
                BodyError::Http(e) => http_err(e),
                BodyError::TooBig => FetchError::TooBig {
                    date,
                    origin: url.to_string(),
                    limit: RESPONSE_BYTES,
                },
            });
        }
    }
}

fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no complete answer within {}",
            humantime::format_duration(timeout)
        );
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Retry-After as delta-seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

enum BodyError {
    Http(reqwest::Error),
    TooBig,
}

/// The body of `resp`, read up to [`RESPONSE_BYTES`]: a longer one is refused as it comes,
/// before it is all in memory.
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    if resp
        .content_length()
        .is_some_and(|n| n > RESPONSE_BYTES as u64)
    {
        return Err(BodyError::TooBig);
    }
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Http)? {
        if body.len() + chunk.len() > RESPONSE_BYTES {
            return Err(BodyError::TooBig);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_file(path: &std::path::Path, date: NaiveDate) -> Result<Vec<Paper>, FetchError> {
    let origin = || path.display().to_string();
    let file_err = |e: std::io::Error| FetchError::File {
        path: origin(),
        message: e.to_string(),
    };
    let size = tokio::fs::metadata(path).await.map_err(file_err)?.len();
    if size > RESPONSE_BYTES as u64 {
        return Err(FetchError::TooBig {
            date,
            origin: origin(),
            limit: RESPONSE_BYTES,
        });
    }
    let body = tokio::fs::read(path).await.map_err(file_err)?;
    let parsed = parse_items(&body).map_err(|message| FetchError::Parse {
        date,
        origin: origin(),
        message,
    })?;
    let mut list = DayList::default();
    list.add(parsed, 0);
    Ok(list.into_papers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
