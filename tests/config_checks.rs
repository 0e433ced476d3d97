//! What `paperboy check` (and so every command) refuses or warns of in a configuration that
//! parses: text bound for a header with a line break in it, durations of zero that make no
//! sense, integers too large for their key, a cron that never fires (a warning, also logged by
//! `run`).

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncBufReadExt;

const BASE: &str = "[smtp]\nfrom = \"Paperboy <digest@paperboy.test>\"\n\
                    [topics.ml]\nkeywords = [\"ml\"]\n";

fn with_subscribers(names: &[&str]) -> String {
    let mut c = BASE.to_string();
    for (i, name) in names.iter().enumerate() {
        c.push_str(&format!(
            "[[subscribers]]\nemail = \"s{i}@example.org\"\nname = {name}\ntopics = [\"ml\"]\n"
        ));
    }
    c
}

/// A name with a line break would go into the To header (where lettre panics, or the header
/// is split in two): refused at load, named by its key.
#[tokio::test]
async fn check_refuses_a_name_with_a_line_break_naming_its_key() {
    let pb = Paperboy::new(&with_subscribers(&[
        "\"Bob\"",
        "\"Ada\\r\\nBcc: x@example.net\"",
        "\"Ada\\nLovelace\"",
    ]));
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}{}", out.stdout, out.stderr);
    for line in [
        "- subscribers[1].name: \"Ada\\r\\nBcc: x@example.net\" holds a control character, \
         U+000D (a carriage return, CR); it goes into the To header",
        "- subscribers[2].name: \"Ada\\nLovelace\" holds a control character, U+000A (a line \
         feed, LF)",
    ] {
        assert!(out.stderr.contains(line), "{line}\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("subscribers[0]"), "{}", out.stderr);
    // And every other command refuses it the same way, before doing anything.
    let out = pb.run(&["send", "--date", "2026-04-10", "--dry-run"]).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("subscribers[2].name"), "{}", out.stderr);
}

#[tokio::test]
async fn check_refuses_a_zero_smtp_timeout_naming_the_key() {
    let pb = Paperboy::new(&BASE.replace("[smtp]\n", "[smtp]\ntimeout = \"0s\"\n"));
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("- smtp.timeout: must be above 0"),
        "{}",
        out.stderr
    );
}

/// `max_papers = 18446744073709551615` does not fit the reader's integers: the message says
/// which key holds it.
#[tokio::test]
async fn check_names_the_key_of_an_integer_out_of_range() {
    let pb = Paperboy::new(&BASE.replace(
        "keywords = [\"ml\"]\n",
        "keywords = [\"ml\"]\nmax_papers = 18446744073709551615\n",
    ));
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("- topics.ml.max_papers: 18446744073709551615 is out of range"),
        "{}",
        out.stderr
    );
}

const NEVER: &str = "schedule.cron: \"0 0 8 31 2 *\" does not fire in the next 5 years";

/// February 31st never comes: valid, but worth a warning from `check` and in `run`'s log.
#[tokio::test]
async fn a_cron_that_never_fires_is_warned_of_by_check_and_run() {
    let pb = Paperboy::new(&format!(
        "{BASE}[schedule]\ncron = \"0 0 8 31 2 *\"\n[database]\nurl = \"sqlite://paperboy.db\"\n"
    ));
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("valid"), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("warning: {NEVER}")),
        "{}",
        out.stderr
    );

    let mut run = pb.spawn(&["run"]);
    let mut lines = tokio::io::BufReader::new(run.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            let running = l.contains("paperboy is running");
            log.push(l);
            if running {
                return;
            }
        }
    })
    .await;
    let pid = run.id().unwrap() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    run.wait().await.unwrap();
    let log = log.join("\n");
    assert!(started.is_ok(), "run did not start:\n{log}");
    assert!(
        log.lines().any(|l| l.contains("WARN") && l.contains(NEVER)),
        "{log}"
    );
}
