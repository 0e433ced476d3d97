//! `[database]`: the URL of the SQLite file or the PostgreSQL database.

use super::raw::RawDatabase;
use crate::store::DatabaseUrl;

pub(super) fn validate(raw: RawDatabase, problems: &mut Vec<String>) -> DatabaseUrl {
    let url = DatabaseUrl::new(raw.url.trim());
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.expose_secret().starts_with(scheme))
    {
        problems.push(format!(
            "database.url: {url:?}: not a sqlite://PATH or postgres://USER@HOST/DB URL"
        ));
    }
    url
}
