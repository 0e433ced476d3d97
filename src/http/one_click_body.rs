//! RFC 8058's one-click body: a POST unsubscribes only when it carries the field
//! `List-Unsubscribe` with the value `One-Click`, sent as multipart/form-data (RFC 7578) or
//! application/x-www-form-urlencoded.

/// The field and value of RFC 8058 (the `List-Unsubscribe-Post` header of every email).
const FIELD: &str = "List-Unsubscribe";
const VALUE: &str = "One-Click";

/// Whether the body, of the given Content-Type, asks for the one-click unsubscribe. A body
/// that is not multipart is read as urlencoded (what a form sends without a type too).
pub(super) fn asks_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    match content_type.and_then(multipart_boundary) {
        Some(boundary) => multipart_asks(body, &boundary),
        None => url::form_urlencoded::parse(body).any(|(k, v)| k == FIELD && v.trim() == VALUE),
    }
}

/// The boundary of a `multipart/form-data` Content-Type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// Whether one of the parts is the field with the value.
fn multipart_asks(body: &[u8], boundary: &str) -> bool {
    let delimiter = format!("--{boundary}");
    let mut parts = memchr::memmem::find_iter(body, delimiter.as_bytes()).peekable();
    while let Some(start) = parts.next() {
        let after = &body[start + delimiter.len()..];
        if after.starts_with(b"--") {
            return false; // the closing delimiter
        }
        let end = parts
            .peek()
            .map_or(after.len(), |next| next - start - delimiter.len());
        if part_asks(&after[..end]) {
            return true;
        }
    }
    false
}

/// One part, from just after its delimiter to the next: the rest of the delimiter line,
/// headers, a blank line, the content and the CRLF that belongs to the next delimiter.
fn part_asks(part: &[u8]) -> bool {
    let Some(line_end) = memchr::memchr(b'\n', part) else {
        return false;
    };
    let part = &part[line_end + 1..];
    let (head, content) = match memchr::memmem::find(part, b"\r\n\r\n") {
        Some(i) => (&part[..i], &part[i + 4..]),
        None => match memchr::memmem::find(part, b"\n\n") {
            Some(i) => (&part[..i], &part[i + 2..]),
            None => return false,
        },
    };
    let head = String::from_utf8_lossy(head);
    let named = head.lines().any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("content-disposition") && {
            let mut params = value.split(';');
            params
                .next()
                .is_some_and(|d| d.trim().eq_ignore_ascii_case("form-data"))
                && params.any(|p| {
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("name") && v.trim().trim_matches('"') == FIELD
                    })
                })
        }
    });
    named && String::from_utf8_lossy(content).trim() == VALUE
}

#[cfg(test)]
mod tests {
    use super::*;

    const URLENCODED: Option<&str> = Some("application/x-www-form-urlencoded");

    fn multipart(boundary: &str, parts: &[(&str, &str)]) -> Vec<u8> {
        let mut body = String::new();
        for (name, value) in parts {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        body.into_bytes()
    }

    #[test]
    fn the_urlencoded_field_asks_and_anything_else_does_not() {
        assert!(asks_one_click(URLENCODED, b"List-Unsubscribe=One-Click"));
        assert!(asks_one_click(
            URLENCODED,
            b"a=b&List-Unsubscribe=One-Click"
        ));
        assert!(asks_one_click(None, b"List-Unsubscribe=One-Click\r\n"));
        assert!(asks_one_click(
            Some("text/plain"),
            b"List-Unsubscribe=One-Click"
        ));
        for body in [
            &b""[..],
            b"List-Unsubscribe=",
            b"List-Unsubscribe=Two-Click",
            b"list-unsubscribe=one-click",
            b"One-Click",
            b"x=List-Unsubscribe%3DOne-Click",
        ] {
            assert!(
                !asks_one_click(URLENCODED, body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_multipart_part_named_list_unsubscribe_asks() {
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryx8f";
        let body = multipart(
            "----WebKitFormBoundaryx8f",
            &[("other", "1"), ("List-Unsubscribe", "One-Click")],
        );
        assert!(asks_one_click(Some(ct), &body));
        // Quoted boundary, parameters in another case.
        let body = multipart("b 1", &[("List-Unsubscribe", "One-Click")]);
        assert!(asks_one_click(
            Some("Multipart/Form-Data; BOUNDARY=\"b 1\""),
            &body
        ));
        // Unquoted name.
        let body = b"--z\r\nContent-Disposition: form-data; name=List-Unsubscribe\r\n\r\nOne-Click\r\n--z--\r\n";
        assert!(asks_one_click(
            Some("multipart/form-data; boundary=z"),
            body
        ));
    }

    #[test]
    fn a_multipart_body_without_the_field_does_not_ask() {
        let ct = Some("multipart/form-data; boundary=zz");
        for parts in [
            &[("List-Unsubscribe", "Nope")][..],
            &[("Unsubscribe", "One-Click")],
            &[],
        ] {
            assert!(!asks_one_click(ct, &multipart("zz", parts)), "{parts:?}");
        }
        // The field after the closing delimiter, a part with no blank line, another boundary.
        let after_close = b"--zz--\r\n--zz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n";
        assert!(!asks_one_click(ct, after_close));
        let no_blank =
            b"--zz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n--zz--";
        assert!(!asks_one_click(ct, no_blank));
        let body = multipart("other", &[("List-Unsubscribe", "One-Click")]);
        assert!(!asks_one_click(ct, &body));
        // The urlencoded text in a multipart body is not a field.
        assert!(!asks_one_click(ct, b"List-Unsubscribe=One-Click"));
        // A multipart type without a boundary is read as urlencoded.
        assert!(asks_one_click(
            Some("multipart/form-data"),
            b"List-Unsubscribe=One-Click"
        ));
    }
}
