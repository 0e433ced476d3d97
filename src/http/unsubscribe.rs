//! `/unsubscribe`: the signed link of the email's footer (a GET shows a button) and the POSTs
//! that opt out (RFC 8058's one-click from mail clients, and that button).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tracing::info;

use super::HttpState;
use super::one_click_body::asks_one_click;
use super::pages::{UNSUBSCRIBE_FORM, html, invalid_link, shown};
use crate::domain::SubscriberKey;
use crate::mail::Tokens;

/// The most a one-click body may hold; RFC 8058's is 26 bytes, a browser's multipart one a
/// few hundred.
const MAX_BODY: usize = 16 * 1024;

#[derive(serde::Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    t: String,
}

/// The subscriber a token names, when it is signed with the configured secret.
fn verified(s: &HttpState, token: &str) -> Option<SubscriberKey> {
    let secret = s.config.borrow().unsubscribe.secret.clone();
    secret.and_then(|sec| Tokens::new(sec).verify(token))
}

/// The link in the email's footer: a page with a button. A GET changes nothing, because link
/// scanners (Safe Links and the like) fetch every URL in an email; the button POSTs.
pub(super) async fn unsubscribe_link(
    State(s): State<HttpState>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(key) = verified(&s, &q.t) else {
        return invalid_link();
    };
    let cfg = s.config.borrow().clone();
    html(
        StatusCode::OK,
        "Unsubscribe from paperboy?",
        &format!(
            "<p>{} will receive no more digests.</p>{UNSUBSCRIBE_FORM}",
            shown(&cfg, &key)
        ),
    )
}

/// RFC 8058 one-click: a POST of `List-Unsubscribe=One-Click` to the List-Unsubscribe URL;
/// the confirmation page's button posts the same. A POST without that body changes nothing.
pub(super) async fn unsubscribe_one_click(
    State(s): State<HttpState>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(key) = verified(&s, &q.t) else {
        return invalid_link();
    };
    let wait = s.config.borrow().http_limits.header_timeout;
    let body = match tokio::time::timeout(wait, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                "This request is too large",
                "<p>Nothing was changed. An unsubscribe request is a few bytes long.</p>",
            );
        }
        Err(_) => {
            return html(
                StatusCode::REQUEST_TIMEOUT,
                "This request took too long",
                "<p>Nothing was changed: the request's body did not arrive in time.</p>",
            );
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let cfg = s.config.borrow().clone();
    if !asks_one_click(content_type, &body) {
        return html(
            StatusCode::BAD_REQUEST,
            "Nothing was changed",
            &format!(
                "<p>This request did not ask to unsubscribe: an unsubscribe POST carries \
                 <code>List-Unsubscribe=One-Click</code> (RFC 8058). To stop the digests of {}, \
                 press the button.</p>{UNSUBSCRIBE_FORM}",
                shown(&cfg, &key)
            ),
        );
    }
    match s.store.opt_out(&key, "one-click").await {
        Ok(first) => {
            info!(via = "one-click", first, "unsubscribed");
            html(
                StatusCode::OK,
                "You are unsubscribed",
                &format!(
                    "<p>{} will receive no more paperboy digests.</p>",
                    shown(&cfg, &key)
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "recording an opt-out failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again later",
                "<p>The request could not be recorded.</p>",
            )
        }
    }
}
