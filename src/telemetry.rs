//! Logging: human-readable or JSON lines on stderr, filtered by RUST_LOG (default "info").

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// PostgreSQL's NOTICEs (sqlx logs them at INFO under this target): "relation
/// _sqlx_migrations already exists, skipping" at every start, nothing for the operator. Its
/// warnings still show. Asked for on the client, not the server: a connection pooler such as
/// PgBouncer refuses the `options` startup parameter that would ask the server.
const QUIET: &str = "sqlx::postgres::notice=warn";

pub fn init(format: LogFormat) {
    let filter = filter_spec(std::env::var("RUST_LOG").ok().as_deref());
    let filter =
        EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// RUST_LOG (default "info") with PostgreSQL's NOTICEs left out, unless it says what to do
/// with them.
fn filter_spec(rust_log: Option<&str>) -> String {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(spec) if spec.contains("sqlx::postgres::notice") => spec.to_string(),
        Some(spec) => format!("{spec},{QUIET}"),
        None => format!("info,{QUIET}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_notices_are_left_out_unless_rust_log_names_them() {
        assert_eq!(filter_spec(None), "info,sqlx::postgres::notice=warn");
        assert_eq!(
            filter_spec(Some("debug")),
            "debug,sqlx::postgres::notice=warn"
        );
        assert_eq!(
            filter_spec(Some("info,sqlx::postgres::notice=info")),
            "info,sqlx::postgres::notice=info"
        );
    }
}
