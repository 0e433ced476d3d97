//! Fuzz target: see checks/topic_query.rs for the property it holds the code to.
#![no_main]

#[path = "../checks/topic_query.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
