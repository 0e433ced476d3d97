//! One subscriber, one identity: an address in any case names the configured subscriber for
//! every command (unsubscribe, resume, history), an address the config does not list is said
//! to be unknown, and the keys a database already holds are folded by its migration, rows that
//! then meet merged without losing a sent email or an opt-out.

mod support;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use paperboy::digest::{Digest, DigestGroup};
use paperboy::domain::{ArxivId, EmailAddress, SubscriberKey};
use paperboy::store::{DatabaseUrl, HistoryFilter, Store};
use support::*;

const TOPICS: &str = "[topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 3\n";

/// Ada, configured in lower case, and Bob, configured in mixed case; the papers of saved days.
fn config(smtp: &SmtpServer) -> String {
    format!(
        "[source]\nbase_url = \"http://127.0.0.1:9\"\n[delivery]\ntransport = \"smtp\"\n\
         [database]\nurl = \"sqlite://paperboy.db\"\n{}\n{TOPICS}\n\
         [[subscribers]]\nemail = \"ada@example.org\"\ntopics = [\"agents\"]\n\
         [[subscribers]]\nemail = \"Bob@Example.org\"\ntopics = [\"agents\"]\n",
        smtp_section(smtp, &SmtpOptions::default())
    )
}

/// `send` of a saved day; who received it.
async fn send_day(pb: &Paperboy, smtp: &SmtpServer, day: &str) -> Vec<String> {
    let before = smtp.received().len();
    let file = fixture(&format!("{day}.json"));
    let out = pb
        .run(&[
            "send",
            "--date",
            day,
            "--source-file",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut to: Vec<String> = smtp.received()[before..]
        .iter()
        .flat_map(|r| r.rcpt_tos.clone())
        .collect();
    to.sort();
    to
}

/// The operator copies an address from a complaint, in the case the complaint spelt it: that
/// is the configured subscriber, who is then not mailed; resuming in yet another case mails
/// her again.
async fn an_address_in_another_case_unsubscribes_and_resumes_the_configured_subscriber() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let pb = Paperboy::new(&config(&smtp));

    let out = pb
        .run(&["subscribers", "unsubscribe", "ADA@Example.org"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "ada@example.org: unsubscribed; no more digests"
    );
    let out = pb
        .run(&["subscribers", "unsubscribe", "bob@example.ORG"])
        .await;
    assert_eq!(
        out.stdout.trim(),
        "Bob@Example.org: unsubscribed; no more digests",
        "the configured address"
    );
    let out = pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("ada@example.org  unsubscribed")
            && out.stdout.contains("Bob@Example.org  unsubscribed")
            && !out.stdout.contains("not a configured subscriber"),
        "{}",
        out.stdout
    );
    assert_eq!(
        send_day(&pb, &smtp, "2026-04-10").await,
        Vec::<String>::new(),
        "neither is mailed"
    );
    let out = pb
        .run(&["history", "--subscriber", "Ada@EXAMPLE.org"])
        .await;
    assert!(
        out.stdout.contains("skipped  ada@example.org")
            && out.stdout.contains("error: unsubscribed"),
        "{}",
        out.stdout
    );

    let out = pb.run(&["subscribers", "resume", "ADA@EXAMPLE.ORG"]).await;
    assert_eq!(
        out.stdout.trim(),
        "ada@example.org: opt-out cleared; digests resume with the next run"
    );
    let out = pb.run(&["subscribers", "resume", "ADA@EXAMPLE.ORG"]).await;
    assert_eq!(out.stdout.trim(), "ada@example.org: had not unsubscribed");
    assert_eq!(
        send_day(&pb, &smtp, "2026-04-16").await,
        ["ada@example.org"],
        "Ada again, Bob still not"
    );
}

/// An address no `[[subscribers]]` entry names: said so, and its opt-out kept for the day it
/// is added.
async fn an_unknown_address_is_said_to_be_unknown_and_its_opt_out_is_kept() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let pb = Paperboy::new(&config(&smtp));
    let out = pb
        .run(&["subscribers", "unsubscribe", "X@Example.net"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "x@example.net is not a configured subscriber; recorded an opt-out for it anyway, \
         so it will not be mailed if added later"
    );
    let out = pb
        .run(&["subscribers", "unsubscribe", "x@example.net"])
        .await;
    assert!(
        out.stdout
            .starts_with("x@example.net is not a configured subscriber; it had already opted out"),
        "{}",
        out.stdout
    );
    let out = pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("ada@example.org  subscribed")
            && out
                .stdout
                .lines()
                .any(|l| l.starts_with("x@example.net  unsubscribed")
                    && l.ends_with("(operator)  not a configured subscriber")),
        "{}",
        out.stdout
    );

    // Added to the config later: not mailed.
    let added = config(&smtp).replace("Bob@Example.org", "x@EXAMPLE.net");
    pb.set_config(&added);
    assert_eq!(
        send_day(&pb, &smtp, "2026-04-10").await,
        ["ada@example.org"]
    );

    pb.set_config(&config(&smtp));
    let out = pb.run(&["subscribers", "resume", "x@example.net"]).await;
    assert!(
        out.stdout
            .starts_with("x@example.net is not a configured subscriber; cleared its opt-out"),
        "{}",
        out.stdout
    );
    let out = pb.run(&["subscribers", "resume", "x@example.net"]).await;
    assert!(
        out.stdout
            .contains("not a configured subscriber and had not unsubscribed"),
        "{}",
        out.stdout
    );
}

