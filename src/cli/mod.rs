//! The command line: its definitions, the start (config, templates, runtime) and the hand-over
//! to the command's own file; exit codes 0 ok, 1 runtime failure, 2 usage, 78 bad configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::render::Renderer;
use crate::store::DeliveryStatus;
use crate::telemetry::{self, LogFormat};

mod check;
mod history;
mod one_digest;
mod preview;
mod retry;
mod run;
mod send;
mod serve;
mod shared;
mod status;
mod subscribers;
mod tls_seed;
mod topics;

use check::check_command;
use history::history_command;
use preview::preview_command;
use retry::retry_command;
use run::run_command;
use send::send_command;
use serve::serve_command;
use status::status_command;
pub use subscribers::SubscribersAction;
use subscribers::subscribers_command;
use tls_seed::seed_tls_randomness;
pub use topics::TopicsAction;
use topics::topics_command;

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "paperboy",
    version,
    about = "Emails a personalised daily digest of new machine-learning papers"
)]
pub struct Cli {
    /// The configuration file [default: /etc/paperboy/config.toml, else ./config/default.toml,
    /// else the built-in example]
    #[arg(long, short, global = true, env = "PAPERBOY_CONFIG")]
    pub config: Option<PathBuf>,
    /// How log lines look on stderr (filter them with RUST_LOG)
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as a service: send each scheduled digest, catch up a missed one, reload the config
    /// on SIGHUP, stop gracefully on SIGTERM
    Run,
    /// The next scheduled tick, the latest runs, and the deliveries pending or failed
    Status,
    /// Run only the HTTP listener ([http] listen): /unsubscribe, /healthz, /metrics
    Serve,
    /// Tune topics: try a query on real lists, or see why a subscriber got what they got
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Subscribers and their opt-outs
    Subscribers {
        #[command(subcommand)]
        action: SubscribersAction,
    },
    /// Fetch a day's papers and send every subscriber's digest now (once per subscriber and
    /// date: running it again sends only what is still due)
    Send {
        /// The digest date [default: source.digest_day in schedule.timezone]
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Render every email into delivery.outbox_dir and record nothing as sent
        #[arg(long)]
        dry_run: bool,
        /// Read the day's list from this saved API response instead of the network
        #[arg(long)]
        source_file: Option<PathBuf>,
        /// Send a test: the digest of one subscriber (--subscriber, or the first configured)
        /// goes to this address only, and nothing is recorded
        #[arg(long, value_name = "ADDRESS")]
        to: Option<String>,
        /// With --to: whose digest to send
        #[arg(long, requires = "to")]
        subscriber: Option<String>,
    },
    /// Render one subscriber's digest to an HTML file (or stdout) without sending anything
    Preview {
        /// The subscriber's email address, as in the config
        #[arg(long)]
        subscriber: String,
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Where to write the HTML part; the text part goes beside it with a .txt extension
        /// [default: the HTML on stdout]
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        source_file: Option<PathBuf>,
    },
    /// List deliveries: when, to whom, which papers, and what the server said
    History {
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long)]
        subscriber: Option<String>,
        /// pending, sending, sent, failed or skipped
        #[arg(long, value_parser = parse_status)]
        status: Option<DeliveryStatus>,
        /// At most this many rows
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Requeue the failed deliveries of a date and send them now
    Retry {
        #[arg(long)]
        date: NaiveDate,
    },
    /// Check the configuration and the templates; with --smtp, also connect and log in
    Check {
        #[arg(long)]
        smtp: bool,
    },
}

fn parse_status(s: &str) -> Result<DeliveryStatus, String> {
    DeliveryStatus::parse(s)
        .ok_or_else(|| format!("{s:?} is not one of pending, sending, sent, failed, skipped"))
}

/// Runs the parsed command line; never panics on bad input, and maps failures to exit codes.
pub fn run(cli: Cli) -> ExitCode {
    telemetry::init(cli.log_format);
    if cli.command.connects() {
        seed_tls_randomness();
    }
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            print_failure(e);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let renderer = match crate::jobs::renderer(&cfg) {
        Ok(r) => r,
        Err(e) => {
            print_failure(format!("invalid configuration ({}): {e}", cfg.origin));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.delivery.worker_threads(cpus))
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paperboy: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = rt.block_on(dispatch(cli.command, cli.config, cfg, &renderer));
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "failed");
            print_failure(format!("error: {e:#}"));
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Prints why the command failed on stderr, ending in one line break whatever the message's
/// own text ends with (a template parser's message ends with one).
fn print_failure(message: impl std::fmt::Display) {
    eprintln!("paperboy: {}", message.to_string().trim_end());
}

impl Command {
    /// Whether the command may open a connection over TLS (the database, the SMTP server,
    /// the papers' API): all but a check of the config alone.
    fn connects(&self) -> bool {
        !matches!(self, Command::Check { smtp: false })
    }
}

/// Runs one command; each lives in a file of its own.
async fn dispatch(
    cmd: Command,
    config_path: Option<PathBuf>,
    cfg: Config,
    renderer: &std::sync::Arc<Renderer>,
) -> anyhow::Result<ExitCode> {
    // Shared, not copied: with a large subscriber list a copy is most of the memory.
    let cfg = &std::sync::Arc::new(cfg);
    match cmd {
        Command::Run => run_command(config_path, cfg).await,
        Command::Serve => serve_command(cfg).await,
        Command::Topics { action } => topics_command(cfg, action).await,
        Command::Subscribers { action } => subscribers_command(cfg, action).await,
        Command::Status => status_command(cfg).await,
        Command::Send {
            date,
            dry_run,
            source_file,
            to,
            subscriber,
        } => send_command(cfg, renderer, date, dry_run, source_file, to, subscriber).await,
        Command::Preview {
            subscriber,
            date,
            out,
            source_file,
        } => preview_command(cfg, renderer, subscriber, date, out, source_file).await,
        Command::History {
            date,
            subscriber,
            status,
            limit,
        } => history_command(cfg, date, subscriber, status, limit).await,
        Command::Retry { date } => retry_command(cfg, renderer, date).await,
        Command::Check { smtp } => check_command(cfg, smtp).await,
    }
}
