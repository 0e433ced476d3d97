//! Quoted-printable as lettre encodes it (line breaks made CRLF, then the `quoted_printable`
//! crate lettre itself uses), on byte runs and into the caller's buffer.
//!
//! The encoder here is not that crate but a port of its algorithm (version 0.5.2, default
//! options: lines of at most 76, text mode) that works on byte runs and appends to the
//! caller's buffer; it makes the same bytes, soft line breaks included, and the tests compare
//! it with the crate (a dev-dependency) on many generated inputs. A lone LF is encoded as a
//! CRLF would be, which is lettre's line-break normalisation done on the way.
//!
//! Quoted-printable encodes each line on its own (a soft break never crosses a line break, and
//! a line's trailing white space is encoded within the line), so the encoding of text that ends
//! with a line break, followed by the encoding of what comes after, is the encoding of both:
//! [`super::parts`] builds on that to encode each card's lines once.

/// `s` with LF line breaks made CRLF (a CR already before an LF is kept), then
/// quoted-printable: what lettre's `Body::new_with_encoding(s, QuotedPrintable)` holds.
pub fn encode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    qp_encode(s.as_bytes(), &mut out);
    out
}

/// Appends the encoding of `s` to `out`.
pub(super) fn encode_into(s: &str, out: &mut Vec<u8>) {
    qp_encode(s.as_bytes(), out);
}

/// The longest encoded line, soft line break's `=` included (the crate's default).
const LIMIT: usize = 76;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `b` is written as itself (the crate's `!needs_encoding`): tab, and printable ASCII
/// but `=`. CR and LF are dealt with before.
#[inline(always)]
fn plain(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) && b != b'='
}

