//! A database that fails under a run: a SQLite file on a full disk, PostgreSQL connections
//! terminated mid-run. The run stops sending at once, keeps the outcomes it holds and writes
//! them once the database takes writes again (or counts in its log what it could not), ends
//! failed with the cause, and no subscriber receives a second digest beyond the messages
//! accepted and unrecorded when it stopped, at most 8 × `delivery.concurrency`.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::*;

fn config_of(
    api: &HfApi,
    smtp: &SmtpServer,
    opts: &SmtpOptions,
    db: &str,
    delivery: &str,
    n: usize,
) -> String {
    let subs: String = (0..n)
        .map(|i| format!("[[subscribers]]\nemail = \"d{i}@example.org\"\ntopics = [\"any\"]\n"))
        .collect();
    format!(
        "[source]\nbase_url = {:?}\n[database]\nurl = {db:?}\n\
         [delivery]\ntransport = \"smtp\"\n{delivery}\n\
         retry_base = \"100ms\"\nretry_max = \"500ms\"\n{}\n\
         [topics.any]\nkeywords = [\"the\", \"we\"]\nmax_papers = 2\n{subs}",
        api.base_url,
        smtp_section(smtp, opts)
    )
}

/// Waits until the file holds `what` (a log being written), up to a minute.
async fn until_logged(log: &Path, what: &str) -> String {
    for _ in 0..1200 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "not logged within a minute: {what:?}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// `paperboy send` of 2026-04-10 running in the background, its log (RUST_LOG=warn) in a file.
fn spawn_send(pb: &Paperboy, log: &Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).unwrap();
    pb.command(&["send", "--date", "2026-04-10"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size` (as mount's `size=`), or says why not (we are not root).
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (it needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left of it with a file, which is returned.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// A tmpfs for a test's SQLite file (room for its 3,000 subscribers' plan, which the test
/// fills when it chooses); None (having said why) where one cannot be mounted.
fn small_disk(test: &str) -> Option<Tmpfs> {
    match Tmpfs::mount("32m") {
        Ok(t) => Some(t),
        Err(why) => {
            skip_or_fail_in_ci(test, &why);
            None
        }
    }
}

const SUBSCRIBERS: usize = 3000;
const CONCURRENCY: usize = 4;

/// The disk fills under a run: it stops sending, holds the outcomes it could not record,
/// writes them once space is freed, and ends failed naming the disk. The rerun sends the
/// rest, nobody a second digest beyond what was unrecorded when the run stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_run_and_the_outcomes_it_held_are_written_once_space_is_back() {
    let Some(disk) = small_disk("a full disk stops the run") else {
        return;
    };
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let opts = SmtpOptions {
        delay_ms: Some(20),
        pipelining: true,
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let db = format!("sqlite://{}", disk.path().join("paperboy.db").display());
    let delivery = format!("concurrency = {CONCURRENCY}\nlease = \"2m\"");
    let pb = Paperboy::new(&config_of(&api, &smtp, &opts, &db, &delivery, SUBSCRIBERS));
    let log = pb.dir.path().join("first-run.log");
    let mut child = spawn_send(&pb, &log);
    until_received(&smtp, 20).await;
    let filler = disk.fill();
    until_logged(&log, "database or disk is full").await;
    // Sending stopped at the first failed write: the messages handed to the server since are
    // those that held a permit then, at most the bound. (Before, it went on for the recorder's
    // five tries, some 12 s.)
    let stopped_at = smtp.received().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bound = unrecorded_bound(CONCURRENCY);
    let after = smtp.received().len() - stopped_at;
    assert!(
        after <= bound,
        "{after} messages went out after the failure was logged, more than {bound}"
    );
    // Space is back: the outcomes held are written and the run ends, failed.
    std::fs::remove_file(filler).unwrap();
    let status = child.wait().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("database or disk is full"), "{text}");
    assert_eq!(
        db_count(
            &db,
            "SELECT COUNT(*) FROM runs WHERE status = 'failed' AND error LIKE '%disk is full%'"
        )
        .await,
        1,
        "the run is recorded failed with the cause: {text}"
    );
    let left = unaccounted(&smtp, &db).await;
    eprintln!(
        "{} received by the first run, {left} of them unrecorded (bound {bound})",
        smtp.received().len()
    );
    assert!(left <= bound, "{left} unrecorded, more than {bound}");

    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("{SUBSCRIBERS} sent")),
        "{}",
        out.stdout
    );
    let got = smtp.per_recipient();
    assert_eq!(got.len(), SUBSCRIBERS, "nobody is left without the digest");
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    assert_eq!(duplicates, left, "only what was unrecorded went twice");
}

/// The disk stays full until the run gives up (after the rows' lease): it logs how many
/// outcomes it could not record, of which how many of messages sent; those are the only
/// digests sent twice once space is back. The next start records the run failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_stays_full_loses_only_what_the_run_says_it_lost() {
    let Some(disk) = small_disk("a disk that stays full") else {
        return;
    };
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    api.serve_day("2026-04-16", fixture_items("2026-04-16"));
    let opts = SmtpOptions {
        delay_ms: Some(20),
        pipelining: true,
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let db = format!("sqlite://{}", disk.path().join("paperboy.db").display());
    let delivery = format!("concurrency = {CONCURRENCY}\nlease = \"3s\"");
    let pb = Paperboy::new(&config_of(&api, &smtp, &opts, &db, &delivery, SUBSCRIBERS));
    let log = pb.dir.path().join("first-run.log");
    let mut child = spawn_send(&pb, &log);
    until_received(&smtp, 20).await;
    let filler = disk.fill();
    let status = child.wait().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("database or disk is full"), "{text}");
    // "N delivery outcomes could not be recorded (S of them of messages the server accepted…"
    let lost_sent: usize = match text
        .split(" of them of messages the server accepted")
        .next()
    {
        Some(before) if text.contains("could not be recorded") => {
            before.rsplit('(').next().unwrap().trim().parse().unwrap()
        }
        _ => 0,
    };
    std::fs::remove_file(filler).unwrap();
    assert_eq!(unaccounted(&smtp, &db).await, lost_sent, "{text}");
    assert!(lost_sent <= unrecorded_bound(CONCURRENCY), "{text}");

    // The next start (another date's run) records the first run failed and sends its rows
    // (their claimer is gone); those whose outcome was lost go a second time.
    let out = pb.run(&["send", "--date", "2026-04-16"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        db_count(
            &db,
            "SELECT COUNT(*) FROM runs WHERE digest_date = '2026-04-10' AND status = 'failed'"
        )
        .await,
        1
    );
    assert_eq!(
        db_count(
            &db,
            "SELECT COUNT(*) FROM deliveries WHERE digest_date = '2026-04-10' AND status = 'sent'"
        )
        .await,
        SUBSCRIBERS as i64
    );
    let april_10: Vec<String> = smtp
        .received()
        .into_iter()
        .filter(|r| {
            r.parsed()
                .message_id()
                .is_some_and(|id| id.starts_with("digest.20260410."))
        })
        .flat_map(|r| r.rcpt_tos)
        .collect();
    let distinct: HashSet<&String> = april_10.iter().collect();
    assert_eq!(
        distinct.len(),
        SUBSCRIBERS,
        "nobody is left without the digest"
    );
    assert_eq!(
        april_10.len() - SUBSCRIBERS,
        lost_sent,
        "only the digests whose outcome was lost went twice"
    );
}

/// PostgreSQL connections terminated again and again under a run: the outcomes held are
/// written on a new connection, the run ends (failed, or done if no write met a dead
/// connection), and after reruns everyone has the digest, nobody a second one beyond what
/// each run left unrecorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_postgres_connections_duplicate_nothing_beyond_what_was_in_flight() {
    on_postgres("terminated PostgreSQL connections", async {
        let api = HfApi::start().await;
        api.serve_day("2026-04-10", fixture_items("2026-04-10"));
        let opts = SmtpOptions {
            delay_ms: Some(10),
            pipelining: true,
            ..Default::default()
        };
        let smtp = SmtpServer::start(opts.clone());
        let n = 1500;
        let delivery = format!("concurrency = {CONCURRENCY}\nlease = \"1h\"");
        let pb = Paperboy::new(&config_of(
            &api,
            &smtp,
            &opts,
            "sqlite://unused.db",
            &delivery,
            n,
        ));
        let db = pb.db_url();
        let log = pb.dir.path().join("first-run.log");
        let mut child = spawn_send(&pb, &log);
        until_received(&smtp, 20).await;
        let name = db.rsplit('/').next().unwrap().to_string();
        let admin = postgres_url().unwrap();
        let kill_sql = format!(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
              WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        );
        let pool = sqlx::PgPool::connect(&admin).await.unwrap();
        let mut terminated = 0i64;
        for _ in 0..15 {
            let k: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(kill_sql.clone()))
                .fetch_one(&pool)
                .await
                .unwrap();
            terminated += k;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        pool.close().await;
        let status = child.wait().await.unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        eprintln!(
            "terminated {terminated} connections; the run ended {status}; {} received",
            smtp.received().len()
        );
        assert!(terminated > 0);
        let bound = unrecorded_bound(CONCURRENCY);
        let mut left = unaccounted(&smtp, &db).await;
        assert!(
            left <= bound,
            "{left} unrecorded, more than {bound}: {text}"
        );
        if status.code() == Some(1) {
            assert_eq!(
                db_count(
                    &db,
                    "SELECT COUNT(*) FROM runs WHERE status = 'failed' AND error IS NOT NULL"
                )
                .await,
                1,
                "{text}"
            );
        } else {
            assert_eq!(status.code(), Some(0), "{text}");
        }
        for _ in 0..5 {
            let out = pb.run(&["send", "--date", "2026-04-10"]).await;
            let now = unaccounted(&smtp, &db).await;
            assert!(now - left <= bound, "{}", out.stderr);
            left = now;
            if out.code == 0 && out.stdout.contains(&format!("{n} sent")) {
                break;
            }
        }
        let got = smtp.per_recipient();
        assert_eq!(got.len(), n, "nobody is left without the digest");
        let duplicates: usize = got.values().map(|n| n - 1).sum();
        assert_eq!(duplicates, left, "only what was unrecorded went twice");
    })
    .await;
}
