//! The listener's HTML pages: the common frame, the subscriber's name on them, and the pages
//! shared by several routes (an invalid link, a missing page).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::domain::SubscriberKey;

/// A whole page with a heading and an HTML body (escaped by the caller).
pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body style=\"font-family:-apple-system,BlinkMacSystemFont,\
         'Segoe UI',Roboto,Helvetica,Arial,sans-serif;max-width:32rem;margin:3rem auto;\
         padding:0 1rem;color:#18181b;\"><h1 style=\"font-size:1.4rem;\">{title}</h1>{body}</body></html>"
    )
}

/// A page as a response.
pub(super) fn html(code: StatusCode, title: &str, body: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page(title, body),
    )
        .into_response()
}

/// The answer to a token that is missing, cut short or forged.
pub(super) fn invalid_link() -> Response {
    html(
        StatusCode::FORBIDDEN,
        "This link is not valid",
        "<p>The unsubscribe link is incomplete or was altered. Use the link from your \
         latest email, or reply to it.</p>",
    )
}

/// The confirmation button: a form that POSTs what RFC 8058's one-click POST carries,
/// `List-Unsubscribe=One-Click`, to the page's own URL.
pub(super) const UNSUBSCRIBE_FORM: &str = "<form method=\"post\"><input type=\"hidden\" \
     name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\" \
     style=\"font-size:1rem;padding:.5rem 1rem;\">Unsubscribe</button></form>";

/// Who a page names, HTML-escaped: the configured subscriber's address as written there, as
/// the command line names them; the key when no configured subscriber has it any more.
pub(super) fn shown(cfg: &Config, key: &SubscriberKey) -> String {
    let address = cfg
        .subscriber(key)
        .map_or(key.as_str(), |s| s.email.as_str());
    handlebars::html_escape(address)
}

/// Any path the listener does not serve.
pub(super) async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Not found",
        "<p>There is no such page here.</p>",
    )
}
