//! The config loader: any text loads into settings that keep the loader's promises (each
//! subscriber once, naming defined topics; the `[[subscribers]]` tables, read one at a time,
//! are those of the whole document), or into errors naming the file, each saying something.

use std::collections::HashSet;

use paperboy::config::Config;

const ORIGIN: &str = "fuzz.toml";

/// The property, for one input (as the fuzz target and the regression tests give it).
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = match Config::load_str(text, ORIGIN) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert_eq!(e.origin, ORIGIN);
            assert!(!e.problems.is_empty());
            assert!(e.problems.iter().all(|p| !p.trim().is_empty()), "{e}");
            return;
        }
    };
    // The subscribers are those of the document read whole, in number.
    let doc: toml::Table = text
        .parse()
        .expect("a configuration that loaded is a TOML document");
    let listed = doc
        .get("subscribers")
        .and_then(|s| s.as_array())
        .map_or(0, |s| s.len());
    assert_eq!(cfg.subscribers.len(), listed);
    let mut mailboxes = HashSet::new();
    for s in &cfg.subscribers {
        assert!(
            mailboxes.insert(s.email.mailbox_fold()),
            "{} twice",
            s.email
        );
        assert!(!s.topics.is_empty(), "{} has no topic", s.email);
        for t in &s.topics {
            assert!(cfg.topics.contains_key(t), "{}: topic {t:?}", s.email);
        }
    }
}
