//! The relay's limits (`delivery.max_per_second`, `delivery.max_per_hour`): one limiter that
//! every worker waits on before it takes a row.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::DeliveryPolicy;

/// The relay's limits, shared by all workers.
pub(super) struct Limits {
    per_second: Option<DefaultDirectRateLimiter>,
    per_hour: Option<DefaultDirectRateLimiter>,
}

impl Limits {
    /// The process's limiter for these limits: one across all passes, so that a new pass does
    /// not start a fresh hour's budget.
    pub(super) fn shared(p: &DeliveryPolicy) -> Arc<Self> {
        type Keyed = Option<((u32, u32), Arc<Limits>)>;
        static CURRENT: std::sync::Mutex<Keyed> = std::sync::Mutex::new(None);
        let key = (p.max_per_second, p.max_per_hour);
        let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        match &*cur {
            Some((k, l)) if *k == key => l.clone(),
            _ => {
                let l = Arc::new(Self::new(p));
                *cur = Some((key, l.clone()));
                l
            }
        }
    }

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
