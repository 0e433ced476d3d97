//! The headers every answer of the listener carries: never cached (a page names a subscriber
//! and its URL holds their token), never sniffed as another type, never framed (a hidden
//! frame could trick a click on the unsubscribe button), and never sent on as a referrer.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

/// What a page may load: nothing but its own inline styles; forms post only to this origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const HEADERS: [(HeaderName, &str); 5] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Adds the headers to an answer (replacing any of the same name).
pub(super) async fn add(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
