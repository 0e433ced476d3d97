//! The whole pipeline against real servers on loopback: recorded API days served over HTTP,
//! aiosmtpd receiving over STARTTLS with AUTH, the real binary in between.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use mail_parser::{MimeHeaders, PartType};
use regex::Regex;
use serde_json::Value;
use support::*;

// ------------------------------------------------------------ an independent model of selection

struct TopicSpec {
    name: &'static str,
    keywords: &'static [&'static str],
    exclude: &'static [&'static str],
    min_upvotes: i64,
    max_papers: usize,
}

fn phrase_regex(phrase: &str) -> Regex {
    let words: Vec<String> = phrase
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(regex::escape)
        .collect();
    Regex::new(&format!(
        r"(?i)(?:^|[^\p{{L}}\p{{N}}]){}(?:$|[^\p{{L}}\p{{N}}])",
        words.join(r"[^\p{L}\p{N}]+")
    ))
    .unwrap()
}

fn fields(item: &Value) -> Vec<String> {
    let p = &item["paper"];
    let mut f = vec![
        p["title"].as_str().unwrap().to_string(),
        p["summary"].as_str().unwrap_or("").to_string(),
    ];
    if let Some(k) = p["ai_keywords"].as_array() {
        f.extend(k.iter().map(|k| k.as_str().unwrap().to_string()));
    }
    f
}

fn matches(t: &TopicSpec, item: &Value) -> bool {
    let f = fields(item);
    let has = |k: &&str| {
        let re = phrase_regex(k);
        f.iter().any(|s| re.is_match(s))
    };
    item["paper"]["upvotes"].as_i64().unwrap() >= t.min_upvotes
        && t.keywords.iter().any(has)
        && !t.exclude.iter().any(has)
}

/// The arXiv ids a subscriber of `topics` should get from `items`, in email order.
fn expected(items: &[Value], topics: &[&TopicSpec], exclude: &HashSet<String>) -> Vec<String> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (-items[i]["paper"]["upvotes"].as_i64().unwrap(), i));
    let mut out: Vec<String> = Vec::new();
    for t in topics {
        let picked: Vec<String> = order
            .iter()
            .map(|&i| &items[i])
            .map(|it| (it, it["paper"]["id"].as_str().unwrap().to_string()))
            .filter(|(it, id)| !out.contains(id) && !exclude.contains(id) && matches(t, it))
            .map(|(_, id)| id)
            .take(t.max_papers)
            .collect();
        out.extend(picked);
    }
    out
}

fn topic_toml(t: &TopicSpec) -> String {
    format!(
        "[topics.{}]\nkeywords = {:?}\nexclude = {:?}\nmin_upvotes = {}\nmax_papers = {}\n",
        t.name, t.keywords, t.exclude, t.min_upvotes, t.max_papers
    )
}

const AGENTS: TopicSpec = TopicSpec {
    name: "agents",
    keywords: &["agent", "agents", "agentic"],
    exclude: &["game"],
    min_upvotes: 0,
    max_papers: 4,
};
const MULTIMODAL: TopicSpec = TopicSpec {
    name: "multimodal",
    keywords: &["multimodal", "vision-language", "VLM"],
    exclude: &[],
    min_upvotes: 5,
    max_papers: 3,
};
const GAMES: TopicSpec = TopicSpec {
    name: "games",
    keywords: &["video games", "game"],
    exclude: &[],
    min_upvotes: 0,
    max_papers: 5,
};
const RL: TopicSpec = TopicSpec {
    name: "rl",
    keywords: &["RL", "reinforcement learning"],
    exclude: &[],
    min_upvotes: 0,
    max_papers: 6,
};
const NOTHING: TopicSpec = TopicSpec {
    name: "nothing",
    keywords: &["zzyzx quasicrystal"],
    exclude: &[],
    min_upvotes: 0,
    max_papers: 5,
};

fn all_topics() -> String {
    [&AGENTS, &MULTIMODAL, &GAMES, &RL, &NOTHING]
        .iter()
        .map(|t| topic_toml(t))
        .collect()
}

fn subscriber(email: &str, name: &str, topics: &[&TopicSpec]) -> String {
    let names: Vec<&str> = topics.iter().map(|t| t.name).collect();
    format!("[[subscribers]]\nemail = {email:?}\nname = {name:?}\ntopics = {names:?}\n")
}

