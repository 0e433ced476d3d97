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
use crate::http::{HttpState, SchedulerHeartbeat};
use crate::jobs::{
    DeliverOptions, RelayLimits, RunOptions, RunOutcome, deliver, renderer, run_date,
    settle_open_runs,
};
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
    /// True when the job ended well.
    handle: JoinHandle<bool>,
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
    /// The relay's budget, one for the daemon's life: every run and pass draws on it.
    relay_limits: RelayLimits,
}

impl Daemon {
    pub async fn new(config_path: Option<PathBuf>, cfg: Arc<Config>) -> anyhow::Result<Self> {
        let store = Store::connect(&cfg.database_url).await?;
        Ok(Self {
            config_path,
            published: watch::Sender::new(cfg.clone()),
            heartbeat: Arc::new(AtomicI64::new(Utc::now().timestamp())),
            cfg,
            store,
            stop: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            relay_limits: RelayLimits::default(),
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
        let mut run_job: Option<Job> = None;
        let mut pass_job: Option<Job> = None;
        // After a delivery pass that failed (a refused login, an unreachable server), wait
        // before the next one: doubling from delivery.retry_base up to delivery.retry_max.
        let mut failed_passes = 0u32;
        let mut hold_passes_until = tokio::time::Instant::now();
        let mut skipped: HashSet<DateTime<Utc>> = HashSet::new();
        if let Some(addr) = self.cfg.http_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("http.listen {addr}: {e}"))?;
            let state = HttpState {
                store: self.store.clone(),
                config: self.published.subscribe(),
                scheduler: Some(SchedulerHeartbeat {
                    last_turn: self.heartbeat.clone(),
                    max_age: 3 * MAX_SLEEP.as_secs() as i64,
                }),
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
            if run_job.is_none() {
                run_job = self.next_run(&mut skipped).await;
            }
            // A run delivers what is due itself; a pass is for the time between runs.
            let passes_allowed = tokio::time::Instant::now() >= hold_passes_until;
            if run_job.is_none() && pass_job.is_none() && passes_allowed {
                pass_job = self.next_pass().await;
            }
            let wake = self
                .sleep_for(run_job.is_none() && pass_job.is_none() && passes_allowed)
                .await;
            tokio::select! {
                _ = tokio::time::sleep(wake) => {}
                r = async { (&mut run_job.as_mut().expect("guarded").handle).await }, if run_job.is_some() => {
                    let done = run_job.take().expect("guarded");
                    info!(job = done.what, ok = r.unwrap_or(false), "finished");
                    notify(&[NotifyState::Status("waiting for the next tick")]);
                }
                r = async { (&mut pass_job.as_mut().expect("guarded").handle).await }, if pass_job.is_some() => {
                    pass_job = None;
                    if r.unwrap_or(false) {
                        failed_passes = 0;
                    } else {
                        failed_passes += 1;
                        let wait = crate::jobs::backoff(&self.cfg.delivery, failed_passes);
                        warn!(wait = %humantime::format_duration(Duration::from_secs(wait.as_secs().max(1))), "a delivery pass failed; holding off the next");
                        hold_passes_until = tokio::time::Instant::now() + wait;
                    }
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
        let grace = tokio::time::Instant::now() + self.cfg.grace_period;
        for mut j in [run_job, pass_job].into_iter().flatten() {
            if tokio::time::timeout_at(grace, &mut j.handle).await.is_err() {
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

    /// How long to sleep: until the next tick (or, when idle, the next delivery due), at most
    /// MAX_SLEEP.
    async fn sleep_for(&self, idle: bool) -> Duration {
        let now = Utc::now();
        let mut until = now + chrono::Duration::from_std(MAX_SLEEP).expect("small");
        if let Some(t) = self.cfg.schedule.next_after(now) {
            until = until.min(t);
        }
        if idle && let Ok(Some(t)) = self.store.next_wakeup().await {
            until = until.min(t);
        }
        (until - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(10))
    }

    /// The ticks to consider now, oldest first: the latest tick of each local day within
    /// catch_up_window (a later tick of a day covers the earlier ones), and the latest one
    /// before the window (to log it as skipped).
    fn recent_ticks(&self, now: DateTime<Utc>) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let s = &self.cfg.schedule;
        let window = chrono::Duration::from_std(self.cfg.schedule_policy.catch_up_window)
            .unwrap_or(chrono::Duration::hours(12));
        let mut ticks = Vec::new();
        let mut cursor = s.latest_at_or_before(now);
        while let Some(t) = cursor {
            if t < now - window {
                ticks.reverse();
                return (ticks, Some(t));
            }
            ticks.push(t);
            // The latest tick of the local day before t's.
            let day_start = t
                .with_timezone(&s.timezone())
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .and_then(|d| d.and_local_timezone(s.timezone()).earliest())
                .map(|d| d.with_timezone(&Utc));
            cursor =
                day_start.and_then(|d| s.latest_at_or_before(d - chrono::Duration::seconds(1)));
        }
        ticks.reverse();
        (ticks, None)
    }

    /// The run due now, if any: the oldest tick within catch_up_window that has not been run
    /// (a tick just now, or one missed while down or asleep). Each tick runs once; a later
    /// tick for the same date runs it again, which sends nothing twice (planning is
    /// idempotent) but reaches subscribers added since.
    async fn next_run(&self, skipped: &mut HashSet<DateTime<Utc>>) -> Option<Job> {
        let cfg = self.cfg.clone();
        let now = Utc::now();
        let (ticks, too_old) = self.recent_ticks(now);
        for tick in ticks {
            let date = cfg.schedule.digest_date(tick);
            let completed = match self.store.run(date).await {
                Ok(r) => r.is_some_and(|r| {
                    r.finished_at.is_some() && r.tick_at.is_some_and(|t| t >= tick)
                }),
                Err(e) => {
                    error!(error = %e, "cannot read the runs table");
                    return None;
                }
            };
            if completed {
                continue;
            }
            if (now - tick).to_std().unwrap_or(Duration::ZERO) > MAX_SLEEP {
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
        if let Some(tick) = too_old {
            let date = cfg.schedule.digest_date(tick);
            let done = matches!(self.store.run(date).await, Ok(Some(r)) if r.finished_at.is_some());
            if !done && skipped.insert(tick) {
                warn!(
                    tick = %tick,
                    digest_date = %date,
                    window = %humantime::format_duration(cfg.schedule_policy.catch_up_window),
                    "a missed tick is older than schedule.catch_up_window; skipping it"
                );
            }
        }
        None
    }

    /// A delivery pass, when deliveries have fallen due between runs (a subscriber's own
    /// delivery time, a retry, rows left by a stopped process).
    async fn next_pass(&self) -> Option<Job> {
        match self.store.next_wakeup().await {
            Ok(Some(t)) if t <= Utc::now() => {
                let cfg = self.cfg.clone();
                let store = self.store.clone();
                let opts = self.deliver_options();
                let handle = tokio::spawn(async move {
                    let renderer = match renderer(&cfg) {
                        Ok(r) => r,
                        Err(e) => {
                            error!(error = %e, "templates");
                            return false;
                        }
                    };
                    let ok = match deliver(cfg.clone(), store.clone(), renderer, opts).await {
                        Ok(_) => true,
                        Err(e) => {
                            error!(error = format!("{e:#}"), "delivering failed");
                            false
                        }
                    };
                    if let Err(e) = settle_open_runs(&cfg, &store).await {
                        error!(error = format!("{e:#}"), "updating the runs");
                    }
                    ok
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
            planning: None,
            relay_limits: self.relay_limits.clone(),
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
            renderer(&c).map_err(|e| e.to_string())?;
            if c.database_url != self.cfg.database_url {
                warn!("database.url changed: that takes a restart; keeping the open database");
            }
            if c.delivery.threads != self.cfg.delivery.threads {
                warn!("delivery.threads changed: that takes a restart; keeping the threads");
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
                c.log_warnings();
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
async fn run_tick(
    cfg: Arc<Config>,
    store: Store,
    tick: DateTime<Utc>,
    deliver: DeliverOptions,
) -> bool {
    let date = cfg.schedule.digest_date(tick);
    let deadline =
        tick + chrono::Duration::from_std(cfg.schedule_policy.deadline).unwrap_or_default();
    let source = match HfSource::new(cfg.source.clone()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "the source cannot be set up");
            return false;
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
            Ok(RunOutcome::Done(_)) => return true,
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
                return false;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.schedule_policy.late_retry) => {}
            _ = deliver.stop.cancelled() => return false,
        }
    }
}
