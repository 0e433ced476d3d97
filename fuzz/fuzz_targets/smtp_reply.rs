//! Fuzz target: see checks/smtp_reply.rs for the property it holds the code to.
#![no_main]

#[path = "../checks/smtp_reply.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
