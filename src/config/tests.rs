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
        e.contains("subscribers[0] (the [[subscribers]] table at line 5)")
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
