//! The command line's other paths: replaying saved responses, preview, template overrides,
//! JSON logs, env overrides, implicit TLS, send_empty, dates in the future.

mod support;

use support::*;

const TOPICS: &str = "[topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 3\n\
                      [topics.none]\nkeywords = [\"zzyzx quasicrystal\"]\n";

fn config(source: &str, smtp: &str, subscribers: &str) -> String {
    format!(
        "[source]\n{source}\n[delivery]\ntransport = \"smtp\"\n\
         [database]\nurl = \"sqlite://paperboy.db\"\n{smtp}\n{TOPICS}\n{subscribers}"
    )
}

const ADA: &str =
    "[[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\"\ntopics = [\"agents\"]\n";

async fn a_saved_response_replays_a_day_from_a_file_or_a_file_url() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let section = smtp_section(&smtp, &SmtpOptions::default());
    // --source-file: one saved response; the network is never asked (the base URL is dead).
    let pb = Paperboy::new(&config(
        "base_url = \"http://127.0.0.1:9\"\ntimeout = \"1s\"",
        &section,
        ADA,
    ));
    let out = pb.send_recorded_day("2026-04-10").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("35 papers"), "{}", out.stdout);
    assert_eq!(smtp.received().len(), 1);

    // file:// base URL: a directory of YYYY-MM-DD.json files.
    let dir = fixture("");
    let pb = Paperboy::new(&config(
        &format!("base_url = \"file://{}\"", dir.display()),
        &section,
        ADA,
    ));
    let out = pb.run(&["send", "--date", "2026-04-16"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("22 papers"), "{}", out.stdout);
    assert_eq!(smtp.received().len(), 2);
    // A saved list is filed under its own date: another --date is refused.
    let out = pb
        .run(&[
            "send",
            "--date",
            "2026-04-13",
            "--source-file",
            fixture("2026-04-10.json").to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("does not match the saved list"),
        "{}",
        out.stderr
    );
    // A day with no saved file is a clear error naming the file.
    let out = pb.run(&["send", "--date", "2026-04-11"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("2026-04-11.json"), "{}", out.stderr);
}

#[tokio::test]
async fn preview_writes_both_parts_and_sends_nothing() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let pb = Paperboy::new(&config(
        "base_url = \"http://127.0.0.1:9\"",
        &smtp_section(&smtp, &SmtpOptions::default()),
        ADA,
    ));
    let file = fixture("2026-04-10.json");
    let out = pb
        .run(&[
            "preview",
            "--subscriber",
            "ADA@example.org",
            "--date",
            "2026-04-10",
            "--source-file",
            file.to_str().unwrap(),
            "--out",
            "p.html",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Subject: 3 new papers on agents - Apr 10"),
        "{}",
        out.stderr
    );
    let html = std::fs::read_to_string(pb.dir.path().join("p.html")).unwrap();
    let text = std::fs::read_to_string(pb.dir.path().join("p.txt")).unwrap();
    assert_eq!(
        html.matches("https://huggingface.co/papers/2604.").count(),
        3
    );
    assert!(text.contains("== agents =="));
    assert!(
        text.lines()
            .filter(|l| !l.contains("://") && !l.contains("mailto:"))
            .all(|l| l.chars().count() <= 78),
        "wrapped text"
    );
    assert!(smtp.received().is_empty());

    let out = pb
        .run(&[
            "preview",
            "--subscriber",
            "eve@example.org",
            "--source-file",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("eve@example.org is not a subscriber"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn templates_dir_overrides_built_ins_and_a_broken_template_is_a_config_error() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let section = smtp_section(&smtp, &SmtpOptions::default());
    let pb = Paperboy::new("");
    let tdir = pb.dir.path().join("tpl");
    std::fs::create_dir(&tdir).unwrap();
    std::fs::write(
        tdir.join("subject.hbs"),
        "[lab digest] {{paper_count}} for {{subscriber_name}} on {{date}}",
    )
    .unwrap();
    let cfg = config("base_url = \"http://127.0.0.1:9\"", &section, ADA).replace(
        "[delivery]",
        "[digest]\ntemplates_dir = \"tpl\"\n[delivery]",
    );
    pb.set_config(&cfg);
    let out = pb.send_recorded_day("2026-04-10").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    assert_eq!(
        got[0].parsed().subject().unwrap(),
        "[lab digest] 3 for Ada on 2026-04-10"
    );

    std::fs::write(
        tdir.join("digest.html.hbs"),
        "<p>{{#each groups}}{{topic}}</p>",
    )
    .unwrap();
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("digest.html.hbs"), "{}", out.stderr);

    // Strict mode: a misspelt field fails loudly at render time, and the delivery stays pending.
    std::fs::write(tdir.join("digest.html.hbs"), "<p>{{paper_cuont}}</p>").unwrap();
    let out = pb.send_recorded_day("2026-04-16").await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("paper_cuont"), "{}", out.stderr);
    assert_eq!(
        smtp.received().len(),
        1,
        "nothing sent with a broken template"
    );
    std::fs::remove_file(tdir.join("digest.html.hbs")).unwrap();
    let out = pb.send_recorded_day("2026-04-16").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        smtp.received().len(),
        2,
        "the pending delivery goes out once fixed"
    );
}

/// The message ends with its last line of text and one line break: not run into the shell's
/// prompt, and no blank line after it (a TOML or template parser's own message ends with one).
#[tokio::test]
async fn a_configuration_error_ends_with_one_line_break() {
    let ends_with_one_line_break =
        |stderr: &str| stderr.ends_with('\n') && !stderr.ends_with("\n\n");
    let pb = Paperboy::new("[smtp]\nfrom = \"a@example.org\"\ngarbage [[\n");
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("TOML parse error"), "{}", out.stderr);
    assert!(ends_with_one_line_break(&out.stderr), "{:?}", out.stderr);

    pb.set_config("[smtp]\nfrom = \"\"\n[topics.ml]\nkeywords = []\n");
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("topics.ml.keywords"), "{}", out.stderr);
    assert!(ends_with_one_line_break(&out.stderr), "{:?}", out.stderr);

    std::fs::create_dir(pb.dir.path().join("tpl")).unwrap();
    std::fs::write(pb.dir.path().join("tpl/digest.html.hbs"), "{{#if x}}broken").unwrap();
    pb.set_config(
        "[smtp]\nfrom = \"a@example.org\"\n[digest]\ntemplates_dir = \"tpl\"\n\
         [topics.ml]\nkeywords = [\"ml\"]\n",
    );
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("digest.html.hbs"), "{}", out.stderr);
    assert!(ends_with_one_line_break(&out.stderr), "{:?}", out.stderr);
}

