//! Deliveries that survive failures: a real SMTP server injecting transient and permanent
//! faults, a source that fails then recovers, relay limits, alerts, history and retry.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::*;

const TOPIC: &str = "[topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 2\n";

fn config(api: &HfApi, smtp: &str, delivery: &str, extra: &str, subscribers: &[String]) -> String {
    let subs: String = subscribers
        .iter()
        .map(|e| format!("[[subscribers]]\nemail = {e:?}\ntopics = [\"agents\"]\n"))
        .collect();
    format!(
        "[source]\nbase_url = {:?}\ntimeout = \"2s\"\nretries = 4\nretry_base = \"200ms\"\n\
         [database]\nurl = \"sqlite://paperboy.db\"\n\
         [delivery]\ntransport = \"smtp\"\n{delivery}\n{extra}\n{smtp}\n{TOPIC}\n{subs}",
        api.base_url
    )
}

async fn api_with_day() -> HfApi {
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    api
}

async fn mixed_faults_end_with_every_transient_one_delivered_exactly_once() {
    mixed_faults(false).await;
}

/// The same faults, from a server that offers PIPELINING: paperboy sends MAIL, RCPT and DATA
/// in one write, most of them with the message before, and every outcome is the same.
async fn mixed_faults_with_pipelining_end_the_same() {
    mixed_faults(true).await;
}

