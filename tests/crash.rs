//! Crash safety. A run of 2,000 subscribers against a slow sink, killed with SIGKILL at random
//! moments 20 times and restarted until done: nothing is lost, every subscriber has exactly
//! one sent row, and each kill leaves at most 8 × `delivery.concurrency` messages accepted by
//! the server and unrecorded, the only ones received twice. A kill while the database stalls
//! every write keeps to the same bound. A restart on the same host takes the killed process's
//! rows over at once, not after their lease; a row claimed on another host waits for it.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::Row;
use support::*;

/// SIGKILL, then a moment for the server to store what reached it.
async fn kill(child: &mut tokio::process::Child) {
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn next(seed: &mut u64) -> u64 {
    // xorshift64*: reproducible from the printed seed.
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_lose_nothing_and_duplicate_only_what_was_in_flight() {
    let subscribers = 2000;
    let kills = 20;
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let opts = SmtpOptions {
        delay_ms: Some(40),
        pipelining: true,
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subs: String = (0..subscribers)
        .map(|i| format!("[[subscribers]]\nemail = \"c{i}@example.org\"\ntopics = [\"any\"]\n"))
        .collect();
    let cfg = format!(
        "[source]\nbase_url = {:?}\n[database]\nurl = \"sqlite://paperboy.db\"\n\
         [delivery]\ntransport = \"smtp\"\nconcurrency = 4\nlease = \"2s\"\n\
         retry_base = \"100ms\"\nretry_max = \"500ms\"\n{}\n\
         [topics.any]\nkeywords = [\"the\", \"we\"]\nmax_papers = 2\n{subs}",
        api.base_url,
        smtp_section(&smtp, &opts)
    );
    let pb = Paperboy::new(&cfg);
    let db_url = format!("sqlite://{}", pb.dir.path().join("paperboy.db").display());

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed: {seed}");
    let bound = unrecorded_bound(4);
    // (subscriber, claim token) of every row claimed and unrecorded at a kill.
    let mut in_flight: HashSet<(String, String)> = HashSet::new();
    let mut per_kill = Vec::new();
    let mut before = 0;
    for kill_no in 0..kills {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_paperboy"))
            .arg("--config")
            .arg(pb.dir.path().join("paperboy.toml"))
            .args(["send", "--date", "2026-04-10"])
            .current_dir(pb.dir.path())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let at = 50 + next(&mut seed) % 1000;
        tokio::time::sleep(Duration::from_millis(at)).await;
        kill(&mut child).await;
        if let Ok(pool) = sqlx::SqlitePool::connect(&db_url).await {
            let rows = sqlx::query(
                "SELECT subscriber, claim_token FROM deliveries WHERE status = 'sending'",
            )
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            for r in rows {
                in_flight.insert((r.get(0), r.get(1)));
            }
            pool.close().await;
        }
        // What this process left accepted and unrecorded: received twice once sent again.
        let now = unaccounted(&smtp, &db_url).await;
        let left = now - before;
        before = now;
        per_kill.push(left);
        assert!(
            left <= bound,
            "kill {kill_no}: {left} messages accepted by the server and unrecorded, more than \
             8 × concurrency = {bound}"
        );
    }
    // Restart until the run ends by itself with everyone sent.
    let mut done = false;
    for _ in 0..5 {
        let out = pb.run(&["send", "--date", "2026-04-10"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        if out.stdout.contains(&format!("{subscribers} sent")) {
            done = true;
            break;
        }
    }
    assert!(done, "all subscribers end sent");

    let pool = sqlx::SqlitePool::connect(&db_url).await.unwrap();
    let rows = sqlx::query("SELECT subscriber, status FROM deliveries")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), subscribers, "exactly one row per subscriber");
    assert!(
        rows.iter().all(|r| r.get::<String, _>(1) == "sent"),
        "every row sent"
    );

    // The runs after the kills, undisturbed, sent nobody a second digest.
    assert_eq!(
        unaccounted(&smtp, &db_url).await,
        before,
        "only a kill leaves messages unrecorded"
    );
    let got = smtp.per_recipient();
    let lost = (0..subscribers)
        .filter(|i| !got.contains_key(&format!("c{i}@example.org")))
        .count();
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: {kills} kills, {} deliveries in flight at the kills, accepted and \
         unrecorded per kill {per_kill:?} (bound {bound}), {duplicates} duplicates, {lost} \
         lost, {} messages for {subscribers} subscribers",
        in_flight.len(),
        got.values().sum::<usize>()
    );
    assert_eq!(lost, 0, "no subscriber is left without the digest");
    assert_eq!(
        duplicates, before,
        "each unrecorded message was sent again, once"
    );
    assert!(
        duplicates <= in_flight.len(),
        "{duplicates} duplicates but only {} in flight at the kills",
        in_flight.len()
    );
    let was_in_flight: HashSet<&str> = in_flight.iter().map(|(s, _)| s.as_str()).collect();
    let unexplained: Vec<&String> = got
        .iter()
        .filter(|(r, n)| **n > 1 && !was_in_flight.contains(r.as_str()))
        .map(|(r, _)| r)
        .collect();
    assert!(
        unexplained.is_empty(),
        "received twice without being in flight at a kill: {unexplained:?}"
    );
    // Every received copy of one subscriber's digest is the same message.
    let mut ids: HashMap<String, HashSet<String>> = Default::default();
    for r in smtp.received() {
        let id = r.parsed().message_id().unwrap().to_string();
        ids.entry(r.rcpt_tos[0].clone()).or_default().insert(id);
    }
    assert!(
        ids.values().all(|s| s.len() == 1),
        "a resend keeps its Message-ID"
    );
}

/// A config of `n` subscribers c0… with every paper's topic, on `smtp`.
fn config_of(
    api: &HfApi,
    smtp: &SmtpServer,
    opts: &SmtpOptions,
    delivery: &str,
    n: usize,
) -> String {
    let subs: String = (0..n)
        .map(|i| format!("[[subscribers]]\nemail = \"c{i}@example.org\"\ntopics = [\"any\"]\n"))
        .collect();
    format!(
        "[source]\nbase_url = {:?}\n[database]\nurl = \"sqlite://paperboy.db\"\n\
         [delivery]\ntransport = \"smtp\"\n{delivery}\n\
         retry_base = \"100ms\"\nretry_max = \"500ms\"\n{}\n\
         [topics.any]\nkeywords = [\"the\", \"we\"]\nmax_papers = 2\n{subs}",
        api.base_url,
        smtp_section(smtp, opts)
    )
}

/// Another connection holds the database's write lock: every write of paperboy waits.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(url: &str) -> Self {
        use sqlx::Connection;
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE deliveries IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            Self::Postgres(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            Self::Sqlite(c)
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Self::Postgres(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

/// While the database takes no write (an outcome cannot be recorded), the workers stop once
/// 8 × concurrency messages are unrecorded: killed then, no more than that arrive twice. (The
/// queue held 16 claimed rows a worker, all of which went out unrecorded.)
async fn a_kill_while_the_database_stalls_leaves_at_most_the_bound_unrecorded() {
    let (concurrency, subscribers) = (2, 2000);
    let bound = unrecorded_bound(concurrency);
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let opts = SmtpOptions {
        delay_ms: Some(20),
        pipelining: true,
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let delivery = format!("concurrency = {concurrency}\nlease = \"1h\"");
    let pb = Paperboy::new(&config_of(&api, &smtp, &opts, &delivery, subscribers));
    let url = pb.db_url();
    let mut child = pb
        .command(&["send", "--date", "2026-04-10"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    until_received(&smtp, 10).await;
    let lock = WriteLock::take(&url).await;
    // Meanwhile the workers send what they may.
    tokio::time::sleep(Duration::from_secs(2)).await;
    kill(&mut child).await;
    lock.release().await;
    let left = unaccounted(&smtp, &url).await;
    eprintln!("accepted and unrecorded at the kill: {left} (bound {bound})");
    assert!(
        left <= bound,
        "{left} messages accepted and unrecorded at the kill, more than 8 × concurrency = {bound}"
    );

    // A restart sends the rest, the killed process's rows at once (their lease is an hour).
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("{subscribers} sent")),
        "{}",
        out.stdout
    );
    let got = smtp.per_recipient();
    assert_eq!(got.len(), subscribers, "nobody is left without the digest");
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    assert_eq!(
        duplicates, left,
        "only what was unrecorded at the kill went twice"
    );
}

/// A restart on the same host takes over the rows in flight of the killed process at once
/// (the lease is an hour: without that, they would wait for it), and records its run failed;
/// a row whose claimer is a process of another host keeps its lease.
async fn a_restart_takes_over_a_killed_senders_rows_at_once_but_not_another_hosts() {
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    api.serve_day("2026-04-16", fixture_items("2026-04-16"));
    let opts = SmtpOptions {
        delay_ms: Some(50),
        pipelining: true,
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let pb = Paperboy::new(&config_of(
        &api,
        &smtp,
        &opts,
        "concurrency = 2\nlease = \"1h\"",
        200,
    ));
    let url = pb.db_url();
    let mut child = pb
        .command(&["send", "--date", "2026-04-10"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    until_received(&smtp, 5).await;
    kill(&mut child).await;
    let in_flight = "SELECT COUNT(*) FROM deliveries WHERE status = 'sending'";
    assert!(
        db_count(&url, in_flight).await >= 2,
        "the kill left rows in flight"
    );
    // One of them as if a process of another host had claimed it.
    let (id, claimer): (i64, String) = first_in_flight(&url).await;
    let elsewhere = format!("another-host{}", &claimer[claimer.find('/').unwrap()..]);
    db_execute(
        &url,
        &format!("UPDATE deliveries SET claimer = '{elsewhere}' WHERE id = {id}"),
    )
    .await;

    // Another date's run: its pass sends whatever is due, the killed run's rows too.
    let out = pb.run(&["send", "--date", "2026-04-16"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        db_count(&url, in_flight).await,
        1,
        "only the other host's row is still in flight"
    );
    assert_eq!(
        db_count(
            &url,
            &format!("SELECT COUNT(*) FROM deliveries WHERE status = 'sending' AND id = {id}")
        )
        .await,
        1
    );
    assert_eq!(
        db_count(
            &url,
            "SELECT COUNT(*) FROM deliveries WHERE digest_date = '2026-04-10' AND status = 'sent'"
        )
        .await,
        199
    );
    assert_eq!(
        db_count(
            &url,
            "SELECT COUNT(*) FROM runs WHERE digest_date = '2026-04-10' AND status = 'failed' \
             AND error LIKE '%ended before the run did%'"
        )
        .await,
        1,
        "the killed process's run is recorded failed"
    );

    // Once its lease is over, the other host's row is sent too.
    db_execute(
        &url,
        &format!(
            "UPDATE deliveries SET lease_expires_at = '2000-01-01T00:00:00+00:00' WHERE id = {id}"
        ),
    )
    .await;
    let out = pb.run(&["send", "--date", "2026-04-16"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(db_count(&url, in_flight).await, 0);
}

/// The first row in flight: its id and claimer.
async fn first_in_flight(url: &str) -> (i64, String) {
    let sql = "SELECT id, claimer FROM deliveries WHERE status = 'sending' ORDER BY id LIMIT 1";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let r = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        r
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let r = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        r
    }
}

on_both_backends!(
    a_kill_while_the_database_stalls_leaves_at_most_the_bound_unrecorded,
    a_restart_takes_over_a_killed_senders_rows_at_once_but_not_another_hosts,
);
