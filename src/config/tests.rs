//! Loading whole configurations: each section's problems named by key, the shipped examples
//! valid, subscribers read from tables or an inline list.

use super::*;

#[test]
fn a_bad_subscriber_table_is_named_with_its_line_and_inline_ones_still_count() {
    let base = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";
    let e = Config::load_str(
        &format!("{base}[[subscribers]]\nemail = \"a@example.org\"\ntopcs = [\"ml\"]\n"),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("subscribers[0].topcs (the [[subscribers]] table at line 5)")
            && e.contains("unknown field `topcs`"),
        "{e}"
    );
    // The inline form of the list goes through the config crate as before.
    let c = Config::load_str(
        &format!("subscribers = [{{ email = \"x@example.org\", topics = [\"ml\"] }}]\n{base}"),
        "t",
    )
    .unwrap();
    assert_eq!(c.subscribers[0].email.key().as_str(), "x@example.org");
}

#[test]
fn text_after_a_subscribers_header_on_its_line_is_an_error_naming_the_line() {
    // Found by the config_load fuzz target: the text after the header on its line was never
    // parsed, so this loaded as one subscriber (fuzz/regressions/config_load/).
    let base = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";
    for junk in ["\u{e}email = \"x", " email = \"a@example.org\"", "x"] {
        let text = format!(
            "{base}[[subscribers]]{junk}\n[[subscribers]]\nemail = \"b@example.org\"\n\
             topics = [\"ml\"]\n"
        );
        let e = Config::load_str(&text, "t").unwrap_err().to_string();
        assert!(e.contains("line 5"), "{junk:?}: {e}");
    }
    // A comment there is TOML, and the table is read as before.
    let c = Config::load_str(
        &format!(
            "{base}[[subscribers]] # the first\nemail = \"b@example.org\"\ntopics = [\"ml\"]\n"
        ),
        "t",
    )
    .unwrap();
    assert_eq!(c.subscribers.len(), 1);
}

#[test]
fn worker_threads_leave_a_core_unless_set() {
    let base = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";
    let auto = Config::load_str(base, "t").unwrap().delivery;
    assert_eq!(auto.threads, 0);
    assert_eq!(
        [1, 2, 4, 16].map(|cpus| auto.worker_threads(cpus)),
        [1, 1, 3, 15]
    );
    let set = Config::load_str(&format!("{base}[delivery]\nthreads = 2\n"), "t").unwrap();
    assert_eq!(set.delivery.worker_threads(1), 2);
    assert_eq!(set.delivery.worker_threads(16), 2);
    let e = Config::load_str(&format!("{base}[delivery]\nthreads = 5000\n"), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("delivery.threads: 5000"), "{e}");
}

#[test]
fn the_embedded_example_is_valid() {
    let c = Config::load_str(EMBEDDED_DEFAULT, "embedded").unwrap();
    assert_eq!(c.transport, TransportKind::Outbox);
    assert_eq!(c.topics.len(), 2);
    assert_eq!(c.subscribers.len(), 1);
}

#[test]
fn the_production_example_is_valid_once_its_password_file_exists() {
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), "hunter2\n").unwrap();
    let text = include_str!("../../deploy/config.toml")
        .replace("/etc/paperboy/smtp-password", pw.path().to_str().unwrap());
    let c = Config::load_str(&text, "deploy/config.toml").unwrap();
    assert_eq!(c.transport, TransportKind::Smtp);
    let pass = c
        .smtp
        .password
        .as_ref()
        .map(|p| secrecy::ExposeSecret::expose_secret(p).to_string());
    assert_eq!(pass.as_deref(), Some("hunter2"), "trailing newline dropped");
}

fn problems(toml: &str) -> String {
    Config::load_str(toml, "t.toml").unwrap_err().to_string()
}

const BASE: &str = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";

#[test]
fn every_problem_is_named_by_its_key() {
    let e = problems(&format!(
        "{BASE}[[subscribers]]\nemail = \"x@\"\ntopics = [\"ml\"]\n\
         [[subscribers]]\nemail = \"b@example.org\"\ntopics = [\"nope\"]\n\
         [[subscribers]]\nemail = \"B@EXAMPLE.org\"\ntopics = [\"ml\"]\n"
    ));
    assert!(
        e.contains("subscribers[0].email: invalid email address \"x@\""),
        "{e}"
    );
    assert!(
        e.contains("subscribers[1].topics: unknown topic \"nope\""),
        "{e}"
    );
    assert!(e.contains("subscribers[2].email"), "{e}");
    assert!(e.contains("already subscribed as subscribers[1]"), "{e}");
}

/// `Élise@…` and `élise@…` are two keys (only ASCII letters are folded into the key), but one
/// mailbox: both would get every digest. Refused like any other duplicate.
#[test]
fn two_subscribers_that_differ_only_in_non_ascii_case_are_refused() {
    let e = problems(&format!(
        "{BASE}[[subscribers]]\nemail = \"Élise@example.org\"\ntopics = [\"ml\"]\n\
         [[subscribers]]\nemail = \"élise@Example.org\"\ntopics = [\"ml\"]\n"
    ));
    assert!(
        e.contains(
            "subscribers[1].email: élise@Example.org is already subscribed as subscribers[0]"
        ),
        "{e}"
    );
    // Letters that differ, not case, are two subscribers.
    Config::load_str(
        &format!(
            "{BASE}[[subscribers]]\nemail = \"élise@example.org\"\ntopics = [\"ml\"]\n\
             [[subscribers]]\nemail = \"elise@example.org\"\ntopics = [\"ml\"]\n"
        ),
        "t",
    )
    .unwrap();
}

