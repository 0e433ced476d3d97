//! What the database makes of the queries every claim, wake-up and plan runs (their
//! EXPLAIN), for the tests that check that none of them reads a whole table.

use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;
use super::connect::{Pool, Store};
use super::dead_claims::CLAIMERS_IN_FLIGHT;
use super::papers::PLANNED_SUBSCRIBERS;
use super::queue::{NEXT_WAKEUP, PG_CLAIM_BEGIN};
use super::sql::q;

impl Store {
    /// PostgreSQL's plan for a claim of up to `max` due rows, made as `claim_batch` makes it
    /// (empty on SQLite). For the test that a claim reads only the rows it takes.
    #[doc(hidden)]
    pub async fn claim_plan(&self, max: usize) -> Result<String, StoreError> {
        if let Pool::Sqlite(_) = self.pool {
            return Ok(String::new());
        }
        let plan = self
            .explain(
                &self.claim_sql(false),
                Binds::Claim(max as i64),
                PG_CLAIM_BEGIN,
            )
            .await?;
        Ok(plan.join("\n"))
    }

    /// What the database makes of the look-ups that every claim, wake-up and plan runs (and
    /// the look-up for rows of processes that are gone, made with claims): each
    /// query's EXPLAIN, by name. For the tests that check that none of them reads the whole
    /// table of deliveries, which holds every digest ever planned. PostgreSQL is told to
    /// avoid sequential scans for these (on a small table it prefers them): one in its plan
    /// then means that no index serves the query.
    #[doc(hidden)]
    pub async fn query_plans(&self) -> Result<Vec<(&'static str, String)>, StoreError> {
        let today = Utc::now().date_naive();
        let queries = [
            ("claim of due rows", self.claim_sql(false), Binds::Claim(64)),
            (
                "claim of expired leases",
                self.claim_sql(true),
                Binds::Claim(64),
            ),
            ("next wake-up", NEXT_WAKEUP.to_string(), Binds::Nothing),
            (
                "claimers in flight",
                CLAIMERS_IN_FLIGHT.to_string(),
                Binds::Time(Utc::now()),
            ),
            (
                "planned subscribers",
                PLANNED_SUBSCRIBERS.to_string(),
                Binds::Date(today),
            ),
        ];
        let mut out = Vec::new();
        for (name, sql, binds) in queries {
            let plan = self
                .explain(&sql, binds, "BEGIN; SET LOCAL enable_seqscan = off")
                .await?;
            out.push((name, plan.join("\n")));
        }
        Ok(out)
    }

    /// The lines of `sql`'s plan, its placeholders bound to `binds`; on PostgreSQL in a
    /// transaction begun with `pg_begin` (rolled back).
    async fn explain(
        &self,
        sql: &str,
        binds: Binds,
        pg_begin: &'static str,
    ) -> Result<Vec<String>, StoreError> {
        let now = Utc::now();
        macro_rules! bound {
            ($query:expr) => {
                match binds {
                    Binds::Claim(max) => $query
                        .bind(now)
                        .bind("token")
                        .bind(now)
                        .bind(max)
                        .bind("claimer"),
                    Binds::Nothing => $query,
                    Binds::Date(date) => $query.bind(date),
                    Binds::Time(t) => $query.bind(t),
                }
            };
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let sql = format!("EXPLAIN QUERY PLAN {sql}");
                let rows: Vec<(i64, i64, i64, String)> =
                    bound!(sqlx::query_as(sqlx::AssertSqlSafe(sql)))
                        .fetch_all(pool)
                        .await
                        .map_err(q("explain"))?;
                Ok(rows.into_iter().map(|r| r.3).collect())
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin_with(pg_begin).await.map_err(q("explain"))?;
                let sql = format!("EXPLAIN {sql}");
                let rows: Vec<String> = bound!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(q("explain"))?;
                tx.rollback().await.map_err(q("explain"))?;
                Ok(rows)
            }
        }
    }
}

/// What a query's placeholders take, for `Store::explain`.
enum Binds {
    /// A claim's lease end, token, now, limit and claimer.
    Claim(i64),
    Nothing,
    Date(NaiveDate),
    Time(DateTime<Utc>),
}
