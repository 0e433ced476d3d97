//! A hostile source against the real binary: a day served over HTTP with fields of absurd
//! length, absurd items, an id that is not an arXiv id and a paper listed twice; a response
//! too big; and ids a database stored before they were checked. Every email stays under the
//! size limit with the day's real papers in it, nothing but arXiv ids reaches a link, and
//! every item left out is named in the log.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use paperboy::render::{MAX_HTML_BYTES, MAX_TEXT_BYTES};
use paperboy::source::limits;
use regex::Regex;
use serde_json::{Value, json};
use support::*;

const DAY: &str = "2026-04-10";

fn config(api: &HfApi, smtp: &SmtpServer, digest: &str) -> String {
    format!(
        "[source]\nbase_url = {:?}\ntimeout = \"20s\"\nretries = 0\n\
         [delivery]\ntransport = \"smtp\"\n[database]\nurl = \"sqlite://paperboy.db\"\n\
         [digest]\n{digest}\n\
         {}\n\
         [topics.agents]\nkeywords = [\"agent\", \"agents\", \"agentic\"]\nmax_papers = 100\n\
         [topics.rl]\nkeywords = [\"RL\", \"reinforcement learning\"]\nmax_papers = 100\n\
         [[subscribers]]\nemail = \"ada@example.org\"\ntopics = [\"agents\"]\n\
         [[subscribers]]\nemail = \"bob@example.org\"\ntopics = [\"rl\", \"agents\"]\n",
        api.base_url,
        smtp_section(smtp, &SmtpOptions::default()),
    )
}

fn item(id: &str, title: &str, upvotes: i64) -> Value {
    json!({
        "paper": {
            "id": id,
            "title": title,
            "summary": "Agents in a hostile world.",
            "authors": [{"name": "Ada", "hidden": false}],
            "upvotes": upvotes,
        },
        "numComments": 0,
    })
}

/// `pattern` repeated to `chars` characters.
fn text_of(pattern: &str, chars: usize) -> String {
    pattern.chars().cycle().take(chars).collect()
}

/// A URL of exactly `bytes` bytes.
fn url_of(prefix: &str, fill: &str, bytes: usize) -> String {
    let mut url = prefix.to_string();
    url.push_str(&fill.repeat(bytes));
    url.truncate(bytes);
    url
}

/// A paper with every field at its cap, written to cost the most HTML per character (the
/// topic's word, marked each time, characters that escape long, three-byte letters).
fn at_every_cap(id: &str) -> Value {
    let words = "agents \"&<漢> ";
    let mut it = item(id, &text_of(words, limits::TITLE_CHARS), 8000);
    let p = &mut it["paper"];
    p["summary"] = text_of(words, limits::ABSTRACT_CHARS).into();
    p["ai_summary"] = text_of(words, limits::AI_SUMMARY_CHARS).into();
    p["authors"] = (0..3000)
        .map(|_| json!({"name": text_of("Ada \"&<漢", limits::AUTHOR_NAME_CHARS), "hidden": false}))
        .collect();
    p["ai_keywords"] = (0..limits::KEYWORDS)
        .map(|_| text_of("agents ", limits::KEYWORD_CHARS))
        .collect();
    p["organization"] = json!({"fullname": text_of("Org \"&<漢", limits::ORGANIZATION_CHARS)});
    p["githubRepo"] = url_of("https://github.com/", "a", limits::URL_BYTES).into();
    p["projectPage"] = url_of("https://example.org/p?", "a=&", limits::URL_BYTES).into();
    it["thumbnail"] = url_of("https://example.org/", "t", limits::URL_BYTES).into();
    assert!(
        json!([it]).to_string().len() < limits::ITEM_BYTES,
        "not skipped whole"
    );
    it
}

/// The recorded day, then: a 1 MB title, a paper at every cap, 100,000 authors, a 10 MB
/// abstract, a path for an id, and the first paper listed again. Returns the items and the
/// index of the first hostile one.
fn hostile_day() -> (Vec<Value>, usize) {
    let mut items = fixture_items(DAY);
    let first = items.len();
    let again = {
        let mut it = items[0].clone();
        it["paper"]["title"] = "Agents listed twice".into();
        it
    };
    items.push(item("2612.00001", &"Agents ".repeat(1_000_000 / 7), 9000));
    items.push(at_every_cap("2612.00002"));
    let mut crowd = item("2612.00003", "Agents by a crowd", 7000);
    crowd["paper"]["authors"] = (0..100_000)
        .map(|i| json!({"name": format!("Author {i}"), "hidden": false}))
        .collect();
    items.push(crowd);
    let mut long = item("2612.00004", "Agents at length", 7000);
    long["paper"]["summary"] = "agents ".repeat(10_000_000 / 7).into();
    items.push(long);
    items.push(item("../../../etc/passwd", "Agents traverse", 7000));
    items.push(again);
    (items, first)
}