/// A URL whose password holds a `/` does not parse: the message shows neither the password
/// nor the URL twice.
#[tokio::test]
async fn a_database_url_that_does_not_parse_is_shown_once_without_its_password() {
    let pb = Paperboy::new(
        "[database]\nurl = \"postgres://app:se/cret@127.0.0.1/pb\"\n\
         [smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n",
    );
    let out = pb.run(&["status"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("cret"), "{}", out.stderr);
    let message = out
        .stderr
        .lines()
        .find(|l| l.starts_with("paperboy: error:"))
        .unwrap_or_else(|| panic!("an error line in {}", out.stderr));
    assert_eq!(
        message.matches("postgres://***@127.0.0.1/pb").count(),
        1,
        "{message}"
    );
}

#[tokio::test]
async fn json_logs_env_overrides_and_implicit_tls() {
    let opts = SmtpOptions {
        implicit_tls: true,
        auth: Some(("digest".into(), "from-the-env".into())),
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    // The file holds a wrong password; the environment's wins.
    let section = smtp_section(&smtp, &opts).replace("from-the-env", "stale-in-file");
    let pb = Paperboy::new(&config("base_url = \"http://127.0.0.1:9\"", &section, ADA));
    let file = fixture("2026-04-10.json");
    let out = pb
        .run_with_env(
            &[
                "--log-format",
                "json",
                "send",
                "--date",
                "2026-04-10",
                "--source-file",
                file.to_str().unwrap(),
            ],
            &[("PAPERBOY__SMTP__PASSWORD", "from-the-env")],
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "implicit TLS");
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let summary = lines
        .iter()
        .find(|l| l["fields"]["message"] == "run finished")
        .expect("one summary line per run");
    assert_eq!(summary["fields"]["sent"], 1);
    assert_eq!(summary["fields"]["papers_fetched"], 35);
    assert!(!out.stderr.contains("from-the-env"), "no secret in logs");
}

async fn send_empty_sends_a_no_papers_email_and_future_dates_are_refused() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let subs = "[[subscribers]]\nemail = \"quiet@example.org\"\ntopics = [\"none\"]\nsend_empty = true\n\
                [[subscribers]]\nemail = \"silent@example.org\"\ntopics = [\"none\"]\n";
    let pb = Paperboy::new(&config(
        "base_url = \"http://127.0.0.1:9\"",
        &smtp_section(&smtp, &SmtpOptions::default()),
        subs,
    ));
    let out = pb.send_recorded_day("2026-04-10").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_tos, ["quiet@example.org"]);
    assert!(
        got[0]
            .parsed()
            .subject()
            .unwrap()
            .starts_with("No new papers")
    );

    let out = pb.run(&["send", "--date", "2999-01-01"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("2999-01-01 is in the future"),
        "{}",
        out.stderr
    );
    let out = pb.run(&["send", "--date", "yesterday-ish"]).await;
    assert_eq!(out.code, 2, "usage errors exit 2");
}

async fn topics_test_and_explain_help_tune_a_topic() {
    let pb = Paperboy::new(&config(
        "base_url = \"http://127.0.0.1:9\"",
        "[smtp]\nfrom = \"a@example.org\"\n",
        ADA,
    ));
    let file = fixture("2026-04-10.json");
    let out = pb
        .run(&[
            "topics",
            "test",
            "title:agent* -repo:yes",
            "--file",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.last().unwrap().ends_with("of 35 papers match"),
        "{}",
        out.stdout
    );
    assert!(
        lines.len() > 2
            && lines[..lines.len() - 1]
                .iter()
                .all(|l| l.contains("[agent*]"))
    );
    let out = pb
        .run(&["topics", "test", "(agent", "--file", file.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("column 7: expected ')'"),
        "{}",
        out.stderr
    );

    let out = pb
        .run(&[
            "topics",
            "explain",
            "ada@example.org",
            "--source-file",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.matches("CHOSEN under agents").count(),
        3,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("max_papers was reached"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("matches none of the subscriber's topics")
    );
}

on_both_backends!(
    a_saved_response_replays_a_day_from_a_file_or_a_file_url,
    send_empty_sends_a_no_papers_email_and_future_dates_are_refused,
    topics_test_and_explain_help_tune_a_topic,
);
