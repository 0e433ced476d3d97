//! `[http]`: the address of the optional HTTP listener (health, metrics, unsubscribe).

use std::net::SocketAddr;

use super::raw::RawHttp;

/// The listener's address; `None` when `listen` is empty (no listener).
pub(super) fn validate(raw: RawHttp, problems: &mut Vec<String>) -> Option<SocketAddr> {
    match raw.listen.trim() {
        "" => None,
        l => l
            .parse()
            .map_err(|e| {
                problems.push(format!(
                    "http.listen: {l:?} is not an address:port like \"127.0.0.1:9310\": {e}"
                ))
            })
            .ok(),
    }
}
