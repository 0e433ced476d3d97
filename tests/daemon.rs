//! `paperboy run` as operators run it: the real binary as a child process, a per-second
//! schedule, the loopback API and SMTP servers, signals, and systemd's notify socket.

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use support::*;
use tokio::io::AsyncBufReadExt;

struct Running {
    child: tokio::process::Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(pb: &Paperboy, env: &[(&str, &str)]) -> Self {
        let mut child = pb
            .command(&["run"])
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                sink.lock().unwrap().push(l);
            }
        });
        Self { child, log }
    }

    fn pid(&self) -> i32 {
        self.child.id().unwrap() as i32
    }

    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `needle` (at least `n` times).
    async fn wait_log(&self, needle: &str, n: usize, within: Duration) {
        let start = Instant::now();
        while self.log_text().matches(needle).count() < n {
            assert!(
                start.elapsed() < within,
                "no {needle:?} ({n}x) within {within:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) -> i32 {
        self.signal(libc::SIGTERM);
        let st = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        st.code().unwrap_or(-1)
    }
}

async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn today() -> String {
    Utc::now().date_naive().to_string()
}

/// An API serving a recorded day as today's list.
async fn api_today() -> HfApi {
    let api = HfApi::start().await;
    api.serve_day(&today(), fixture_items("2026-04-10"));
    api
}

fn config(api: &HfApi, smtp: &str, schedule: &str, extra: &str, subs: &[&str]) -> String {
    let subs: String = subs
        .iter()
        .map(|e| format!("[[subscribers]]\nemail = {e:?}\ntopics = [\"agents\"]\n"))
        .collect();
    format!(
        "[source]\nbase_url = {:?}\ndigest_day = \"today\"\nretries = 0\n\
         [schedule]\ntimezone = \"UTC\"\n{schedule}\n\
         [database]\nurl = \"sqlite://paperboy.db\"\n\
         [delivery]\ntransport = \"smtp\"\n{extra}\n{smtp}\n\
         [topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 2\n{subs}",
        api.base_url
    )
}

/// A cron firing once a day at these seconds from now (UTC), as "S1,S2 M H * * *".
fn cron_in(seconds: &[i64]) -> String {
    let now = Utc::now();
    let ticks: Vec<_> = seconds
        .iter()
        .map(|s| now + chrono::Duration::seconds(*s))
        .collect();
    assert!(
        ticks
            .iter()
            .all(|t| t.minute() == ticks[0].minute() && t.hour() == ticks[0].hour()),
        "ticks must share a minute"
    );
    let secs: Vec<String> = ticks.iter().map(|t| t.second().to_string()).collect();
    format!(
        "cron = \"{} {} {} * * *\"",
        secs.join(","),
        ticks[0].minute(),
        ticks[0].hour()
    )
}

async fn wait_for_minute_room(needed: u32) {
    // Keep the test's ticks inside one minute.
    while Utc::now().second() + needed >= 58 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn it_sends_at_the_tick_not_before_and_a_second_tick_sends_nothing_twice() {
    let api = api_today().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    wait_for_minute_room(12).await;
    let schedule = format!("{}\ncatch_up_window = \"1h\"", cron_in(&[4, 8]));
    let pb = Paperboy::new(&config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        &schedule,
        "",
        &["ada@example.org"],
    ));
    let started = Instant::now();
    let d = Running::start(&pb, &[]);
    d.wait_log("paperboy is running", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(smtp.received().is_empty(), "nothing before the tick");
    wait_for("the tick's email", Duration::from_secs(10), || {
        smtp.received().len() == 1
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not before the tick"
    );
    // The second tick of the same digest date runs again and sends nothing new.
    d.wait_log("run finished", 2, Duration::from_secs(15)).await;
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(d.stop().await, 0);
}

async fn a_missed_tick_is_caught_up_once_and_an_old_one_is_skipped() {
    let api = api_today().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    // Every minute at second 0 (all of today's ticks are missed until the next): the
    // latest is less than a minute old.
    let pb = Paperboy::new(&config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        "cron = \"0 * * * * *\"\ncatch_up_window = \"2m\"",
        "",
        &["ada@example.org"],
    ));
    let mut d = Running::start(&pb, &[]);
    wait_for("the caught-up email", Duration::from_secs(20), || {
        smtp.received().len() == 1
    })
    .await;
    let start = std::time::Instant::now();
    while db_count(
        &pb.db_url(),
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
    )
    .await
        < 1
    {
        assert!(start.elapsed() < Duration::from_secs(10), "recorded sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Killed and restarted: that tick is done; nothing is sent again.
    d.signal(libc::SIGKILL);
    let _ = d.child.wait().await;
    let d = Running::start(&pb, &[]);
    d.wait_log("paperboy is running", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.received().len(), 1, "caught up once");
    assert_eq!(d.stop().await, 0);
    let status = pb.run(&["status"]).await;
    assert!(
        status.stdout.contains(&format!("run {}: done", today()))
            && status.stdout.contains("sent=1")
            && status.stdout.contains("next tick: "),
        "{}",
        status.stdout
    );

    // A missed tick older than the window is skipped, with a log line.
    let api2 = api_today().await;
    let smtp2 = SmtpServer::start(SmtpOptions::default());
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let pb2 = Paperboy::new(&config(
        &api2,
        &smtp_section(&smtp2, &SmtpOptions::default()),
        &format!(
            "cron = \"0 {} {} * * *\"\ncatch_up_window = \"10m\"",
            hour_ago.minute(),
            hour_ago.hour()
        ),
        "",
        &["ada@example.org"],
    ));
    let d = Running::start(&pb2, &[]);
    d.wait_log(
        "older than schedule.catch_up_window",
        1,
        Duration::from_secs(10),
    )
    .await;
    assert!(smtp2.received().is_empty());
    assert_eq!(d.stop().await, 0);
}

async fn sighup_applies_a_valid_config_and_keeps_the_old_one_when_broken() {
    let api = api_today().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let section = smtp_section(&smtp, &SmtpOptions::default());
    // A catch-up window of a second: with an hour, in the first hour after midnight (UTC)
    // yesterday's last tick would be caught up first, for a list this API does not serve.
    let sched = "cron = \"*/2 * * * * *\"\ncatch_up_window = \"1s\"";
    let pb = Paperboy::new(&config(&api, &section, sched, "", &["ada@example.org"]));
    let d = Running::start(&pb, &[]);
    wait_for("ada's email", Duration::from_secs(15), || {
        smtp.received().len() == 1
    })
    .await;

    pb.set_config(&config(
        &api,
        &section,
        sched,
        "",
        &["ada@example.org", "bob@example.org"],
    ));
    d.signal(libc::SIGHUP);
    d.wait_log("configuration reloaded", 1, Duration::from_secs(10))
        .await;
    wait_for("bob's email", Duration::from_secs(15), || {
        smtp.received().len() == 2
    })
    .await;
    let got = smtp.per_recipient();
    assert_eq!((got["ada@example.org"], got["bob@example.org"]), (1, 1));

    // A broken config is refused and the old one keeps sending: forget ada's delivery in the
    // database, and the next tick sends it again from the old config.
    pb.set_config("[smtp]\nfrom = \"not an address\"\n");
    d.signal(libc::SIGHUP);
    d.wait_log(
        "the new configuration is invalid; keeping the old one",
        1,
        Duration::from_secs(10),
    )
    .await;
    db_execute(
        &pb.db_url(),
        "DELETE FROM deliveries WHERE subscriber = 'ada@example.org'",
    )
    .await;
    wait_for("ada's second email", Duration::from_secs(15), || {
        smtp.received().len() == 3
    })
    .await;
    assert_eq!(d.stop().await, 0);
}

async fn sigterm_mid_run_exits_cleanly_and_a_restart_sends_the_rest_once() {
    let api = api_today().await;
    let opts = SmtpOptions {
        delay_ms: Some(60),
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subs: Vec<String> = (0..150).map(|i| format!("t{i}@example.org")).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let cfg = config(
        &api,
        &smtp_section(&smtp, &opts),
        "cron = \"0 * * * * *\"\ncatch_up_window = \"2m\"",
        "concurrency = 2\n[daemon]\ngrace_period = \"10s\"",
        &subs,
    );
    let pb = Paperboy::new(&cfg);
    let d = Running::start(&pb, &[]);
    wait_for("some sends", Duration::from_secs(20), || {
        smtp.received().len() >= 10
    })
    .await;
    let stop_at = Instant::now();
    assert_eq!(d.stop().await, 0, "SIGTERM exits 0");
    assert!(
        stop_at.elapsed() < Duration::from_secs(10),
        "within the grace period"
    );
    let first = smtp.received().len();
    assert!(first < 150, "stopped before the end ({first})");
    // The rows still queued went back as never tried: none left leased, no attempt counted.
    let url = pb.db_url();
    let count = |status: &str, attempts: &str| {
        format!("SELECT COUNT(*) FROM deliveries WHERE status = '{status}' AND attempts {attempts}")
    };
    assert_eq!(db_count(&url, &count("sending", ">= 0")).await, 0);
    assert!(db_count(&url, &count("pending", "= 0")).await > 0);
    assert_eq!(db_count(&url, &count("pending", "> 0")).await, 0);

    let d = Running::start(&pb, &[]);
    wait_for("the rest", Duration::from_secs(60), || {
        smtp.received().len() >= 150
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.stop().await, 0);
    let got = smtp.per_recipient();
    assert_eq!(got.len(), 150);
    assert!(got.values().all(|n| *n == 1), "nobody receives two");
}

#[tokio::test]
async fn systemd_hears_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let api = api_today().await;
    let pb = Paperboy::new(&config(
        &api,
        "[smtp]\nfrom = \"a@example.org\"\n",
        "cron = \"0 0 0 1 1 *\"",
        "",
        &["ada@example.org"],
    ));
    let d = Running::start(
        &pb,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got: Vec<String> = Vec::new();
    recv_until(&sock, &mut got, "READY=1").await;
    // With WATCHDOG_USEC set, the watchdog is fed well within it.
    recv_until(&sock, &mut got, "WATCHDOG=1").await;
    recv_until(&sock, &mut got, "WATCHDOG=1").await;
    d.signal(libc::SIGHUP);
    recv_until(&sock, &mut got, "RELOADING=1").await;
    let reload = got.iter().rposition(|m| m.contains("RELOADING=1")).unwrap();
    assert!(got[reload].contains("MONOTONIC_USEC="), "{got:?}");
    while !got[reload + 1..].iter().any(|m| m.contains("READY=1")) {
        recv_until(&sock, &mut got, "READY=1").await;
    }
    d.signal(libc::SIGTERM);
    recv_until(&sock, &mut got, "STOPPING=1").await;
}

/// Reads datagrams until one more contains `want`.
async fn recv_until(sock: &tokio::net::UnixDatagram, got: &mut Vec<String>, want: &str) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want} after {got:?}"))
            .unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let hit = msg.contains(want);
        got.push(msg);
        if hit {
            return;
        }
    }
}

async fn an_empty_list_is_retried_until_it_fills_and_given_up_at_the_deadline() {
    let api = HfApi::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let sched = "cron = \"0 * * * * *\"\ncatch_up_window = \"2m\"\nlate_retry = \"1s\"\n\
                 deadline = \"1h\"\nworkdays = [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\", \"Sat\", \"Sun\"]";
    let pb = Paperboy::new(&config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        sched,
        "",
        &["ada@example.org"],
    ));
    // Today's list is still empty: the run waits and tries again, sending nothing.
    let d = Running::start(&pb, &[]);
    d.wait_log("is still empty", 2, Duration::from_secs(20))
        .await;
    assert!(smtp.received().is_empty(), "never an empty digest");
    // The papers arrive: the next try sends them.
    api.serve_day(&today(), fixture_items("2026-04-10"));
    wait_for("the digest", Duration::from_secs(10), || {
        smtp.received().len() == 1
    })
    .await;
    assert_eq!(d.stop().await, 0);

    // Past the deadline an empty list is given up on with an error line, and nothing is sent.
    let api2 = HfApi::start().await;
    let smtp2 = SmtpServer::start(SmtpOptions::default());
    let pb2 = Paperboy::new(&config(
        &api2,
        &smtp_section(&smtp2, &SmtpOptions::default()),
        &sched.replace("deadline = \"1h\"", "deadline = \"2s\""),
        "",
        &["ada@example.org"],
    ));
    let d = Running::start(&pb2, &[]);
    d.wait_log("a weekday, is empty", 1, Duration::from_secs(20))
        .await;
    assert!(d.log_text().contains("ERROR"), "{}", d.log_text());
    assert!(smtp2.received().is_empty());
    assert_eq!(d.stop().await, 0);
}

async fn a_subscriber_with_its_own_time_receives_after_the_others_at_that_time() {
    let api = api_today().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    // Tokyo is UTC+9: the subscriber's local clock shows "now + 6 s" at that instant.
    let at = (Utc::now() + chrono::Duration::seconds(6))
        .with_nanosecond(0)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Tokyo);
    let subs = "[[subscribers]]\nemail = \"early@example.org\"\ntopics = [\"agents\"]\n";
    let cfg = config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        "cron = \"0 * * * * *\"\ncatch_up_window = \"2m\"",
        "",
        &[],
    ) + subs
        + &format!(
            "[[subscribers]]\nemail = \"tokyo@example.org\"\ntopics = [\"agents\"]\n\
             deliver_at = \"{}\"\ntimezone = \"Asia/Tokyo\"\n",
            at.format("%H:%M:%S")
        );
    let pb = Paperboy::new(&cfg);
    let d = Running::start(&pb, &[]);
    wait_for("the others' email", Duration::from_secs(20), || {
        smtp.received().len() == 1
    })
    .await;
    assert_eq!(smtp.received()[0].rcpt_tos, ["early@example.org"]);
    wait_for("tokyo's email", Duration::from_secs(20), || {
        smtp.received().len() == 2
    })
    .await;
    assert!(
        Utc::now() >= at.with_timezone(&Utc),
        "not before the subscriber's own time"
    );
    assert_eq!(smtp.received()[1].rcpt_tos, ["tokyo@example.org"]);
    assert_eq!(d.stop().await, 0);
}

