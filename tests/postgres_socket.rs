//! paperboy's PostgreSQL connections send each request at once: Nagle's algorithm is off
//! (TCP_NODELAY). With it on, a request written in two segments (every TLS handshake, a plan's
//! large inserts) waits for the server's delayed ACK, ~40 ms each time. sqlx sets it
//! from 0.9.1 on (upstream #4336); 0.9.0 left it on, and this test fails with it.

mod support;

use paperboy::store::DatabaseUrl;
use support::*;

/// The tests here look at every socket of this process: one at a time, so that none sees
/// another's connections half set up.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The local sockets of this process connected to `port`, each with its TCP_NODELAY.
fn sockets_to(port: u16) -> Vec<(i32, bool)> {
    let mut out = Vec::new();
    for fd in 0..4096 {
        // SAFETY: getpeername and getsockopt only read into the buffers given, with their
        // sizes; an fd that is not a socket fails with ENOTSOCK or EBADF.
        unsafe {
            let mut addr: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if libc::getpeername(fd, (&raw mut addr).cast(), &mut len) != 0 {
                continue;
            }
            let peer_port = match addr.ss_family as i32 {
                libc::AF_INET => {
                    u16::from_be((*(&raw const addr).cast::<libc::sockaddr_in>()).sin_port)
                }
                libc::AF_INET6 => {
                    u16::from_be((*(&raw const addr).cast::<libc::sockaddr_in6>()).sin6_port)
                }
                _ => continue,
            };
            if peer_port != port {
                continue;
            }
            let mut on: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let got = libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw mut on).cast(),
                &mut len,
            );
            assert_eq!(got, 0, "getsockopt(TCP_NODELAY) on fd {fd}");
            out.push((fd, on != 0));
        }
    }
    out
}

#[tokio::test]
async fn postgres_connections_send_without_waiting_for_acks() {
    on_postgres(
        "postgres_connections_send_without_waiting_for_acks",
        check_nodelay(),
    )
    .await;
}

async fn check_nodelay() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = PgDatabase::create();
    let url = url::Url::parse(&db.url).unwrap();
    if url.host_str().is_none_or(str::is_empty) {
        skip_or_fail_in_ci(
            "the TCP_NODELAY check",
            &format!("{POSTGRES_ENV} names no TCP host"),
        );
        return;
    }
    let port = url.port().unwrap_or(5432);
    // The store's own pool (it migrates the database over its first connection, and keeps it).
    let store = paperboy::store::Store::connect(&DatabaseUrl::new(&db.url))
        .await
        .unwrap();
    store.ping().await.unwrap();
    let sockets = sockets_to(port);
    assert!(!sockets.is_empty(), "no connection to port {port} found");
    assert!(
        sockets.iter().all(|(_, nodelay)| *nodelay),
        "Nagle's algorithm on: {sockets:?}"
    );
}

/// `send` opens the connections a pass uses while the schema is checked, not one at a time
/// as each is first needed (each is a TCP and TLS set-up and a new server process, and the
/// first emails waited for them).
#[tokio::test]
async fn a_store_for_sending_opens_its_connections_ahead() {
    on_postgres("a_store_for_sending_opens_its_connections_ahead", async {
        let _turn = ONE_AT_A_TIME.lock().await;
        let db = PgDatabase::create();
        let plain = paperboy::store::Store::connect(&DatabaseUrl::new(&db.url))
            .await
            .unwrap();
        let warm = paperboy::store::Store::connect_warm(&DatabaseUrl::new(&db.url), 4)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while warm.open_connections() < 5 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // The first connection and 4 more (the migration may have asked for one more while
        // the 4 were being opened).
        let opened = warm.open_connections();
        assert!(opened >= 5, "{opened} connections open");
        assert_eq!(plain.open_connections(), 1, "a plain store opens one");
        warm.close().await;
        plain.close().await;
    })
    .await;
}
