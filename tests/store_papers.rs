//! Papers and daily lists as the store writes them, on both backends: many papers per
//! statement, a paper stored again is updated (upvotes rise during the day), a paper given
//! twice is stored once, as given last, and a day's list is replaced whole.

mod support;

use std::collections::HashSet;

use paperboy::domain::{ArxivId, Paper};
use paperboy::store::{DatabaseUrl, Store};
use support::*;

/// A store on this test's backend, with what keeps its database alive.
async fn store() -> (Store, Option<PgDatabase>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pg = (backend() == Backend::Postgres).then(PgDatabase::create);
    let url = match &pg {
        Some(pg) => pg.url.clone(),
        None => format!("sqlite://{}", dir.path().join("paperboy.db").display()),
    };
    (
        Store::connect(&DatabaseUrl::new(url)).await.unwrap(),
        pg,
        dir,
    )
}

async fn papers_are_upserted_in_bulk_and_a_paper_given_twice_is_stored_once() {
    let (store, _pg, _dir) = store().await;
    let (date, recorded) = recorded_papers_of_2026_04_10().await;
    // More papers than one statement takes: the recorded ones again under other ids.
    let papers: Vec<Paper> = (0..1200)
        .map(|i| Paper {
            id: ArxivId::parse(&format!("2604.{:05}", 10000 + i)).unwrap(),
            ..recorded[i % recorded.len()].clone()
        })
        .collect();
    store.upsert_papers(&papers).await.unwrap();

    // Later the same day: upvotes rose, and one paper comes twice (its last count holds).
    let mut again: Vec<Paper> = papers.clone();
    for p in &mut again {
        p.upvotes += 10;
    }
    let mut twice = again[7].clone();
    twice.upvotes += 5;
    again.insert(8, twice);
    store.upsert_papers(&again).await.unwrap();

    let ids: Vec<&ArxivId> = papers.iter().map(|p| &p.id).collect();
    let stored = store.papers(&ids).await.unwrap();
    assert_eq!(stored.len(), papers.len());
    for (i, p) in papers.iter().enumerate() {
        let want = p.upvotes + 10 + if i == 7 { 5 } else { 0 };
        assert_eq!(stored[&p.id].upvotes, want, "{}", p.id);
        assert_eq!(stored[&p.id].title, p.title);
    }

    // A day's list, replaced whole.
    store.replace_list(date, &papers[..600]).await.unwrap();
    let listed = store.list_ids(date).await.unwrap();
    assert_eq!(
        listed,
        papers[..600]
            .iter()
            .map(|p| p.id.clone())
            .collect::<HashSet<_>>()
    );
    store.replace_list(date, &papers[600..603]).await.unwrap();
    let listed = store.list_ids(date).await.unwrap();
    assert_eq!(
        listed,
        papers[600..603]
            .iter()
            .map(|p| p.id.clone())
            .collect::<HashSet<_>>()
    );
    store.close().await;
}

on_both_backends!(papers_are_upserted_in_bulk_and_a_paper_given_twice_is_stored_once);
