//! A day's list put together from one or more responses (pages): each paper once, in the
//! list's order; every item skipped and every id listed twice logged with its index in the
//! day's list.

use std::collections::HashMap;

use tracing::warn;

use super::parse::Parsed;
use crate::domain::{ArxivId, Paper};

#[derive(Default)]
pub(super) struct DayList {
    papers: Vec<Paper>,
    /// Each paper's index in the day's list (where it was first listed).
    first_at: HashMap<ArxivId, usize>,
}

impl DayList {
    /// Adds the papers of one response whose first item is at `offset` in the day's list,
    /// logging the items it skipped. A paper already listed is logged and left out: the
    /// first listing is kept. Returns how many papers were new.
    pub fn add(&mut self, parsed: Parsed, offset: usize) -> usize {
        for s in parsed.skipped {
            warn!(
                index = offset + s.index,
                id = %s.id,
                reason = %s.reason,
                "an item of the list is skipped"
            );
        }
        let mut new = 0;
        for (i, paper) in parsed.papers {
            let index = offset + i;
            match self.first_at.get(&paper.id) {
                Some(&first) => warn!(
                    id = %paper.id,
                    index,
                    first_index = first,
                    "a paper is listed twice; the first listing is kept"
                ),
                None => {
                    self.first_at.insert(paper.id.clone(), index);
                    self.papers.push(paper);
                    new += 1;
                }
            }
        }
        new
    }

    pub fn len(&self) -> usize {
        self.papers.len()
    }

    pub fn into_papers(self) -> Vec<Paper> {
        self.papers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paper_listed_twice_is_kept_once_as_first_listed() {
        let page = |ids: &[&str], upvotes: i64| {
            let items: Vec<_> = ids
                .iter()
                .map(
                    |id| serde_json::json!({"paper": {"id": id, "title": "T", "upvotes": upvotes}}),
                )
                .collect();
            super::super::parse::parse_items(&serde_json::to_vec(&items).unwrap()).unwrap()
        };
        let mut list = DayList::default();
        assert_eq!(
            list.add(page(&["2401.00001", "2401.00002", "2401.00001"], 1), 0),
            2
        );
        assert_eq!(list.add(page(&["2401.00002", "2401.00003"], 2), 3), 1);
        let papers = list.into_papers();
        let got: Vec<(&str, i64)> = papers.iter().map(|p| (p.id.as_str(), p.upvotes)).collect();
        assert_eq!(
            got,
            [("2401.00001", 1), ("2401.00002", 1), ("2401.00003", 2)]
        );
    }
}
