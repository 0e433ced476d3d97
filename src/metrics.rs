//! Prometheus metrics: what the process counts as it goes (SMTP latency, source errors), and
//! what the database knows at scrape time (deliveries and runs by status).

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    /// Seconds per SMTP send, by outcome (sent, transient, permanent, session).
    pub smtp_send_seconds: Family<OutcomeLabel, Histogram>,
    /// Fetches of a daily list that failed.
    pub source_fetch_errors: Counter,
    /// Deliveries in the database by status (set at scrape time).
    pub deliveries: Family<StatusLabel, Gauge>,
    /// Runs in the database by status (set at scrape time).
    pub runs: Family<StatusLabel, Gauge>,
    /// Unix time of the next scheduled tick (set at scrape time).
    pub next_tick: Gauge,
}

pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut registry = Registry::with_prefix("paperboy");
        let smtp_send_seconds = Family::<OutcomeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "smtp_send_seconds",
            "Time to send one message over SMTP, by outcome",
            smtp_send_seconds.clone(),
        );
        let source_fetch_errors = Counter::default();
        registry.register(
            "source_fetch_errors",
            "Fetches of a daily list that failed",
            source_fetch_errors.clone(),
        );
        let deliveries = Family::<StatusLabel, Gauge>::default();
        registry.register("deliveries", "Deliveries by status", deliveries.clone());
        let runs = Family::<StatusLabel, Gauge>::default();
        registry.register("runs", "Runs of digest dates by status", runs.clone());
        let next_tick = Gauge::default();
        registry.register(
            "next_tick_timestamp_seconds",
            "Unix time of the next scheduled tick",
            next_tick.clone(),
        );
        Metrics {
            registry,
            smtp_send_seconds,
            source_fetch_errors,
            deliveries,
            runs,
            next_tick,
        }
    })
}

impl Metrics {
    pub fn observe_send(&self, outcome: &str, seconds: f64) {
        self.smtp_send_seconds
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .observe(seconds);
    }

    pub fn set_status(family: &Family<StatusLabel, Gauge>, status: &str, n: i64) {
        family
            .get_or_create(&StatusLabel {
                status: status.to_string(),
            })
            .set(n);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
