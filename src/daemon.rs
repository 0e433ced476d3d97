//! The long-running service (`paperboy run`): ticks of the schedule, catch-up of a missed
//! tick, a late source retried until the deadline, deliveries that fall due later, config
//! reload on SIGHUP, graceful stop on SIGTERM/SIGINT, and systemd notifications.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::http::HttpState;
use crate::jobs::{DeliverOptions, RunOptions, RunOutcome, deliver, run_date};
use crate::render::Renderer;
use crate::source::HfSource;
use crate::store::Store;

/// The longest the loop sleeps: a wall-clock check at least this often notices a tick missed
/// while the machine was suspended (the monotonic clock stands still then).
const MAX_SLEEP: Duration = Duration::from_secs(30);

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "systemd notification failed");
    }
}

/// What the daemon is doing now, besides waiting.
struct Job {
    what: String,
    handle: JoinHandle<()>,
}

pub struct Daemon {
    config_path: Option<PathBuf>,
    cfg: Arc<Config>,
    /// The config as the HTTP listener sees it.
    published: watch::Sender<Arc<Config>>,
    heartbeat: Arc<AtomicI64>,
    store: Store,
    stop: CancellationToken,
    hard_stop: CancellationToken,
}

impl Daemon {
    pub async fn new(config_path: Option<PathBuf>, cfg: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&cfg.database_url).await?;
        let cfg = Arc::new(cfg);
        Ok(Self {
            config_path,
            published: watch::Sender::new(cfg.clone()),
            heartbeat: Arc::new(AtomicI64::new(Utc::now().timestamp())),
            cfg,
            store,
            stop: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
        })
    }

    /// Serves until SIGTERM or SIGINT; then stops starting sends, lets the one in flight end
    /// (or hands it back after the grace period) and returns.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let watchdog = sd_notify::watchdog_enabled();
        let mut watchdog_tick =
            tokio::time::interval(watchdog.map(|d| d / 2).unwrap_or(Duration::from_secs(3600)));
        let mut job: Option<Job> = None;
        let mut skipped: HashSet<DateTime<Utc>> = HashSet::new();
        if let Some(addr) = self.cfg.http_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("http.listen {addr}: {e}"))?;
            let state = HttpState {
                store: self.store.clone(),
                config: self.published.subscribe(),
                heartbeat: self.heartbeat.clone(),
                heartbeat_max_age: 3 * MAX_SLEEP.as_secs() as i64,
            };
            tokio::spawn(async move {
                if let Err(e) = crate::http::serve(listener, state).await {
                    error!(error = %e, "the HTTP listener stopped");
                }
            });
        }
        info!(
            cron = self.cfg.schedule.pattern(),
            timezone = %self.cfg.schedule.timezone(),
            next = ?self.cfg.schedule.next_after(Utc::now()),
            "paperboy is running"
        );
        notify(&[
            NotifyState::Ready,
            NotifyState::Status("waiting for the next tick"),
        ]);
        loop {
            self.heartbeat
                .store(Utc::now().timestamp(), Ordering::Relaxed);
            if job.is_none() {
                job = self.next_job(&mut skipped).await;
            }
            let wake = self.sleep_for().await;
            tokio::select! {
                _ = tokio::time::sleep(wake) => {}
                _ = async { (&mut job.as_mut().expect("guarded").handle).await }, if job.is_some() => {
                    let done = job.take().expect("guarded");
                    info!(job = done.what, "finished");
                    notify(&[NotifyState::Status("waiting for the next tick")]);
                }
                _ = hup.recv() => self.reload(),
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = watchdog_tick.tick(), if watchdog.is_some() => notify(&[NotifyState::Watchdog]),
            }
        }
        info!("stopping: no new sends; the one in flight may finish");
        notify(&[NotifyState::Stopping]);
        self.stop.cancel();
        if let Some(mut j) = job {
            let grace = self.cfg.grace_period;
            if tokio::time::timeout(grace, &mut j.handle).await.is_err() {
                warn!(
                    job = j.what,
                    "the grace period ran out; handing the message in flight back"
                );
                self.hard_stop.cancel();
                if tokio::time::timeout(Duration::from_secs(5), &mut j.handle)
                    .await
                    .is_err()
                {
                    j.handle.abort();
                }
            }
        }
        self.store.close().await;
        info!("stopped");
        Ok(())
    }

    /// How long to sleep: until the next tick or the next delivery due, at most MAX_SLEEP.
    async fn sleep_for(&self) -> Duration {
        let now = Utc::now();
        let mut until = now + chrono::Duration::from_std(MAX_SLEEP).expect("small");
        if let Some(t) = self.cfg.schedule.next_after(now) {
            until = until.min(t);
        }
        if let Ok(Some(t)) = self.store.next_wakeup().await {
            until = until.min(t);
        }
        (until - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(10))
    }

    /// The work due now, if any: the run of the latest tick if it has not been run (a tick
    /// just now, or one missed while down or asleep, within catch_up_window), else the
    /// deliveries that have fallen due.
    async fn next_job(&self, skipped: &mut HashSet<DateTime<Utc>>) -> Option<Job> {
        let cfg = self.cfg.clone();
        let now = Utc::now();
        if let Some(tick) = cfg.schedule.latest_at_or_before(now) {
            let date = cfg.schedule.digest_date(tick);
            // Each tick runs once; a later tick for the same date runs it again, which sends
            // nothing twice (planning is idempotent) but reaches subscribers added since.
            let completed = match self.store.run(date).await {
                Ok(r) => r.is_some_and(|r| {
                    r.finished_at.is_some() && r.tick_at.is_some_and(|t| t >= tick)
                }),
                Err(e) => {
                    error!(error = %e, "cannot read the runs table");
                    return None;
                }
            };
            if !completed {
                let age = (now - tick).to_std().unwrap_or(Duration::ZERO);
                if age <= cfg.schedule_policy.catch_up_window {
                    if age > MAX_SLEEP {
                        info!(tick = %tick, digest_date = %date, "catching up a missed tick");
                    }
                    let what = format!("run of {date}");
                    notify(&[NotifyState::Status(&format!(
                        "sending the digest of {date}"
                    ))]);
                    let handle = tokio::spawn(run_tick(
                        cfg,
                        self.store.clone(),
                        tick,
                        self.deliver_options(),
                    ));
                    return Some(Job { what, handle });
                }
                if skipped.insert(tick) {
                    warn!(
                        tick = %tick,
                        digest_date = %date,
                        window = %humantime::format_duration(cfg.schedule_policy.catch_up_window),
                        "a missed tick is older than schedule.catch_up_window; skipping it"
                    );
                }
            }
        }
        match self.store.next_wakeup().await {
            Ok(Some(t)) if t <= now => {
                let store = self.store.clone();
                let opts = self.deliver_options();
                let handle = tokio::spawn(async move {
                    match Renderer::new(&cfg.digest) {
                        Ok(r) => {
                            if let Err(e) = deliver(cfg, store, Arc::new(r), opts).await {
                                error!(error = format!("{e:#}"), "delivering failed");
                            }
                        }
                        Err(e) => error!(error = %e, "templates"),
                    }
                });
                Some(Job {
                    what: "deliveries due".into(),
                    handle,
                })
            }
            Ok(_) => None,
            Err(e) => {
                error!(error = %e, "cannot read the delivery queue");
                None
            }
        }
    }

    fn deliver_options(&self) -> DeliverOptions {
        DeliverOptions {
            // Come back to the loop for anything not due within a minute.
            horizon: Some(Duration::from_secs(60)),
            stop: self.stop.clone(),
            hard_stop: self.hard_stop.clone(),
        }
    }

    /// SIGHUP: a valid new config replaces the old one (subscribers, topics, templates, SMTP,
    /// schedule); an invalid one is logged and the old one stays.
    fn reload(&mut self) {
        notify(&[
            NotifyState::Reloading,
            NotifyState::monotonic_usec_now().unwrap_or(NotifyState::Status("reloading")),
        ]);
        let loaded = Config::load(self.config_path.as_deref()).map_err(|e| e.to_string());
        let checked = loaded.and_then(|c| {
            Renderer::new(&c.digest).map_err(|e| e.to_string())?;
            if c.database_url != self.cfg.database_url {
                warn!("database.url changed: that takes a restart; keeping the open database");
            }
            Ok(c)
        });
        match checked {
            Ok(c) => {
                info!(
                    origin = c.origin,
                    subscribers = c.subscribers.len(),
                    topics = c.topics.len(),
                    cron = c.schedule.pattern(),
                    "configuration reloaded"
                );
                self.cfg = Arc::new(c);
                self.published.send_replace(self.cfg.clone());
            }
            Err(e) => error!(
                error = e,
                "the new configuration is invalid; keeping the old one"
            ),
        }
        notify(&[NotifyState::Ready]);
    }
}

