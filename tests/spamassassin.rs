//! The digest as a spam filter reads it: SpamAssassin (`spamassassin -L -t`, its local rules
//! only) scores real digests, sent by the binary to the test SMTP server, and no rule about
//! what they say or how their HTML looks may add to the score. Skipped, with a message, where
//! SpamAssassin is not installed (Debian's spamassassin package; .ci/run installs it); in CI
//! that fails instead.

mod support;

use std::process::{Command, Stdio};

use support::*;

/// Rules that weigh at most this are informational: SpamAssassin gives such rules (HTML_MESSAGE,
/// "the message has an HTML part") 0.001 so that reports list them without them counting.
const INFORMATIONAL: f64 = 0.001;

/// Rules that say how this test delivers the mail rather than what the digest is, allowed to
/// fire whatever they weigh (today they weigh -0.001). Every other rule scoring above
/// INFORMATIONAL fails the test.
/// - NO_RECEIVED, NO_RELAYS: the test server stores the message exactly as the binary sent it,
///   so no relay has added a Received line yet; a relay in production does.
///
/// Rules that need the network (DNS block lists, SPF, DKIM key look-ups) do not run at all
/// with `-L`, and Bayes is off (`use_bayes 0`, nothing learnt), so neither can make the score
/// depend on the machine. The digests are not DKIM-signed here: with `-L` SpamAssassin cannot
/// look up the key, so a signature would only read as one it cannot check (tests/email.rs
/// verifies signatures with an independent verifier).
const SETUP_RULES: &[&str] = &["NO_RECEIVED", "NO_RELAYS"];

fn spamassassin_installed() -> bool {
    Command::new("spamassassin")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SpamAssassin's verdict on one message: every rule it hit with its exact score, and its
/// report for a person to read.
fn score(raw: &[u8]) -> (Vec<(String, f64)>, String) {
    // A home of its own (SpamAssassin reads user preferences from $HOME): no preferences of
    // this machine's user change the verdict.
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new("spamassassin")
        .args([
            "-L",
            "-t",
            "--nocreate-prefs",
            "--cf=use_bayes 0",
            // The exact score of each rule (the report rounds them to one decimal).
            "--cf=add_header all Rules _TESTSSCORES(,)_",
        ])
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamassassin starts");
    let mut stdin = child.stdin.take().unwrap();
    let message = raw.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &message));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "spamassassin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scored = mail_parser::MessageParser::default()
        .parse(&out.stdout)
        .expect("spamassassin prints the message back");
    let rules = scored
        .header_raw("X-Spam-Rules")
        .expect("the X-Spam-Rules header asked for")
        .split(',')
        .map(|r| r.split_whitespace().collect::<String>())
        .filter(|r| !r.is_empty() && r != "none")
        .map(|r| {
            let (name, pts) = r.split_once('=').unwrap_or_else(|| panic!("rule {r:?}"));
            (name.to_string(), pts.parse().unwrap())
        })
        .collect();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = text[text.find("Content analysis details").unwrap_or(0)..].to_string();
    (rules, report)
}

#[tokio::test]
async fn spamassassin_finds_nothing_in_the_digest() {
    if !spamassassin_installed() {
        skip_or_fail_in_ci(
            "the SpamAssassin test",
            "no spamassassin on this machine (install Debian's spamassassin package; .ci/run does)",
        );
        return;
    }
    // Both kinds of text, with and without thumbnails; a digest with papers under two topics
    // (highlights in their titles and texts), and one saying there is nothing today.
    for digest in ["", "text = \"ai_summary\"\nthumbnails = true\n"] {
        let smtp = SmtpServer::start(SmtpOptions::default());
        let pb = Paperboy::new(&format!(
            "[source]\nbase_url = \"http://127.0.0.1:9\"\nlookback_days = 0\n\
             [database]\nurl = \"sqlite://paperboy.db\"\n[delivery]\ntransport = \"smtp\"\n{}\n\
             [unsubscribe]\nbase_url = \"https://digest.paperboy.test/unsubscribe\"\n\
             secret = \"sixteen chars or more\"\n\
             [digest]\n{digest}\n\
             [topics.agents]\nkeywords = [\"agent\", \"agents\"]\n\
             [topics.reasoning]\nkeywords = [\"reasoning\"]\n\
             [topics.quiet]\nkeywords = [\"xylophone\"]\n\
             [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada Lovelace\"\n\
             topics = [\"agents\", \"reasoning\"]\n\
             [[subscribers]]\nemail = \"quiet@example.org\"\ntopics = [\"quiet\"]\n\
             send_empty = true\n",
            smtp_section(&smtp, &SmtpOptions::default())
        ));
        let out = pb.send_recorded_day("2026-04-10").await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let got = smtp.received();
        assert_eq!(got.len(), 2, "a digest for each subscriber");

        for email in &got {
            let who = &email.rcpt_tos[0];
            let (rules, report) = score(&email.raw);
            assert!(
                rules.iter().any(|(name, _)| name == "HTML_MESSAGE"),
                "{digest:?}, {who}: SpamAssassin read the HTML part\n{report}"
            );
            let scoring: Vec<&(String, f64)> = rules
                .iter()
                .filter(|(name, pts)| *pts > INFORMATIONAL && !SETUP_RULES.contains(&name.as_str()))
                .collect();
            assert!(
                scoring.is_empty(),
                "{digest:?}, {who}: SpamAssassin scores the digest for {scoring:?}\n{report}"
            );
        }
    }
}