fn base_config(api: &HfApi, smtp: &str, extra: &str) -> String {
    format!(
        "[source]\nbase_url = {:?}\ntimeout = \"5s\"\nmax_retry_wait = \"3s\"\nretries = 1\nretry_base = \"100ms\"\n\
         [delivery]\ntransport = \"smtp\"\n[database]\nurl = \"sqlite://state/paperboy.db\"\n\
         {smtp}\n{}\n{extra}",
        api.base_url,
        all_topics()
    )
}

/// arXiv ids linked from the HTML part, in order, and the same from the text part.
fn papers_in(msg: &mail_parser::Message) -> (Vec<String>, Vec<String>) {
    let re = Regex::new(r"https://huggingface\.co/papers/(\d{4}\.\d{4,5})").unwrap();
    let grab = |s: &str| {
        re.captures_iter(s)
            .map(|c| c[1].to_string())
            .collect::<Vec<_>>()
    };
    let html = msg.body_html(0).expect("an HTML part");
    let text = msg.body_text(0).expect("a text part");
    (grab(&html), grab(&text))
}

fn recipients(smtp: &SmtpServer) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in smtp.received() {
        let (html, _) = papers_in(&r.parsed());
        for to in &r.rcpt_tos {
            out.entry(to.clone()).or_default().extend(html.clone());
        }
    }
    out
}

/// A relay as most are: STARTTLS, AUTH and PIPELINING (each message then carries the next
/// transaction's commands).
fn tls_auth() -> SmtpOptions {
    SmtpOptions {
        starttls: true,
        auth: Some(("digest".into(), "s3cret-pw".into())),
        pipelining: true,
        ..Default::default()
    }
}

// ------------------------------------------------------------------------------- the tests

