//! Fuzz target: see checks/unsubscribe_token.rs for the property it holds the code to.
#![no_main]

#[path = "../checks/unsubscribe_token.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
