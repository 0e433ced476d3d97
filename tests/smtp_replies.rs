//! A server on loopback whose replies are not valid SMTP: paperboy names the server and what
//! went wrong, keeps the digests for a later try, and no task dies. lettre 0.11.23 panics on an
//! EHLO reply line of nothing but white space (found by the `smtp_reply` fuzz target); here a
//! real TCP server says exactly that, to `check --smtp` and to `send`.

mod support;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use support::*;

/// A server that greets, then answers every EHLO with a line of white space among its
/// extensions, and QUIT with 221; any other command gets 502. Returns its port.
async fn server_with_a_blank_ehlo_line() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 odd.example ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-odd.example\r\n250- \r\n250 PIPELINING\r\n",
                        "QUIT" => b"221 bye\r\n",
                        _ => b"502 not here\r\n",
                    };
                    if write.write_all(reply).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn config(port: u16) -> String {
    format!(
        "[delivery]\ntransport = \"smtp\"\nmax_attempts = 2\nretry_base = \"100ms\"\nretry_max = \"200ms\"\n\
         [database]\nurl = \"sqlite://paperboy.db\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
         from = \"Paperboy Test <digest@paperboy.test>\"\ntimeout = \"5s\"\n\
         hello_name = \"paperboy.test\"\n\
         [topics.all]\nquery = \"upvotes>=0\"\n\
         [[subscribers]]\nemail = \"ada@example.org\"\ntopics = [\"all\"]\n\
         [[subscribers]]\nemail = \"bob@example.org\"\ntopics = [\"all\"]\n"
    )
}

async fn a_reply_lettre_cannot_read_is_the_servers_error_and_the_digests_wait() {
    let port = server_with_a_blank_ehlo_line().await;
    let pb = Paperboy::new(&config(port));
    let server = format!("127.0.0.1:{port}");

    let out = pb.run(&["check", "--smtp"]).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains(&server), "{said}");
    assert!(said.contains("not valid SMTP"), "{said}");

    // The server stays unusable: the run stops, as for a relay that cannot be reached.
    let out = pb.send_recorded_day("2026-04-10").await;
    let said = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 1, "{said}");
    assert!(!said.contains("worker died"), "{said}");
    assert!(said.contains("not valid SMTP"), "{said}");
    // Both digests wait for a later try; none was lost or marked failed.
    let out = pb.run(&["history", "--status", "pending"]).await;
    assert_eq!(
        out.stdout.matches("  pending ").count(),
        2,
        "{}",
        out.stdout
    );
    let out = pb.run(&["history", "--status", "failed"]).await;
    assert_eq!(out.stdout.matches("  failed ").count(), 0, "{}", out.stdout);
}

on_both_backends!(a_reply_lettre_cannot_read_is_the_servers_error_and_the_digests_wait);
