//! The command line: `send`, `preview`, `check`; exit codes 0 ok, 1 runtime failure, 2 usage,
//! 78 bad configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::daemon::Daemon;
use crate::domain::EmailAddress;
use crate::jobs::{cli_deliver_options, deliver};
use crate::mail::SmtpSender;
use crate::render::Renderer;
use crate::store::{DeliveryStatus, HistoryFilter};
use crate::telemetry::{self, LogFormat};

mod one_digest;
mod preview;
mod send;
mod shared;
mod subscribers;
mod tls_seed;
mod topics;

use preview::preview_command;
use send::send_command;
use shared::open_store;
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
            eprintln!("paperboy: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let renderer = match Renderer::new(&cfg.digest, &cfg.topics) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paperboy: invalid configuration ({}): {e}", cfg.origin);
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
            eprintln!("paperboy: error: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

impl Command {
    /// Whether the command may open a connection over TLS (the database, the SMTP server,
    /// the papers' API): all but a check of the config alone.
    fn connects(&self) -> bool {
        !matches!(self, Command::Check { smtp: false })
    }
}

async fn dispatch(
    cmd: Command,
    config_path: Option<PathBuf>,
    cfg: Config,
    renderer: &Renderer,
) -> anyhow::Result<ExitCode> {
    // Shared, not copied: with a large subscriber list a copy is most of the memory.
    let cfg = &std::sync::Arc::new(cfg);
    match cmd {
        Command::Run => {
            let daemon = Daemon::new(config_path, cfg.clone()).await?;
            daemon.run().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let addr = cfg
                .http_listen
                .context("paperboy serve needs [http] listen = \"address:port\"")?;
            let store = open_store(cfg).await?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("http.listen {addr}"))?;
            let heartbeat = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
            let beat = heartbeat.clone();
            tokio::spawn(async move {
                loop {
                    beat.store(Utc::now().timestamp(), std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            });
            let state = crate::http::HttpState {
                store,
                config: tokio::sync::watch::Sender::new(cfg.clone()).subscribe(),
                heartbeat,
                heartbeat_max_age: 30,
            };
            tokio::select! {
                r = crate::http::serve(listener, state) => r?,
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Topics { action } => topics_command(cfg, action).await,
        Command::Subscribers { action } => {
            let store = open_store(cfg).await?;
            let result = subscribers_command(cfg, &store, action).await;
            store.close().await;
            result
        }
        Command::Status => {
            let now = Utc::now();
            match cfg.schedule.next_after(now) {
                Some(t) => println!(
                    "next tick: {} ({}, {}), digest of {}",
                    t.with_timezone(&cfg.timezone)
                        .format("%a %Y-%m-%d %H:%M:%S %Z"),
                    cfg.schedule.pattern(),
                    cfg.timezone,
                    cfg.schedule.digest_date(t)
                ),
                None => println!("next tick: never ({})", cfg.schedule.pattern()),
            }
            let store = open_store(cfg).await?;
            let runs = store.runs(None, 10).await?;
            let totals = store.counts_all().await?;
            store.close().await;
            if runs.is_empty() {
                println!("no runs yet");
            }
            for r in runs {
                println!(
                    "run {}: {:<7} started {}{}  papers={} sent={} skipped={} failed={} deferred={}{}",
                    r.digest_date,
                    r.status,
                    r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    r.finished_at
                        .map(|f| format!(", finished {}", f.format("%H:%M:%S")))
                        .unwrap_or_default(),
                    r.papers,
                    r.sent,
                    r.skipped,
                    r.failed,
                    r.deferred,
                    r.error
                        .map(|e| format!("\n    error: {e}"))
                        .unwrap_or_default()
                );
            }
            println!(
                "deliveries: {} pending, {} sending, {} failed, {} sent, {} skipped",
                totals.pending, totals.sending, totals.failed, totals.sent, totals.skipped
            );
            Ok(ExitCode::SUCCESS)
        }
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
        } => {
            let store = open_store(cfg).await?;
            let subscriber = match subscriber {
                Some(s) => Some(EmailAddress::parse(&s).map_err(anyhow::Error::msg)?.key()),
                None => None,
            };
            let rows = store
                .history(&HistoryFilter {
                    date,
                    subscriber,
                    status,
                    limit,
                })
                .await?;
            store.close().await;
            for r in &rows {
                let when = r.sent_at.unwrap_or(r.updated_at);
                println!(
                    "{}  {:<7}  {}  {}  attempts={}  papers={}  {}",
                    r.digest_date,
                    r.status,
                    r.subscriber,
                    when.format("%Y-%m-%d %H:%M:%S UTC"),
                    r.attempts,
                    if r.papers.is_empty() {
                        "-".to_string()
                    } else {
                        r.papers.join(",")
                    },
                    r.message_id
                );
                if let Some(reply) = &r.smtp_reply {
                    println!("    server: {reply}");
                }
                if let Some(err) = &r.error {
                    println!("    error: {err}");
                }
            }
            if rows.is_empty() {
                println!("no deliveries match");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Retry { date } => {
            let store = open_store(cfg).await?;
            let n = store.requeue_failed(date).await?;
            println!("{date}: {n} failed deliveries requeued");
            let sent = deliver(
                cfg.clone(),
                store.clone(),
                std::sync::Arc::new(Renderer::new(&cfg.digest, &cfg.topics)?),
                cli_deliver_options(cfg),
            )
            .await;
            let counts = store.counts(date).await;
            store.close().await;
            let (sent, counts) = (sent?, counts?);
            println!(
                "{date}: {sent} sent by this run; now {} sent, {} failed, {} pending",
                counts.sent, counts.failed, counts.pending
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { smtp } => {
            println!(
                "configuration {}: valid ({} topics, {} subscribers); templates: valid",
                cfg.origin,
                cfg.topics.len(),
                cfg.subscribers.len()
            );
            if smtp {
                let mut sender = SmtpSender::new(&cfg.smtp)?;
                sender.check().await.with_context(|| {
                    format!("SMTP check of {}:{}", cfg.smtp.host, cfg.smtp.port)
                })?;
                println!(
                    "SMTP {}:{}: connected{}",
                    cfg.smtp.host,
                    cfg.smtp.port,
                    if cfg.smtp.username.is_some() {
                        ", login accepted"
                    } else {
                        " (no login configured)"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