/// How many bytes `s` starts with that are [`plain`], eight at a time.
#[inline]
fn plain_len(s: &[u8]) -> usize {
    let mut words = s.chunks_exact(8);
    let mut n = 0;
    for word in &mut words {
        let not_plain = not_plain(u64::from_le_bytes(word.try_into().unwrap()));
        if not_plain != 0 {
            return n + (not_plain.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    let rest = words.remainder();
    let mut word = [b'a'; 8];
    word[..rest.len()].copy_from_slice(rest);
    n + ((not_plain(u64::from_le_bytes(word)).trailing_zeros() / 8) as usize).min(rest.len())
}

/// The high bit of each byte of `x` that is not [`plain`], exactly (no carry or borrow
/// crosses bytes).
#[inline(always)]
fn not_plain(x: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7f;
    let zero = |y: u64| !(((y & LOW7) + LOW7) | y) & HIGH;
    let below_space = !((x | HIGH) - ONES * 0x20) & !x & HIGH;
    let del_or_high = (((x & LOW7) + ONES) | x) & HIGH;
    (below_space & !zero(x ^ (ONES * 0x09))) | del_or_high | zero(x ^ (ONES * 0x3d))
}

/// Appends to `out` what `quoted_printable::encode` makes of `input` with each lone LF made
/// CRLF. The crate's algorithm, kept step for step on bytes:
/// - a run of plain bytes is copied whole while at least 3 columns are left on the line, up to
///   2 columns short of the limit; past that, plain bytes are appended one at a time;
/// - anything appended (one plain byte or an `=XX`) that would pass the limit is put after a
///   soft break `=\r\n`, except when the line is exactly full: then the soft break goes just
///   before the last thing appended (at `backup`; after a run, that is the run's end);
/// - a CR is held: with an LF it is a line break, else `=0D` (also at the end of input);
/// - at a line break and at the end of input, a space or tab just written is taken back and
///   appended again as `=20` or `=09`.
fn qp_encode(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len() + input.len() / 16);
    let mut e = Encoder {
        start: out.len(),
        backup: out.len(),
        on_line: 0,
        out,
    };
    let mut was_cr = false;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        i += 1;
        if was_cr {
            was_cr = false;
            if b == b'\n' {
                e.line_break();
                continue;
            }
            e.append(b"=0D");
        }
        if plain(b) {
            if LIMIT - e.on_line >= 3 {
                let from = i - 1;
                let most = input.len().min(from + LIMIT - e.on_line - 2);
                let to = i + plain_len(&input[i..most]);
                e.out.extend_from_slice(&input[from..to]);
                e.on_line += to - from;
                e.backup = e.out.len();
                i = to;
            } else {
                e.append(&[b]);
            }
        } else {
            match b {
                b'\r' => was_cr = true,
                b'\n' => e.line_break(),
                _ => e.append(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
            }
        }
    }
    if was_cr {
        e.append(b"=0D");
    } else {
        e.encode_trailing_space_tab();
    }
}

/// The crate's encoder state, over the part of `out` from `start`.
struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    /// Bytes on the current encoded line.
    on_line: usize,
    /// Where the last thing appended starts (after a run: where the run ends).
    backup: usize,
}

impl Encoder<'_> {
    /// The crate's `append`.
    #[inline]
    fn append(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if self.on_line + n > LIMIT {
            if self.on_line == LIMIT {
                // The soft break goes before the last thing appended (at most 3 bytes: the
                // line is never full just after a run, nor after a trailing space taken back).
                let (at, len) = (self.backup, self.out.len());
                self.on_line = len - at;
                self.out.extend_from_slice(b"=\r\n");
                self.out.copy_within(at..len, at + 3);
                self.out[at..at + 3].copy_from_slice(b"=\r\n");
            } else {
                self.out.extend_from_slice(b"=\r\n");
                self.on_line = 0;
            }
        }
        self.out.extend_from_slice(bytes);
        self.on_line += n;
        self.backup = self.out.len() - n;
    }

    fn line_break(&mut self) {
        self.encode_trailing_space_tab();
        self.out.extend_from_slice(b"\r\n");
        self.on_line = 0;
    }

    /// The crate's `encode_trailing_space_tab`: `backup` is left as it was, as there.
    fn encode_trailing_space_tab(&mut self) {
        if self.out.len() == self.start {
            return;
        }
        let encoded: &[u8] = match self.out[self.out.len() - 1] {
            b' ' => b"=20",
            b'\t' => b"=09",
            _ => return,
        };
        self.out.pop();
        self.on_line -= 1;
        self.append(encoded);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::test_rng::Rng;
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding;

    /// What lettre makes of `s` in quoted-printable: the reference.
    pub(in crate::mail) fn lettre_qp(s: &str) -> Vec<u8> {
        Body::new_with_encoding(s.to_string(), ContentTransferEncoding::QuotedPrintable)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn encodes_as_lettre_does() {
        let long = "é".repeat(60) + " x=y \t\n";
        for s in [
            "",
            "plain",
            "a\nb\r\nc\n",
            "\n\nlead",
            "trailing space \nand tab\t\n",
            "end with space ",
            "lone\rcr\n",
            long.as_str(),
            &"0123456789".repeat(30),
        ] {
            assert_eq!(encode(s), lettre_qp(s), "{s:?}");
        }
    }

    /// `input` with each LF not after a CR made CRLF: lettre's normalisation, on bytes.
    fn crlf(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() + 8);
        for (i, &b) in input.iter().enumerate() {
            if b == b'\n' && (i == 0 || input[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(b);
        }
        out
    }

    /// The encoder against the crate, on bytes; and, for text, against lettre too.
    fn check(input: &[u8]) {
        let mut got = b"kept \t".to_vec();
        qp_encode(input, &mut got);
        let want = [
            b"kept \t".as_slice(),
            &quoted_printable::encode(crlf(input)),
        ]
        .concat();
        assert!(
            got == want,
            "input b\"{}\"\n  got b\"{}\"\n want b\"{}\"",
            input.escape_ascii(),
            got.escape_ascii(),
            want.escape_ascii()
        );
        if let Ok(s) = std::str::from_utf8(input) {
            assert_eq!(encode(s), lettre_qp(s), "{s:?}");
        }
    }

    #[test]
    fn bytes_are_found_plain_eight_at_a_time_as_one_at_a_time() {
        for b in 0..=255_u8 {
            for around in [
                0x00, 0x09, 0x1f, 0x20, 0x3c, 0x3d, 0x3e, 0x7e, 0x7f, 0x80, 0xff,
            ] {
                for at in 0..8 {
                    let mut word = [around; 8];
                    word[at] = b;
                    let high = not_plain(u64::from_le_bytes(word)).to_le_bytes();
                    for (i, (&h, &w)) in high.iter().zip(&word).enumerate() {
                        assert_eq!(
                            h == 0x80,
                            !plain(w),
                            "{b:#x} at {at} in {around:#x}: byte {i}"
                        );
                        assert!(h == 0 || h == 0x80);
                    }
                    for len in 0..=8 {
                        let want = word[..len].iter().take_while(|&&w| plain(w)).count();
                        assert_eq!(plain_len(&word[..len]), want, "{word:x?}[..{len}]");
                    }
                }
            }
        }
    }

    #[test]
    fn the_encoder_makes_the_crates_bytes_on_generated_text() {
        let pieces = [
            " ", " ", " ", "\t", "\t", "=", "=", "\r", "\n", "\n", "\r\n", "a", "a", "a", "é", "é",
            "\u{1}", "~", "\u{7f}", "€", "\r\r\n", " \r\n", "\t\n",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut s = String::new();
        for case in 0..5000 {
            s.clear();
            let len = rng.below(400);
            while s.len() < len {
                match rng.below(10) {
                    // A run of one letter about a line long, or a short one.
                    0 => s.push_str(&"x".repeat(68 + rng.below(14))),
                    1 => s.push_str(&"y".repeat(1 + rng.below(6))),
                    _ => s.push_str(pieces[rng.below(pieces.len())]),
                }
            }
            // Every other case ends with something hard.
            if case % 2 == 1 {
                s.push_str(["", " ", "\t", "\r", "\n", "=", "é"][rng.below(7)]);
            }
            check(s.as_bytes());
        }
    }

    #[test]
    fn the_encoder_makes_the_crates_bytes_on_lines_about_the_limit() {
        for len in 64..=80_usize {
            for first in ["", "=", "é", "\t"] {
                for last in [" ", "\t", "=", "é", "a", "\r", "\u{1}", "  ", " \t"] {
                    for end in ["", "\r\n", "\n", "\r", "\r\nnext", "\nnext ", "\r\n\r\n"] {
                        let fill = len.saturating_sub(first.len() + last.len());
                        for letter in ["a", "=", "é", "a b"] {
                            let mut s = String::from(first);
                            while s.len() < first.len() + fill {
                                s.push_str(letter);
                            }
                            s.push_str(last);
                            s.push_str(end);
                            check(s.as_bytes());
                            // Twice over, the second line starting where the first ended.
                            let twice = s.clone() + &s;
                            check(twice.as_bytes());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_encoder_makes_the_crates_bytes_on_any_bytes() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut input = Vec::new();
        for _ in 0..3000 {
            input.clear();
            let len = rng.below(300);
            while input.len() < len {
                match rng.below(8) {
                    0 => input.push(rng.next() as u8),
                    1 => input.push([b'\r', b'\n', b' ', b'\t', b'='][rng.below(5)]),
                    2 => input.extend(std::iter::repeat_n(b'q', 70 + rng.below(10))),
                    _ => input.push(b' ' + rng.below(95) as u8),
                }
            }
            check(&input);
        }
    }
}