async fn healthz_and_metrics_tell_the_truth_about_the_deliveries() {
    let api = api_today().await;
    let opts = SmtpOptions {
        reject: vec!["bounce=550".into()],
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let port = free_port();
    let cfg = config(
        &api,
        &smtp_section(&smtp, &opts),
        "cron = \"0 * * * * *\"\ncatch_up_window = \"2m\"",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\""),
        &["a@example.org", "bounce@example.org", "c@example.org"],
    );
    let pb = Paperboy::new(&cfg);
    // The minute's tick would start the date's run again while the figures are read.
    wait_for_minute_room(20).await;
    let d = Running::start(&pb, &[]);
    d.wait_log("run finished", 1, Duration::from_secs(20)).await;

    let base = format!("http://127.0.0.1:{port}");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let h: serde_json::Value = health.json().await.unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["scheduler"], "alive");
    assert_eq!(h["scheduler_alive"], true);
    assert_eq!(h["database"], "ok");
    assert_eq!(h["last_run"]["digest_date"], today());
    assert_eq!(h["last_run"]["sent"], 2);
    assert_eq!(h["last_run"]["failed"], 1);

    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                other => panic!("{name}: {other:?}"),
            })
            .unwrap_or_else(|| panic!("no {name} {label:?} in\n{text}"))
    };
    // The same numbers as the deliveries table.
    for status in ["sent", "failed", "pending", "skipped"] {
        let n = db_count(
            &pb.db_url(),
            &format!("SELECT COUNT(*) FROM deliveries WHERE status = '{status}'"),
        )
        .await;
        assert_eq!(
            value("paperboy_deliveries", Some(("status", status))),
            n as f64,
            "{status}"
        );
    }
    assert_eq!(value("paperboy_runs", Some(("status", "done"))), 1.0);
    assert!(value("paperboy_next_tick_timestamp_seconds", None) > Utc::now().timestamp() as f64);
    // Every send was timed: 2 accepted, 1 refused.
    let sends = |outcome: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric == "paperboy_smtp_send_seconds" && s.labels.get("outcome") == Some(outcome)
            })
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(h) => h
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                other => panic!("{other:?}"),
            })
            .sum()
    };
    assert_eq!((sends("sent"), sends("permanent")), (2.0, 1.0), "{text}");
    assert_eq!(d.stop().await, 0);
}

