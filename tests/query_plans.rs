//! The look-ups that every claim, wake-up and plan runs go through an index on both backends:
//! the deliveries table keeps every digest ever planned (100,000 rows a day for a large list),
//! and a query that reads all of it would slow every claim a little more each day.

mod support;

use paperboy::store::{DatabaseUrl, Store};
use support::*;

async fn check(store: &Store, full_scan: &str) {
    let plans = store.query_plans().await.unwrap();
    assert_eq!(plans.len(), 5);
    for (name, plan) in plans {
        assert!(
            !plan.contains(full_scan),
            "{name} reads the whole table:\n{plan}"
        );
        assert!(plan.contains("deliveries"), "{name}: {plan}");
    }
}

#[tokio::test]
async fn hot_look_ups_use_an_index_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("paperboy.db").display());
    let store = Store::connect(&DatabaseUrl::new(url)).await.unwrap();
    // SQLite's planner: "SCAN deliveries" walks the table (or a whole index); "SEARCH" not.
    check(&store, "SCAN deliveries").await;
    store.close().await;
}

#[tokio::test]
async fn hot_look_ups_use_an_index_on_postgres() {
    on_postgres("hot_look_ups_use_an_index", async {
        let db = PgDatabase::create();
        let store = Store::connect(&DatabaseUrl::new(&db.url)).await.unwrap();
        check(&store, "Seq Scan on deliveries").await;
        store.close().await;
    })
    .await;
}

/// A claim takes its rows in the queue's order, from the queue's index, and updates them by
/// their key, however many rows are pending and whatever the statistics say: with a day's
/// plan just written (no statistics yet), PostgreSQL's planner read and sorted every pending
/// row for each claim; once analysed, on a small table, it joined the picked ids to every row.
#[tokio::test]
async fn a_claim_reads_only_the_rows_it_takes_on_postgres() {
    on_postgres("a_claim_reads_only_the_rows_it_takes", async {
        let db = PgDatabase::create();
        let store = Store::connect(&DatabaseUrl::new(&db.url)).await.unwrap();
        let (date, papers) = recorded_papers_of_2026_04_10().await;
        for chunk in 0..5 {
            let planned: Vec<_> = (0..1000)
                .map(|i| {
                    let paper = papers[i % papers.len()].id.clone();
                    pending_delivery(format!("r{chunk}-{i}@example.org"), paper)
                })
                .collect();
            assert_eq!(store.plan(date, &planned).await.unwrap(), 1000);
        }
        let check = |when: &str, max: usize, plan: String| {
            assert!(
                plan.contains("Index Scan using deliveries_due")
                    && plan.contains("Index Cond: (id = "),
                "{when}, {max} rows: the claim does not walk the queue's index and look its \
                 rows up by key:\n{plan}"
            );
            for whole in [
                "Bitmap Heap Scan",
                "Seq Scan",
                "Sort",
                "Hash Join",
                "Hash Semi Join",
                "Merge",
            ] {
                assert!(
                    !plan.contains(whole),
                    "{when}, {max} rows: the claim reads every row ({whole}):\n{plan}"
                );
            }
        };
        for max in [64, 128, 512] {
            check(
                "before any statistics",
                max,
                store.claim_plan(max).await.unwrap(),
            );
        }
        db_execute(&db.url, "ANALYZE deliveries").await;
        for max in [64, 128, 512] {
            check("analysed", max, store.claim_plan(max).await.unwrap());
        }
        store.close().await;
    })
    .await;
}
