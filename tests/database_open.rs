//! A database that cannot be opened: the message says which, where, and why, at once (not
//! "pool timed out" half a minute later).

mod support;

use support::*;

const BASE: &str = "[smtp]\nfrom = \"a@example.org\"\n[topics.ml]\nkeywords = [\"ml\"]\n";

fn with_database(url: &str) -> String {
    format!("{BASE}[database]\nurl = {url:?}\n")
}

/// `paperboy status` on the database of the config file (not the test's PostgreSQL server,
/// which `Paperboy` on PostgreSQL points the binary at): it fails with exit code 1; the line
/// it fails with, and the whole of stderr.
async fn status_fails(pb: &Paperboy) -> (String, String) {
    let mut cmd = pb.command(&["status"]);
    cmd.env_remove("PAPERBOY__DATABASE__URL");
    let out = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("paperboy: error:"))
        .unwrap_or_else(|| panic!("an error line in {stderr}"))
        .to_string();
    (line, stderr)
}

/// A port where nothing listens: bound, then let go.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_postgres_connection_names_host_port_and_the_cause() {
    let port = closed_port();
    let pb = Paperboy::new(&with_database(&format!(
        "postgres://paperboy:pg-secret-1d2c@127.0.0.1:{port}/pb"
    )));
    let (line, stderr) = status_fails(&pb).await;
    assert!(
        line.contains(&format!(
            "connecting to 127.0.0.1:{port}: Connection refused"
        )),
        "{line}"
    );
    assert!(!line.contains("timed out"), "{line}");
    assert!(!stderr.contains("pg-secret-1d2c"), "{stderr}");
}

/// SQLite: the message names the file (or the directory it could not make).
#[tokio::test]
async fn an_sqlite_file_that_cannot_be_opened_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let under_a_file = file.join("paperboy.db");
    let pb = Paperboy::new(&with_database(&format!(
        "sqlite://{}",
        under_a_file.display()
    )));
    let (line, _) = status_fails(&pb).await;
    assert!(
        line.contains(&format!("sqlite://{}", under_a_file.display()))
            && line.contains(&format!("creating its directory {}", file.display())),
        "{line}"
    );

    // A directory where the file should be.
    pb.set_config(&with_database(&format!(
        "sqlite://{}",
        dir.path().display()
    )));
    let (line, _) = status_fails(&pb).await;
    assert!(
        line.contains(&format!("sqlite://{}:", dir.path().display()))
            && line.contains("unable to open database file"),
        "{line}"
    );
}