/// Under `run`, /healthz names the scheduler alive; after a run that failed (the day's `send`
/// whose source failed) its status is "degraded", still 200: the process works, the digest
/// did not go out.
async fn healthz_tells_a_failed_run_with_the_scheduler_alive() {
    let api = HfApi::start().await;
    api.set_mode(Mode::Status(500));
    let port = free_port();
    let cfg = config(
        &api,
        "[smtp]\nfrom = \"digest@paperboy.test\"\n",
        // No tick during the test.
        "cron = \"0 0 3 1 1 *\"\ncatch_up_window = \"1s\"",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\""),
        &["a@example.org"],
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-13"]).await;
    assert_eq!(out.code, 1, "the source fails: {}", out.stderr);
    let d = Running::start(&pb, &[]);
    d.wait_log("HTTP listener up", 1, Duration::from_secs(20))
        .await;
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let h: serde_json::Value = health.json().await.unwrap();
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["scheduler"], "alive", "{h}");
    assert_eq!(h["scheduler_alive"], true, "{h}");
    assert_eq!(h["database"], "ok", "{h}");
    assert_eq!(h["last_run"]["status"], "failed", "{h}");
    assert!(h["last_run"]["error"].is_string(), "{h}");
    assert_eq!(d.stop().await, 0);
}