/// The log without its colours.
fn plain(log: &str) -> String {
    Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(log, "")
        .into_owned()
}

/// Every link to a paper's page, by recipient.
fn papers_by_recipient(got: &[Received]) -> BTreeMap<String, BTreeSet<String>> {
    let re = Regex::new(r#"https://huggingface\.co/papers/([^"\s<>]+)"#).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in got {
        let html = r.parsed().body_html(0).unwrap().into_owned();
        let ids = re
            .captures_iter(&html)
            .map(|c| c[1].to_string())
            .filter(|id| !id.starts_with("date/"));
        out.entry(r.rcpt_tos.join(",")).or_default().extend(ids);
    }
    out
}

async fn a_hostile_day_leaves_every_email_under_the_limit_with_its_real_papers() {
    let api = HfApi::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let cfg = config(&api, &smtp, "thumbnails = true");
    // The recorded day alone: the papers each subscriber gets.
    api.serve_day(DAY, fixture_items(DAY));
    let clean = Paperboy::new(&cfg);
    let out = clean.run(&["send", "--date", DAY]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let real = papers_by_recipient(&smtp.received());
    assert_eq!(real.len(), 2, "{real:?}");

    let (items, h) = hostile_day();
    let listed_twice = items[0]["paper"]["id"].as_str().unwrap().to_string();
    api.serve_day(DAY, items);
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", DAY]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got: Vec<Received> = smtp.received().into_iter().skip(2).collect();
    assert_eq!(got.len(), 2, "one email each");
    for r in &got {
        let msg = r.parsed();
        let html = msg.body_html(0).unwrap();
        let text = msg.body_text(0).unwrap();
        let who = r.rcpt_tos.join(",");
        eprintln!(
            "{who}: HTML {} bytes, text {} bytes, message {} bytes",
            html.len(),
            text.len(),
            r.raw.len()
        );
        assert!(
            html.len() <= MAX_HTML_BYTES,
            "{who}: {} bytes of HTML",
            html.len()
        );
        assert!(
            text.len() <= MAX_TEXT_BYTES,
            "{who}: {} bytes of text",
            text.len()
        );
        // Quoted-printable at worst triples a byte; the headers are a few KB.
        let most = 3 * (MAX_HTML_BYTES + MAX_TEXT_BYTES) + 16 * 1024;
        assert!(
            r.raw.len() <= most,
            "{who}: a message of {} bytes",
            r.raw.len()
        );
        assert!(!html.contains("left out"), "{who}: no paper left out");
        let raw = String::from_utf8_lossy(&r.raw);
        assert!(!raw.contains("etc/passwd") && !raw.contains("Agents traverse"));
        assert!(!html.contains("listed twice"), "the first listing is kept");
        // The title of a megabyte, cut to its cap (on a word, with an ellipsis).
        let cut = text_of("Agents ", limits::TITLE_CHARS);
        let cut = format!("{}…", cut.trim_end().rsplit_once(' ').unwrap().0);
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(&cut), "{who}");
    }
    let hostile = papers_by_recipient(&got);
    for (who, papers) in &real {
        let has = &hostile[who];
        assert!(
            papers.is_subset(has),
            "{who}: {papers:?} not all in {has:?}"
        );
        let extra: Vec<&String> = has.difference(papers).collect();
        assert_eq!(
            extra,
            ["2612.00001", "2612.00002"],
            "{who}: the capped papers"
        );
    }
    // The items left out, named by their index in the day's list and their id.
    let log = &plain(&out.stderr);
    for (index, id) in [
        (h + 2, "2612.00003"),
        (h + 3, "2612.00004"),
        (h + 4, "../../../etc/passwd"),
    ] {
        let named = log.lines().any(|l| {
            l.contains("an item of the list is skipped")
                && l.contains(&format!("index={index} "))
                && l.contains(&format!("id=\"{id}\""))
        });
        assert!(named, "item {index} ({id}) named in:\n{log}");
    }
    assert!(
        log.contains("more than the 1048576 an item may have") && log.contains("not an arXiv id")
    );
    let twice = log.lines().any(|l| {
        l.contains("listed twice")
            && l.contains(&format!("id={listed_twice}"))
            && l.contains(&format!("index={}", h + 5))
            && l.contains("first_index=0")
    });
    assert!(twice, "the duplicate named in:\n{log}");
}

