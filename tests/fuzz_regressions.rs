//! The fuzz targets' properties, held on every input that once broke one (fuzz/regressions)
//! and on each target's committed corpus (fuzz/corpus), in the normal test suite: the same
//! checks as the targets, from the same files, without the nightly toolchain.

use std::path::Path;

#[path = "../fuzz/checks/api_response.rs"]
mod api_response;
#[path = "../fuzz/checks/config_load.rs"]
mod config_load;
#[path = "../fuzz/checks/smtp_reply.rs"]
mod smtp_reply;
#[path = "../fuzz/checks/topic_query.rs"]
mod topic_query;
#[path = "../fuzz/checks/unsubscribe_token.rs"]
mod unsubscribe_token;

/// Runs `check` on every file of `fuzz/{regressions,corpus}/<target>/`, naming the file
/// that fails. Returns how many regressions there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut regressions = 0;
    for kind in ["regressions", "corpus"] {
        let Ok(dir) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.expect("a directory entry").path();
            let data = std::fs::read(&path).expect("a readable input");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} breaks {target}", path.display());
            regressions += usize::from(kind == "regressions");
        }
    }
    regressions
}

#[test]
fn api_responses_that_broke_the_parser_keep_its_promises() {
    assert!(replay("api_response", api_response::check) > 0);
}

#[test]
fn smtp_replies_that_broke_the_session_are_judged_and_shown_as_they_should() {
    assert!(replay("smtp_reply", smtp_reply::check) > 0);
}

#[test]
fn the_topic_query_corpus_keeps_the_parser_s_promises() {
    replay("topic_query", topic_query::check);
}

#[test]
fn the_config_corpus_keeps_the_loader_s_promises() {
    replay("config_load", config_load::check);
}

#[test]
fn the_token_corpus_keeps_the_tokens_promises() {
    replay("unsubscribe_token", unsubscribe_token::check);
}
