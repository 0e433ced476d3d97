//! The database URL: shown (`Display`, `Debug`) with its passwords replaced by `***`, so that
//! it can go into messages and logs; `expose_secret` gives the real one, for connecting.

use std::fmt;

/// A database URL (`sqlite://PATH`, `postgres://USER:PASSWORD@HOST/DB?...`) that hides its
/// password, in the user info or as a `password`/`sslpassword` query parameter, when shown.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL as written, password and all: for connecting, never for showing.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether it names a PostgreSQL database (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    /// The URL with any password replaced; as given when it holds none.
    fn redacted(&self) -> String {
        let url = &self.0;
        match url::Url::parse(url) {
            Ok(u) if !misreads_user_info(url) => redacted_parsed(url, u),
            // Not a URL the parser reads as it was meant: its parts cannot be trusted.
            _ => redacted_loosely(url),
        }
    }
}

/// Whether the URL parser would take a password's `/`, `?` or `#` for the end of the user
/// info: `postgres://app:5432/cret@db/pb` parses, as host `app`, port 5432 and path
/// `/cret@db/pb`, and shows the password if shown as parsed. Its mark: an `@` past the end of
/// the authority (the first `/`, `?` or `#` after `://`), with a `:` before it. Without `://`
/// (`postgres:app:s3cret@db`) the parser finds no user info at all: any `@` is the mark.
fn misreads_user_info(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return url.contains('@');
    };
    let Some(last_at) = rest.rfind('@') else {
        return false;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    last_at > authority_end && rest[..last_at].contains(':')
}

/// A URL that parsed: its password and password query parameters replaced.
fn redacted_parsed(url: &str, mut u: url::Url) -> String {
    let mut redacted = false;
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
        redacted = true;
    }
    // A password can also come as a query parameter (`?password=`, `?sslpassword=`).
    if u.query_pairs().any(|(k, _)| is_secret_key(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_key(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        redacted = true;
    }
    if redacted {
        u.to_string()
    } else {
        url.to_string()
    }
}

/// A URL that did not parse, shown without any part that might be a password: everything
/// between `://` and the last `@` (the user info, wherever a password's own `@`, `/` or `#`
/// may have cut it) becomes `***`, and so does everything from the value of a `password` or
/// `sslpassword` query parameter on. With no `://`, only the scheme is shown.
fn redacted_loosely(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.split_once(':') {
            Some((scheme, _)) if is_scheme(scheme) => format!("{scheme}:***"),
            _ => "***".to_string(),
        };
    };
    if !is_scheme(scheme) {
        return "***".to_string();
    }
    let (user_info, host_on) = match rest.rfind('@') {
        Some(at) => ("***@", &rest[at + 1..]),
        None => ("", rest),
    };
    let host_on = match host_on.split_once('?') {
        Some((before, query)) => {
            let mut shown = format!("{before}?");
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    shown.push('&');
                }
                match pair.split_once('=') {
                    Some((k, _)) if is_secret_key(k) => {
                        // A password may hold `&`: nothing after its `=` is shown.
                        shown.push_str(k);
                        shown.push_str("=***");
                        break;
                    }
                    _ => shown.push_str(pair),
                }
            }
            shown
        }
        None => host_on.to_string(),
    };
    format!("{scheme}://{user_info}{host_on}")
}

/// A query parameter that holds a password.
fn is_secret_key(k: &str) -> bool {
    k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword")
}

/// A URL scheme (`postgres`, `sqlite`): a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Quoted like a string, and redacted like `Display`.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(url: &str) -> String {
        DatabaseUrl::new(url).to_string()
    }

    #[test]
    fn database_urls_are_shown_without_their_passwords() {
        let shown_url =
            shown("postgres://app:s3cret@db.example.org/pb?sslmode=require&password=p2");
        assert!(
            !shown_url.contains("s3cret") && !shown_url.contains("p2"),
            "{shown_url}"
        );
        assert!(
            shown_url.contains("app:***@db.example.org/pb"),
            "{shown_url}"
        );
        assert!(
            shown_url.contains("sslmode=require") && shown_url.contains("password=***"),
            "{shown_url}"
        );
        let shown_url = shown("postgres://app@db/pb?SSLPASSWORD=key-pass");
        assert!(!shown_url.contains("key-pass"), "{shown_url}");
        // Nothing secret: as given.
        assert_eq!(
            shown("sqlite://state/paperboy.db"),
            "sqlite://state/paperboy.db"
        );
        assert_eq!(
            shown("postgres://app@db/pb?sslmode=require"),
            "postgres://app@db/pb?sslmode=require"
        );
    }

    #[test]
    fn debug_is_redacted_too_and_the_real_url_is_asked_for_by_name() {
        let url = DatabaseUrl::new("postgres://app:s3cret@db/pb");
        assert_eq!(format!("{url:?}"), "\"postgres://app:***@db/pb\"");
        assert_eq!(url.expose_secret(), "postgres://app:s3cret@db/pb");
        assert!(url.is_postgres());
        assert!(!DatabaseUrl::new("sqlite://x.db").is_postgres());
    }

    #[test]
    fn urls_that_do_not_parse_show_no_part_that_might_be_a_password() {
        // A password's `#` ends the authority early: port `p` does not parse.
        assert_eq!(
            shown("postgres://app:p#ss@127.0.0.1/pb"),
            "postgres://***@127.0.0.1/pb"
        );
        // Its `/` does too: `se` is no port.
        assert_eq!(
            shown("postgres://app:se/cret@127.0.0.1/pb"),
            "postgres://***@127.0.0.1/pb"
        );
        // A bad port, a query password and a password holding `@` and `&`.
        assert_eq!(
            shown("postgres://app:s3@cret@db:54x2/pb?sslmode=require&password=a&b"),
            "postgres://***@db:54x2/pb?sslmode=require&password=***"
        );
        assert_eq!(shown("postgres://db:54x2/pb"), "postgres://db:54x2/pb");
        // No structure to trust: the scheme alone.
        assert_eq!(shown("postgres:app:s3cret@db"), "postgres:***");
        assert_eq!(shown("app:s3cret@db"), "app:***");
        assert_eq!(shown("s3cret"), "***");
    }

    #[test]
    fn a_password_the_parser_would_read_as_a_port_and_a_path_is_hidden() {
        // Parses (host `app`, port 5432, path `/cret@db/pb`), but was meant as user info.
        assert_eq!(
            shown("postgres://app:5432/cret@db/pb"),
            "postgres://***@db/pb"
        );
        assert_eq!(
            shown("postgres://app:1234#cret@db/pb"),
            "postgres://***@db/pb"
        );
        // An `@` in a SQLite path, with no `:` before it, is no user info.
        assert_eq!(
            shown("sqlite://state/me@host/paperboy.db"),
            "sqlite://state/me@host/paperboy.db"
        );
    }
}
