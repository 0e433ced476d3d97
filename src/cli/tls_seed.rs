//! Seeding the TLS random generator ahead, on a thread of its own, for commands that connect.

/// TLS (to PostgreSQL, the SMTP server, the papers' API) seeds aws-lc's random generator the
/// first time the process uses it: some 30 ms of CPU for its CPU-jitter entropy source, once
/// per process. Done here on a thread of its own, while the config loads, rather than on the
/// way to the first connection.
pub fn seed_tls_randomness() {
    let seeding = std::thread::Builder::new()
        .name("tls-seed".into())
        .spawn(|| {
            if aws_lc_rs::rand::fill(&mut [0u8; 1]).is_err() {
                tracing::debug!("seeding the TLS random generator ahead failed; left to TLS");
            }
        });
    if let Err(e) = seeding {
        tracing::debug!(error = %e, "no thread to seed the TLS random generator ahead");
    }
}
