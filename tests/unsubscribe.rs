//! Leaving without a login: List-Unsubscribe headers, signed links, RFC 8058 one-click POSTs,
//! forged tokens refused, and the operator's resume.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;

/// The secret the links are signed with.
const SECRET: &str = "a test secret of some length";

/// Everything a test of the links needs: the lists of 2026-04-13 to 15, an SMTP server, and
/// `paperboy serve` listening on `port` for the links of the config's emails.
struct Listening {
    /// Kept for as long as the test runs.
    _api: HfApi,
    smtp: SmtpServer,
    port: u16,
    pb: Paperboy,
    serve: tokio::process::Child,
}

/// Starts what a test of the links needs, with these subscribers (each on topic "agents").
async fn listening(subscribers: &[&str]) -> Listening {
    let api = HfApi::start().await;
    for d in ["2026-04-13", "2026-04-14", "2026-04-15"] {
        api.serve_day(d, fixture_items("2026-04-10"));
    }
    let smtp = SmtpServer::start(SmtpOptions::default());
    let port = free_port();
    let subs: String = subscribers
        .iter()
        .map(|e| format!("[[subscribers]]\nemail = {e:?}\ntopics = [\"agents\"]\n"))
        .collect();
    let cfg = format!(
        "[source]\nbase_url = {:?}\nlookback_days = 0\n[database]\nurl = \"sqlite://paperboy.db\"\n\
         [delivery]\ntransport = \"smtp\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
         [unsubscribe]\nbase_url = \"http://127.0.0.1:{port}/unsubscribe\"\n\
         secret = {SECRET:?}\n{}\n\
         [topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 2\n{subs}",
        api.base_url,
        smtp_section(&smtp, &SmtpOptions::default())
    );
    let pb = Paperboy::new(&cfg);
    let serve = pb
        .command(&["serve"])
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Listening {
        _api: api,
        smtp,
        port,
        pb,
        serve,
    }
}

