//! Unsubscribe tokens: any text that verifies names a subscriber whose own token verifies to
//! them; any address's token verifies to its key, with white space around it too, and no
//! token altered in one byte, or cut short, names anyone.

use paperboy::domain::EmailAddress;
use paperboy::mail::Tokens;
use secrecy::SecretString;

/// The secret the seed tokens in the corpus were signed with.
const SECRET: &str = "paperboy fuzzing secret, not a real one";

/// Characters a one-byte alteration puts in a token: its alphabet and its separator.
const ALTERATIONS: [u8; 5] = [b'A', b'z', b'-', b'_', b'.'];

/// The property, for one input (as the fuzz target and the regression tests give it).
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tokens = Tokens::new(SecretString::from(SECRET));
    if let Some(key) = tokens.verify(text) {
        assert_eq!(tokens.verify(&tokens.sign(&key)), Some(key));
    }
    let Ok(address) = EmailAddress::parse(text) else {
        return;
    };
    let key = address.key();
    let token = tokens.sign(&key);
    assert_eq!(tokens.verify(&token), Some(key.clone()), "{token}");
    assert_eq!(tokens.verify(&format!(" {token}\r\n")), Some(key));
    assert_eq!(tokens.verify(&token[..token.len() - 1]), None, "{token}");
    // Which byte to alter: one the input picks.
    let at = text
        .bytes()
        .fold(text.len(), |h, b| h.wrapping_mul(31) ^ b as usize)
        % token.len();
    for b in ALTERATIONS
        .into_iter()
        .filter(|&b| b != token.as_bytes()[at])
    {
        let mut altered = token.clone().into_bytes();
        altered[at] = b;
        let altered = String::from_utf8(altered).expect("ASCII");
        assert_eq!(
            tokens.verify(&altered),
            None,
            "{token} altered as {altered}"
        );
    }
}
