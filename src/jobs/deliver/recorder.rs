//! The recorder of a delivery pass: writes the workers' outcomes in groups, one transaction
//! for all that arrived while the previous one committed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;

use super::pass::{OUTCOMES, Progress};
use crate::store::{Finish, Store};

/// The recorder writes outcomes in groups of at least this many, waiting up to GROUP_WAIT
/// for them (a crash loses the outcomes not written yet: those messages go again).
const GROUP: usize = 32;
const GROUP_WAIT: Duration = Duration::from_millis(10);

/// Writes outcomes as they come, each time all that arrived while the previous write ran.
pub(super) async fn recorder(
    store: Store,
    progress: Arc<Progress>,
    mut rx: mpsc::Receiver<Finish>,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(OUTCOMES);
    let mut result = Ok(());
    while rx.recv_many(&mut buf, OUTCOMES).await > 0 {
        // A few outcomes: wait a moment for more, so that a commit (a sync to disk with
        // SQLite) serves a group rather than one or two; unless these are the outcomes of
        // every row in flight (the last of a pass): no more are coming.
        let gather = tokio::time::Instant::now() + GROUP_WAIT;
        while buf.len() < GROUP
            && buf.len() < progress.in_flight.load(Ordering::SeqCst)
            && let Ok(n) = tokio::time::timeout_at(gather, rx.recv_many(&mut buf, OUTCOMES)).await
            && n > 0
        {}
        if result.is_ok() {
            // A short outage of the database must not turn sent messages into resends.
            let mut tries = 0;
            loop {
                match store.finish_many(&buf).await {
                    Ok(ours) => {
                        for (f, ours) in buf.iter().zip(ours) {
                            if !ours {
                                warn!(
                                    delivery = f.id,
                                    outcome = f.status.as_str(),
                                    "the lease ran out before the outcome was recorded; \
                                     another sender has the delivery"
                                );
                            }
                        }
                        break;
                    }
                    Err(e) if tries < 5 => {
                        tries += 1;
                        warn!(error = %e, try_ = tries, "recording outcomes failed; trying again");
                        tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                    }
                    Err(e) => {
                        // Stop the pass; these rows stay "sending" until their lease expires.
                        progress.abort.store(true, Ordering::SeqCst);
                        result = Err(anyhow::Error::new(e).context("recording delivery outcomes"));
                        break;
                    }
                }
            }
        }
        progress.settled(buf.len());
        buf.clear();
    }
    result
}
