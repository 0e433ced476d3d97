//! High availability on PostgreSQL: three `paperboy run` processes with one config and one
//! database share a 5,000-subscriber digest; one is killed with SIGKILL mid-run. The other
//! two take over its deliveries once their leases expire: every subscriber ends with exactly
//! one sent row, nobody is left out, and the only messages received twice are deliveries
//! that were in flight (claimed, unrecorded) when the process died.

mod support;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use support::*;
use tokio::io::AsyncBufReadExt;

struct Instance {
    child: tokio::process::Child,
    sent: Arc<Mutex<usize>>,
}

fn start(pb: &Paperboy) -> Instance {
    let mut child = pb
        .command(&["run"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let sent = Arc::new(Mutex::new(0));
    let count = sent.clone();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains(" sent ") || l.ends_with(" sent") {
                *count.lock().unwrap() += 1;
            }
            if l.contains("ERROR") {
                eprintln!("{l}");
            }
        }
    });
    Instance { child, sent }
}

async fn three_instances_share_a_run_and_finish_the_work_of_a_killed_one() {
    let subscribers = 5000;
    let today = Utc::now().date_naive().to_string();
    let api = HfApi::start().await;
    api.serve_day(&today, fixture_items("2026-04-10"));
    let opts = SmtpOptions {
        delay_ms: Some(5),
        pipelining: true,
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subs: String = (0..subscribers)
        .map(|i| format!("[[subscribers]]\nemail = \"r{i}@example.org\"\ntopics = [\"any\"]\n"))
        .collect();
    // Today's midnight tick is missed at start: each instance catches it up at once.
    let cfg = format!(
        "[source]\nbase_url = {:?}\ndigest_day = \"today\"\nretries = 0\nlookback_days = 0\n\
         [schedule]\ntimezone = \"UTC\"\ncron = \"0 0 0 * * *\"\ncatch_up_window = \"24h\"\n\
         [delivery]\ntransport = \"smtp\"\nconcurrency = 4\nlease = \"3s\"\n\
         retry_base = \"100ms\"\nretry_max = \"500ms\"\n{}\n\
         [topics.any]\nkeywords = [\"the\", \"we\"]\nmax_papers = 2\n{subs}",
        api.base_url,
        smtp_section(&smtp, &opts)
    );
    let pb = Paperboy::new(&cfg);
    let url = pb.db_url();
    let mut instances: Vec<Instance> = (0..3).map(|_| start(&pb)).collect();

    // Kill one once about a fifth of the digests are out and it has sent some itself.
    let started = Instant::now();
    while smtp.received().len() < subscribers / 5 || *instances[0].sent.lock().unwrap() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run gets going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    instances[0].child.start_kill().unwrap(); // SIGKILL
    instances[0].child.wait().await.unwrap();
    let killed_sent = *instances[0].sent.lock().unwrap();
    let received_at_kill = smtp.received().len();
    // What was claimed and not yet recorded at that moment: the killed instance's claims,
    // and the survivors' messages in flight (which they record themselves).
    let in_flight: HashSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT subscriber FROM deliveries WHERE status = 'sending'",
    )
    .fetch_all(&sqlx::PgPool::connect(&url).await.unwrap())
    .await
    .unwrap()
    .into_iter()
    .collect();

    // The survivors finish, the killed instance's rows included, after their lease.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sent = db_count(
            &url,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
        )
        .await;
        if sent == subscribers as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sent} of {subscribers} sent within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let survivors_sent: Vec<usize> = instances[1..]
        .iter()
        .map(|i| *i.sent.lock().unwrap())
        .collect();
    for mut i in instances.drain(1..) {
        unsafe { libc::kill(i.child.id().unwrap() as i32, libc::SIGTERM) };
        let _ = tokio::time::timeout(Duration::from_secs(30), i.child.wait()).await;
    }

    let rows = db_count(&url, "SELECT COUNT(*) FROM deliveries").await;
    assert_eq!(rows, subscribers as i64, "exactly one row per subscriber");
    let got = smtp.per_recipient();
    let lost: Vec<String> = (0..subscribers)
        .map(|i| format!("r{i}@example.org"))
        .filter(|r| !got.contains_key(r))
        .collect();
    let twice: Vec<&String> = got
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(r, _)| r)
        .collect();
    eprintln!(
        "ha test: {subscribers} subscribers, 3 instances; killed one after it sent {killed_sent} \
         ({received_at_kill} received in all); {} rows in flight then; survivors sent {:?}; \
         {} received twice, {} lost",
        in_flight.len(),
        survivors_sent,
        twice.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "nobody left out: {lost:?}");
    assert!(
        survivors_sent.iter().all(|n| *n > 0),
        "both survivors sent: {survivors_sent:?}"
    );
    let unexplained: Vec<&&String> = twice.iter().filter(|r| !in_flight.contains(**r)).collect();
    assert!(
        unexplained.is_empty(),
        "received twice without being in flight at the kill: {unexplained:?}"
    );
    assert!(
        got.values().all(|n| *n <= 2),
        "nobody gets a digest more than twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres() {
    on_postgres(
        "three_instances_share_a_run_and_finish_the_work_of_a_killed_one",
        three_instances_share_a_run_and_finish_the_work_of_a_killed_one(),
    )
    .await
}
