//! The look-ups that every claim, wake-up and plan runs go through an index on both backends:
//! the deliveries table keeps every digest ever planned (100,000 rows a day for a large list),
//! and a query that reads all of it would slow every claim a little more each day.

mod support;

use paperboy::store::Store;
use support::*;

async fn check(store: &Store, full_scan: &str) {
    let plans = store.query_plans().await.unwrap();
    assert_eq!(plans.len(), 4);
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
    let store = Store::connect(&url).await.unwrap();
    // SQLite's planner: "SCAN deliveries" walks the table (or a whole index); "SEARCH" not.
    check(&store, "SCAN deliveries").await;
    store.close().await;
}

#[tokio::test]
async fn hot_look_ups_use_an_index_on_postgres() {
    on_postgres("hot_look_ups_use_an_index", async {
        let db = PgDatabase::create();
        let store = Store::connect(&db.url).await.unwrap();
        check(&store, "Seq Scan on deliveries").await;
        store.close().await;
    })
    .await;
}

/// A claim takes its rows in the queue's order, from the queue's index, however many rows are
/// pending: with a day's plan just written (no statistics on the table yet), PostgreSQL's
/// planner believed the pick small and read and sorted every pending row for each claim.
#[tokio::test]
async fn a_claim_walks_the_queue_however_many_rows_are_pending_on_postgres() {
    use paperboy::digest::{Digest, DigestGroup};
    use paperboy::store::{DeliveryStatus, NewDelivery};

    on_postgres("a_claim_walks_the_queue", async {
        let db = PgDatabase::create();
        let store = Store::connect(&db.url).await.unwrap();
        let (date, papers) = recorded_papers_of_2026_04_10().await;
        for chunk in 0..5 {
            let planned: Vec<NewDelivery> = (0..1000)
                .map(|i| NewDelivery {
                    subscriber: format!("r{chunk}-{i}@example.org"),
                    message_id: format!("<{chunk}-{i}@example.org>"),
                    digest: Digest {
                        groups: vec![DigestGroup {
                            topic: "t".into(),
                            papers: vec![papers[i % papers.len()].id.clone()],
                        }],
                    },
                    status: DeliveryStatus::Pending,
                    note: None,
                    not_before: None,
                })
                .collect();
            assert_eq!(store.plan(date, &planned).await.unwrap(), 1000);
        }
        let plan = store.claim_plan().await.unwrap();
        store.close().await;
        assert!(
            plan.contains("Index Scan using deliveries_due"),
            "the claim does not walk the queue's index:\n{plan}"
        );
        for whole in ["Bitmap Heap Scan", "Seq Scan", "Sort"] {
            assert!(
                !plan.contains(whole),
                "the claim reads every pending row ({whole}):\n{plan}"
            );
        }
    })
    .await;
}
