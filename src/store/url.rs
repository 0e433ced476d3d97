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

    /// The URL with any password replaced; as given when it holds none (or is no URL).
    fn redacted(&self) -> String {
        let url = &self.0;
        let Ok(mut u) = url::Url::parse(url) else {
            return url.to_string();
        };
        let mut redacted = false;
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
            redacted = true;
        }
        // A password can also come as a query parameter (`?password=`, `?sslpassword=`).
        let secret =
            |k: &str| k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
        if u.query_pairs().any(|(k, _)| secret(&k)) {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if secret(&k) {
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
}