#[test]
fn empty_keywords_missing_from_and_bad_zone_are_refused() {
    let e = problems("[topics.ml]\nkeywords = []\n[schedule]\ntimezone = \"Mars/Olympus\"\n");
    assert!(
        e.contains("topics.ml.keywords: must list at least one keyword"),
        "{e}"
    );
    assert!(e.contains("smtp.from: required"), "{e}");
    assert!(e.contains("schedule.timezone"), "{e}");
}

#[test]
fn a_login_over_plain_text_is_refused() {
    let e = problems(&BASE.replace(
        "[smtp]\n",
        "[smtp]\nsecurity = \"none\"\nusername = \"u\"\npassword = \"pw-42\"\n",
    ));
    assert!(e.contains("clear text"), "{e}");
    assert!(!e.contains("pw-42"), "the password is not echoed: {e}");
}

#[test]
fn unknown_keys_are_refused() {
    let e = problems(&format!("{BASE}[smtp2]\nx = 1\n"));
    assert!(e.contains("smtp2"), "{e}");
}

#[test]
fn a_problem_ends_where_its_text_does() {
    // The TOML parser's message ends with a line break of its own.
    let e = problems(&format!("{BASE}garbage [[\n"));
    assert!(e.contains("TOML parse error"), "{e}");
    assert_eq!(e.trim_end(), e, "{e:?}");
}

#[test]
fn an_unreadable_password_file_is_one_problem_not_two() {
    let e = problems(&BASE.replace(
        "[smtp]\n",
        "[smtp]\nusername = \"u\"\npassword_file = \"/nonexistent/smtp-password\"\n",
    ));
    assert!(e.contains("smtp.password_file: cannot read"), "{e}");
    assert!(!e.contains("neither smtp.password"), "{e}");
    let e = problems(&BASE.replace("[smtp]\n", "[smtp]\nusername = \"u\"\n"));
    assert!(
        e.contains("smtp.username is set but neither smtp.password nor smtp.password_file"),
        "{e}"
    );
}

/// Every setting that reaches a header or the SMTP dialogue: a line break (or any control
/// character) there is refused at load, named by its key, not found by lettre mid-run.
#[test]
fn text_bound_for_a_header_holds_no_line_break() {
    let e = problems(&format!(
        "{BASE}[[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\\r\\nBcc: x@example.net\"\n\
         topics = [\"ml\"]\n\
         [[subscribers]]\nemail = \"bob@example.org\"\nname = \"Ada\\nLovelace\"\ntopics = [\"ml\"]\n\
         [[subscribers]]\nemail = \"cy@example.org\"\nname = \"Cy\\tTab\"\ntopics = [\"ml\"]\n\
         [[subscribers]]\nemail = \"dee@example.org\"\nname = \"Dee O'Brien, Zoë\"\ntopics = [\"ml\"]\n"
    ));
    for (key, what) in [
        ("subscribers[0].name", "CR"),
        ("subscribers[1].name", "LF"),
        ("subscribers[2].name", "tab"),
    ] {
        assert!(
            e.lines()
                .any(|l| l.contains(&format!("- {key}: ")) && l.contains(what)),
            "{key}: {e}"
        );
    }
    assert!(!e.contains("subscribers[3]"), "{e}");

    let e = problems(
        "[smtp]\nfrom = \"Paper\\nboy <a@example.org>\"\nreply_to = \"Desk\\r\\n <d@example.org>\"\n\
         hello_name = \"paperboy.test\\r\\nRSET\"\n\
         [unsubscribe]\nmailto = \"\\\"un sub\\\"@example.org\"\n\
         [topics.\"ml\\r\\nBcc: x@example.net\"]\nkeywords = [\"ml\"]\n",
    );
    for key in [
        "smtp.from: ",
        "smtp.reply_to: ",
        "smtp.hello_name: ",
        "unsubscribe.mailto: ",
        "topics.\"ml\\r\\nBcc: x@example.net\": ",
    ] {
        assert!(e.contains(&format!("- {key}")), "{key}: {e}");
    }
}

#[test]
fn dkim_selector_and_domain_are_host_names() {
    let key = tempfile::NamedTempFile::new().unwrap();
    let e = problems(&format!(
        "{BASE}[dkim]\nselector = \"s1\\r\\nX-Evil: 1\"\ndomain = \"example.org;\"\n\
         private_key_file = {:?}\n",
        key.path().display().to_string()
    ));
    assert!(
        e.contains("- dkim.selector: \"s1\\r\\nX-Evil: 1\" is not a host name"),
        "{e}"
    );
    assert!(
        e.contains("- dkim.domain: \"example.org;\" is not a host name"),
        "{e}"
    );
}

