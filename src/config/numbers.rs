//! Numbers too large for the `config` crate's TOML reader, found again with their key: that
//! reader holds every integer as an i64 and every float as an f64, and says only "number too
//! large to fit in target type" of one that does not fit, without saying which.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Each number of the TOML `text` that does not fit an i64 (integers) or an f64 (floats),
/// named by its key; empty when there is none (or the text is not TOML).
pub(super) fn out_of_range(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(table) = DeTable::parse(text) {
        walk_table(text, "", table.get_ref(), &mut found);
    }
    found
}

fn walk_table(text: &str, prefix: &str, table: &DeTable<'_>, found: &mut Vec<String>) {
    for (key, value) in table {
        let key: &str = key.get_ref();
        let path = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        walk(text, &path, value, found);
    }
}

fn walk(text: &str, path: &str, value: &Spanned<DeValue<'_>>, found: &mut Vec<String>) {
    // As written (`0x1_0000_0000_0000_0000`), not as the parser keeps it (its digits).
    let written = text.get(value.span()).unwrap_or_default().trim();
    match value.get_ref() {
        DeValue::Integer(n) if i64::from_str_radix(n.as_str(), n.radix()).is_err() => {
            let bound = match n.as_str().starts_with('-') {
                true => format!("at least {}", i64::MIN),
                false => format!("at most {}", i64::MAX),
            };
            found.push(format!("{path}: {written} is out of range ({bound})"));
        }
        DeValue::Float(f)
            if f.as_str()
                .parse::<f64>()
                .is_ok_and(|x| x.is_infinite() && !f.as_str().contains("inf")) =>
        {
            found.push(format!("{path}: {written} is too large a number"));
        }
        DeValue::Table(t) => walk_table(text, path, t, found),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(text, &format!("{path}[{i}]"), item, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_64_bits_are_named_by_their_key() {
        let found = out_of_range(
            "subscribers = [{ email = \"a@example.org\", max_papers = 0x1_0000_0000_0000_0000 }]\n\
             [topics.ml]\nmax_papers = 18446744073709551615\n\
             [delivery]\nconcurrency = -9223372036854775809\nthreads = 4\n\
             [alerts]\nfailure_ratio = 1e999\n",
        );
        assert_eq!(
            found,
            [
                "alerts.failure_ratio: 1e999 is too large a number",
                "delivery.concurrency: -9223372036854775809 is out of range \
                 (at least -9223372036854775808)",
                "subscribers[0].max_papers: 0x1_0000_0000_0000_0000 is out of range \
                 (at most 9223372036854775807)",
                "topics.ml.max_papers: 18446744073709551615 is out of range \
                 (at most 9223372036854775807)",
            ]
        );
        assert!(out_of_range("[a]\nb = 9223372036854775807\nc = inf\n").is_empty());
        assert!(out_of_range("not toml [[").is_empty());
    }
}
