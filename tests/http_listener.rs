//! The HTTP listener (`paperboy serve`) under real TCP clients: requests whose headers never
//! finish and connections left idle are closed, the connection limit makes a new client wait
//! until one closes, every answer carries the no-store, nosniff and frame-protection headers,
//! and `/healthz` under `serve` claims no scheduler and tells a failed run.

mod support;

use std::io::Read;
use std::time::Duration;

use secrecy::SecretString;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The secret the links are signed with.
const SECRET: &str = "a test secret of some length";

/// The longest a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(30);

/// `paperboy serve` on a port of its own, with these `[http]` keys (besides `listen`) and
/// these sections more.
struct Serving {
    pb: Paperboy,
    port: u16,
    _child: tokio::process::Child,
}

impl Serving {
    async fn start(http_keys: &str, more: &str) -> Self {
        let port = free_port();
        let cfg = format!(
            "{more}\n[database]\nurl = \"sqlite://paperboy.db\"\n\
             [delivery]\ntransport = \"outbox\"\n\
             [smtp]\nfrom = \"digest@paperboy.test\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n{http_keys}\n\
             [unsubscribe]\nbase_url = \"http://127.0.0.1:{port}/unsubscribe\"\nsecret = {SECRET:?}\n\
             [topics.agents]\nkeywords = [\"agent\", \"agents\"]\n\
             [[subscribers]]\nemail = \"ada@example.org\"\ntopics = [\"agents\"]\n"
        );
        let pb = Paperboy::new(&cfg);
        let child = pb
            .command(&["serve"])
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let serving = Self {
            pb,
            port,
            _child: child,
        };
        // Ready once it answers (on a connection that is closed after the answer).
        let start = std::time::Instant::now();
        while TcpStream::connect(serving.addr()).await.is_err() {
            assert!(start.elapsed() < PATIENCE, "paperboy serve did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            serving.request("GET", "/healthz", &[], "").await.status,
            200
        );
        serving
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr()).await.unwrap()
    }

    /// A whole request on a connection of its own that the server closes after answering.
    async fn request(&self, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
        let mut conn = self.connect().await;
        conn.write_all(raw_request(method, path, headers, body, true).as_bytes())
            .await
            .unwrap();
        read_answer(&mut conn).await
    }
}

/// The `[http]` limits.
fn limits(max_connections: u32, header_timeout: &str, idle_timeout: &str) -> String {
    format!(
        "max_connections = {max_connections}\nheader_timeout = {header_timeout:?}\n\
         idle_timeout = {idle_timeout:?}"
    )
}

fn raw_request(method: &str, path: &str, headers: &[&str], body: &str, close: bool) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if close {
        r.push_str("Connection: close\r\n");
    }
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    r
}

/// An answer as it came over the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The header lines, each as sent.
    head: Vec<String>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one answer (its body by Content-Length), leaving the connection open.
async fn read_answer(conn: &mut TcpStream) -> Answer {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let mut lines = head.lines();
            let status = lines
                .next()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let head: Vec<String> = lines.map(str::to_string).collect();
            let length = head
                .iter()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().unwrap())
                })
                .expect("a Content-Length");
            if got.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + length]).into_owned();
                return Answer { status, head, body };
            }
        }
        let n = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("the connection stays open until the answer");
        assert!(n > 0, "closed before a whole answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Waits until the server closes the connection (EOF or reset); fails if it does not.
async fn closed_by_server(conn: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, conn.read(&mut buf)).await {
            Ok(Ok(0)) => return,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => panic!("{what}: the server kept the connection open"),
        }
    }
}