/// A zero where zero makes no sense (every request or SMTP step timing out, every delivery
/// given up before its first attempt, retries with no wait) is refused by its key; where it
/// has a meaning (no catch-up, no grace period), it is taken.
#[test]
fn zero_durations_that_make_no_sense_are_refused() {
    let e = problems(&format!(
        "{}[source]\ntimeout = \"0s\"\nretry_base = \"0s\"\nmax_retry_wait = \"0s\"\n\
         [schedule]\nlate_retry = \"0s\"\n[delivery]\ngive_up_after = \"0s\"\n",
        BASE.replace("[smtp]\n", "[smtp]\ntimeout = \"0s\"\n")
    ));
    for key in [
        "smtp.timeout",
        "source.timeout",
        "source.retry_base",
        "source.max_retry_wait",
        "schedule.late_retry",
        "delivery.give_up_after",
    ] {
        assert!(
            e.contains(&format!("- {key}: must be above 0")),
            "{key}: {e}"
        );
    }
    Config::load_str(
        &format!(
            "{BASE}[source]\nretries = 0\nretry_base = \"0s\"\nmax_rate_limit_retries = 0\n\
             max_retry_wait = \"0s\"\n[schedule]\ncatch_up_window = \"0s\"\ndeadline = \"0s\"\n\
             late_retry = \"0s\"\n[daemon]\ngrace_period = \"0s\"\n"
        ),
        "t",
    )
    .unwrap();
}

#[test]
fn a_cron_that_never_fires_is_a_warning_not_an_error() {
    let never =
        Config::load_str(&format!("{BASE}[schedule]\ncron = \"0 0 8 31 2 *\"\n"), "t").unwrap();
    assert_eq!(
        never.warnings,
        [
            "schedule.cron: \"0 0 8 31 2 *\" does not fire in the next 5 years: no digest will \
          go out on schedule"
        ]
    );
    // February 29th comes within the next five years.
    let leap =
        Config::load_str(&format!("{BASE}[schedule]\ncron = \"0 0 8 29 2 *\"\n"), "t").unwrap();
    assert!(leap.warnings.is_empty(), "{:?}", leap.warnings);
}

/// An integer too large for its key is named by it, wherever it is written: in a table the
/// `config` crate reads, in a `[[subscribers]]` table, in the inline list.
#[test]
fn an_integer_out_of_range_is_named_by_its_key() {
    let cases = [
        (
            BASE.replace("keywords", "max_papers = 18446744073709551615\nkeywords"),
            "topics.ml.max_papers: 18446744073709551615 is out of range",
        ),
        (
            format!("{BASE}[delivery]\nconcurrency = -1\n"),
            "delivery.concurrency",
        ),
        (
            format!("{BASE}[delivery]\nmax_per_hour = 99999999999\n"),
            "delivery.max_per_hour",
        ),
        (
            format!(
                "{BASE}[[subscribers]]\nemail = \"a@example.org\"\ntopics = [\"ml\"]\n\
                 max_papers = -1\n"
            ),
            "subscribers[0].max_papers (the [[subscribers]] table at line 5)",
        ),
        (
            format!(
                "{BASE}[[subscribers]]\nemail = \"a@example.org\"\ntopics = [\"ml\"]\n\
                 min_upvotes = 9223372036854775808\n"
            ),
            "subscribers[0].min_upvotes (the [[subscribers]] table at line 5)",
        ),
        (
            format!(
                "subscribers = [{{ email = \"a@example.org\", topics = [\"ml\"], \
                 max_papers = 99999999999999999999 }}]\n{BASE}"
            ),
            "subscribers[0].max_papers: 99999999999999999999 is out of range",
        ),
    ];
    for (toml, named) in cases {
        let e = problems(&toml);
        assert!(e.contains(named), "{named}: {e}");
    }
}

/// `{:?}` of the whole configuration, as a log line or a panic might show it, holds none of
/// its secrets: passwords, the unsubscribe secret, the DKIM key.
#[test]
fn the_configuration_shown_with_debug_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let made = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("1024")
        .output()
        .expect("openssl makes the test key");
    assert!(made.status.success(), "{made:?}");
    let c = Config::load_str(
        &format!(
            "{}[unsubscribe]\nbase_url = \"https://d.example.org/u\"\n\
             secret = \"unsub-secret-8c1e4f2a\"\n\
             [dkim]\nselector = \"s1\"\ndomain = \"example.org\"\nprivate_key_file = {:?}\n\
             [database]\nurl = \"postgres://app:db-pw-93b1d7@127.0.0.1:5432/pb\"\n",
            BASE.replace(
                "[smtp]\n",
                "[smtp]\nusername = \"u\"\npassword = \"smtp-pw-5a7c03\"\n"
            ),
            key.display().to_string()
        ),
        "t",
    )
    .unwrap();
    let shown = format!("{c:?}");
    for secret in [
        "smtp-pw-5a7c03",
        "unsub-secret-8c1e4f2a",
        "db-pw-93b1d7",
        "RsaPrivateKey",
        "primes",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("[a signing key]"), "{shown}");
}