async fn each_subscriber_receives_one_valid_email_with_exactly_its_papers() {
    let api = HfApi::start().await;
    let items = fixture_items("2026-04-10");
    api.serve_day("2026-04-10", items.clone());
    let opts = tls_auth();
    let smtp = SmtpServer::start(opts.clone());
    let subs = [
        (
            "ada@example.org",
            "Ada Lovelace",
            vec![&AGENTS, &MULTIMODAL],
        ),
        (
            "grace@example.com",
            "Grace Hopper",
            vec![&RL, &MULTIMODAL, &AGENTS],
        ),
        ("gamer@example.net", "Ünïcødé Gämer", vec![&GAMES]),
        ("nobody@example.org", "No Match", vec![&NOTHING]),
    ];
    let cfg = base_config(
        &api,
        &smtp_section(&smtp, &opts),
        &subs
            .iter()
            .map(|(e, n, t)| subscriber(e, n, t))
            .collect::<String>(),
    );
    let pb = Paperboy::new(&cfg);

    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("3 sent") && out.stdout.contains("1 skipped"),
        "{}",
        out.stdout
    );

    let got = smtp.received();
    assert_eq!(got.len(), 3, "one message per subscriber with papers");
    for (email, name, topics) in &subs {
        let want = expected(&items, topics, &HashSet::new());
        let mine: Vec<&Received> = got.iter().filter(|r| r.rcpt_tos == [*email]).collect();
        if want.is_empty() {
            assert!(mine.is_empty(), "{email} matched nothing and gets nothing");
            continue;
        }
        assert_eq!(mine.len(), 1, "{email} receives exactly one message");
        let r = mine[0];
        assert_eq!(
            r.mail_from, "digest@paperboy.test",
            "the envelope sender is From"
        );
        assert!(r.tls, "sent over STARTTLS");
        assert_eq!(r.auth_user.as_deref(), Some("digest"));
        let msg = r.parsed();
        let (html, text) = papers_in(&msg);
        // Each paper links to its page from the title; the text part lists the same papers.
        let dedup = |v: Vec<String>| {
            let mut seen = HashSet::new();
            v.into_iter()
                .filter(|x| seen.insert(x.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(dedup(html), want, "{email}: HTML papers");
        assert_eq!(dedup(text), want, "{email}: text papers");

        // Headers.
        let to = msg.to().unwrap().first().unwrap();
        assert_eq!(to.address().unwrap(), *email);
        assert_eq!(to.name().unwrap(), *name, "display names survive RFC 2047");
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address().unwrap(), "digest@paperboy.test");
        assert_eq!(from.name().unwrap(), "Paperboy Test");
        assert_eq!(
            msg.reply_to().unwrap().first().unwrap().address().unwrap(),
            "owner@paperboy.test"
        );
        let subject = msg.subject().unwrap();
        assert!(
            subject.starts_with(&format!("{} new paper", want.len())) && subject.contains("Apr 10"),
            "{subject}"
        );
        assert!(msg.date().is_some());
        // Without an https endpoint: a mailto: List-Unsubscribe, and no one-click claim.
        let lu = msg
            .header_raw("List-Unsubscribe")
            .expect("List-Unsubscribe");
        assert!(
            lu.contains("<mailto:digest@paperboy.test?subject=unsubscribe%20"),
            "{lu}"
        );
        assert!(msg.header_raw("List-Unsubscribe-Post").is_none());
        assert!(msg.header_raw("List-Id").is_some());
        let mid = msg.message_id().unwrap();
        assert!(mid.starts_with("digest.20260410.") && mid.ends_with("@paperboy.test"));

        // MIME: multipart/alternative with a UTF-8 text part first, then HTML.
        let ct = msg.content_type().unwrap();
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative"))
        );
        let leaves: Vec<(String, String)> = msg
            .parts
            .iter()
            .filter(|p| matches!(p.body, PartType::Text(_) | PartType::Html(_)))
            .map(|p| {
                let ct = p.content_type().unwrap();
                assert_eq!(ct.attribute("charset"), Some("utf-8"));
                (ct.ctype().to_string(), ct.subtype().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            leaves,
            [
                ("text".into(), "plain".into()),
                ("text".into(), "html".into())
            ]
        );
        // Wire format: CRLF only, no line over 998 octets.
        for line in r.raw.split(|b| *b == b'\n') {
            assert!(line.len() <= 999, "a line of {} octets", line.len());
            assert!(
                line.is_empty() || line.ends_with(b"\r"),
                "bare LF in {email}"
            );
        }
    }
}

async fn a_second_send_sends_nothing_and_papers_are_never_sent_twice() {
    let api = HfApi::start().await;
    let day1 = fixture_items("2026-04-10");
    let day2 = fixture_items("2026-04-16");
    api.serve_day("2026-04-10", day1.clone());
    api.serve_day("2026-04-16", day2.clone());
    let smtp = SmtpServer::start(SmtpOptions::default());
    let section = smtp_section(&smtp, &SmtpOptions::default());
    let early = subscriber("early@example.org", "Early", &[&GAMES, &AGENTS]);
    let pb = Paperboy::new(&base_config(&api, &section, &early));

    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(smtp.received().len(), 1);
    let day1_papers = recipients(&smtp)["early@example.org"].clone();
    assert!(
        day1_papers.contains(&"2604.07429".to_string()),
        "GameWorld on day 1"
    );

    // The same date again: nothing new goes out.
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        smtp.received().len(),
        1,
        "no second email for the same date"
    );
    assert!(out.stdout.contains("(0 by this run)"), "{}", out.stdout);
    // Nor does the second start log the database's NOTICEs (PostgreSQL's "relation
    // _sqlx_migrations already exists, skipping"): nothing there is for the operator.
    assert!(!out.stderr.contains("already exists"), "{}", out.stderr);

    // Day 2 lists GameWorld again: the early subscriber does not get it twice, a subscriber
    // who joined since does.
    let late = subscriber("late@example.org", "Late", &[&GAMES, &AGENTS]);
    pb.set_config(&base_config(&api, &section, &format!("{early}{late}")));
    let out = pb.run(&["send", "--date", "2026-04-16"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = recipients(&smtp);
    let already: HashSet<String> = day1_papers.iter().cloned().collect();
    let early_day2: Vec<String> = got["early@example.org"][day1_papers.len()..].to_vec();
    assert_eq!(early_day2, expected(&day2, &[&GAMES, &AGENTS], &already));
    assert!(!early_day2.contains(&"2604.07429".to_string()));
    assert!(got["late@example.org"].contains(&"2604.07429".to_string()));
    assert_eq!(
        got["late@example.org"],
        expected(&day2, &[&GAMES, &AGENTS], &HashSet::new())
    );
    let all: BTreeSet<&String> = got["early@example.org"].iter().collect();
    assert_eq!(all.len(), got["early@example.org"].len(), "no paper twice");
}

async fn hostile_feed_text_arrives_escaped_and_cannot_inject_headers() {
    let api = HfApi::start().await;
    let mut items = fixture_items("2026-04-10");
    items[0]["paper"]["title"] = "Agents <script>alert(1)</script> win".into();
    items[1]["paper"]["title"] = "Agents \"><img src=x onerror=alert(1)> lose".into();
    items[1]["paper"]["summary"] =
        "Agent text.\r\nBcc: victim@evil.example\r\n\r\n<b>bold</b> & more".into();
    items[2]["paper"]["githubRepo"] = "javascript:alert(document.cookie)".into();
    items[2]["paper"]["title"] = "Agent\r\nSubject: injected".into();
    items[3]["paper"]["title"] = "Agent styles".into();
    items[3]["paper"]["projectPage"] =
        "https://example.org/p\"><img src=x onerror=alert(1)>".into();
    let hostile_ids: Vec<String> = items[..4]
        .iter()
        .map(|i| i["paper"]["id"].as_str().unwrap().to_string())
        .collect();
    api.serve_day("2026-04-10", items);
    let smtp = SmtpServer::start(SmtpOptions::default());
    let topic = TopicSpec {
        name: "all",
        keywords: &["agent", "agents"],
        exclude: &[],
        min_upvotes: 0,
        max_papers: 50,
    };
    let cfg = base_config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        &format!(
            "{}{}",
            topic_toml(&topic),
            subscriber("reader@example.org", "Reader", &[&topic])
        ),
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].rcpt_tos,
        ["reader@example.org"],
        "no injected recipient"
    );
    let msg = got[0].parsed();
    let (papers, _) = papers_in(&msg);
    for id in &hostile_ids {
        assert!(papers.contains(id), "hostile paper {id} is still delivered");
    }
    let html = msg.body_html(0).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "title escaped"
    );
    assert!(!html.contains("<script"), "no live script");
    assert!(!html.contains("<img src=x"), "no live img");
    assert!(
        !html.contains("\"><img"),
        "no attribute break-out from an href"
    );
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; more"));
    assert!(!html.contains("javascript:"), "non-web links are dropped");
    assert!(msg.header("Bcc").is_none());
    assert_eq!(
        msg.header_values("Subject").count(),
        1,
        "exactly one Subject header"
    );
    let raw = String::from_utf8_lossy(&got[0].raw);
    let headers = raw.split("\r\n\r\n").next().unwrap();
    assert!(!headers.contains("victim@evil.example"));
    assert!(!headers.contains("\r\nSubject: injected"));
}

