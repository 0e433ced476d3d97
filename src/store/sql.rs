//! SQL text helpers shared by every query of the Store: `$N` placeholders (SQLite reads them
//! too, so the SQL is written once for both backends) and the mapping of driver and JSON
//! errors to `StoreError`.

use super::StoreError;

pub(super) fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |cause| StoreError::Query { what, cause }
}

pub(super) fn corrupt_json(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    }
}

/// `$first, $first+1, …` for `n` values.
pub(super) fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(marks(1, 3), "$1, $2, $3");
        assert_eq!(marks(4, 1), "$4");
    }
}
