//! The unsubscribe page's button in a real browser: headless Chromium, driven over its
//! DevTools pipe, opens a signed link served by `paperboy serve`, presses the button, and the
//! opt-out is recorded (the form posts RFC 8058's `List-Unsubscribe=One-Click`, and the page's
//! headers let it). Skipped, with a message, where no Chromium is installed; in CI that fails.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// A Chromium driven over `--remote-debugging-pipe` (commands in on fd 3, answers out on fd
/// 4, each a JSON text ended by a NUL byte).
struct Browser {
    child: std::process::Child,
    commands: std::io::PipeWriter,
    answers: mpsc::Receiver<Value>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(bin: &std::path::Path) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let (commands_in, commands) = std::io::pipe().unwrap();
        let (answers_out, answers_in) = std::io::pipe().unwrap();
        let (r, w) = (commands_in.as_raw_fd(), answers_in.as_raw_fd());
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The copies
        // above 10 keep dup2 from meeting an fd already numbered 3 or 4.
        unsafe {
            cmd.pre_exec(move || {
                let (r2, w2) = (
                    libc::fcntl(r, libc::F_DUPFD, 10),
                    libc::fcntl(w, libc::F_DUPFD, 10),
                );
                if r2 < 0 || w2 < 0 || libc::dup2(r2, 3) < 0 || libc::dup2(w2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts");
        drop((commands_in, answers_in));
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(answers_out);
            let mut message = Vec::new();
            while out.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice(&message)
                    && tx.send(v).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        Self {
            child,
            commands,
            answers,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Sends a command (to a page's session, if given) and returns its answer: the result,
    /// or the error the browser gave.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        loop {
            let v = self
                .answers
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Evaluates a JavaScript expression in the page; `None` while the page has no document
    /// to run it in (between two pages).
    fn eval(&mut self, session: &str, expression: &str) -> Option<Value> {
        let r = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .ok()?;
        r.get("exceptionDetails")
            .is_none()
            .then(|| r["result"]["value"].clone())
    }

    /// Waits until the expression gives `want` in the page.
    fn wait_for(&mut self, session: &str, expression: &str, want: &str) {
        let start = Instant::now();
        loop {
            let got = self.eval(session, expression);
            if got.as_ref().and_then(Value::as_str) == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{expression} is {got:?}, not {want:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unsubscribe_button_works_in_chromium() {
    let Some(bin) = chromium() else {
        skip_or_fail_in_ci(
            "the unsubscribe button in a browser",
            "no Chromium on this machine (install Debian's chromium package; .ci/run does)",
        );
        return;
    };
    let secret = "a test secret of some length";
    let port = free_port();
    let pb = Paperboy::new(&format!(
        "[database]\nurl = \"sqlite://paperboy.db\"\n[smtp]\nfrom = \"digest@paperboy.test\"\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n\
         [unsubscribe]\nbase_url = \"http://127.0.0.1:{port}/unsubscribe\"\nsecret = {secret:?}\n\
         [topics.agents]\nkeywords = [\"agent\"]\n\
         [[subscribers]]\nemail = \"Ada@Example.org\"\ntopics = [\"agents\"]\n"
    ));
    let mut serve = pb
        .command(&["serve"])
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "serve listens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = paperboy::mail::Tokens::new(secrecy::SecretString::from(secret)).sign(
        &paperboy::domain::SubscriberKey::from_stored("ada@example.org".into()),
    );
    let link = format!("http://127.0.0.1:{port}/unsubscribe?t={token}");

    tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch(&bin);
        let target = browser
            .call(None, "Target.createTarget", json!({"url": link}))
            .unwrap();
        let session = browser
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .unwrap()["sessionId"]
            .as_str()
            .unwrap()
            .to_string();
        let title = "document.readyState === 'complete' ? document.title : ''";
        browser.wait_for(&session, title, "Unsubscribe from paperboy?");
        browser
            .eval(
                &session,
                "document.querySelector('form button').click(), 'pressed'",
            )
            .expect("the button is pressed");
        browser.wait_for(&session, title, "You are unsubscribed");
        let text = browser.eval(&session, "document.body.innerText").unwrap();
        assert!(
            text.as_str()
                .unwrap()
                .contains("Ada@Example.org will receive no more paperboy digests"),
            "{text}"
        );
    })
    .await
    .unwrap();

    let out = pb.run(&["subscribers", "list"]).await;
    assert!(
        out.stdout.contains("Ada@Example.org  unsubscribed") && out.stdout.contains("(one-click)"),
        "{}",
        out.stdout
    );
    serve.kill().await.unwrap();
}