/// Waits for the listener on `port` to answer.
async fn wait_for_listener(http: &reqwest::Client, port: u16) {
    for _ in 0..100 {
        if http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn one_click_and_link_unsubscribe_stop_the_next_digest_and_resume_restores_it() {
    let Listening {
        smtp,
        port,
        pb,
        mut serve,
        _api,
    } = listening(&["one@example.org", "two@example.org", "stay@example.org"]).await;

    let out = pb.run(&["send", "--date", "2026-04-13"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    assert_eq!(got.len(), 3);
    let link_of = |who: &str| -> (String, String) {
        let r = got.iter().find(|r| r.rcpt_tos == [who]).unwrap();
        let msg = r.parsed();
        let list_id = msg.header_raw("List-Id").unwrap().trim().to_string();
        assert!(list_id.contains("<digest.paperboy.test>"), "{list_id}");
        assert_eq!(
            msg.header_raw("List-Unsubscribe-Post").unwrap().trim(),
            "List-Unsubscribe=One-Click"
        );
        let lu = msg
            .header_raw("List-Unsubscribe")
            .unwrap()
            .replace(['\r', '\n'], "");
        let https = lu
            .split(',')
            .map(|p| {
                p.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .find(|p| p.starts_with("http"))
            .unwrap_or_else(|| panic!("{lu}"));
        assert!(
            lu.contains("<mailto:digest@paperboy.test?subject=unsubscribe"),
            "{lu}"
        );
        // The footer shows the same link (its token needs no escaping).
        let token = https.split("t=").nth(1).unwrap();
        assert!(msg.body_html(0).unwrap().contains(token));
        assert!(msg.body_text(0).unwrap().contains(&https));
        (https, lu)
    };
    let (one, _) = link_of("one@example.org");
    let (two, _) = link_of("two@example.org");
    let http = reqwest::Client::new();
    wait_for_listener(&http, port).await;

    // RFC 8058 one-click: a POST of List-Unsubscribe=One-Click to the header's URL.
    let r = http
        .post(&one)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The footer link: a GET shows a button and changes nothing (link scanners fetch every
    // URL of an email); the button POSTs. Twice is harmless.
    let page = http.get(&two).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<form method=\"post\"") && page.contains("two@example.org"),
        "{page}"
    );
    let out = pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("two@example.org  subscribed"),
        "a GET alone: {}",
        out.stdout
    );
    for _ in 0..2 {
        let r = http
            .post(&two)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("two@example.org will receive no more")
        );
    }
    // Forgeries reach the signature check and fail it: one subscriber's name under another's
    // valid signature; a signature cut short.
    let token = |url: &str| url.split("t=").nth(1).unwrap().to_string();
    let (stay, _) = link_of("stay@example.org");
    let (stay_who, _) = token(&stay)
        .split_once('.')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let (_, one_tag) = token(&one)
        .split_once('.')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let forged = format!("{}t={stay_who}.{one_tag}", one.split("t=").next().unwrap());
    for bad in [forged, stay[..stay.len() - 3].to_string()] {
        assert_eq!(http.get(&bad).send().await.unwrap().status(), 403, "{bad}");
        let r = http
            .post(&bad)
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{bad}");
    }

    let out = pb.run(&["send", "--date", "2026-04-14"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let day2: Vec<Vec<String>> = smtp.received()[3..]
        .iter()
        .map(|r| r.rcpt_tos.clone())
        .collect();
    assert_eq!(
        day2,
        [vec!["stay@example.org".to_string()]],
        "opted-out get nothing"
    );
    let out = pb
        .run(&["history", "--date", "2026-04-14", "--status", "skipped"])
        .await;
    assert_eq!(
        out.stdout.matches("error: unsubscribed").count(),
        2,
        "{}",
        out.stdout
    );
    let out = pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("one@example.org  unsubscribed") && out.stdout.contains("(one-click)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("stay@example.org  subscribed"),
        "{}",
        out.stdout
    );

    // A request that came by email: the operator records it from the token in its subject.
    let out = pb.run(&["subscribers", "unsubscribe", &token(&stay)]).await;
    assert!(
        out.stdout.contains("stay@example.org: unsubscribed"),
        "{}",
        out.stdout
    );
    let out = pb.run(&["subscribers", "resume", "stay@example.org"]).await;
    assert!(out.stdout.contains("opt-out cleared"), "{}", out.stdout);

    let out = pb.run(&["subscribers", "resume", "one@example.org"]).await;
    assert!(out.stdout.contains("opt-out cleared"), "{}", out.stdout);
    let out = pb.run(&["send", "--date", "2026-04-15"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut day3: Vec<String> = smtp.received()[4..]
        .iter()
        .map(|r| r.rcpt_tos[0].clone())
        .collect();
    day3.sort();
    assert_eq!(day3, ["one@example.org", "stay@example.org"]);
    serve.kill().await.unwrap();
}

/// A multipart/form-data body of these fields, as a mail client may send RFC 8058's POST.
fn multipart(boundary: &str, fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body + &format!("--{boundary}--\r\n")
}

/// RFC 8058's one-click POST carries `List-Unsubscribe=One-Click`, urlencoded or multipart:
/// both unsubscribe. A POST without it (a stray request, a prefetch, a tool posting to every
/// link) is refused with a page that says nothing changed and offers the button.
async fn only_a_post_that_asks_for_one_click_unsubscribes() {
    let Listening {
        port,
        pb,
        mut serve,
        _api,
        ..
    } = listening(&["ada@example.org", "stay@example.org"]).await;
    let token = paperboy::mail::Tokens::new(secrecy::SecretString::from(SECRET)).sign(
        &paperboy::domain::SubscriberKey::from_stored("ada@example.org".into()),
    );
    let url = format!("http://127.0.0.1:{port}/unsubscribe?t={token}");
    let http = reqwest::Client::new();
    wait_for_listener(&http, port).await;
    let post = |content_type: Option<String>, body: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let mut req = http.post(url).body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let subscribed = || async {
        let out = pb.run(&["subscribers", "list"]).await;
        assert!(
            out.stdout.contains("stay@example.org  subscribed"),
            "{}",
            out.stdout
        );
        out.stdout.contains("ada@example.org  subscribed")
    };
    let urlencoded = || Some("application/x-www-form-urlencoded".to_string());
    let multipart_type = || Some("multipart/form-data; boundary=paperboy-test-7d1".to_string());

    let stray = [
        (None, String::new()),
        (urlencoded(), String::new()),
        (Some("text/plain".into()), "unsubscribe me".into()),
        (urlencoded(), "List-Unsubscribe=Two-Click".into()),
        (
            multipart_type(),
            multipart("paperboy-test-7d1", &[("List-Unsubscribe", "Later")]),
        ),
    ];
    for (content_type, body) in stray {
        let what = format!("{content_type:?} {body:?}");
        let (status, page) = post(content_type, body).await;
        assert_eq!(status, 400, "{what}: {page}");
        assert!(
            page.contains("Nothing was changed")
                && page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
            "{what}: {page}"
        );
        assert!(subscribed().await, "{what} unsubscribed");
    }

    let body = multipart("paperboy-test-7d1", &[("List-Unsubscribe", "One-Click")]);
    let (status, page) = post(multipart_type(), body).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("ada@example.org will receive no more"),
        "{page}"
    );
    assert!(!subscribed().await, "multipart one-click");

    pb.run(&["subscribers", "resume", "ada@example.org"]).await;
    assert!(subscribed().await);
    let (status, page) = post(urlencoded(), "List-Unsubscribe=One-Click".into()).await;
    assert_eq!(status, 200, "{page}");
    assert!(!subscribed().await, "urlencoded one-click");
    serve.kill().await.unwrap();
}

/// A token as versions before keys were folded signed it: over the key with the local part
/// as configured ("Ada@example.org").
fn old_style_token(secret: &str, key: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(b"paperboy-unsubscribe\0");
    mac.update(key.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{}.{}", B64.encode(key), B64.encode(&tag[..16]))
}

/// Ada is configured as "Ada@Example.org". The one-click link, the token of the mailto
/// request, a token of an email sent before keys were folded, and her address in any case all
/// name her; history and the list show her under one key.
async fn every_way_to_unsubscribe_names_the_same_subscriber() {
    let Listening {
        smtp,
        port,
        pb,
        mut serve,
        _api,
    } = listening(&["Ada@Example.org", "stay@example.org"]).await;
    let recipients = |from: usize| -> Vec<String> {
        smtp.received()[from..]
            .iter()
            .flat_map(|r| r.rcpt_tos.clone())
            .collect()
    };

    let out = pb.run(&["send", "--date", "2026-04-13"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = smtp.received();
    let ada = got
        .iter()
        .find(|r| r.rcpt_tos == ["Ada@Example.org"])
        .expect("Ada is written to as configured");
    let lu = ada
        .parsed()
        .header_raw("List-Unsubscribe")
        .unwrap()
        .replace(['\r', '\n', ' '], "");
    let one_click = lu
        .split(',')
        .map(|p| p.trim_start_matches('<').trim_end_matches('>'))
        .find(|p| p.starts_with("http"))
        .unwrap_or_else(|| panic!("{lu}"))
        .to_string();
    let mailto_token = lu
        .split("subject=unsubscribe%20")
        .nth(1)
        .and_then(|t| t.split('>').next())
        .unwrap_or_else(|| panic!("{lu}"))
        .to_string();
    assert!(one_click.ends_with(&format!("t={mailto_token}")), "{lu}");

    let http = reqwest::Client::new();
    wait_for_listener(&http, port).await;
    let post = |url: String| {
        let http = http.clone();
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The link's page (a GET) and the one-click answer name her as configured, as the command
    // line does.
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let page = get(one_click.clone()).await;
    assert!(
        page.contains("Ada@Example.org will receive no more"),
        "{page}"
    );
    let (status, page) = post(one_click.clone()).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Ada@Example.org will receive no more"),
        "{page}"
    );
    let out = pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("Ada@Example.org  unsubscribed") && out.stdout.contains("(one-click)"),
        "{}",
        out.stdout
    );
    // The request by email, from its subject's token; the address in another case.
    for asked in [mailto_token.as_str(), "ADA@EXAMPLE.ORG"] {
        let out = pb.run(&["subscribers", "unsubscribe", asked]).await;
        assert_eq!(
            out.stdout.trim(),
            "Ada@Example.org: had already unsubscribed",
            "{asked}"
        );
    }
    let out = pb.run(&["send", "--date", "2026-04-14"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(recipients(got.len()), ["stay@example.org"]);
    let out = pb
        .run(&["history", "--subscriber", "ada@example.ORG"])
        .await;
    assert_eq!(
        out.stdout.matches("ada@example.org").count(),
        2,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("2026-04-14  skipped  ada@example.org")
            && out.stdout.contains("2026-04-13  sent     ada@example.org"),
        "{}",
        out.stdout
    );

    // An email sent before keys were folded carries Ada's key as it was then.
    let old = old_style_token(SECRET, "Ada@example.org");
    let out = pb.run(&["subscribers", "resume", "aDa@example.org"]).await;
    assert!(
        out.stdout.starts_with("Ada@Example.org: opt-out cleared"),
        "{}",
        out.stdout
    );
    let (base, _) = one_click.split_once("t=").unwrap();
    let (status, page) = post(format!("{base}t={old}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Ada@Example.org will receive no more"),
        "{page}"
    );
    // Someone no longer configured is named by their key (a GET records nothing).
    let gone = old_style_token(SECRET, "Gone@Example.org");
    let page = get(format!("{base}t={gone}")).await;
    assert!(
        page.contains("gone@example.org will receive no more"),
        "{page}"
    );
    pb.run(&["subscribers", "resume", "ada@example.org"]).await;
    let out = pb.run(&["subscribers", "unsubscribe", &old]).await;
    assert_eq!(
        out.stdout.trim(),
        "Ada@Example.org: unsubscribed; no more digests"
    );
    let before = smtp.received().len();
    let out = pb.run(&["send", "--date", "2026-04-15"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(recipients(before), ["stay@example.org"]);
    let out = pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("Ada@Example.org  unsubscribed")
            && !out.stdout.contains("not a configured subscriber"),
        "{}",
        out.stdout
    );
    serve.kill().await.unwrap();
}

on_both_backends!(
    one_click_and_link_unsubscribe_stop_the_next_digest_and_resume_restores_it,
    every_way_to_unsubscribe_names_the_same_subscriber,
    only_a_post_that_asks_for_one_click_unsubscribes,
);