async fn past_the_grace_period_the_message_in_flight_is_handed_back() {
    let api = api_today().await;
    // The sink takes 4 s to answer each message: longer than the grace period.
    let opts = SmtpOptions {
        delay_ms: Some(4000),
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let cfg = config(
        &api,
        &smtp_section(&smtp, &opts),
        "cron = \"0 * * * * *\"\ncatch_up_window = \"2m\"",
        "concurrency = 1\n[daemon]\ngrace_period = \"1s\"",
        &["slow1@example.org", "slow2@example.org"],
    );
    let pb = Paperboy::new(&cfg);
    let d = Running::start(&pb, &[]);
    wait_for("a message in flight", Duration::from_secs(20), || {
        !smtp.received().is_empty()
    })
    .await;
    let stop_at = Instant::now();
    assert_eq!(d.stop().await, 0, "SIGTERM exits 0");
    assert!(
        stop_at.elapsed() < Duration::from_secs(8),
        "grace, then hand back"
    );
    // Nothing is left half-recorded: the row in flight is pending again, not "sending".
    let url = pb.db_url();
    let sending = db_count(
        &url,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sending'",
    )
    .await;
    let pending = db_count(
        &url,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'",
    )
    .await;
    assert_eq!((sending, pending), (0, 2), "both still owed");
    // Restarted, both are delivered (the abandoned one may arrive twice: it was in flight).
    let d = Running::start(&pb, &[]);
    wait_for("both delivered", Duration::from_secs(30), || {
        let got = smtp.per_recipient();
        got.contains_key("slow1@example.org") && got.contains_key("slow2@example.org")
    })
    .await;
    assert_eq!(d.stop().await, 0);
}

on_both_backends!(
    it_sends_at_the_tick_not_before_and_a_second_tick_sends_nothing_twice,
    a_missed_tick_is_caught_up_once_and_an_old_one_is_skipped,
    sighup_applies_a_valid_config_and_keeps_the_old_one_when_broken,
    sigterm_mid_run_exits_cleanly_and_a_restart_sends_the_rest_once,
    an_empty_list_is_retried_until_it_fills_and_given_up_at_the_deadline,
    a_subscriber_with_its_own_time_receives_after_the_others_at_that_time,
    healthz_and_metrics_tell_the_truth_about_the_deliveries,
    healthz_tells_a_failed_run_with_the_scheduler_alive,
    past_the_grace_period_the_message_in_flight_is_handed_back,
);