/// Runs the tick's digest date; a list still empty on a weekday, or a failing source, is tried
/// again every `late_retry` until `deadline` after the tick, then given up on.
async fn run_tick(cfg: Arc<Config>, store: Store, tick: DateTime<Utc>, deliver: DeliverOptions) {
    let date = cfg.schedule.digest_date(tick);
    let deadline =
        tick + chrono::Duration::from_std(cfg.schedule_policy.deadline).unwrap_or_default();
    let source = match HfSource::new(cfg.source.clone()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "the source cannot be set up");
            return;
        }
    };
    loop {
        let now = Utc::now();
        let final_try = now >= deadline;
        let outcome = if date > now.date_naive() && !final_try {
            // "Today" in a zone ahead of UTC: the API has no list yet.
            Ok(RunOutcome::NotYet(format!(
                "{date} has not begun in UTC yet"
            )))
        } else {
            let opts = RunOptions {
                tick_at: Some(tick),
                final_try,
                deliver: deliver.clone(),
                ..Default::default()
            };
            run_date(&cfg, &store, &source, date, opts).await
        };
        match outcome {
            Ok(RunOutcome::Done(_)) => return,
            Ok(RunOutcome::NotYet(why)) => {
                info!(
                    digest_date = %date,
                    why,
                    retry_in = %humantime::format_duration(cfg.schedule_policy.late_retry),
                    deadline = %deadline,
                    "not yet; trying again"
                );
            }
            Err(e) => {
                error!(digest_date = %date, error = format!("{e:#}"), "the run failed");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.schedule_policy.late_retry) => {}
            _ = deliver.stop.cancelled() => return,
        }
    }
}
