//! The relay's limits (`delivery.max_per_second`, `delivery.max_per_hour`): one limiter that
//! every worker waits on before it takes a row, owned across passes by the caller.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::delivery_policy::DeliveryPolicy;

/// The relay's limits, shared by all workers.
pub(super) struct Limits {
    per_second: Option<DefaultDirectRateLimiter>,
    per_hour: Option<DefaultDirectRateLimiter>,
}

/// The relay's budget, owned by whoever runs the delivery passes: the daemon for its life, a
/// command for its run. Every pass given this handle (or a clone) waits on one limiter, so
/// that a new pass does not start a fresh hour's budget, and passes running side by side (a
/// run's and one of rows due later) share it; a pass given another handle has its own.
#[derive(Clone, Default)]
pub struct RelayLimits(Arc<Mutex<Keyed>>);

/// The limiter in use, with the (per second, per hour) limits it was made for.
type Keyed = Option<((u32, u32), Arc<Limits>)>;

impl RelayLimits {
    /// The limiter for these limits: the one in use while they stay the same, a new one when
    /// they change (a reloaded config).
    pub(super) fn limits(&self, p: &DeliveryPolicy) -> Arc<Limits> {
        let key = (p.max_per_second, p.max_per_hour);
        let mut cur = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*cur {
            Some((k, l)) if *k == key => l.clone(),
            _ => {
                let l = Arc::new(Limits::new(p));
                *cur = Some((key, l.clone()));
                l
            }
        }
    }
}

impl Limits {
    fn new(p: &DeliveryPolicy) -> Self {
        Self {
            per_second: NonZeroU32::new(p.max_per_second)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            per_hour: NonZeroU32::new(p.max_per_hour)
                .map(|n| RateLimiter::direct(Quota::per_hour(n))),
        }
    }

    pub(super) async fn acquire(&self) {
        if let Some(l) = &self.per_hour {
            l.until_ready().await;
        }
        if let Some(l) = &self.per_second {
            l.until_ready().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn one_an_hour() -> DeliveryPolicy {
        DeliveryPolicy {
            max_per_hour: 1,
            ..Default::default()
        }
    }

    /// Whether a message may go now: the limiter does not make it wait.
    async fn may_send_now(l: &Limits) -> bool {
        tokio::time::timeout(Duration::from_millis(50), l.acquire())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn passes_given_one_handle_share_the_relays_budget() {
        let owner = RelayLimits::default();
        let first = owner.limits(&one_an_hour());
        assert!(may_send_now(&first).await);
        // A later pass (or one beside it), given a clone of the handle, finds the hour spent.
        let next = owner.clone().limits(&one_an_hour());
        assert!(Arc::ptr_eq(&first, &next));
        assert!(!may_send_now(&next).await);
    }

    #[tokio::test]
    async fn another_owner_or_changed_limits_start_a_fresh_budget() {
        let owner = RelayLimits::default();
        assert!(may_send_now(&owner.limits(&one_an_hour())).await);
        // Another owner in the same process (a test, a second caller of the library).
        let other = RelayLimits::default();
        assert!(may_send_now(&other.limits(&one_an_hour())).await);
        // A reload that changes the limits.
        let changed = DeliveryPolicy {
            max_per_hour: 2,
            ..Default::default()
        };
        assert!(may_send_now(&owner.limits(&changed)).await);
    }
}