async fn mixed_faults(pipelining: bool) {
    // Every title starts with a dot: the text part has lines that start with one, which the
    // DATA phase must double (the server takes one away).
    let mut items = fixture_items("2026-04-10");
    for item in &mut items {
        let title = format!(".{}", item["paper"]["title"].as_str().unwrap());
        item["paper"]["title"] = title.clone().into();
        item["title"] = title.into();
    }
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", items);
    let kinds = [
        ("ok", None),
        ("t451", Some("451once")),
        ("t421", Some("421once")),
        ("drop", Some("dropdata-once")),
        ("stall", Some("stall-once")),
        ("p550", Some("550")),
    ];
    let per_kind = 50;
    let opts = SmtpOptions {
        faults: kinds
            .iter()
            .filter_map(|(p, k)| k.map(|k| format!("{p}-={k}")))
            .collect(),
        stall_seconds: Some(2.0),
        refuse_for: Some(1.0),
        pipelining,
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subscribers: Vec<String> = kinds
        .iter()
        .flat_map(|(p, _)| (0..per_kind).map(move |i| format!("{p}-{i}@example.org")))
        .collect();
    let cfg = config(
        &api,
        &smtp_section(&smtp, &opts).replace("timeout = \"10s\"", "timeout = \"1s\""),
        "concurrency = 8\nmax_attempts = 8\nretry_base = \"100ms\"\nretry_max = \"800ms\"",
        "",
        &subscribers,
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let total = subscribers.len();
    let refused = per_kind;
    let sent = total - refused;
    assert!(
        out.stdout.contains(&format!(
            "{total} subscribers: {sent} sent ({sent} by this run)"
        )) && out
            .stdout
            .contains(&format!("0 skipped, {refused} failed, 0 deferred")),
        "the counts add up: {}",
        out.stdout
    );

    let got = smtp.per_recipient();
    for who in &subscribers {
        let n = got.get(who).copied().unwrap_or(0);
        if who.starts_with("p550-") {
            assert_eq!(n, 0, "{who} was refused permanently");
        } else {
            assert_eq!(n, 1, "{who} receives exactly one message");
        }
    }
    for r in smtp.received() {
        let msg = r.parsed();
        let text = msg.body_text(0).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with('.') && l.len() > 1),
            "a title line keeps its leading dot: {text}"
        );
    }
    // Each injected fault really happened, once per address (550: once, never retried).
    let mut fired: HashMap<String, usize> = HashMap::new();
    for (_, kind) in smtp.fault_events() {
        *fired.entry(kind).or_default() += 1;
    }
    // Pipelined exactly when the server offers it: every transaction then, and most opened
    // with the message before (a worker renders the next queued row before it sends).
    let pipelined = fired.remove("pipelined").unwrap_or(0);
    let with_data = fired.remove("next-with-data").unwrap_or(0);
    if pipelining {
        assert!(
            pipelined >= total,
            "{pipelined} of at least {total} MAIL commands"
        );
        assert!(
            with_data > total / 2,
            "{with_data} of {total} transactions opened with the message before"
        );
    } else {
        assert_eq!(pipelined, 0, "not offered, not pipelined");
        assert_eq!(with_data, 0, "not offered, not pipelined");
    }
    for (_, kind) in kinds.iter().filter(|(_, k)| k.is_some()) {
        assert_eq!(
            fired.get(kind.unwrap()),
            Some(&per_kind),
            "{kind:?}: {fired:?}"
        );
    }

    // The permanent failures are recorded with the server's reply, and not retried.
    let out = pb.run(&["history", "--status", "failed"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.matches("  failed ").count(),
        refused,
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("permanent error (550)").count(),
        refused,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .filter(|l| l.contains("  failed "))
            .all(|l| l.contains("p550-"))
    );
    let out = pb
        .run(&["history", "--subscriber", "t451-3@example.org"])
        .await;
    let attempts: u32 = out.stdout.split("attempts=").nth(1).unwrap()[..1]
        .parse()
        .unwrap();
    assert!(
        out.stdout.contains("  sent ") && attempts >= 2,
        "retried: {}",
        out.stdout
    );
    assert!(out.stdout.contains("server: 250"), "{}", out.stdout);
}

async fn a_failing_source_is_retried_until_it_recovers_and_no_email_goes_out_before() {
    let api = api_with_day().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let section = smtp_section(&smtp, &SmtpOptions::default());
    let cfg = config(&api, &section, "", "", &["ada@example.org".into()]);
    let pb = Paperboy::new(&cfg);
    for (i, mode) in [
        Mode::Status(500),
        Mode::Status(503),
        Mode::Truncated,
        Mode::Slow(Duration::from_secs(3)),
        Mode::RateLimited { n: 2, secs: 1 },
    ]
    .into_iter()
    .enumerate()
    {
        api.fail_next(mode.clone(), 2);
        let date = [
            "2026-04-10",
            "2026-04-13",
            "2026-04-14",
            "2026-04-15",
            "2026-04-16",
        ][i];
        api.serve_day(date, fixture_items("2026-04-10"));
        let before = api.requests().len();
        let out = pb.run(&["send", "--date", date]).await;
        assert_eq!(out.code, 0, "{mode:?}: {}", out.stderr);
        assert!(api.requests().len() >= before + 3, "{mode:?}: retried");
        assert_eq!(
            smtp.received().len(),
            i + 1,
            "{mode:?}: one email once recovered"
        );
    }
    // An answer that never parses gives up with a clear error and sends nothing.
    api.serve_day("2026-04-17", fixture_items("2026-04-10"));
    api.set_mode(Mode::Truncated);
    let out = pb.run(&["send", "--date", "2026-04-17"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("not a valid Daily Papers list"),
        "{}",
        out.stderr
    );
    assert_eq!(smtp.received().len(), 5);
}

async fn relay_limits_pace_the_sending() {
    let api = api_with_day().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let subscribers: Vec<String> = (0..30).map(|i| format!("r{i}@example.org")).collect();
    let cfg = config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        "concurrency = 4\nmax_per_second = 10",
        "",
        &subscribers,
    );
    let pb = Paperboy::new(&cfg);
    let start = Instant::now();
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(smtp.received().len(), 30);
    // 10 at once (the burst), then 10 a second: the last of 30 cannot go before 2 s.
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "30 messages at 10/s took only {:?}",
        start.elapsed()
    );
}

async fn a_slow_relay_limit_never_lets_claimed_rows_outlive_their_lease() {
    let api = api_with_day().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let subscribers: Vec<String> = (0..12).map(|i| format!("s{i}@example.org")).collect();
    // 2 a second with a 1 s lease: rows claimed ahead of the limiter would expire while they
    // wait, be claimed again and charged another attempt.
    let cfg = config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        "concurrency = 4\nmax_per_second = 2\nlease = \"1s\"",
        "",
        &subscribers,
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.per_recipient();
    assert_eq!(got.len(), 12);
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    let url = pb.db_url();
    assert_eq!(
        db_count(
            &url,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND attempts = 1"
        )
        .await,
        12,
        "each sent at its first claim"
    );
    assert!(!out.stderr.contains("the lease ran out"), "{}", out.stderr);
}

