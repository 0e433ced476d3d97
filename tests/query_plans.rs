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