// ------------------------------------------------------------------ the migration

fn key(address: &str) -> SubscriberKey {
    EmailAddress::parse(address).unwrap().key()
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 13, hour, 0, 0).unwrap()
}

fn paper(n: u32) -> ArxivId {
    ArxivId::parse(&format!("2604.{:05}", 100 + n)).unwrap()
}

/// A digest of these papers, as the ledger stores it.
fn digest(papers: &[u32]) -> String {
    serde_json::to_string(&Digest {
        groups: vec![DigestGroup {
            topic: "t".into(),
            papers: papers.iter().map(|p| paper(*p)).collect(),
        }],
    })
    .unwrap()
}

/// Runs each statement on `$url`'s database, its `$N` bound to the values given.
macro_rules! on_db {
    ($url:expr, $pool:ident => $body:expr) => {
        if $url.starts_with("postgres") {
            let $pool = sqlx::PgPool::connect($url).await.unwrap();
            $body;
            $pool.close().await;
        } else {
            let $pool = sqlx::SqlitePool::connect($url).await.unwrap();
            $body;
            $pool.close().await;
        }
    };
}

/// A database made by the schema before keys were folded (migrations up to 0010), holding
/// what versions of then recorded: keys with the local part as configured, and, after the
/// operator changed that case in the config, rows of one person and date under two keys.
async fn mixed_case_keys_of_the_previous_schema_are_folded_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    let pg = (backend() == Backend::Postgres).then(PgDatabase::create);
    // On PostgreSQL, every migration runs as a role that may not make temporary objects.
    let role = pg.as_ref().map(PgDatabase::role_without_temp);
    let url = match &role {
        Some(role) => role.url.clone(),
        None => {
            let path = dir.path().join("paperboy.db");
            std::fs::File::create(&path).unwrap();
            format!("sqlite://{}", path.display())
        }
    };
    let date = NaiveDate::from_ymd_opt(2026, 4, 13).unwrap();
    // id, key as stored then, status, papers.
    let deliveries: [(i64, &str, &str, &[u32]); 9] = [
        // Ada: a sent digest, then a pending one under the new case (never sent).
        (1, "Ada@example.org", "sent", &[1, 2]),
        (2, "ada@example.org", "pending", &[3]),
        // Bob: failed under one case, sent under another.
        (3, "BOB@example.org", "failed", &[1]),
        (4, "Bob@example.org", "sent", &[4]),
        // Cy: sent twice (a re-run after the change): both emails' papers were had.
        (5, "Cy@example.org", "sent", &[1]),
        (6, "cy@example.org", "sent", &[5]),
        // Dee: one row, in mixed case; Eve: one row, already folded.
        (7, "Dee@example.org", "pending", &[2]),
        (8, "eve@example.org", "sent", &[2]),
        // Fay: two pending rows in two cases, neither sent: one stays to be sent.
        (9, "FAY@example.org", "pending", &[6]),
    ];
    let fay_again = (10, "Fay@example.org", "pending", &[6][..]);
    // Each paper's set of deliveries, as a plan wrote them.
    let sets: [(u32, &[i64]); 6] = [
        (1, &[1, 3, 5]),
        (2, &[1, 7, 8]),
        (3, &[2]),
        (4, &[4]),
        (5, &[6]),
        (6, &[9, 10]),
    ];
    // Ada opted out twice, in two cases: the earlier is kept. Zed once, in mixed case.
    let optouts = [
        ("Ada@example.org", at(9), "one-click"),
        ("ADA@example.org", at(8), "operator"),
        ("Zed@Example.org", at(7), "one-click"),
        // Only ASCII letters fold, in the database as in the rule (whatever its locale).
        ("ÉLISE@Example.org", at(10), "operator"),
    ];

    let previous = if pg.is_some() {
        sqlx::migrate!("migrations/postgres")
    } else {
        sqlx::migrate!("migrations/sqlite")
    };
    // PostgreSQL numbers the rows itself unless told to take ours.
    let insert = format!(
        "INSERT INTO deliveries (id, subscriber, digest_date, status, message_id, digest,
             paper_count, attempts, next_attempt_at, smtp_reply, created_at, updated_at, sent_at)
         {} VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $8, $8, $10)",
        if pg.is_some() {
            "OVERRIDING SYSTEM VALUE"
        } else {
            ""
        }
    );
    // A set's ids: a JSON array in SQLite, an array in PostgreSQL (given as its text).
    let (insert_set, ids_as_stored): (&str, fn(&[i64]) -> String) = if pg.is_some() {
        ("CAST($4::text AS BIGINT[])", |ids| {
            let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
            format!("{{{}}}", ids.join(","))
        })
    } else {
        ("$4", |ids| serde_json::to_string(ids).unwrap())
    };
    let insert_set = format!(
        "INSERT INTO delivery_paper_sets (arxiv_id, digest_date, first_delivery_id,
             delivery_ids) VALUES ($1, $2, $3, {insert_set})"
    );
    if role.is_some() {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let temp = sqlx::raw_sql("CREATE TEMP TABLE t (x INT)")
            .execute(&mut c)
            .await;
        assert!(temp.is_err(), "the role may not make temporary tables");
    }
    on_db!(&url, pool => {
        previous.run_to(10, &pool).await.unwrap();
        for (id, who, status, papers) in deliveries.iter().copied().chain([fay_again]) {
            let sent_at = (status == "sent").then(|| at(6));
            sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
            .bind(id)
            .bind(who)
            .bind(date)
            .bind(status)
            .bind(format!("<{id}@paperboy.test>"))
            .bind(digest(papers))
            .bind(papers.len() as i64)
            .bind(at(5))
            .bind((status == "sent").then(|| format!("250 queued as {id}")))
            .bind(sent_at)
            .execute(&pool)
            .await
            .unwrap();
        }
        for (p, ids) in sets {
            sqlx::query(sqlx::AssertSqlSafe(insert_set.clone()))
                .bind(paper(p).as_str().to_string())
                .bind(date)
                .bind(ids[0])
                .bind(ids_as_stored(ids))
                .execute(&pool)
                .await
                .unwrap();
        }
        for (who, when, via) in optouts {
            sqlx::query("INSERT INTO optouts (subscriber, at, via) VALUES ($1, $2, $3)")
                .bind(who)
                .bind(when)
                .bind(via)
                .execute(&pool)
                .await
                .unwrap();
        }
    });

    // The current schema: keys folded, rows merged.
    let store = Store::connect(&DatabaseUrl::new(url.clone()))
        .await
        .unwrap();
    let stored: Vec<String>;
    on_db!(&url, pool => {
        stored = sqlx::query_scalar(
            "SELECT subscriber FROM deliveries UNION ALL SELECT subscriber FROM optouts",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
    });
    for key in &stored {
        assert_eq!(
            SubscriberKey::from_stored(key.clone()).as_str(),
            key,
            "stored folded as the rule folds"
        );
    }
    let history = store
        .history(&HistoryFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut rows: Vec<(String, String, String)> = history
        .iter()
        .map(|r| {
            (
                r.subscriber.to_string(),
                r.status.clone(),
                r.message_id.clone(),
            )
        })
        .collect();
    rows.sort();
    let row = |who: &str, status: &str, id: i64| {
        (
            who.to_string(),
            status.to_string(),
            format!("<{id}@paperboy.test>"),
        )
    };
    assert_eq!(
        rows,
        [
            row("ada@example.org", "sent", 1),
            row("bob@example.org", "sent", 4),
            row("cy@example.org", "sent", 5),
            row("dee@example.org", "pending", 7),
            row("eve@example.org", "sent", 8),
            row("fay@example.org", "pending", 9),
        ],
        "one row per person and date, the furthest along"
    );
    let ada_sent = &history
        .iter()
        .find(|r| r.subscriber == key("ada@example.org"))
        .unwrap();
    assert_eq!(
        ada_sent.papers,
        [paper(1).to_string(), paper(2).to_string()]
    );
    assert_eq!(ada_sent.smtp_reply.as_deref(), Some("250 queued as 1"));

    // The rows merged away are kept whole, beside the row they were merged into.
    let merged: Vec<(i64, i64, String, String)>;
    on_db!(&url, pool => {
        merged = sqlx::query_as(
            "SELECT id, merged_into, subscriber, status FROM merged_deliveries ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
    });
    let m = |id, into, who: &str, status: &str| (id, into, who.to_string(), status.to_string());
    assert_eq!(
        merged,
        [
            m(2, 1, "ada@example.org", "pending"),
            m(3, 4, "BOB@example.org", "failed"),
            m(6, 5, "cy@example.org", "sent"),
            m(10, 9, "Fay@example.org", "pending"),
        ]
    );

    // What each had, for the next date: the papers of every email sent, and of no other.
    let (_, recorded) = recorded_papers_of_2026_04_10().await;
    let papers: Vec<paperboy::domain::Paper> = (1..=6)
        .map(|n| paperboy::domain::Paper {
            id: paper(n),
            ..recorded[0].clone()
        })
        .collect();
    let next = date.succ_opt().unwrap();
    let had = store.sent_pairs_of(&papers, next).await.unwrap();
    let mut had: Vec<(String, String)> = had
        .into_iter()
        .map(|(who, p)| (who.to_string(), p.to_string()))
        .collect();
    had.sort();
    let pair = |who: &str, n| (who.to_string(), paper(n).to_string());
    assert_eq!(
        had,
        [
            pair("ada@example.org", 1),
            pair("ada@example.org", 2),
            pair("bob@example.org", 4),
            pair("cy@example.org", 1),
            pair("cy@example.org", 5),
            pair("dee@example.org", 2),
            pair("eve@example.org", 2),
            pair("fay@example.org", 6),
        ],
        "Ada's pending 3 and Bob's failed 1 were never sent"
    );
    assert_eq!(
        store
            .sent_pairs_for(&key("CY@example.org"), next, &papers)
            .await
            .unwrap()
            .len(),
        2
    );
    let planned = store.planned_subscribers(date).await.unwrap();
    assert_eq!(planned.len(), 6);
    assert!(planned.contains(&key("FAY@EXAMPLE.ORG")));

    // Ada's earliest opt-out, Zed's folded; and any case finds them.
    let optouts: Vec<(String, DateTime<Utc>, String)> = store
        .optouts()
        .await
        .unwrap()
        .into_iter()
        .map(|(who, at, via)| (who.to_string(), at, via))
        .collect();
    assert_eq!(
        optouts,
        [
            (
                "zed@example.org".to_string(),
                at(7),
                "one-click".to_string()
            ),
            ("ada@example.org".to_string(), at(8), "operator".to_string()),
            (
                "Élise@example.org".to_string(),
                at(10),
                "operator".to_string()
            ),
        ]
    );
    assert!(store.is_opted_out(&key("ZED@example.org")).await.unwrap());
    assert!(store.is_opted_out(&key("ÉLISE@example.ORG")).await.unwrap());
    assert!(
        !store
            .opt_out(&key("ada@EXAMPLE.org"), "operator")
            .await
            .unwrap()
    );
    assert!(store.resume(&key("Ada@example.org")).await.unwrap());
    assert!(!store.is_opted_out(&key("ada@example.org")).await.unwrap());
    store.close().await;
}

on_both_backends!(
    an_address_in_another_case_unsubscribes_and_resumes_the_configured_subscriber,
    an_unknown_address_is_said_to_be_unknown_and_its_opt_out_is_kept,
    mixed_case_keys_of_the_previous_schema_are_folded_and_merged,
);
