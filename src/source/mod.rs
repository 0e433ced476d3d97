//! Fetching a day's list of papers: the Hugging Face Daily Papers API over HTTP, or a saved
//! response on disk (`file://` base URL or `--source-file`); how much of it is taken is in
//! [`limits`].

mod hf;
pub mod limits;
mod list;
mod parse;

pub use hf::{HfSource, SourceOptions};
pub use parse::parse_daily_papers;

use chrono::NaiveDate;

/// Why a day's list could not be had. Every variant names the date or the file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("fetching the papers of {date} from {url}: {message}")]
    Http {
        date: NaiveDate,
        url: String,
        message: String,
    },
    #[error("the papers of {date}: {url} answered HTTP {status}{body}")]
    Status {
        date: NaiveDate,
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "the papers of {date}: {url} kept answering 429 Too Many Requests after {attempts} attempts"
    )]
    RateLimited {
        date: NaiveDate,
        url: String,
        attempts: u32,
    },
    #[error(
        "the papers of {date}: the response of {origin} is not a valid Daily Papers list: {message}"
    )]
    Parse {
        date: NaiveDate,
        origin: String,
        message: String,
    },
    #[error("the papers of {date}: the response of {origin} is over {limit} bytes; refused")]
    TooBig {
        date: NaiveDate,
        origin: String,
        limit: usize,
    },
    #[error("reading saved papers from {path}: {message}")]
    File { path: String, message: String },
    #[error("the papers of {date}: {date} is in the future (today is {today}); no list exists yet")]
    Future { date: NaiveDate, today: NaiveDate },
    #[error("the papers of {date}: more than {max_pages} pages of {limit}; refusing to go on")]
    TooManyPages {
        date: NaiveDate,
        max_pages: u32,
        limit: u32,
    },
}

impl FetchError {
    /// Worth trying again soon: the network, a time-out, a 5xx or 408, or a body that did not
    /// parse (a cut-off transfer looks the same as a broken one until it is tried again).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { .. } | Self::Parse { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 408,
            Self::RateLimited { .. }
            | Self::File { .. }
            | Self::TooBig { .. }
            | Self::Future { .. }
            | Self::TooManyPages { .. } => false,
        }
    }
}

/// The papers of the recorded day in tests/fixtures/hf/2026-04-10.json, for unit tests.
#[cfg(test)]
pub(crate) fn recorded_papers() -> Vec<crate::domain::Paper> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/2026-04-10.json");
    parse_daily_papers(&std::fs::read(path).unwrap()).unwrap()
}