/// Whether the server has closed the connection already (without waiting).
fn closed_now(conn: TcpStream) -> bool {
    let mut conn = conn.into_std().unwrap();
    conn.set_nonblocking(true).unwrap();
    match conn.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(n) => panic!("{n} bytes on a connection that sent no whole request"),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Requests that stop half-way: in the request line, between headers, inside one.
const STALLED: [&str; 3] = [
    "GET /heal",
    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    "POST /unsubscribe?t=x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 26\r\nX-Slow: ",
];

#[tokio::test]
async fn requests_whose_headers_never_finish_are_closed_and_normal_ones_are_served_after() {
    let s = Serving::start(&limits(4, "500ms", "1h"), "").await;
    let mut slow = Vec::new();
    for partial in STALLED {
        let mut conn = s.connect().await;
        conn.write_all(partial.as_bytes()).await.unwrap();
        slow.push(conn);
    }
    // The fourth sends a header a byte at a time, for as long as the server lets it.
    let mut dribbler = s.connect().await;
    dribbler
        .write_all(b"GET /healthz HTTP/1.1\r\nX-Drip: ")
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        let start = std::time::Instant::now();
        while dribbler.write_all(b"a").await.is_ok() {
            assert!(start.elapsed() < PATIENCE, "a dribbling client was kept");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // The four hold every slot: a normal request is served once the server has dropped one.
    let answer = s.request("GET", "/healthz", &[], "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(answer.body.contains("\"database\":\"ok\""), "{answer:?}");
    let closed: Vec<bool> = slow.into_iter().map(closed_now).collect();
    assert!(
        closed.contains(&true),
        "served while every slot was held by a stalled request: {closed:?}"
    );

    // All of them are closed.
    for partial in STALLED {
        let mut conn = s.connect().await;
        conn.write_all(partial.as_bytes()).await.unwrap();
        closed_by_server(&mut conn, partial).await;
    }
    dripping.await.unwrap();
    assert_eq!(s.request("GET", "/healthz", &[], "").await.status, 200);
}

#[tokio::test]
async fn at_the_connection_limit_a_new_connection_waits_until_one_closes() {
    let s = Serving::start(&limits(2, "1h", "1h"), "").await;
    let mut first = s.connect().await;
    first.write_all(STALLED[1].as_bytes()).await.unwrap();
    let mut second = s.connect().await;
    second.write_all(STALLED[1].as_bytes()).await.unwrap();

    let mut third = s.connect().await;
    third
        .write_all(raw_request("GET", "/healthz", &[], "", true).as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "answered while both slots were held (checked for 1 s): {early:?}"
    );

    drop(first);
    let answer = read_answer(&mut third).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(!closed_now(second), "the other one is left alone");
}

#[tokio::test]
async fn a_connection_left_idle_is_closed_before_and_between_requests() {
    let s = Serving::start(&limits(256, "1h", "500ms"), "").await;
    let mut silent = s.connect().await;
    closed_by_server(&mut silent, "a connection that never sent a byte").await;

    let mut kept = s.connect().await;
    kept.write_all(raw_request("GET", "/healthz", &[], "", false).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_answer(&mut kept).await.status, 200);
    closed_by_server(&mut kept, "a kept-alive connection left idle").await;
}

/// A signed link's token for ada@example.org.
fn ada_token() -> String {
    paperboy::mail::Tokens::new(SecretString::from(SECRET)).sign(
        &paperboy::domain::SubscriberKey::from_stored("ada@example.org".into()),
    )
}

#[tokio::test]
async fn every_answer_is_uncached_unsniffed_and_unframeable() {
    let s = Serving::start("", "").await;
    let ok = format!("/unsubscribe?t={}", ada_token());
    let forged = format!("/unsubscribe?t={}x", ada_token());
    let form = ["Content-Type: application/x-www-form-urlencoded"];
    let one_click = "List-Unsubscribe=One-Click";
    let routes: [(&str, &str, &[&str], &str, u16); 11] = [
        ("GET", "/healthz", &[], "", 200),
        ("GET", "/metrics", &[], "", 200),
        ("GET", &ok, &[], "", 200),
        ("GET", &forged, &[], "", 403),
        ("GET", "/unsubscribe", &[], "", 403),
        ("GET", "/unsubscribe?t=a&t=b", &[], "", 400),
        ("POST", &ok, &[], "", 400),
        ("POST", &forged, &form, one_click, 403),
        ("POST", &ok, &form, one_click, 200),
        ("PUT", &ok, &form, one_click, 405),
        ("GET", "/no/such/page", &[], "", 404),
    ];
    for (method, path, headers, body, status) in routes {
        let a = s.request(method, path, headers, body).await;
        let what = format!("{method} {path}: {a:?}");
        assert_eq!(a.status, status, "{what}");
        assert_eq!(a.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(a.header("x-frame-options"), Some("DENY"), "{what}");
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}");
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{what}");
    }
    let out = s.pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("ada@example.org  unsubscribed"),
        "{}",
        out.stdout
    );
}

/// Under `serve` there is no scheduler: /healthz says so and claims none alive. A failed run
/// in the database (a `send` whose source failed) makes it "degraded" (still 200: the
/// listener works); the run done again brings it back to "ok".
async fn healthz_under_serve_claims_no_scheduler_and_tells_a_failed_run() {
    let api = HfApi::start().await;
    api.set_mode(Mode::Status(500));
    let source = format!("[source]\nbase_url = {:?}\nretries = 0", api.base_url);
    let s = Serving::start("", &source).await;
    let (code, h) = health(&s).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["scheduler"], "none", "{h}");
    assert!(
        h.get("scheduler_alive").is_none() && h.get("scheduler_heartbeat_age_seconds").is_none(),
        "no field claims a scheduler: {h}"
    );
    assert_eq!(h["last_run"], serde_json::Value::Null, "{h}");

    let out = s.pb.run(&["send", "--date", "2026-04-13"]).await;
    assert_eq!(out.code, 1, "the source fails: {}", out.stderr);
    let (code, h) = health(&s).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["database"], "ok", "{h}");
    assert_eq!(h["last_run"]["status"], "failed", "{h}");
    assert_eq!(h["last_run"]["digest_date"], "2026-04-13", "{h}");
    assert!(h["last_run"]["error"].is_string(), "{h}");

    api.set_mode(Mode::Normal);
    api.serve_day("2026-04-13", fixture_items("2026-04-10"));
    let out = s.pb.run(&["send", "--date", "2026-04-13"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (code, h) = health(&s).await;
    assert_eq!((code, &h["status"]), (200, &"ok".into()), "{h}");
    assert_eq!(h["last_run"]["status"], "done", "{h}");
}

async fn health(s: &Serving) -> (u16, serde_json::Value) {
    let a = s.request("GET", "/healthz", &[], "").await;
    let h = serde_json::from_str(&a.body).unwrap();
    (a.status, h)
}

on_both_backends!(healthz_under_serve_claims_no_scheduler_and_tells_a_failed_run);
