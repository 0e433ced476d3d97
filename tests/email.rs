//! The email itself: DKIM signatures that an independent verifier accepts, and the size guard.

mod support;

use std::process::Command;

use support::*;

fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn verify(raw: &[u8], record: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, raw).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    let out = Command::new(python_for_tests())
        .arg(script)
        .arg(&path)
        .arg(record)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn dkim_signatures_verify_with_an_independent_verifier() {
    let keys = tempfile::tempdir().unwrap();
    openssl(
        keys.path(),
        &["genrsa", "-traditional", "-out", "dkim.pem", "2048"],
    );
    let der = openssl(
        keys.path(),
        &["rsa", "-in", "dkim.pem", "-pubout", "-outform", "DER"],
    );
    use base64::Engine;
    let record = format!(
        "v=DKIM1; k=rsa; p={}",
        base64::engine::general_purpose::STANDARD.encode(der)
    );

    let api = HfApi::start().await;
    api.serve_day("2026-04-10", fixture_items("2026-04-10"));
    let smtp = SmtpServer::start(SmtpOptions::default());
    let cfg = format!(
        "[source]\nbase_url = {:?}\nlookback_days = 0\n[database]\nurl = \"sqlite://paperboy.db\"\n\
         [delivery]\ntransport = \"smtp\"\n\
         [unsubscribe]\nbase_url = \"https://digest.paperboy.test/unsubscribe\"\n\
         secret = \"sixteen chars or more\"\n\
         [dkim]\nselector = \"pb2026\"\ndomain = \"paperboy.test\"\nprivate_key_file = {:?}\n{}\n\
         [topics.agents]\nkeywords = [\"agent\"]\n\
         [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada Lovelace\"\ntopics = [\"agents\"]\n",
        api.base_url,
        keys.path().join("dkim.pem").display().to_string(),
        smtp_section(&smtp, &SmtpOptions::default())
    );
    let pb = Paperboy::new(&cfg);
    let out = pb.run(&["send", "--date", "2026-04-10"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    let raw = &got[0].raw;
    let msg = got[0].parsed();
    let sig = msg
        .header_raw("DKIM-Signature")
        .expect("a DKIM-Signature header");
    assert!(
        sig.contains("d=paperboy.test") && sig.contains("s=pb2026"),
        "{sig}"
    );
    assert!(
        sig.to_ascii_lowercase().contains("list-unsubscribe-post"),
        "one-click signed: {sig}"
    );

    let (ok, log) = verify(raw, &record);
    assert!(ok, "dkimpy rejects the signature:\n{log}");

    // The same verifier refuses an altered message: the signature means something.
    let text = String::from_utf8_lossy(raw).replace("Subject: ", "Subject: [altered] ");
    let (ok, _) = verify(text.as_bytes(), &record);
    assert!(!ok, "an altered subject must not verify");

    // A key that is not PKCS#1 PEM is a config error naming the key.
    std::fs::write(keys.path().join("bad.pem"), "not a key").unwrap();
    pb.set_config(&cfg.replace("dkim.pem", "bad.pem"));
    let out = pb.run(&["check"]).await;
    assert_eq!(out.code, 78);
    assert!(
        out.stderr.contains("dkim.private_key_file"),
        "{}",
        out.stderr
    );
}

/// A subscriber matching everything on a very busy day with full abstracts: the HTML stays
/// under Gmail's clipping limit, the best papers stay in, and the email says what it left out.
#[tokio::test]
async fn the_size_guard_keeps_the_html_under_gmails_limit() {
    let base = fixture_items("2026-04-10");
    let mut items = Vec::new();
    for i in 0..150 {
        let mut it = base[i % base.len()].clone();
        it["paper"]["id"] = format!("2612.{i:05}").into();
        it["paper"]["upvotes"] = (500 - i as i64).into();
        items.push(it);
    }
    let pb = Paperboy::new(
        "[smtp]\nfrom = \"a@example.org\"\n[database]\nurl = \"sqlite://p.db\"\n\
         [digest]\ntext_max_chars = 0\n\
         [topics.all]\nkeywords = [\"the\", \"a\", \"we\"]\nmax_papers = 500\n\
         [[subscribers]]\nemail = \"all@example.org\"\ntopics = [\"all\"]\n",
    );
    let file = pb.dir.path().join("2026-04-10.json");
    std::fs::write(&file, serde_json::to_vec(&items).unwrap()).unwrap();
    let out = pb
        .run(&[
            "preview",
            "--subscriber",
            "all@example.org",
            "--source-file",
            file.to_str().unwrap(),
            "--out",
            "p.html",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(pb.dir.path().join("p.html")).unwrap();
    let text = std::fs::read_to_string(pb.dir.path().join("p.txt")).unwrap();
    assert!(html.len() <= 100 * 1024, "HTML of {} bytes", html.len());
    // Texts are shortened, not gone: each kept paper still shows the start of its abstract.
    let first_abstract = base[0]["paper"]["summary"].as_str().unwrap();
    let start: String = first_abstract
        .split_whitespace()
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(&start[..40]),
        "abstracts survive: {}",
        &text[..600]
    );
    let shown: Vec<&str> = html
        .match_indices("https://huggingface.co/papers/2612.")
        .map(|(i, _)| &html[i + 30..i + 40])
        .collect();
    let mut unique = shown.clone();
    unique.dedup();
    assert!(
        unique.len() >= 20 && unique.len() < 150,
        "{} papers kept",
        unique.len()
    );
    // The kept ones are the most upvoted: ids 0..n in order.
    for (n, id) in unique.iter().enumerate() {
        assert_eq!(*id, format!("2612.{n:05}"));
    }
    let left = 150 - unique.len();
    assert!(
        html.contains(&format!("and {left} more papers")),
        "says what it left out"
    );
    assert!(
        text.contains(&format!("... and {left} more")),
        "{}",
        &text[text.len() - 400..]
    );

    // The largest recorded day, where the corpus is present, stays under the limit as it is.
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hf-daily-papers");
    if let Some(largest) = std::fs::read_dir(&corpus).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
    }) {
        let path = largest.path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let out = pb
            .run(&[
                "preview",
                "--subscriber",
                "all@example.org",
                "--date",
                &name,
                "--source-file",
                path.to_str().unwrap(),
                "--out",
                "big.html",
            ])
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let big = std::fs::read_to_string(pb.dir.path().join("big.html")).unwrap();
        assert!(big.len() <= 100 * 1024, "{name}: {} bytes", big.len());
    } else {
        skip_or_fail_in_ci(
            "the largest-recorded-day check",
            &format!(
                "the recorded corpus {} is absent or empty",
                corpus.display()
            ),
        );
    }
}

type Plain = (lettre::address::Envelope, Vec<u8>);

fn next(m: &Plain) -> Option<(&lettre::address::Envelope, &[u8])> {
    Some((&m.0, &m.1[..]))
}

/// A plain message and its envelope, from the test sender to `to`.
fn plain(to: &str, body: &str) -> Plain {
    let envelope = lettre::address::Envelope::new(
        Some("digest@paperboy.test".parse().unwrap()),
        vec![to.parse().unwrap()],
    )
    .unwrap();
    let bytes = format!(
        "From: digest@paperboy.test\r\nTo: {to}\r\nSubject: {body}\r\n\r\n{body}\r\n.{body}\r\n"
    );
    (envelope, bytes.into_bytes())
}

/// The next transaction, opened with the message before it (RFC 2920), is sent, refused or
/// discarded as if it were on its own: its message arrives whole; its refusal is its own
/// outcome, without a second try; a transaction opened and not used ends with the
/// connection, and the server stores nothing of it.
#[tokio::test]
async fn a_transaction_opened_with_the_message_before_is_its_own() {
    let opts = SmtpOptions {
        pipelining: true,
        faults: vec!["refused=550".into()],
        ..Default::default()
    };
    let smtp = SmtpServer::start(opts.clone());
    let cfg = paperboy::config::Config::load_str(
        &format!(
            "{}[topics.any]\nkeywords = [\"model\"]\n\
             [[subscribers]]\nemail = \"a@example.org\"\ntopics = [\"any\"]\n",
            smtp_section(&smtp, &opts)
        ),
        "test",
    )
    .unwrap();
    let mut sender = paperboy::mail::SmtpSender::new(&cfg.smtp).unwrap();
    let [a, b, c, r, d, e] = ["a", "b", "c", "refused", "d", "e"].map(|who| {
        let to = format!("{who}@example.org");
        plain(&to, &format!("for {who}"))
    });

    // Opened with A, then sent.
    sender.send(&a.0, a.1.clone(), next(&b)).await.unwrap();
    sender.send(&b.0, b.1.clone(), None).await.unwrap();
    // Refused when opened with C: that is R's outcome, and R is not tried again.
    sender.send(&c.0, c.1.clone(), next(&r)).await.unwrap();
    match sender.send(&r.0, r.1.clone(), None).await {
        Err(paperboy::mail::MailError::Permanent(m)) => assert!(m.contains("550"), "{m}"),
        other => panic!("R is refused for good: {other:?}"),
    }
    // Opened with D, never used: the connection ends, and E is not stored.
    sender.send(&d.0, d.1.clone(), next(&e)).await.unwrap();
    sender.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let got = smtp.received();
    let to: Vec<&str> = got.iter().map(|m| m.rcpt_tos[0].as_str()).collect();
    assert_eq!(
        to,
        [
            "a@example.org",
            "b@example.org",
            "c@example.org",
            "d@example.org"
        ]
    );
    for (m, sent) in got.iter().zip([&a, &b, &c, &d]) {
        // As sent (the dot-stuffed line came back with one dot), and the empty line that
        // lettre's end of data also adds.
        let want = [&sent.1[..], b"\r\n"].concat();
        assert_eq!(m.raw, want, "{}", String::from_utf8_lossy(&m.raw));
    }
    let events = smtp.fault_events();
    let kinds = |kind: &str| -> Vec<&str> {
        (events.iter())
            .filter(|(_, k)| k == kind)
            .map(|(a, _)| a.as_str())
            .collect()
    };
    assert_eq!(kinds("550"), ["refused@example.org"], "one RCPT for R");
    assert_eq!(
        kinds("next-with-data").len(),
        3,
        "B, R and E were opened with the message before: {events:?}"
    );
}
