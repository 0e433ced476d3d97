//! `[delivery]`: how emails leave (SMTP or an outbox directory), at what pace, with what
//! retries.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawDelivery;
use crate::delivery_policy::DeliveryPolicy;

/// Where emails go: to the SMTP relay, or as files into the outbox directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportKind {
    Smtp,
    Outbox,
}

/// The `[delivery]` settings, checked.
pub(super) struct Delivery {
    pub(super) transport: TransportKind,
    pub(super) outbox_dir: PathBuf,
    pub(super) policy: DeliveryPolicy,
}

pub(super) fn validate(d: RawDelivery, problems: &mut Vec<String>) -> Delivery {
    let transport = match d.transport.as_str() {
        "smtp" => TransportKind::Smtp,
        "outbox" => TransportKind::Outbox,
        other => {
            problems.push(format!(
                "delivery.transport: {other:?} is neither \"smtp\" nor \"outbox\""
            ));
            TransportKind::Outbox
        }
    };
    if d.outbox_dir.trim().is_empty() {
        problems.push("delivery.outbox_dir: must not be empty".into());
    }
    if d.concurrency == 0 || d.concurrency > 256 {
        problems.push(format!(
            "delivery.concurrency: {} is not between 1 and 256",
            d.concurrency
        ));
    }
    if d.threads > 1024 {
        problems.push(format!(
            "delivery.threads: {} is more than 1024 (0: one fewer than the CPUs)",
            d.threads
        ));
    }
    if d.max_attempts == 0 {
        problems.push("delivery.max_attempts: must be at least 1".into());
    }
    if d.retry_base.is_zero() || d.retry_max < d.retry_base {
        problems.push("delivery.retry_base must be above 0 and at most delivery.retry_max".into());
    }
    if d.give_up_after.is_zero() {
        problems.push(
            "delivery.give_up_after: must be above 0 (every delivery would be given up before \
             its first attempt; for no retries, set delivery.max_attempts = 1)"
                .into(),
        );
    }
    if d.lease < Duration::from_secs(1) {
        problems.push("delivery.lease: must be at least 1s".into());
    }
    Delivery {
        transport,
        outbox_dir: PathBuf::from(d.outbox_dir.trim()),
        policy: DeliveryPolicy {
            concurrency: d.concurrency.clamp(1, 256),
            threads: d.threads.min(1024),
            max_per_second: d.max_per_second,
            max_per_hour: d.max_per_hour,
            max_attempts: d.max_attempts.max(1),
            retry_base: d.retry_base,
            retry_max: d.retry_max,
            give_up_after: d.give_up_after,
            lease: d.lease,
        },
    }
}
