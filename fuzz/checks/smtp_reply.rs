//! The SMTP session's handling of what a server says: the input is everything a server
//! answers (greeting, EHLO, MAIL, RCPT, DATA, the message, a pipelined next transaction),
//! read by lettre and judged by paperboy's session. Every outcome names the server; a
//! message counts as sent only on a positive reply, and as refused for good only where the
//! server answered 5xx; what a server said is shown to the operator as one line of
//! printable text.
//!
//! The first byte chooses: bit 0, a next message pipelined after the first; bit 1, an
//! 8-bit message; bit 2, two recipients; bits 3-7, how many bytes the server's writes hold
//! (0: all at once).

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::Address;
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::client::AsyncTokioStream;
use paperboy::config::{Security, SmtpConfig};
use paperboy::mail::{MailError, SmtpSender};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where a send that needs a new connection goes: nowhere (a connection to port 0 is
/// refused at once), so that the script stays the only server.
const SERVER: &str = "127.0.0.1:0";

/// A server that says its script, in writes of `chunk` bytes, whatever it is told.
#[derive(Debug)]
struct Script {
    said: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf
            .remaining()
            .min(self.chunk)
            .min(self.said.len() - self.at);
        buf.put_slice(&self.said[self.at..self.at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncTokioStream for Script {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(SERVER.parse().expect("an address"))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn config() -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: 0,
        security: Security::None,
        username: None,
        password: None,
        from: "Paperboy <digest@example.org>"
            .parse::<Mailbox>()
            .expect("a mailbox"),
        reply_to: None,
        timeout: Duration::from_secs(5),
        ca_file: None,
        hello_name: Some("paperboy.example.org".into()),
    }
}

fn envelope(to: &[&str]) -> Envelope {
    let to = to.iter().map(|a| a.parse::<Address>().expect("an address"));
    Envelope::new(
        Some("digest@example.org".parse().expect("an address")),
        to.collect(),
    )
    .expect("an envelope")
}

/// Said by the server, and shown to the operator as it is: one line of printable text.
fn printable(text: &str) {
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

/// Every error names the server and shows what it said as printable text; `Permanent`
/// (refused for good) only where the server answered 5xx.
fn judged(e: &MailError, said: &[u8]) {
    let text = e.to_string();
    assert!(text.contains(SERVER), "{text}");
    printable(&text);
    if let MailError::Permanent(_) = e {
        let answered_5xx = said
            .split(|&b| b == b'\n')
            .any(|line| line.first() == Some(&b'5'));
        assert!(answered_5xx, "{text}");
    }
}

/// A message's outcome: the server's positive reply to it, code first, or an error.
fn sent(outcome: &Result<String, MailError>, said: &[u8]) {
    match outcome {
        Ok(reply) => {
            printable(reply);
            let code = reply.as_bytes();
            assert!(code.len() >= 4 && code[3] == b' ', "{reply:?}");
            assert!(matches!(code[0], b'2' | b'3'), "{reply:?}");
            assert!(code[1..3].iter().all(u8::is_ascii_digit), "{reply:?}");
        }
        Err(e) => judged(e, said),
    }
}

/// lettre panics on some replies that are not valid SMTP; paperboy catches those panics and
/// judges them as the server's error (`SmtpSender`'s steps). The fuzzer's panic hook aborts
/// at any panic, caught or not: let through those raised in lettre's code (what paperboy
/// makes of them is then held to the property like any error); any other still aborts.
fn lettre_panics_are_caught() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_lettre = info.location().is_some_and(|l| {
                let file = l.file().replace('\\', "/");
                file.contains("/lettre-") && file.contains("/src/transport/smtp/")
            });
            if !in_lettre {
                hook(info)
            }
        }));
    });
}

/// The property, for one input (as the fuzz target and the regression tests give it).
pub fn check(data: &[u8]) {
    lettre_panics_are_caught();
    let Some((&flags, said)) = data.split_first() else {
        return;
    };
    let (pipelined, eight_bit, two) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
    let chunk = match flags >> 3 {
        0 => usize::MAX,
        n => n as usize,
    };
    let first = if two {
        envelope(&["ada@example.org", "grace@example.org"])
    } else {
        envelope(&["ada@example.org"])
    };
    let second = envelope(&["élise@example.org"]);
    let message: &[u8] = if eight_bit {
        "Subject: digest\r\n\r\nCaf\u{e9}\r\n.\r\n".as_bytes()
    } else {
        b"Subject: digest\r\n\r\n.hello\r\n"
    };
    let script = Script {
        said: said.to_vec(),
        at: 0,
        chunk,
    };
    runtime().block_on(async {
        let mut sender = SmtpSender::new(&config()).expect("a sender");
        if let Err(e) = sender.connect_over(Box::new(script)).await {
            judged(&e, said);
            assert!(!matches!(e, MailError::Permanent(_)), "{e}");
            return;
        }
        let next = pipelined.then_some((&second, message));
        let outcome = sender.send(&first, message.to_vec(), next).await;
        sent(&outcome, said);
        if pipelined && outcome.is_ok() {
            sent(&sender.send(&second, message.to_vec(), None).await, said);
        }
        sender.close().await;
    });
}
