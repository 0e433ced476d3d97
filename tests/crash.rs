//! Crash safety: a run of 2,000 subscribers against a slow sink, killed with SIGKILL at random
//! moments 20 times and restarted until done. Nothing is lost, every subscriber has exactly
//! one sent row, and only deliveries in flight at a kill (claimed, outcome unrecorded) are
//! received twice.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Row;
use support::*;

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
    // (subscriber, claim token) of every row claimed and unrecorded at a kill.
    let mut in_flight: HashSet<(String, String)> = HashSet::new();
    for _ in 0..kills {
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
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
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

    let got = smtp.per_recipient();
    let lost = (0..subscribers)
        .filter(|i| !got.contains_key(&format!("c{i}@example.org")))
        .count();
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    eprintln!(
        "crash test: {kills} kills, {} deliveries in flight at the kills, {duplicates} \
         duplicates, {lost} lost, {} messages for {subscribers} subscribers",
        in_flight.len(),
        got.values().sum::<usize>()
    );
    assert_eq!(lost, 0, "no subscriber is left without the digest");
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
    let mut ids: std::collections::HashMap<String, HashSet<String>> = Default::default();
    for r in smtp.received() {
        let id = r.parsed().message_id().unwrap().to_string();
        ids.entry(r.rcpt_tos[0].clone()).or_default().insert(id);
    }
    assert!(
        ids.values().all(|s| s.len() == 1),
        "a resend keeps its Message-ID"
    );
}
