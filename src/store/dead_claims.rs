//! What processes that are gone left behind: deliveries in flight and runs still running,
//! claimed by a process of this host that no longer runs (see [`Claimer`]). Its deliveries
//! are taken over at once, not after their lease; its runs are recorded failed. What a
//! process of another host holds waits for its lease, as before.

use chrono::{DateTime, NaiveDate, Utc};
use tracing::{info, warn};

use super::StoreError;
use super::claimer::{Claimer, Liveness};
use super::connect::{Pool, Store};
use super::sql::q;

/// The processes that claimed rows whose lease runs until after `$1`.
pub(super) const CLAIMERS_IN_FLIGHT: &str = "SELECT DISTINCT claimer FROM deliveries
      WHERE status = 'sending' AND lease_expires_at > $1 AND claimer IS NOT NULL";

impl Store {
    /// Ends now the leases of the deliveries in flight whose claimer is a process of this
    /// host that is gone, so that the next claim of expired rows takes them over (before
    /// rows that are merely due). Returns how many.
    pub async fn expire_leases_of_the_gone(&self) -> Result<u64, StoreError> {
        let now = Utc::now();
        let claimers: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar(CLAIMERS_IN_FLIGHT)
                .bind(now)
                .fetch_all(pool)
                .await
                .map_err(q("claimers in flight"))?
        });
        let gone = gone(claimers);
        if gone.is_empty() {
            return Ok(0);
        }
        // Just expired, so that they come after rows whose lease ran out by itself earlier.
        let expired: DateTime<Utc> = now - chrono::Duration::milliseconds(1);
        let _turn = self.write_turn().await;
        let mut total = 0;
        for (claimer, who) in gone {
            let n = on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE deliveries SET lease_expires_at = $1
                      WHERE status = 'sending' AND claimer = $2 AND lease_expires_at > $1",
                )
                .bind(expired)
                .bind(&claimer)
                .execute(pool)
                .await
                .map_err(q("expire leases of a gone claimer"))?
                .rows_affected()
            });
            if n > 0 {
                info!(
                    deliveries = n,
                    claimer = %who,
                    "taking over the deliveries in flight of a process of this host that is \
                     gone, without waiting for their lease"
                );
            }
            total += n;
        }
        Ok(total)
    }

    /// Records this process as the one running the run of `date` (started by
    /// [`Store::start_run`]).
    pub async fn claim_run(&self, date: NaiveDate) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE runs SET claimer = $1 WHERE digest_date = $2")
                .bind(Claimer::this_process_stored())
                .bind(date)
                .execute(pool)
                .await
                .map_err(q("claim run"))?;
        });
        Ok(())
    }

    /// Records failed, with why, the runs still running whose process, of this host, is gone
    /// (killed or crashed before it could record their end). Their end stays empty: a tick
    /// whose run did not end is run again by the service. Returns their dates.
    pub async fn settle_runs_of_the_gone(&self) -> Result<Vec<NaiveDate>, StoreError> {
        let running: Vec<(NaiveDate, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT digest_date, claimer FROM runs
                  WHERE status = 'running' AND claimer IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .map_err(q("running runs"))?
        });
        let mut settled = Vec::new();
        for (date, claimer) in running {
            let Some((claimer, who)) = gone(vec![claimer]).pop() else {
                continue;
            };
            let why = format!(
                "the process running it ({who}) ended before the run did (killed or \
                 crashed); its deliveries are taken over by the next pass"
            );
            let n = on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE runs SET status = 'failed', error = $1
                      WHERE digest_date = $2 AND status = 'running' AND claimer = $3",
                )
                .bind(&why)
                .bind(date)
                .bind(&claimer)
                .execute(pool)
                .await
                .map_err(q("settle run"))?
                .rows_affected()
            });
            if n > 0 {
                warn!(digest_date = %date, "{why}; recorded failed");
                settled.push(date);
            }
        }
        Ok(settled)
    }
}

/// Of these stored claimers, those that are processes of this host that are gone, with how
/// to name each in a message.
fn gone(claimers: Vec<String>) -> Vec<(String, String)> {
    let Some(me) = Claimer::this_process() else {
        return Vec::new();
    };
    claimers
        .into_iter()
        .filter_map(|stored| {
            let c = Claimer::parse(&stored)?;
            (c.liveness(me) == Liveness::Gone).then(|| (stored, c.describe()))
        })
        .collect()
}
