//! What a caught panic says: its message, for the error that takes its place.

use std::any::Any;

/// The message a panic was raised with (`panic!("…")` gives a `&str` or a `String`), or
/// "no message".
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> &str {
    (panic.downcast_ref::<&str>().copied())
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panics_message_is_read_whatever_its_type() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        assert_eq!(panic_text(&*caught(|| panic!("plain"))), "plain");
        assert_eq!(panic_text(&*caught(|| panic!("{}", 42))), "42");
        assert_eq!(
            panic_text(&*caught(|| std::panic::panic_any(7u8))),
            "no message"
        );
    }
}
