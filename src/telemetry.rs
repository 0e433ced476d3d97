//! Logging: human-readable or JSON lines on stderr, filtered by RUST_LOG (default "info"),
//! never with what crosses the wire to the SMTP server.

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
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = filter_spec(std::env::var("RUST_LOG").ok().as_deref());
    let filter =
        EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Whatever RUST_LOG asks for, what crosses the wire is never logged. A global filter: a
    // per-layer one swallows the next event after an `enabled` query that no event follows,
    // which sqlx makes for every query (tokio-rs/tracing#2519).
    let wire = filter_fn(|meta| !carries_the_wire(meta.target(), *meta.level()));
    let _ = match format {
        LogFormat::Human => builder.finish().with(wire).try_init(),
        LogFormat::Json => builder.json().finish().with(wire).try_init(),
    };
}

/// Crates whose debug and trace events hold what goes over the wire: lettre's SMTP client logs
/// every line it writes and reads, the AUTH exchange among them (the password as base64, in
/// PLAIN and LOGIN alike) and every message. paperboy builds lettre without its logging; this
/// keeps it out should a dependency turn it on.
const WIRE_LOGGERS: &[&str] = &["lettre"];

/// Whether an event of `target` at `level` is one of those never logged.
fn carries_the_wire(target: &str, level: tracing::Level) -> bool {
    level > tracing::Level::INFO
        && WIRE_LOGGERS.iter().any(|t| {
            target
                .strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
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
    fn the_smtp_wire_is_never_logged_below_info() {
        use tracing::Level;
        let target = "lettre::transport::smtp::client::async_connection";
        assert!(carries_the_wire(target, Level::DEBUG));
        assert!(carries_the_wire("lettre", Level::TRACE));
        assert!(!carries_the_wire(target, Level::WARN));
        assert!(!carries_the_wire("lettrez", Level::DEBUG));
        assert!(!carries_the_wire("paperboy::mail::smtp", Level::TRACE));
    }

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