async fn one_recipient_refused_is_recorded_failed_and_the_others_are_sent() {
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let opts = SmtpOptions {
        reject: vec!["bounce=550".into()],
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let subs = format!(
        "{}{}{}",
        subscriber("first@example.org", "First", &[&AGENTS]),
        subscriber("bounce@example.org", "Bounce", &[&AGENTS]),
        subscriber("third@example.org", "Third", &[&AGENTS]),
    );
    let pb = Paperboy::new(&base_config(&api, &smtp_section(&smtp, &opts), &subs));
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("2 sent") && out.stdout.contains("1 failed"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("550"), "the server's reply is logged");
    let got = recipients(&smtp);
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        ["first@example.org", "third@example.org"]
    );
    // A refused recipient is not retried by the next run.
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0);
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test]
async fn source_failures_end_the_run_with_a_clear_error_and_no_email() {
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let smtp = SmtpServer::start(SmtpOptions::default());
    let subs = subscriber("ada@example.org", "Ada", &[&AGENTS]);
    let cfg = base_config(&api, &smtp_section(&smtp, &SmtpOptions::default()), &subs)
        .replace("timeout = \"5s\"", "timeout = \"1s\"");
    let pb = Paperboy::new(&cfg);

    let cases = [
        (Mode::Status(500), "HTTP 500"),
        (
            Mode::Slow(std::time::Duration::from_secs(3)),
            "no complete answer within 1s",
        ),
        (Mode::Truncated, "not a valid Daily Papers list"),
    ];
    for (mode, says) in cases {
        api.set_mode(mode.clone());
        let out = pb.run(&["send", "--date", "2026-04-10"]).await;
        assert_eq!(out.code, 1, "{mode:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{mode:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("2026-04-10"),
            "the error names the date"
        );
        assert!(smtp.received().is_empty(), "{mode:?}: no email");
    }
    // When the API recovers, the day goes out once.
    api.set_mode(Mode::Normal);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn long_days_are_read_page_by_page_and_429_is_waited_out() {
    let api = HfApi::start().await;
    // A busy day of 230 papers: more than two full pages of 100.
    let base = fixture_items("2026-04-10");
    let mut items = Vec::new();
    for i in 0..230 {
        let mut it = base[i % base.len()].clone();
        it["paper"]["id"] = format!("2612.{:05}", i).into();
        it["paper"]["upvotes"] = (1000 - i as i64).into();
        if i == 215 {
            it["paper"]["title"] = "Zebra finch song synthesis".into();
        }
        items.push(it);
    }
    api.serve_day("2026-04-10", items);
    api.set_mode(Mode::RateLimited { n: 1, secs: 1 });
    let smtp = SmtpServer::start(SmtpOptions::default());
    let birds = TopicSpec {
        name: "birds",
        keywords: &["zebra finch"],
        exclude: &[],
        min_upvotes: 0,
        max_papers: 5,
    };
    let cfg = base_config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        &format!(
            "{}{}",
            topic_toml(&birds),
            subscriber("birder@example.org", "Birder", &[&birds])
        ),
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("230 papers"), "{}", out.stdout);
    let reqs: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("date=2026-04-10"))
        .collect();
    assert_eq!(reqs.len(), 4, "429, then pages 0, 1, 2: {reqs:?}");
    assert!(reqs.iter().all(|r| r.contains("limit=100")), "{reqs:?}");
    assert!(reqs[3].contains("p=2"), "{reqs:?}");
    assert_eq!(recipients(&smtp)["birder@example.org"], ["2612.00215"]);
}

