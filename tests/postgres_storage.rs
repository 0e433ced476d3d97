//! How a plan's rows are stored on PostgreSQL: the sets of deliveries per paper stay small
//! enough to be stored as written. A set's array over PostgreSQL's TOAST threshold (about
//! 2 KB) was compressed with pglz on every insert: 15% of the server's CPU while a plan of
//! 10,000 digests was written, with the emails already going out.

mod support;

use paperboy::store::{DatabaseUrl, Store};
use support::*;

#[tokio::test]
async fn a_popular_papers_deliveries_are_stored_uncompressed() {
    on_postgres(
        "a_popular_papers_deliveries_are_stored_uncompressed",
        async {
            let db = PgDatabase::create();
            let store = Store::connect(&DatabaseUrl::new(&db.url)).await.unwrap();
            let (date, papers) = recorded_papers_of_2026_04_10().await;
            let popular = papers[0].id.clone();
            // One write of 1,000 digests that all hold the same paper (as a plan chunk does).
            let chunk: Vec<_> = (0..1000)
                .map(|i| pending_delivery(format!("r{i}@example.org"), popular.clone()))
                .collect();
            assert_eq!(store.plan(date, &chunk).await.unwrap(), 1000);

            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let (rows, compressed, largest): (i64, i64, i32) = sqlx::query_as(
                "SELECT COUNT(*), COUNT(pg_column_compression(delivery_ids)),
                    MAX(pg_column_size(delivery_ids))
               FROM delivery_paper_sets",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert!(rows > 1, "{rows} rows: the 1,000 ids in one array");
            assert_eq!(compressed, 0, "{compressed} of {rows} arrays compressed");
            assert!(largest < 2000, "an array of {largest} bytes");
            pool.close().await;

            // Read back from all its rows: the paper is on its way to each of the 1,000.
            let had = store
                .sent_pairs_of(&papers[..1], date.succ_opt().unwrap())
                .await
                .unwrap();
            store.close().await;
            let expected: std::collections::HashSet<_> = (0..1000)
                .map(|i| {
                    let who = paperboy::domain::EmailAddress::parse(&format!("r{i}@example.org"));
                    (who.unwrap().key(), popular.clone())
                })
                .collect();
            assert_eq!(had, expected);
        },
    )
    .await;
}
