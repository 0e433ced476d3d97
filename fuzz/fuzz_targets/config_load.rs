//! Fuzz target: see checks/config_load.rs for the property it holds the code to.
#![no_main]

#[path = "../checks/config_load.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