async fn ids_stored_before_they_were_checked_are_left_out_of_links() {
    use paperboy::store::{DatabaseUrl, Store};
    let api = HfApi::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    // A topic that matches nothing: only the row planned below is sent.
    let cfg = config(&api, &smtp, "")
        .replace(
            "keywords = [\"RL\", \"reinforcement learning\"]",
            "keywords = [\"zzyzx\"]",
        )
        .replace("topics = [\"agents\"]", "topics = [\"rl\"]")
        .replace("topics = [\"rl\", \"agents\"]", "topics = [\"rl\"]");
    let pb = Paperboy::new(&cfg);
    let (date, papers) = recorded_papers_of_2026_04_10().await;
    let yesterday = date.pred_opt().unwrap();
    let (good, bad) = (papers[0].id.as_str(), "../../../etc/passwd");
    // What an earlier version stored: a paper, a list and a digest under an id it took.
    let store = Store::connect(&DatabaseUrl::new(pb.db_url()))
        .await
        .unwrap();
    store.upsert_papers(&papers).await.unwrap();
    store.replace_list(yesterday, &papers[..3]).await.unwrap();
    let pending = pending_delivery("ada@example.org".into(), papers[0].id.clone());
    store.plan(date, &[pending]).await.unwrap();
    store.close().await;
    let url = pb.db_url();
    let second = papers[1].id.as_str();
    for sql in [
        format!(
            "INSERT INTO papers (arxiv_id, data, first_seen_at, updated_at)
             SELECT '{bad}', REPLACE(data, '{good}', '{bad}'), first_seen_at, updated_at
               FROM papers WHERE arxiv_id = '{good}'"
        ),
        format!("UPDATE daily_list SET arxiv_id = '{bad}' WHERE arxiv_id = '{second}'"),
        format!(
            "UPDATE deliveries SET digest = REPLACE(digest, '\"{good}\"', '\"{bad}\",\"{good}\"')"
        ),
    ] {
        assert_eq!(db_execute(&url, &sql).await, 1, "{sql}");
    }
    api.serve_day(DAY, fixture_items(DAY));
    api.serve_day(&yesterday.to_string(), fixture_items(DAY)[..3].to_vec());

    let out = pb.run(&["send", "--date", DAY]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    let raw = String::from_utf8_lossy(&got[0].raw);
    assert!(!raw.contains("etc/passwd"), "never in a link");
    let html = got[0].parsed().body_html(0).unwrap().into_owned();
    assert!(html.contains(&format!("https://huggingface.co/papers/{good}")));
    let log = plain(&out.stderr);
    let warned = log
        .lines()
        .filter(|l| l.contains("a stored paper id is not an arXiv id"))
        .collect::<Vec<_>>();
    for what in ["daily_list.arxiv_id", "deliveries.digest"] {
        assert!(warned.iter().any(|l| l.contains(what)), "{what} in:\n{log}");
    }
    // The history reads the digest as well.
    let out = pb.run(&["history", "--date", DAY]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(good) && !out.stdout.contains(bad),
        "{}",
        out.stdout
    );
}

on_both_backends!(
    a_hostile_day_leaves_every_email_under_the_limit_with_its_real_papers,
    ids_stored_before_they_were_checked_are_left_out_of_links,
);

#[tokio::test]
async fn a_response_too_big_is_refused_before_it_is_all_read() {
    let api = HfApi::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default());
    let cfg = config(&api, &smtp, "");
    // Four items of 9 MB each: each under nothing but the response's limit.
    let items: Vec<Value> = (1..=4)
        .map(|i| {
            let mut it = item(&format!("2612.0000{i}"), "Agents", 1);
            it["paper"]["summary"] = "agents ".repeat(9_000_000 / 7).into();
            it
        })
        .collect();
    api.serve_day(DAY, items);
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", DAY]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let says = format!("is over {} bytes; refused", limits::RESPONSE_BYTES);
    assert!(out.stderr.contains(&says), "{}", out.stderr);
    assert!(smtp.received().is_empty());
    // A saved response as well, refused before it is read (a sparse file: no disk used).
    let file = pb.dir.path().join("big.json");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(limits::RESPONSE_BYTES as u64 + 1)
        .unwrap();
    let file = file.to_str().unwrap();
    let out = pb
        .run(&["send", "--date", DAY, "--source-file", file])
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&says), "{}", out.stderr);
    assert!(smtp.received().is_empty());
}