async fn a_dry_run_writes_the_outbox_and_records_nothing() {
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let smtp = SmtpServer::start(SmtpOptions::default());
    let subs = subscriber("ada@example.org", "Ada", &[&AGENTS]);
    let pb = Paperboy::new(&base_config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        &subs,
    ));
    let out = pb.run(&["send", "--date", "2026-04-10", "--dry-run"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let outbox: Vec<_> = std::fs::read_dir(pb.dir.path().join("outbox"))
        .unwrap()
        .collect();
    assert_eq!(outbox.len(), 1, "one .eml for the one subscriber");
    assert!(smtp.received().is_empty(), "a dry run sends nothing");
    let out = pb.run(&["history"]).await;
    assert!(
        out.stdout.contains("no deliveries match"),
        "a dry run records nothing"
    );
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(smtp.received().len(), 1, "the real run still sends");
    // The dry run wrote the very email the real run sent (only its Date may differ).
    let written = std::fs::read(outbox[0].as_ref().unwrap().path()).unwrap();
    let written = mail_parser::MessageParser::default()
        .parse(&written)
        .unwrap();
    let received = smtp.received();
    let sent = received[0].parsed();
    assert_eq!(written.message_id(), sent.message_id());
    assert_eq!(written.subject(), sent.subject());
    assert_eq!(written.body_html(0), sent.body_html(0));
    assert_eq!(written.body_text(0), sent.body_text(0));
}

#[tokio::test]
async fn a_bad_config_exits_78_naming_the_key() {
    let pb = Paperboy::new(
        "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n\
         [[subscribers]]\nemail = \"ok@example.org\"\ntopics = [\"ml\", \"cooking\"]\n\
         [[subscribers]]\nemail = \"not an address\"\ntopics = [\"ml\"]\n",
    );
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("subscribers[0].topics: unknown topic \"cooking\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("subscribers[1].email"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("paperboy.toml"), "names the file");

    pb.set_config("[smtp]\nport = \"many\"\n");
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("smtp.port"), "{}", out.stderr);
}

#[tokio::test]
async fn check_smtp_reports_a_refused_login_without_the_password() {
    let opts = tls_auth();
    let smtp = SmtpServer::start(opts.clone());
    let api = HfApi::start().await;
    let good = base_config(&api, &smtp_section(&smtp, &opts), "");
    let pb = Paperboy::new(&good);
    let out = pb.run(&["check", "--smtp"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("login accepted"), "{}", out.stdout);

    pb.set_config(&good.replace("s3cret-pw", "wrong-pw-123"));
    let out = pb.run(&["check", "--smtp"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("535"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-pw-123") && !out.stdout.contains("wrong-pw-123"));
}

async fn papers_that_arrive_late_come_in_the_next_digest_once() {
    let api = HfApi::start().await;
    let full = fixture_items("2026-04-10");
    // Day 1 is planned from the first 12 papers; the rest arrive after.
    api.serve_day("2026-04-13", full[..12].to_vec());
    let smtp = SmtpServer::start(SmtpOptions::default());
    let topic = TopicSpec {
        name: "all",
        keywords: &["we"],
        exclude: &[],
        min_upvotes: 0,
        max_papers: 100,
    };
    let cfg = base_config(
        &api,
        &smtp_section(&smtp, &SmtpOptions::default()),
        &format!(
            "{}{}",
            topic_toml(&topic),
            subscriber("reader@example.org", "Reader", &[&topic])
        ),
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-13"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let day1 = recipients(&smtp)["reader@example.org"].clone();
    assert_eq!(day1, expected(&full[..12], &[&topic], &HashSet::new()));

    api.serve_day("2026-04-13", full.clone());
    // Day 1 is planned again (a second tick, a restart) after the late papers arrived: that
    // must not hide them from day 2.
    let out = pb.run(&["send", "--date", "2026-04-13"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(smtp.received().len(), 1, "nothing new for day 1");
    let day2_list = fixture_items("2026-04-16");
    api.serve_day("2026-04-14", day2_list.clone());
    let out = pb.run(&["send", "--date", "2026-04-14"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let all = recipients(&smtp)["reader@example.org"].clone();
    let day2: Vec<String> = all[day1.len()..].to_vec();
    // Day 2 carries its own papers and day 1's late ones, each once.
    let late: Vec<Value> = full[12..].to_vec();
    let mut want: BTreeSet<String> = expected(&day2_list, &[&topic], &HashSet::new())
        .into_iter()
        .collect();
    want.extend(expected(&late, &[&topic], &HashSet::new()));
    let got: BTreeSet<String> = day2.iter().cloned().collect();
    assert_eq!(got.len(), day2.len(), "no paper twice in one email");
    assert_eq!(got, want);
    assert!(
        day1.iter().all(|p| !got.contains(p)),
        "nothing from day 1 again"
    );

    // Day 3 re-reads day 1 and day 2 again: nothing late is left to send twice.
    api.serve_day("2026-04-15", fixture_items("2026-04-10")[..1].to_vec());
    let out = pb.run(&["send", "--date", "2026-04-15"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let everything = recipients(&smtp)["reader@example.org"].clone();
    let unique: BTreeSet<&String> = everything.iter().collect();
    assert_eq!(unique.len(), everything.len(), "no paper ever twice");
}

/// A plan of several chunks of rows: the first rows go out while the rest are still being
/// planned, each subscriber still gets exactly one email, and the next day nobody gets one
/// of those papers again.
async fn sending_starts_while_a_long_plan_is_still_being_written() {
    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let smtp = SmtpServer::start(SmtpOptions::default());
    let section = smtp_section(&smtp, &SmtpOptions::default());
    // Ten chunks of a thousand rows; one subscriber in a hundred gets an email, the others
    // follow a topic nothing matches (their rows are written, skipped).
    let subs: String = (0..10_000)
        .map(|i| {
            let topic = if i % 100 == 0 { "agents" } else { "nothing" };
            format!("[[subscribers]]\nemail = \"r{i}@example.org\"\ntopics = [\"{topic}\"]\n")
        })
        .collect();
    let pb = Paperboy::new(&base_config(&api, &section, &subs));

    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.per_recipient();
    assert_eq!(got.len(), 100, "{got:?}");
    assert!(got.values().all(|&n| n == 1), "{got:?}");
    let line = |what: &str| out.stderr.lines().position(|l| l.contains(what));
    let planned = line(" planned ").expect("a 'planned' line");
    let first_sent = line(" sent ").expect("a 'sent' line");
    assert!(
        first_sent < planned,
        "the first email went out only after the whole plan was written:\n{}",
        out.stderr
    );

    // Day 2 lists day 1's papers again beside its own: what each chunk's subscribers had is
    // read back from every chunk's rows, and nobody gets a paper twice.
    let mut both = fixture_items("2026-04-16");
    both.extend(fixture_items("2026-04-10"));
    api.serve_day("2026-04-16", both);
    let out = pb.run(&["send", "--date", "2026-04-16"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.per_recipient();
    assert_eq!(got.len(), 100, "{got:?}");
    assert!(got.values().all(|&n| n == 2), "{got:?}");
    for (who, papers) in recipients(&smtp) {
        let unique: BTreeSet<&String> = papers.iter().collect();
        assert_eq!(
            unique.len(),
            papers.len(),
            "{who} got a paper twice: {papers:?}"
        );
    }
}

/// Migrations 0008 and 0009 re-key `delivery_papers`, then fold it into
/// `delivery_paper_sets`: a database of the schema before them keeps what was sent, and nobody
/// gets those papers again.
async fn papers_sent_before_the_delivery_papers_rekey_are_not_sent_again() {
    let api = HfApi::start().await;
    let day2 = fixture_items("2026-04-16");
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    api.serve_day("2026-04-16", day2.clone());
    let smtp = SmtpServer::start(SmtpOptions::default());
    let section = smtp_section(&smtp, &SmtpOptions::default());
    let early = subscriber("early@example.org", "Early", &[&GAMES, &AGENTS]);
    // SQLite where `db_url` looks for it.
    let config = base_config(&api, &section, &early).replace("state/paperboy.db", "paperboy.db");
    let pb = Paperboy::new(&config);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let day1 = recipients(&smtp)["early@example.org"].clone();
    assert!(
        day1.contains(&"2604.07429".to_string()),
        "GameWorld on day 1"
    );

    // Back to the schema of migration 0007, a row per paper sent, as a database made before
    // it.
    let url = pb.db_url();
    let sets = db_count(&url, "SELECT COUNT(*) FROM delivery_paper_sets").await;
    assert_eq!(sets, day1.len() as i64, "one subscriber: a set per paper");
    let id = db_count(&url, "SELECT MAX(id) FROM deliveries").await;
    let old_schema = if url.starts_with("postgres") {
        "CREATE TABLE delivery_papers (delivery_id BIGINT NOT NULL, subscriber TEXT NOT NULL, \
         arxiv_id TEXT NOT NULL, PRIMARY KEY (delivery_id, arxiv_id))"
    } else {
        "CREATE TABLE delivery_papers (delivery_id INTEGER NOT NULL, subscriber TEXT NOT NULL, \
         arxiv_id TEXT NOT NULL, PRIMARY KEY (delivery_id, arxiv_id))"
    };
    db_execute(&url, "DROP TABLE delivery_paper_sets").await;
    db_execute(&url, old_schema).await;
    db_execute(
        &url,
        "CREATE INDEX delivery_papers_by_paper ON delivery_papers (arxiv_id, subscriber)",
    )
    .await;
    for paper in &day1 {
        let row =
            format!("INSERT INTO delivery_papers VALUES ({id}, 'early@example.org', '{paper}')");
        assert_eq!(db_execute(&url, &row).await, 1);
    }
    assert_eq!(
        db_execute(&url, "DELETE FROM _sqlx_migrations WHERE version IN (8, 9)").await,
        2
    );

    // Day 2 migrates the database again and lists GameWorld again: not sent twice.
    let out = pb.run(&["send", "--date", "2026-04-16"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        db_count(
            &url,
            "SELECT COUNT(*) FROM _sqlx_migrations WHERE version IN (8, 9)"
        )
        .await,
        2
    );
    let day2_got = recipients(&smtp)["early@example.org"][day1.len()..].to_vec();
    let already: HashSet<String> = day1.iter().cloned().collect();
    assert_eq!(day2_got, expected(&day2, &[&GAMES, &AGENTS], &already));
    assert!(!day2_got.contains(&"2604.07429".to_string()));
    assert_eq!(
        db_count(&url, "SELECT COUNT(*) FROM delivery_paper_sets").await,
        (day1.len() + day2_got.len()) as i64,
        "day 1's papers kept, day 2's added"
    );
}

on_both_backends!(
    each_subscriber_receives_one_valid_email_with_exactly_its_papers,
    a_second_send_sends_nothing_and_papers_are_never_sent_twice,
    hostile_feed_text_arrives_escaped_and_cannot_inject_headers,
    one_recipient_refused_is_recorded_failed_and_the_others_are_sent,
    a_dry_run_writes_the_outbox_and_records_nothing,
    papers_that_arrive_late_come_in_the_next_digest_once,
    sending_starts_while_a_long_plan_is_still_being_written,
    papers_sent_before_the_delivery_papers_rekey_are_not_sent_again,
);