async fn the_operator_is_alerted_once_a_day_and_retry_requeues_what_failed() {
    let api = api_with_day().await;
    // Connections are refused for 3 s: longer than give_up_after.
    let opts = SmtpOptions {
        refuse_for: Some(3.0),
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subscribers: Vec<String> = (0..5).map(|i| format!("s{i}@example.org")).collect();
    let cfg = config(
        &api,
        &smtp_section(&smtp, &opts),
        "concurrency = 2\nretry_base = \"100ms\"\nretry_max = \"200ms\"\ngive_up_after = \"500ms\"",
        "[alerts]\nemail = \"ops@example.org\"\nfailure_ratio = 0.5",
        &subscribers,
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("5 failed"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("5 of 5 deliveries of 2026-04-10 failed"),
        "{}",
        out.stderr
    );
    let out = pb.run(&["history", "--status", "failed"]).await;
    assert!(out.stdout.contains("gave up"), "{}", out.stdout);
    assert!(out.stdout.contains("Connection refused"), "{}", out.stdout);

    // The alert could not be mailed while the server refused; once it accepts, the next
    // trouble of the day is mailed, and only once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    api.set_mode(Mode::Status(500));
    for _ in 0..2 {
        let out = pb.run(&["send", "--date", "2026-04-13"]).await;
        assert_eq!(out.code, 1);
    }
    let alerts: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|r| r.rcpt_tos == ["ops@example.org"])
        .collect();
    assert_eq!(alerts.len(), 1, "one alert per kind and day");
    let subject = alerts[0].parsed().subject().unwrap().to_string();
    assert!(
        subject.contains("the run of 2026-04-13 failed"),
        "{subject}"
    );

    // retry requeues the failed deliveries and sends them now.
    api.set_mode(Mode::Normal);
    let out = pb.run(&["retry", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("5 failed deliveries requeued"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("5 sent by this run"), "{}", out.stdout);
    let got = smtp.per_recipient();
    for s in &subscribers {
        assert_eq!(got.get(s), Some(&1), "{s}");
    }
}

async fn a_refused_login_stops_the_run_and_loses_nothing() {
    let api = api_with_day().await;
    let opts = SmtpOptions {
        starttls: true,
        auth: Some(("digest".into(), "right-pw".into())),
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subscribers: Vec<String> = (0..6).map(|i| format!("l{i}@example.org")).collect();
    let good = config(
        &api,
        &smtp_section(&smtp, &opts),
        "concurrency = 2",
        "",
        &subscribers,
    );
    let pb = Paperboy::new(&good.replace("right-pw", "wrong-pw"));
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(
        out.code, 1,
        "a login the server refuses fails the run: {}",
        out.stderr
    );
    assert!(out.stderr.contains("535"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-pw"), "no password in errors");
    assert!(smtp.received().is_empty());
    let out = pb.run(&["history", "--status", "pending"]).await;
    assert_eq!(
        out.stdout.matches("  pending ").count(),
        6,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("attempts=0"),
        "an attempt that never ran is not counted"
    );

    pb.set_config(&good);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("6 sent (6 by this run)"),
        "{}",
        out.stdout
    );
    let got = smtp.per_recipient();
    assert!(
        subscribers.iter().all(|s| got.get(s) == Some(&1)),
        "{got:?}"
    );
}

/// An outage of the relay defers the run's digests uncharged; one whose subscriber unsubscribes
/// before the relay is back is recorded skipped, not sent (the opt-out is read as the rows are
/// claimed).
async fn a_relay_outage_charges_no_attempt_and_loses_nothing() {
    let api = api_with_day().await;
    let opts = SmtpOptions {
        refuse_for: Some(4.0),
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subscribers: Vec<String> = (0..4).map(|i| format!("o{i}@example.org")).collect();
    let cfg = config(
        &api,
        &smtp_section(&smtp, &opts),
        "concurrency = 2\nmax_attempts = 2\nretry_base = \"100ms\"\nretry_max = \"200ms\"",
        "",
        &subscribers,
    );
    let pb = Paperboy::new(&cfg);
    // More refused connections than max_attempts: the run stops, nobody is failed.
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("stayed unreachable"), "{}", out.stderr);
    let out = pb.run(&["history", "--status", "pending"]).await;
    assert_eq!(
        out.stdout.matches("  pending ").count(),
        4,
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("attempts=0").count(),
        4,
        "{}",
        out.stdout
    );
    // Meanwhile one of them unsubscribes: their planned digest must not go out.
    let out = pb
        .run(&["subscribers", "unsubscribe", "o0@example.org"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Once the server is back, everyone else gets the digest, once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.per_recipient();
    assert_eq!(got.get("o0@example.org"), None, "{got:?}");
    assert!(
        subscribers[1..].iter().all(|s| got.get(s) == Some(&1)),
        "{got:?}"
    );
    let out = pb.run(&["history", "--subscriber", "o0@example.org"]).await;
    assert!(
        out.stdout.contains("skipped") && out.stdout.contains("unsubscribed"),
        "{}",
        out.stdout
    );
}

/// A subscriber whose email cannot be built (here a line break in their name, which lettre
/// cannot put in the To header: it panicked there and took the worker, and the run, down)
/// has their row recorded failed with the reason; everyone else's digest goes out. The config
/// refuses such a name when it loads, so the run is driven through the library with the name
/// set after loading, as any path that reaches the builder would.
async fn an_email_that_cannot_be_built_fails_its_row_and_the_others_go_out() {
    use std::sync::Arc;

    use paperboy::jobs::{RunOptions, RunOutcome, cli_deliver_options, run_date};
    use paperboy::store::{DatabaseUrl, Store};

    let api = api_with_day().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let subscribers: Vec<String> = (0..6).map(|i| format!("b{i}@example.org")).collect();
    let text = config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        "concurrency = 2",
        "",
        &subscribers,
    );
    let pb = Paperboy::new(&text);
    let mut cfg = paperboy::config::Config::load_str(&text, "test config").unwrap();
    cfg.subscribers[0].name = Some("Ada\r\nBcc: x@example.net".into());
    cfg.subscribers[3].name = Some("Ada\nLovelace".into());
    let cfg = Arc::new(cfg);
    let store = Store::connect(&DatabaseUrl::new(pb.db_url()))
        .await
        .unwrap();
    let source = paperboy::source::HfSource::from_file(fixture("2026-04-10.json"));
    let date = chrono::NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
    let opts = RunOptions {
        final_try: true,
        deliver: cli_deliver_options(&cfg),
        ..Default::default()
    };
    let outcome = run_date(&cfg, &store, &source, date, opts).await;
    let report = match outcome {
        Ok(RunOutcome::Done(r)) => r,
        Ok(RunOutcome::NotYet(why)) => panic!("not yet: {why}"),
        Err(e) => panic!("the run failed: {e:#}"),
    };
    assert_eq!((report.sent, report.failed), (4, 2), "{report:?}");
    let got = smtp.per_recipient();
    for (i, who) in subscribers.iter().enumerate() {
        let want = if i == 0 || i == 3 { None } else { Some(&1) };
        assert_eq!(got.get(who), want, "{who}: {got:?}");
    }
    assert!(!got.contains_key("x@example.net"), "{got:?}");
    let url = pb.db_url();
    assert_eq!(
        db_count(
            &url,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'failed' \
             AND subscriber IN ('b0@example.org', 'b3@example.org') \
             AND error LIKE '%name%line break%'"
        )
        .await,
        2,
        "each recorded failed with the reason"
    );
    store.close().await;
}

on_both_backends!(
    an_email_that_cannot_be_built_fails_its_row_and_the_others_go_out,
    mixed_faults_end_with_every_transient_one_delivered_exactly_once,
    mixed_faults_with_pipelining_end_the_same,
    a_failing_source_is_retried_until_it_recovers_and_no_email_goes_out_before,
    relay_limits_pace_the_sending,
    a_slow_relay_limit_never_lets_claimed_rows_outlive_their_lease,
    the_operator_is_alerted_once_a_day_and_retry_requeues_what_failed,
    a_refused_login_stops_the_run_and_loses_nothing,
    a_relay_outage_charges_no_attempt_and_loses_nothing,
);
