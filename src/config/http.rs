//! `[http]`: the address of the optional HTTP listener (health, metrics, unsubscribe), and the
//! limits that keep slow or idle clients from holding it: connections, header and idle time-outs.

use std::net::SocketAddr;
use std::time::Duration;

use super::raw::RawHttp;

/// How many connections the listener holds at once, and how long a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once; further ones wait to be accepted until one closes.
    pub max_connections: usize,
    /// The time a client has to send a request's line and headers once it has begun it (its
    /// first byte), and then its body.
    pub header_timeout: Duration,
    /// The time a connection may wait for a request (after it opens, or after an answer), and
    /// the time an answer may wait for the client to read it.
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        let raw = RawHttp::default();
        Self {
            max_connections: raw.max_connections as usize,
            header_timeout: raw.header_timeout,
            idle_timeout: raw.idle_timeout,
        }
    }
}

/// The listener's address (`None` when `listen` is empty: no listener) and its limits.
pub(super) fn validate(
    raw: RawHttp,
    problems: &mut Vec<String>,
) -> (Option<SocketAddr>, HttpLimits) {
    let listen = match raw.listen.trim() {
        "" => None,
        l => l
            .parse()
            .map_err(|e| {
                problems.push(format!(
                    "http.listen: {l:?} is not an address:port like \"127.0.0.1:9310\": {e}"
                ))
            })
            .ok(),
    };
    if raw.max_connections == 0 {
        problems.push(
            "http.max_connections: 0 would accept no connection; give at least 1 (default 256)"
                .into(),
        );
    }
    for (key, value) in [
        ("header_timeout", raw.header_timeout),
        ("idle_timeout", raw.idle_timeout),
    ] {
        if value.is_zero() {
            problems.push(format!(
                "http.{key}: 0s would close every connection at once; give a duration like \"10s\""
            ));
        }
    }
    let limits = HttpLimits {
        max_connections: raw.max_connections as usize,
        header_timeout: raw.header_timeout,
        idle_timeout: raw.idle_timeout,
    };
    (listen, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_refused_naming_their_keys() {
        let raw = RawHttp {
            listen: "127.0.0.1:9310".into(),
            max_connections: 0,
            header_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
        };
        let mut problems = Vec::new();
        validate(raw, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        for key in [
            "http.max_connections",
            "http.header_timeout",
            "http.idle_timeout",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(key)), "{problems:?}");
        }
    }

    #[test]
    fn the_defaults_hold_256_connections_10s_for_headers_60s_idle() {
        let mut problems = Vec::new();
        let (listen, limits) = validate(RawHttp::default(), &mut problems);
        assert!(problems.is_empty() && listen.is_none());
        assert_eq!(
            limits,
            HttpLimits {
                max_connections: 256,
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
            }
        );
    }
}
