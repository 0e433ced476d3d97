//! The papers of a delivery pass's digests, read from the store once each and shared by the
//! feeder (which reads a batch's ahead) and the workers (which read what is still missing).

use std::collections::HashMap;
use std::sync::Arc;

use super::pass::Shared;
use crate::digest::Digest;
use crate::domain::{ArxivId, Paper};

/// The papers of these digests, into the pass's cache (read from the store once each).
pub(super) async fn load_papers(sh: &Shared, digests: &[&Digest]) -> anyhow::Result<()> {
    let missing: Vec<&ArxivId> = {
        let cache = sh.papers.read().unwrap_or_else(|e| e.into_inner());
        let mut missing: Vec<&ArxivId> = (digests.iter())
            .flat_map(|d| d.paper_ids())
            .filter(|id| !cache.contains_key(*id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    };
    if !missing.is_empty() {
        let found = sh.store.papers(&missing).await?;
        keep_first(
            &mut sh.papers.write().unwrap_or_else(|e| e.into_inner()),
            found,
        );
    }
    Ok(())
}

/// Adds the papers `found` that `cache` does not hold yet. Workers that started together read
/// the same papers at once: the one a paper got first stays, as the Renderer tells the cards
/// it rendered by their paper's address (an equal paper at another address is compared field
/// by field, for every card of every email).
fn keep_first(cache: &mut HashMap<ArxivId, Arc<Paper>>, found: HashMap<ArxivId, Paper>) {
    for (id, paper) in found {
        cache.entry(id).or_insert_with(|| Arc::new(paper));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paper_read_again_keeps_the_address_it_got_first() {
        let papers = crate::source::recorded_papers();
        let found = |n: usize| -> HashMap<ArxivId, Paper> {
            papers[..n]
                .iter()
                .map(|p| (p.id.clone(), p.clone()))
                .collect()
        };
        let mut cache = HashMap::new();
        keep_first(&mut cache, found(1));
        let first = Arc::clone(&cache[&papers[0].id]);
        // Another worker read the same paper, and one more, at the same time.
        keep_first(&mut cache, found(2));
        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&cache[&papers[0].id], &first));
    }
}
