//! Fuzz target: see checks/api_response.rs for the property it holds the code to.
#![no_main]

#[path = "../checks/api_response.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
